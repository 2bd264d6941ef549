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
