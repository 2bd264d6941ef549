"""End to end: `dvc repro` runs the five stages in a temp git repo; a second run skips them all."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components.config import STAGES

from .conftest import ROOT, SMOKE

pytestmark = pytest.mark.slow


def sh(*args, cwd, env):
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"{args}: {out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout + out.stderr


def test_dvc_repro_runs_all_stages_then_skips(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "dvc.yaml", repo)
    shutil.copy(SMOKE, repo / "params.yaml")
    shutil.copytree(
        ROOT / "components", repo / "components", ignore=shutil.ignore_patterns("__pycache__")
    )
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }
    sh("git", "init", "-q", cwd=repo, env=env)
    sh("dvc", "init", "-q", cwd=repo, env=env)

    first = sh("dvc", "repro", cwd=repo, env=env)
    for stage in STAGES:
        assert f"Running stage '{stage}'" in first, stage
    assert (repo / "reports" / "metrics.json").is_file()
    assert (repo / "dvc.lock").is_file()

    second = sh("dvc", "repro", cwd=repo, env=env)
    assert "Running stage" not in second
    for stage in STAGES:
        assert f"Stage '{stage}' didn't change, skipping" in second, stage
