"""Code: `ganops generate` finds the family of a loaded pyfunc through the registry (metadata
`family`, else the version's tags, else the legacy family) and calls its generate hook."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

from components import families
from components import generate as gen
from components.errors import GanopsError
from components.families.base import HOOK_STAGES


def _model(metadata: dict | None, run_id: str | None = None):
    return SimpleNamespace(metadata=SimpleNamespace(metadata=metadata, run_id=run_id))


def test_the_metadata_family_decides(monkeypatch):
    monkeypatch.setattr(gen, "version_tags", lambda *a: pytest.fail("tags not needed"))
    for name in families.FAMILIES:
        assert gen.family_of(_model({"family": name}), "runs:/x/m").name == name


def test_without_metadata_the_version_tags_decide_then_the_legacy_family(monkeypatch):
    some = next(n for n in families.FAMILIES if n != families.LEGACY_FAMILY)
    monkeypatch.setattr(gen, "version_tags", lambda *a: {"family": some})
    assert gen.family_of(_model({}), "models:/m@champion").name == some
    monkeypatch.setattr(gen, "version_tags", lambda *a: {})
    assert gen.family_of(_model(None), "models:/m/1").name == families.LEGACY_FAMILY
    with pytest.raises(GanopsError, match="family 'nope' is unknown"):
        gen.family_of(_model({"family": "nope"}), "models:/m/1")


def test_generate_is_a_hook_every_family_may_bring():
    assert HOOK_STAGES["generate"] == "generate"
    for family in families.FAMILIES.values():
        if importlib.util.find_spec(f"{type(family).__module__}.generate") is not None:
            assert callable(family._hook("generate"))
        else:  # no synthetic datasets from this family: one error line, no traceback
            with pytest.raises(GanopsError, match=f"a {family.name} model makes no synthetic"):
                family.generate(_model({}), "models:/m/1", gen.Request(1), Path("out"))


def test_request_unconditional_refuses_labels():
    gen.Request(3).unconditional()
    for request in (gen.Request(3, label=1), gen.Request(3, balanced=True)):
        with pytest.raises(GanopsError, match="unconditional: drop --label/--balanced"):
            request.unconditional()
