"""Model: the train stage's failure, resume and scale-out behaviour, with a real MLflow store."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from components import ingest
from components.errors import TrainingDiverged
from components.layout import Layout, read_json
from tests.conftest import ROOT


@pytest.fixture
def digits_project(project, smoke_params):
    layout = Layout(project)
    ingest.run(smoke_params.ingest.model_copy(update={"source": "digits"}), layout)
    return layout


def test_divergence_stops_training_and_fails_the_run(digits_project, smoke_params):
    import mlflow

    from components import train

    cfg = smoke_params.train.model_copy(
        update={"lr_d": 1e30, "lr_g": 1e30, "kimg": 2.0, "log_every": 2, "loss": "wgan"}
    )
    with pytest.raises(TrainingDiverged, match=r"became (nan|inf|-inf) by step \d+"):
        train.run(cfg, digits_project)
    (run,) = mlflow.search_runs(experiment_names=["ganops"], output_format="list")
    assert run.info.status == "FAILED"
    assert not digits_project.models.exists()


def _ganops(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("ganops")), *args]


def _weights(models: Path) -> dict:
    from safetensors.torch import load_file

    return {p.stem: load_file(str(p)) for p in sorted(models.glob("*.safetensors"))}


@pytest.mark.slow
def test_sigkill_mid_run_then_restart_ends_bit_identical(digits_project):
    """`ganops stage train` on the smoke profile (a checkpoint every kimg), cut to 2 kimg: killed
    with SIGKILL after its first checkpoint and started again, it ends with exactly the weights
    of a run that was never interrupted."""
    import torch

    root = digits_project.root
    train = _ganops("stage", "train", "--set", "train.kimg=2")
    subprocess.run(train, cwd=root, check=True, capture_output=True)
    uninterrupted = _weights(digits_project.models)
    assert set(uninterrupted) == {"G", "G_ema", "G_ema_last", "D"}
    shutil.rmtree(digits_project.models)
    shutil.rmtree(digits_project.checkpoints)

    proc = subprocess.Popen(
        train,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while not list(digits_project.checkpoints.glob("*/checkpoint-*.pt")):
        assert proc.poll() is None, "train ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not digits_project.models.exists()  # killed mid-run: nothing was published

    again = subprocess.run(train, cwd=root, check=True, capture_output=True, text=True)
    assert "train: resuming from" in again.stdout
    assert "checkpoint-000000016.pt (step 16)" in again.stdout
    resumed = _weights(digits_project.models)
    for name, tensors in uninterrupted.items():
        assert tensors.keys() == resumed[name].keys()
        assert all(torch.equal(tensors[k], resumed[name][k]) for k in tensors), name


@pytest.mark.slow
def test_two_gloo_processes_train_to_identical_weights(project, prefect_harness):
    """`ganops run --set train.devices=2` on CPU: two DDP ranks under torchrun (gloo). Each rank
    hashes its own final weights; rank 0 gathers the hashes into models/run.json."""
    from components.cli import main

    shutil.copy(ROOT / "tests" / "params-tiny.yaml", project / "params.yaml")
    with pytest.raises(SystemExit) as exited:
        main(["run", "--params", "params.yaml", "--set", "train.devices=2"])
    assert exited.value.code in (0, None)
    summary = read_json(project / "models" / "run.json")
    assert summary["devices"] == 2
    first, second = summary["replica_digests"]
    assert first == second and len(first) == 64
    assert read_json(project / "reports" / "registration.json")["version"] == "1"


def test_checkpoint_folder_is_keyed_by_trajectory_not_schedule(smoke_params, tmp_path):
    """A longer kimg or another logging cadence continues the same run; anything that changes
    what is learnt (optimiser, loss, seed, data) starts its own."""
    from components.train.stage import checkpoint_dir

    layout, cfg = Layout(tmp_path), smoke_params.train
    base = checkpoint_dir(cfg, layout, "data-1")
    same = {
        "kimg": 900.0,
        "log_every": 7,
        "sample_every_kimg": 3.0,
        "eval_every_kimg": 9.0,
        "ckpt_every_kimg": 2.0,
    }
    assert checkpoint_dir(cfg.model_copy(update=same), layout, "data-1") == base
    for change in ({"lr_g": 1e-3}, {"loss": "hinge"}, {"seed": 1}, {"arch": "sagan"}):
        assert checkpoint_dir(cfg.model_copy(update=change), layout, "data-1") != base, change
    assert checkpoint_dir(cfg, layout, "data-2") != base


@pytest.mark.slow
def test_longer_run_continues_and_a_new_store_gets_a_new_run(
    digits_project, smoke_params, monkeypatch, capsys
):
    """kimg 1 then kimg 2 on the same store: one MLflow run, resumed. Then kimg 3 against a
    fresh store (the old one gone): the weights resume, a new run records where they came from."""
    import mlflow

    from components import train
    from tests.conftest import use_store

    cfg = smoke_params.train.model_copy(update={"kimg": 1.0, "ckpt_every_kimg": 1.0})
    first = train.run(cfg, digits_project)
    longer = train.run(cfg.model_copy(update={"kimg": 2.0}), digits_project)
    assert "train: resuming from" in capsys.readouterr().out
    assert longer["run_id"] == first["run_id"] and longer["steps"] == 32

    use_store(monkeypatch, f"sqlite:///{digits_project.root / 'other.db'}")
    moved = train.run(cfg.model_copy(update={"kimg": 3.0}), digits_project)
    out = capsys.readouterr().out
    assert "(step 32)" in out and "new MLflow run" in out
    assert moved["steps"] == 47 and moved["run_id"] != first["run_id"]
    run = mlflow.get_run(moved["run_id"])
    assert run.data.tags["resumed_from_run"] == first["run_id"]
    assert run.data.tags["resumed_from_checkpoint"].startswith(str(digits_project.checkpoints))


def test_probe_networks_are_cached_per_seed(tmp_path):
    """Two seeds train two probe networks (and never read each other's)."""
    import numpy as np

    from components.train.probe import Probe

    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (64, 1, 28, 28), dtype=np.uint8), np.arange(64) % 4
    nets = [Probe(images, labels, 4, 8, tmp_path, "hash", n=32, seed=s).net for s in (0, 1)]
    assert len(list(tmp_path.glob("probe-*.safetensors"))) == 2
    first, second = (dict(net.state_dict()) for net in nets)
    assert any(not torch.equal(first[k], second[k]) for k in first)
    again = Probe(images, labels, 4, 8, tmp_path, "hash", n=32, seed=1).net.state_dict()
    assert all(torch.equal(again[k], second[k]) for k in again)
