"""`ganops generate`: a synthetic dataset from the registry that ingest takes back as a source."""

from __future__ import annotations

import json

import numpy as np
import pytest

from components import ingest
from components.cli import main
from components.layout import Layout
from tests.conftest import use_store
from tests.registry_worker import register


def ganops(*args):
    try:
        main(list(args))
    except SystemExit as exc:
        return exc.code or 0
    return 0


def test_generate_folder_and_npz_round_trip_through_ingest(tmp_path, monkeypatch, smoke_params):
    use_store(monkeypatch, f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    register(tmp_path / "cand", fid=2.0)

    assert ganops("generate", "-n", "30", "--balanced", "--out", "syn") == 0
    assert sorted(p.name for p in (tmp_path / "syn").iterdir()) == [str(i) for i in range(10)]
    manifest = json.loads((tmp_path / "syn.manifest.json").read_text())
    assert manifest["model_version"] == "ganops-generator/1" and manifest["n_images"] == 30

    assert ganops("generate", "-n", "8", "--label", "4", "--out", "four.npz") == 0
    with np.load(tmp_path / "four.npz") as z:
        assert z["images"].shape == (8, 1, 28, 28) and set(z["labels"]) == {4}

    for source in ("syn", "four.npz"):
        cfg = smoke_params.ingest.model_copy(update={"source": str(tmp_path / source)})
        manifest = ingest.run(cfg, Layout(tmp_path / f"proj-{source}"))
        assert manifest["n_images"] in (30, 8) and manifest["conditional"]


def test_generate_needs_a_label_choice_for_a_conditional_model(tmp_path, monkeypatch, capsys):
    use_store(monkeypatch, f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    register(tmp_path / "cand", fid=2.0)
    assert ganops("generate", "-n", "4", "--out", "x.npz") == 1
    assert "pass --label L or --balanced" in capsys.readouterr().err
    assert ganops("generate", "-n", "4", "--label", "12", "--out", "x.npz") == 1
    assert "--label 12: out of range 0..9" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-n", "0"), "-n 0: make at least one image"),
        (("--truncation", "0"), "--truncation 0.0: must be > 0"),
        (("--out", "photos"), "--out photos: exists and is not an empty folder"),
    ],
)
def test_generate_checks_its_options_before_anything(tmp_path, monkeypatch, capsys, args, message):
    """A zero count or truncation would never end or crash; a folder of the user's is kept."""
    use_store(monkeypatch, f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "mine.jpg").write_bytes(b"the user's")
    base = ("--model", "models:/none@champion", "--balanced", "-n", "5", "--out", "syn")
    assert ganops("generate", *base, *args) == 1
    assert message in capsys.readouterr().err
    assert (tmp_path / "photos" / "mine.jpg").read_bytes() == b"the user's"
    assert not (tmp_path / "syn").exists()


pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
