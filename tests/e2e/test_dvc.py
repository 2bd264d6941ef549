"""End to end through DVC, in one temp git repo shaped like a fresh clone (module-scoped, so the
steps build on each other as a user's would): `dvc repro` runs the five stages and then skips
them; `dvc exp run -S train.seed=1` and `=2` are listed by `dvc exp show` with their metrics;
`dvc metrics show` / `dvc plots show` / `dvc plots diff` render; `dvc push` and `dvc pull`
round-trip raw data, the processed dataset and the models; a failing gate stops `dvc exp run`.

The data is a small synthetic image folder tracked with `dvc add`, on the tiny profile, so each
pipeline run takes seconds.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components import tracking
from components.config import STAGES
from tests import datagen
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

GIT_ID = {
    "GIT_AUTHOR_NAME": "ganops-test",
    "GIT_AUTHOR_EMAIL": "test@ganops.invalid",
    "GIT_COMMITTER_NAME": "ganops-test",
    "GIT_COMMITTER_EMAIL": "test@ganops.invalid",
}


def run(*args, cwd, env, check=True):
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check:
        assert out.returncode == 0, f"{args}: {out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def sh(*args, cwd, env) -> str:
    out = run(*args, cwd=cwd, env=env)
    return out.stdout + out.stderr


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A committed repo on the tiny profile with `dvc repro` done twice (outputs kept)."""
    base = tmp_path_factory.mktemp("dvc")
    repo = base / "repo"
    repo.mkdir()
    shutil.copy(ROOT / "dvc.yaml", repo)
    shutil.copy(ROOT / ".gitignore", repo)  # what a clone ignores decides what experiments keep
    shutil.copytree(ROOT / "data" / "raw", repo / "data" / "raw")
    shutil.copytree(
        ROOT / "components", repo / "components", ignore=shutil.ignore_patterns("__pycache__")
    )
    tiny = yaml.safe_load((ROOT / "tests" / "params-tiny.yaml").read_text())
    tiny["ingest"]["source"] = "data/raw/pets"
    (repo / "params.yaml").write_text(yaml.safe_dump(tiny, sort_keys=False))
    datagen.image_folder(repo / "data" / "raw" / "pets", rgb=True)
    env = {
        **os.environ,
        **GIT_ID,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{base / 'mlflow.db'}",
    }
    sh("git", "init", "-q", cwd=repo, env=env)
    sh("dvc", "init", "-q", cwd=repo, env=env)
    sh("dvc", "remote", "add", "-d", "local", str(base / "remote"), cwd=repo, env=env)
    sh("dvc", "add", "-q", "data/raw/pets", cwd=repo, env=env)
    first = sh("dvc", "repro", cwd=repo, env=env)
    second = sh("dvc", "repro", cwd=repo, env=env)
    sh("git", "add", "-A", cwd=repo, env=env)
    sh("git", "commit", "-qm", "baseline", cwd=repo, env=env)
    return repo, env, first, second


@pytest.fixture(scope="module")
def experiments(repo):
    """`dvc exp run -S train.seed=1`, then `=2`, as the README shows."""
    path, env, *_ = repo
    for seed in (1, 2):
        out = sh("dvc", "exp", "run", "-S", f"train.seed={seed}", cwd=path, env=env)
        assert "Running stage 'train'" in out
        assert "Running stage 'ingest'" not in out  # same data: ingest is reused


def _exp_show_json(text: str):
    return json.loads(text[text.index("[") :])


def test_repro_runs_all_stages_then_skips(repo):
    path, _, first, second = repo
    for stage in STAGES:
        assert f"Running stage '{stage}'" in first, stage
        assert f"Stage '{stage}' didn't change, skipping" in second, stage
    assert "Running stage" not in second
    lock = yaml.safe_load((path / "dvc.lock").read_text())
    (processed,) = [o for o in lock["stages"]["ingest"]["outs"] if o["path"] == "data/processed"]
    assert tracking.dvc_md5(path / "data" / "processed") == processed["md5"]


def test_exp_run_seeds_are_listed_with_fid(repo, experiments):
    path, env, *_ = repo
    text = sh("dvc", "exp", "show", "--json", cwd=path, env=env)
    (baseline,) = [r for r in _exp_show_json(text) if r["rev"] != "workspace"]
    seeds = {}
    for exp in baseline["experiments"] or []:
        (rev,) = exp["revs"]
        data = rev["data"]
        seed = data["params"]["params.yaml"]["data"]["train"]["seed"]
        seeds[seed] = data["metrics"]["reports/metrics.json"]["data"]
    assert set(seeds) == {1, 2}
    for metrics in seeds.values():
        assert math.isfinite(metrics["fid"]) and math.isfinite(metrics["fid_floor"])
    table = sh("dvc", "exp", "show", "--no-pager", "--md", cwd=path, env=env)
    assert "fid" in table.splitlines()[0]


def test_metrics_and_plots_render(repo, experiments, tmp_path):
    path, env, *_ = repo
    shown = json.loads(sh("dvc", "metrics", "show", "--json", cwd=path, env=env))
    (workspace,) = shown.values()  # dvc names the workspace ""
    metrics = workspace["data"]["reports/metrics.json"]["data"]
    assert math.isfinite(metrics["fid"]) and math.isfinite(metrics["kid"])

    sh("dvc", "plots", "show", "-o", str(tmp_path / "show"), cwd=path, env=env)
    page = (tmp_path / "show" / "index.html").read_text()
    for field in ("d_loss", "g_loss", "probe_fid", "D_x"):
        assert field in page, field
    assert "eval_samples.png" in page  # the sample grid renders as an image plot

    names = sh("dvc", "exp", "ls", "--name-only", cwd=path, env=env).split()
    assert len(names) == 2
    sh("dvc", "plots", "diff", *names, "-o", str(tmp_path / "diff"), cwd=path, env=env)
    page = (tmp_path / "diff" / "index.html").read_text()
    for name in names:  # one curve (and one sample grid) per experiment
        assert name in page, name
    assert "probe_fid" in page


def test_push_pull_round_trips_data_and_models(repo, experiments):
    path, env, *_ = repo
    tracked = ("data/raw/pets", "data/processed", "models")
    before = {p: tracking.dvc_md5(path / p) for p in tracked}
    sh("dvc", "push", cwd=path, env=env)
    for p in (*tracked, ".dvc/cache"):
        shutil.rmtree(path / p)
    sh("dvc", "pull", cwd=path, env=env)
    assert {p: tracking.dvc_md5(path / p) for p in tracked} == before
    status = sh("dvc", "status", cwd=path, env=env).lower()
    assert "up to date" in status, status


def test_failing_gate_stops_exp_run_before_training(repo, experiments, tmp_path):
    source, env, *_ = repo
    path = tmp_path / "clone"  # a copy: the failed run must not disturb the shared repo
    shutil.copytree(source, path, symlinks=True)
    out = run(
        "dvc", "exp", "run", "-S", "validate.min_images=100000", cwd=path, env=env, check=False
    )  # fmt: skip
    assert out.returncode != 0
    assert "dataset size >= validate.min_images (100000): observed 60" in out.stderr
    assert "Running stage 'train'" not in out.stdout + out.stderr
