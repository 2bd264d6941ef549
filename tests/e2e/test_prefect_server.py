"""End to end against a real Prefect server, started the way a user starts one.

One module-scoped session: `prefect server start` on 127.0.0.1 (own PREFECT_HOME), a `process`
work pool, `prefect deploy --all --prefect-file infra/prefect.yaml`, two runs of
`ganops-pipeline/on-demand` (the smoke profile, and the same with a failing validation
threshold), then one `prefect worker start --run-once` executes both. The tests read what the
server recorded through its REST API, and the MLflow SQLite store the runs wrote to.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from components import tracking
from components.config import STAGES
from components.layout import read_json
from tests.conftest import ROOT, SMOKE

pytestmark = pytest.mark.slow

MODEL = "ganops-generator"
BAD_OVERRIDE = "validate.min_images=100000"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sh(*args, cwd, env, timeout=300) -> str:
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{args}: {out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout + out.stderr


def _fresh_clone(dest: Path) -> None:
    """What a clone of the repository holds that the pipeline needs (tracked files only)."""
    keep = shutil.ignore_patterns("__pycache__")
    for folder in ("components", "flows", "infra", "data/raw"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=keep)
    (dest / "tests").mkdir()
    shutil.copy(SMOKE, dest / "tests" / SMOKE.name)
    shutil.copy(SMOKE, dest / "params.yaml")  # so `dvc repro` below runs the same params
    shutil.copy(ROOT / "dvc.yaml", dest)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import httpx

    root = tmp_path_factory.mktemp("prefect-server")
    project = root / "project"
    _fresh_clone(project)
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PREFECT_HOME": str(root / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
    }
    for key in ("PREFECT_PROFILES_PATH", "PREFECT_PROFILE", "PREFECT_RESULTS_LOCAL_STORAGE_PATH"):
        env.pop(key, None)
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
        + ["--port", str(port), "--analytics-off", "--no-ui"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"prefect server did not start: {server.stderr.read()[-3000:]}")
            time.sleep(0.5)

        _sh("prefect", "work-pool", "create", "ganops", "--type", "process", cwd=project, env=env)
        deploy = _sh(
            "prefect", "deploy", "--all", "--prefect-file", "infra/prefect.yaml",
            cwd=project, env=env,
        )  # fmt: skip
        runs = {}
        for label, extra in (("good", []), ("bad", ["--param", f'overrides=["{BAD_OVERRIDE}"]'])):
            out = _sh(
                "prefect", "deployment", "run", "ganops-pipeline/on-demand",
                "--param", "params_file=tests/params-smoke.yaml", *extra,
                cwd=project, env=env,
            )  # fmt: skip
            runs[label] = re.search(r"UUID:\s*([0-9a-f-]{36})", out).group(1)
        worker = _sh(
            "prefect", "worker", "start", "--pool", "ganops", "--run-once", "--limit", "2",
            cwd=project, env=env, timeout=900,
        )  # fmt: skip
        client = httpx.Client(base_url=api, timeout=30)
        yield SimpleNamespace(
            api=client, project=project, root=root, env=env, runs=runs, deploy=deploy,
            worker=worker, mlflow_uri=env["MLFLOW_TRACKING_URI"],
        )  # fmt: skip
        client.close()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def _flow_run(s, label) -> dict:
    return s.api.get(f"/flow_runs/{s.runs[label]}").raise_for_status().json()


def _task_runs(s, label) -> list[dict]:
    body = {"flow_runs": {"id": {"any_": [s.runs[label]]}}, "sort": "EXPECTED_START_TIME_ASC"}
    runs = s.api.post("/task_runs/filter", json=body).raise_for_status().json()
    return sorted(runs, key=lambda r: r["start_time"] or "")


def _artifacts(s, label) -> dict[str, dict]:
    body = {"artifacts": {"flow_run_id": {"any_": [s.runs[label]]}}}
    found = s.api.post("/artifacts/filter", json=body).raise_for_status().json()
    return {a["key"]: a for a in found}


def _stage(task_run: dict) -> str:
    return task_run["name"].rsplit("-", 1)[0]


def test_deployments_declared_by_the_prefect_file(served):
    found = {}
    for name in ("nightly-retrain", "on-demand"):
        found[name] = (
            served.api.get(f"/deployments/name/ganops-pipeline/{name}").raise_for_status().json()
        )
    nightly, on_demand = found["nightly-retrain"], found["on-demand"]
    assert [s["schedule"]["cron"] for s in nightly["schedules"]] == ["0 2 * * *"]
    assert nightly["schedules"][0]["active"]
    assert on_demand["schedules"] == []
    for deployment in found.values():
        assert deployment["work_pool_name"] == "ganops"
        assert deployment["parameters"] == {"params_file": "params.yaml", "overrides": []}
        assert set(deployment["parameter_openapi_schema"]["properties"]) == {
            "params_file",
            "overrides",
        }
    pool = served.api.get("/work_pools/ganops").raise_for_status().json()
    assert pool["type"] == "process"


def test_on_demand_run_completes_and_registers_a_version(served):
    import mlflow
    import numpy as np
    import pandas as pd

    run = _flow_run(served, "good")
    assert run["state"]["type"] == "COMPLETED", run["state"]["message"]
    assert run["parameters"]["params_file"] == "tests/params-smoke.yaml"
    # the name tells what ran: the source, its content fingerprint and the params hash
    assert re.fullmatch(r"mnist5k-src[0-9a-f]{8}-params[0-9a-f]{8}", run["name"]), run["name"]
    assert [_stage(t) for t in _task_runs(served, "good")] == list(STAGES)
    dvc_stages = list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])
    assert dvc_stages == list(STAGES)

    client = mlflow.MlflowClient(tracking_uri=served.mlflow_uri, registry_uri=served.mlflow_uri)
    (version,) = client.search_model_versions(f"name='{MODEL}'")
    assert str(version.version) == "1"
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    manifest = read_json(served.project / "data" / "processed" / "manifest.json")
    assert version.tags["dataset_hash"] == manifest["content_hash"]
    assert {"dataset_dvc_md5", "git_commit", "params_hash", "decision_reason"} <= set(version.tags)

    mlflow.set_tracking_uri(served.mlflow_uri)
    mlflow.set_registry_uri(served.mlflow_uri)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    images = model.predict(pd.DataFrame({"label": list(range(10)) * 2, "seed": [5] * 20}))
    assert images.shape == (20, 1, 28, 28) and images.dtype == np.uint8
    assert np.array_equal(images[:10], images[10:])  # deterministic per seed

    artifacts = _artifacts(served, "good")
    assert {"validation", "metrics", "mlflow-run", "model-version"} <= set(artifacts)
    assert "| dataset size >= validate.min_images (500) | pass |" in artifacts["validation"]["data"]
    assert "| fid |" in artifacts["metrics"]["data"]
    run_id = version.run_id
    assert f"/#/experiments/1/runs/{run_id})" in artifacts["mlflow-run"]["data"]
    assert f"/#/models/{MODEL}/versions/1)" in artifacts["model-version"]["data"]
    assert "failure" not in artifacts


def test_failing_validation_fails_the_flow_run_with_the_reason(served):
    run = _flow_run(served, "bad")
    assert run["state"]["type"] == "FAILED"
    reason = "dataset size >= validate.min_images (100000): observed 5000"
    assert reason in run["state"]["message"]
    assert run["parameters"]["overrides"] == [BAD_OVERRIDE]
    tasks = _task_runs(served, "bad")
    assert [_stage(t) for t in tasks] == ["ingest", "validate"]  # nothing after the gate
    assert tasks[1]["state"]["type"] == "FAILED"
    assert tasks[1]["run_count"] == 1  # a failed gate is never retried
    artifacts = _artifacts(served, "bad")
    assert reason in artifacts["failure"]["data"]  # written by the on_failure hook
    assert "**FAIL**" in artifacts["validation"]["data"]
    assert "metrics" not in artifacts


def test_one_pipeline_per_model_at_a_time(served):
    """Both runs were started together; the model's slot made their stages take turns."""
    good, bad = _flow_run(served, "good"), _flow_run(served, "bad")
    first, second = sorted((good, bad), key=lambda r: r["start_time"])
    assert second["start_time"] < first["end_time"]  # the two flow runs did overlap ...
    spans = {}
    for label in ("good", "bad"):
        tasks = _task_runs(served, label)
        spans[label] = (min(t["start_time"] for t in tasks), max(t["end_time"] for t in tasks))
    (a_start, a_end), (b_start, b_end) = sorted(spans.values())
    assert a_end <= b_start  # ... but their stages did not
    limit = served.api.get("/v2/concurrency_limits/ganops-pipeline-ganops-generator")
    limit = limit.raise_for_status().json()
    assert limit["limit"] == 1 and limit["active_slots"] == 0


