"""The registered pyfunc loads and predicts in a fresh virtualenv holding only the packages
its pip_requirements declare (installed with the project's pins)."""

from __future__ import annotations

import os
import subprocess
import sys
import venv

import pytest

from tests.conftest import ROOT, use_store
from tests.registry_worker import register

pytestmark = pytest.mark.slow


def test_pyfunc_runs_with_only_its_declared_requirements(tmp_path, monkeypatch):
    import mlflow

    use_store(monkeypatch, f"sqlite:///{tmp_path / 'mlflow.db'}")
    register(tmp_path / "cand", fid=2.0)
    model_dir = mlflow.artifacts.download_artifacts(
        "models:/ganops-generator@champion", dst_path=str(tmp_path / "model")
    )
    requirements = (tmp_path / "model" / "requirements.txt").read_text().split()
    assert any(r.startswith("torch==") for r in requirements)

    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "-r",
            str(tmp_path / "model" / "requirements.txt"),
            "-c",
            str(ROOT / "requirements.lock"),
        ],
        capture_output=True,
        text=True,
        env=clean,
        timeout=900,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    code = (
        "import sys, pandas as pd, mlflow.pyfunc\n"
        f"m = mlflow.pyfunc.load_model({model_dir!r})\n"
        "out = m.predict(pd.DataFrame({'label': [1, 2], 'seed': [0, 0]}))\n"
        "assert 'components' not in sys.modules or 'code' in sys.modules['components'].__file__\n"
        "print(out.shape, out.dtype)\n"
    )
    run = subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        env=clean,
        cwd=tmp_path,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1] == "(2, 1, 28, 28) uint8"
    assert sys.executable != str(python)
