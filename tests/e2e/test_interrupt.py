"""Ctrl-C and `timeout` during `ganops run`: the signal goes to the whole process group (as a
terminal and `timeout` send it), the run stops within seconds, keeps a checkpoint to resume
from, ends its MLflow run FAILED with the reason, exits non-zero and registers nothing."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.layout import read_json
from tests.conftest import SMOKE

pytestmark = pytest.mark.slow


def _ganops(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("ganops")), *args]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "timeout"])
def test_signal_to_the_process_group_stops_the_run(tmp_path, sig):
    import mlflow

    shutil.copy(SMOKE, tmp_path / "params.yaml")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "PREFECT_HOME": str(tmp_path / "prefect-home"),  # its own temporary server's database
    }
    long_run = ("--set", "ingest.source=digits", "--set", "train.kimg=200")
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(
        _ganops("run", *long_run),
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group, signalled below as a whole
    )
    try:
        deadline = time.monotonic() + 300
        while not list(tmp_path.glob("checkpoints/*/checkpoint-*.pt")):
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.2)
        os.killpg(proc.pid, sig)
        sent = time.monotonic()
        rc = proc.wait(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    output = (tmp_path / "run.log").read_text()
    assert rc != 0, output[-3000:]
    assert took < 15, f"stopped {took:.1f} s after {sig.name}"
    assert f"stopped by {sig.name}" in output, output[-3000:]

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    (run,) = [
        r
        for r in mlflow.search_runs(experiment_names=["ganops"], output_format="list")
        if not r.info.run_name.startswith("validate")
        and "dataset_hash" in r.data.tags
        and "failure_reason" in r.data.tags
    ]
    assert run.info.status == "FAILED"
    assert f"stopped by {sig.name}" in run.data.tags["failure_reason"]
    uri = env["MLFLOW_TRACKING_URI"]  # this run's store (another test may have set the registry)
    assert mlflow.MlflowClient(uri, registry_uri=uri).search_registered_models() == []
    assert not (tmp_path / "models").exists()

    # The checkpoint written on the way out resumes (a longer kimg continues the same folder).
    (ckpt_dir,) = tmp_path.glob("checkpoints/*")
    steps = sorted(int(p.stem.split("-")[1]) for p in ckpt_dir.glob("checkpoint-*.pt"))
    assert read_json(ckpt_dir / "mlflow_run.json")["run_id"] == run.info.run_id
    kimg = (steps[-1] + 2) * 64 / 1000
    again = subprocess.run(
        _ganops("stage", "train", "--set", "ingest.source=digits", "--set", f"train.kimg={kimg}"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"(step {steps[-1]})" in again.stdout and "resuming from" in again.stdout
