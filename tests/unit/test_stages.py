"""Code: a stage after ingest refuses data/processed ingested with other ingest settings, and
accepts the same settings spelled another way (a relative or `~` path to the same source)."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.config import load_params
from components.errors import DataError
from components.layout import Layout, write_json
from components.stages import check_ingested_as
from tests.conftest import SMOKE


def _ingested(tmp_path: Path, **changes) -> Layout:
    layout = Layout(tmp_path)
    recorded = load_params(SMOKE).ingest.model_dump(mode="json") | changes
    write_json(layout.manifest, {"params": {k: v for k, v in recorded.items() if v is not None}})
    return layout


def test_same_settings_pass(tmp_path):
    check_ingested_as(load_params(SMOKE), _ingested(tmp_path))


def test_other_setting_names_key_both_values_and_the_way_out(tmp_path):
    layout = _ingested(tmp_path, seed=7, test_fraction=0.5)
    with pytest.raises(DataError) as err:
        check_ingested_as(load_params(SMOKE), layout)
    message = str(err.value)
    assert "was ingested with ingest.test_fraction=0.5" in message
    assert "(and 1 more ingest key(s))" in message
    assert "--set ingest.KEY=VALUE" in message and "`ganops stage ingest`" in message


def test_a_key_an_older_manifest_lacks_says_so(tmp_path):
    layout = _ingested(tmp_path, channels=None)
    with pytest.raises(DataError, match=r"does not record ingest\.channels \(ingested by an older"):
        check_ingested_as(load_params(SMOKE), layout)


def test_one_source_path_spelled_three_ways_is_the_same(tmp_path, monkeypatch):
    archive = tmp_path / "data" / "set.zip"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    layout = _ingested(tmp_path, source="./data/set.zip")
    for spelling in (str(archive), "data/set.zip", "~/data/../data/set.zip"):
        check_ingested_as(load_params(SMOKE, [f"ingest.source={spelling}"]), layout)
    with pytest.raises(DataError, match="ingest.source"):
        check_ingested_as(load_params(SMOKE, ["ingest.source=data/other.zip"]), layout)


def test_a_bundled_name_is_not_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digits").mkdir()  # a folder named like a bundled set is still another source
    layout = _ingested(tmp_path, source="digits")
    with pytest.raises(DataError, match="ingest.source"):
        check_ingested_as(load_params(SMOKE, [f"ingest.source={tmp_path / 'digits'}"]), layout)