def test_ingest_is_cached_across_runs_and_results_persist(served):
    """The later run found the earlier run's ingest result (same source, same ingest params,
    outputs still on disk); validate was not cached (its params differ)."""
    by_label = {label: _task_runs(served, label) for label in ("good", "bad")}
    later = max(by_label, key=lambda label: by_label[label][0]["start_time"])
    earlier = "bad" if later == "good" else "good"
    ingest_states = {label: by_label[label][0]["state"]["name"] for label in by_label}
    assert ingest_states == {earlier: "Completed", later: "Cached"}
    assert by_label[later][1]["state"]["name"] != "Cached"
    storage = served.root / "prefect-home" / "storage"
    keys = {p.name for p in storage.iterdir()}
    assert any(k.startswith("ganops-ingest-") for k in keys)
    assert any(k.startswith("ganops-validate-") for k in keys)  # the passing run's gate
    assert len(keys) > 2  # train/evaluate/register results too


def test_dvc_repro_gives_the_prefect_run_the_same_dataset(served):
    """`dvc repro ingest` on the same params and data writes the dataset the Prefect run
    registered: same content hash, same DVC md5."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=served.mlflow_uri, registry_uri=served.mlflow_uri)
    version = client.get_model_version(MODEL, "1")
    project, env = served.project, served.env
    shutil.rmtree(project / "data" / "processed")
    _sh("git", "init", "-q", cwd=project, env=env)
    _sh("dvc", "init", "-q", cwd=project, env=env)
    assert "Running stage 'ingest'" in _sh("dvc", "repro", "ingest", cwd=project, env=env)
    manifest = read_json(project / "data" / "processed" / "manifest.json")
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    (out,) = [o for o in lock["stages"]["ingest"]["outs"] if o["path"] == "data/processed"]
    assert manifest["content_hash"] == version.tags["dataset_hash"]
    assert out["md5"] == version.tags["dataset_dvc_md5"]
    assert tracking.dvc_md5(project / "data" / "processed") == out["md5"]
