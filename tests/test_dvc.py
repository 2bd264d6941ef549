"""End to end: `dvc repro` runs the five stages in a temp git repo; a second run skips them all."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components import tracking
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
    shutil.copytree(ROOT / "data" / "raw", repo / "data" / "raw")
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
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    (processed,) = [o for o in lock["stages"]["ingest"]["outs"] if o["path"] == "data/processed"]
    assert tracking.dvc_md5(repo / "data" / "processed") == processed["md5"]

    second = sh("dvc", "repro", cwd=repo, env=env)
    assert "Running stage" not in second
    for stage in STAGES:
        assert f"Stage '{stage}' didn't change, skipping" in second, stage


def test_dvc_push_pull_round_trips_raw_and_processed_data(tmp_path):
    from . import datagen

    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "dvc.yaml", repo)
    shutil.copytree(
        ROOT / "components", repo / "components", ignore=shutil.ignore_patterns("__pycache__")
    )
    tiny = yaml.safe_load((ROOT / "tests" / "params-tiny.yaml").read_text())
    tiny["ingest"]["source"] = "data/raw/pets"
    (repo / "params.yaml").write_text(yaml.safe_dump(tiny))
    datagen.image_folder(repo / "data" / "raw" / "pets", rgb=True)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }
    sh("git", "init", "-q", cwd=repo, env=env)
    sh("dvc", "init", "-q", cwd=repo, env=env)
    sh("dvc", "remote", "add", "-d", "local", str(tmp_path / "remote"), cwd=repo, env=env)
    sh("dvc", "add", "-q", "data/raw/pets", cwd=repo, env=env)
    sh("dvc", "repro", "ingest", cwd=repo, env=env)
    before = {p: tracking.dvc_md5(repo / p) for p in ("data/raw/pets", "data/processed")}
    sh("dvc", "push", cwd=repo, env=env)

    for path in ("data/raw/pets", "data/processed", ".dvc/cache"):
        shutil.rmtree(repo / path)
    sh("dvc", "pull", "data/raw/pets.dvc", "ingest", cwd=repo, env=env)
    after = {p: tracking.dvc_md5(repo / p) for p in before}
    assert after == before
    assert "up to date" in sh("dvc", "status", "ingest", cwd=repo, env=env).lower()


def test_dvc_repro_stops_at_failed_validation(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "dvc.yaml", repo)
    shutil.copytree(ROOT / "data" / "raw", repo / "data" / "raw")
    shutil.copytree(
        ROOT / "components", repo / "components", ignore=shutil.ignore_patterns("__pycache__")
    )
    params = yaml.safe_load(SMOKE.read_text())
    params["validate"]["min_images"] = 100_000
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }
    sh("git", "init", "-q", cwd=repo, env=env)
    sh("dvc", "init", "-q", cwd=repo, env=env)
    out = subprocess.run(
        ["dvc", "repro"], cwd=repo, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode != 0
    assert "dataset size >= validate.min_images (100000): observed 5000" in out.stderr
    assert "Running stage 'train'" not in out.stdout + out.stderr
    assert not (repo / "models").exists()
