"""End to end per source kind: `ganops run --set ingest.source=PATH` trains, evaluates and
registers on RGB and grayscale data the tests make; bad input exits non-zero, no traceback,
and leaves the champion alias alone."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest

from components.cli import main
from tests import datagen
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def proj(tmp_path_factory, prefect_harness):
    root = tmp_path_factory.mktemp("sources")
    shutil.copy(ROOT / "tests" / "params-tiny.yaml", root / "params.yaml")
    old_cwd, old_uri = os.getcwd(), os.environ.get("MLFLOW_TRACKING_URI")
    os.chdir(root)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    import mlflow

    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    mlflow.set_registry_uri(os.environ["MLFLOW_TRACKING_URI"])
    yield root
    os.chdir(old_cwd)
    if old_uri is None:
        os.environ.pop("MLFLOW_TRACKING_URI")
    else:
        os.environ["MLFLOW_TRACKING_URI"] = old_uri


def ganops_run(*overrides):
    args = ["run", "--params", "params.yaml"]
    for item in overrides:
        args += ["--set", item]
    try:
        main(args)
    except SystemExit as exc:
        return exc.code or 0
    return 0


def newest_version():
    import mlflow

    client = mlflow.MlflowClient()
    versions = client.search_model_versions("name='ganops-generator'")
    return max((int(v.version) for v in versions), default=0)


SOURCES = {
    "rgb class folders": lambda t: datagen.image_folder(t / "pets", rgb=True),
    "grayscale flat folder": lambda t: datagen.image_folder(t / "flat", classes=(), n=40),
    "grayscale npz": lambda t: datagen.npz(t / "digits.npz"),
    # other images than "rgb class folders": the same data would continue the same training
    # run, and register answers the version that run already made (no second version)
    "rgb zip": lambda t: datagen.zip_of(datagen.image_folder(t / "z", rgb=True, n=32), t / "z.zip"),
    "grayscale tar.gz": lambda t: datagen.tar_of(datagen.image_folder(t / "tg"), t / "tg.tar.gz"),
}


@pytest.mark.parametrize("kind", list(SOURCES))
def test_each_source_kind_runs_end_to_end(proj, tmp_path, kind):
    import mlflow

    src = SOURCES[kind](tmp_path)
    before = newest_version()
    assert ganops_run(f"ingest.source={src}") == 0
    version = newest_version()
    assert version == before + 1
    model = mlflow.pyfunc.load_model(f"models:/ganops-generator/{version}")
    conditional = kind != "grayscale flat folder"
    frame = pd.DataFrame({"label": [0, 1], "seed": [1, 2]} if conditional else {"seed": [1, 2]})
    images = model.predict(frame)
    channels = 3 if "rgb" in kind else 1
    assert images.shape == (2, channels, 28, 28) and images.dtype == np.uint8


def _truncated(t):
    root = datagen.image_folder(t / "p")
    png = root / "cat" / "003.png"
    png.write_bytes(png.read_bytes()[:60])
    return root


def _npz(t, images, labels):
    np.savez(t / "d.npz", images=images, labels=labels)
    return t / "d.npz"


GOOD_NPZ = np.random.default_rng(0).uniform(0, 255, (40, 28, 28))
BAD = {
    "missing path": lambda t: t / "missing",
    "empty folder": lambda t: (t / "empty").mkdir() or t / "empty",
    "not an image": lambda t: (
        (datagen.image_folder(t / "p") / "cat" / "x.png").write_text("no") and t / "p"
    ),
    "truncated image": _truncated,
    "npz without images": lambda t: np.savez(t / "x.npz", foo=np.zeros(3)) or t / "x.npz",
    "npz with NaN": lambda t: _npz(
        t, np.where(GOOD_NPZ > 250, np.nan, GOOD_NPZ), np.arange(40) % 2
    ),
    "npz out of range": lambda t: _npz(t, GOOD_NPZ * 2, np.arange(40) % 2),
    "npz labels wrong length": lambda t: _npz(t, GOOD_NPZ, np.arange(39) % 2),
    "npz negative labels": lambda t: _npz(t, GOOD_NPZ, np.arange(40) % 2 - 1),
    "label outside named classes": lambda t: (
        datagen.image_folder(t / "p", classes=("cat", "dog", "emu")),
        "ingest.classes=[cat, dog]",
    ),
    "single class": lambda t: datagen.image_folder(t / "one", classes=("cat",)),
    "too small": lambda t: datagen.image_folder(t / "few", n=4),
    "all blank": lambda t: _npz(t, np.full((40, 28, 28), 9.0), np.arange(40) % 2),
    "zip traversal": lambda t: _evil_zip(t / "evil.zip", "../../evil.png"),
    "zip absolute entry": lambda t: _evil_zip(t / "abs.zip", "/tmp/abs.png"),
}


def _evil_zip(path, name):
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(name, b"x")
    return path


def test_bad_input_exits_nonzero_without_traceback_and_keeps_champion(proj, tmp_path, capfd):
    import mlflow

    client = mlflow.MlflowClient()
    if newest_version() == 0:
        assert ganops_run(f"ingest.source={datagen.npz(tmp_path / 'good.npz')}") == 0
    champion = client.get_model_version_by_alias("ganops-generator", "champion").version
    count = newest_version()
    for case, make in BAD.items():
        folder = tmp_path / case.replace(" ", "_")
        folder.mkdir()
        made = make(folder)
        src, extra = made if isinstance(made, tuple) else (made, None)
        capfd.readouterr()
        code = ganops_run(f"ingest.source={src}", *([extra] if extra else []))
        out = capfd.readouterr()
        text = out.out + out.err
        assert code != 0, case
        assert "Traceback" not in text, (case, text[-2000:])
        error_lines = [line for line in out.err.splitlines() if line.startswith("error: ")]
        assert len(error_lines) == 1, (case, out.err[-2000:])
        assert "ingest.source" in error_lines[0] or "data checks failed" in error_lines[0], case
        assert client.get_model_version_by_alias("ganops-generator", "champion").version == champion
        assert newest_version() == count, case
