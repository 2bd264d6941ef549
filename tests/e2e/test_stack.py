"""The team stack of real servers, started the way `make stack` starts it (infra/stack/stack.py
up), into a temporary STACK_DIR on free ports bound to 127.0.0.1, for a fresh clone of the
project. One module-scoped session does everything, the tests read what it left:

- a second `up` reports everything running; `status` says healthy;
- the smoke pipeline deployed with `prefect deploy` and run by the stack's own worker registers a
  version whose rows are in Postgres and whose artifacts are objects in the `mlflow` bucket;
- `dvc push` / `dvc pull` round-trip the processed data through the `dvc` bucket;
- four registrations from four processes with four HOMEs (no shared file lock: as if on four
  hosts) race on the registry and leave one champion, every version READY with its artifacts;
- the MLflow server is stopped for a few seconds during training and restarted: the run ends
  FINISHED with every metric logged;
- 401 without credentials (MLflow, Prefect), 403 for a read-only MLflow user setting an alias,
  S3 refuses wrong keys;
- `down` leaves no process of the stack and no port open.

Needs the Postgres 15 binaries (/usr/lib/postgresql/15/bin, or STACK_PG_BIN); skipped without.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from components.layout import read_json

from ..conftest import ROOT, SMOKE, use_store

PG_BIN = Path(os.environ.get("STACK_PG_BIN", "/usr/lib/postgresql/15/bin"))
STACK = ROOT / "infra" / "stack" / "stack.py"
MODEL = "ganops-generator"
RACE_MODEL = "ganops-race"
RACE_FIDS = [4.0, 2.0, 3.0, 5.0]
COLD_START_LIMIT = 90  # seconds; the 60 s on an idle 2-core host, with slack for CI load

pytestmark = [
    pytest.mark.slow,
    pytest.mark.stack,
    pytest.mark.skipif(
        not (PG_BIN / "initdb").is_file(),
        reason=f"no Postgres 15 binaries in {PG_BIN} (set STACK_PG_BIN): the stack needs them",
    ),
]

RACE_WORKER = """
import sys
from pathlib import Path
from components.config import load_params
from tests.registry_worker import register
cfg = load_params(Path(sys.argv[3]), ["register.model_name={model}"]).register_
d = register(Path(sys.argv[1]), float(sys.argv[2]), cfg)
print(f"v{{d['version']}} @{{d['alias']}}")
"""


def _sh(*args, cwd, env, timeout=300, check=True) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check:
        assert out.returncode == 0, f"{args}: {out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def _fresh_clone(dest: Path, env: dict) -> None:
    """What a clone holds that the pipeline needs, as a git + DVC repository."""
    keep = shutil.ignore_patterns("__pycache__")
    for folder in ("components", "flows", "infra", "data/raw", ".dvc"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=keep)
    for local in ("config.local", "tmp", "cache"):  # a clone has none of these
        path = dest / ".dvc" / local
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    (dest / "tests").mkdir()
    shutil.copy(SMOKE, dest / "tests" / SMOKE.name)
    shutil.copy(SMOKE, dest / "params.yaml")
    for name in ("dvc.yaml", ".gitignore", ".dvcignore"):
        if (ROOT / name).is_file():
            shutil.copy(ROOT / name, dest / name)
    _sh("git", "init", "-q", cwd=dest, env=env)


def _read_env_file(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        m = re.fullmatch(r"export (\w+)='(.*)'", line)
        if m:
            found[m[1]] = m[2]
    return found


def _stack_processes(stack_dir: Path) -> list[str]:
    """Live processes whose command line or working directory is inside the stack's folder."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            cmd = proc.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if str(stack_dir) in cmd or cwd.startswith(str(stack_dir)):
            found.append(f"{proc.name}: {cmd[:200]}")
    return found


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_flow_run(api, run_id: str, timeout: float = 900) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = api.get(f"/flow_runs/{run_id}").raise_for_status().json()
        if run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        assert time.monotonic() < deadline, f"flow run still {run['state']['type']}"
        time.sleep(2)


def _run_pipeline_through_worker(s) -> None:
    """`prefect deploy` then `prefect deployment run` the smoke profile; the stack's worker
    (started by `up`) executes it."""
    import httpx

    s.deploy = _sh(
        "prefect", "deploy", "--all", "--prefect-file", "infra/prefect.yaml",
        cwd=s.project, env=s.env,
    ).stdout  # fmt: skip
    out = _sh(
        "prefect", "deployment", "run", "ganops-pipeline/on-demand",
        "--param", "params_file=tests/params-smoke.yaml", cwd=s.project, env=s.env,
    ).stdout  # fmt: skip
    run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", out).group(1)
    s.api = httpx.Client(
        base_url=s.env["PREFECT_API_URL"],
        auth=tuple(s.env["PREFECT_API_AUTH_STRING"].split(":", 1)),
        timeout=30,
    )
    s.flow_run = _wait_flow_run(s.api, run_id)


def _round_trip_dvc(s) -> None:
    """dvc repro ingest, push to the stack's `dvc` bucket, drop the data and the cache, pull."""
    _sh("dvc", "repro", "ingest", cwd=s.project, env=s.env)
    s.dvc_manifest = read_json(s.project / "data" / "processed" / "manifest.json")
    s.dvc_push = _sh("dvc", "push", "data/processed", cwd=s.project, env=s.env).stdout
    shutil.rmtree(s.project / "data" / "processed")
    shutil.rmtree(s.project / ".dvc" / "cache")
    s.dvc_pull = _sh("dvc", "pull", "data/processed", cwd=s.project, env=s.env).stdout
    s.dvc_pulled = read_json(s.project / "data" / "processed" / "manifest.json")


def _race(s) -> None:
    """Four registrations at once, each in its own process with its own HOME (so no file lock
    is shared, as on four machines)."""
    procs = []
    for i, fid in enumerate(RACE_FIDS):
        home = s.root / f"race-home-{i}"
        home.mkdir()
        env = {**s.env, "HOME": str(home), "PREFECT_HOME": str(home / ".prefect")}
        code = RACE_WORKER.format(model=RACE_MODEL)
        args = [sys.executable, "-c", code, str(s.root / f"race-{i}"), str(fid), str(SMOKE)]
        procs.append(
            subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    s.race = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        s.race.append(out.strip().splitlines()[-1])


def _train_through_outage(s) -> None:
    """`ganops stage train` (a new seed: no checkpoint to resume); at its first progress line
    the MLflow server is stopped, 5 s later started again with `up`."""
    args = ["ganops", "stage", "train", "-p", "tests/params-smoke.yaml"]
    args += ["--set", "train.seed=1", "--set", "train.kimg=8"]
    proc = subprocess.Popen(
        args, cwd=s.project, env=s.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    outage: dict = {}

    def cut_mlflow() -> None:
        outage["stop"] = _sh(sys.executable, STACK, "stop", "mlflow", cwd=ROOT, env=s.stack_env)
        outage["down_at"] = time.monotonic()
        time.sleep(5)
        outage["up"] = _sh(sys.executable, STACK, "up", cwd=ROOT, env=s.stack_env, timeout=180)
        outage["up_at"] = time.monotonic()

    cutter = None
    for line in proc.stdout:
        lines.append(line)
        if cutter is None and line.startswith("train: step"):
            cutter = threading.Thread(target=cut_mlflow)
            cutter.start()
    proc.wait(timeout=600)
    assert cutter is not None, "".join(lines)[-3000:]
    cutter.join(timeout=300)
    s.outage = SimpleNamespace(
        rc=proc.returncode, log="".join(lines), end=time.monotonic(), **outage
    )


@pytest.fixture(scope="module")
def stack():
    root = Path(tempfile.mkdtemp(prefix="ganops-stack-test-"))
    root.chmod(0o711)  # the postgres user must reach its data folder inside
    stack_dir, project = root / "stack", root / "project"
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "MLFLOW_", "AWS_", "STACK_"))
    }
    base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    base["OMP_NUM_THREADS"] = "1"
    project.mkdir()
    _fresh_clone(project, base)
    stack_env = {
        **base,
        "STACK_DIR": str(stack_dir),
        "STACK_PORTS": "auto",
        "STACK_PROJECT": str(project),
        "STACK_PREFECT_UI": "0",
    }
    s = SimpleNamespace(root=root, dir=stack_dir, project=project, stack_env=stack_env)
    try:
        t0 = time.monotonic()
        s.up = _sh(sys.executable, STACK, "up", cwd=ROOT, env=stack_env, timeout=300).stdout
        s.cold_start = time.monotonic() - t0
        s.state = json.loads((stack_dir / "stack.json").read_text())
        s.env = {**base, **_read_env_file(stack_dir / "env")}
        s.up_again = _sh(sys.executable, STACK, "up", cwd=ROOT, env=stack_env).stdout
        s.status = _sh(sys.executable, STACK, "status", cwd=ROOT, env=stack_env).stdout
        _run_pipeline_through_worker(s)
        _round_trip_dvc(s)
        _race(s)
        _train_through_outage(s)
        yield s
    finally:
        s.down = _sh(sys.executable, STACK, "down", cwd=ROOT, env=stack_env, check=False)
        s.left = _stack_processes(stack_dir)
        ports = getattr(s, "state", {}).get("ports", {})
        s.open_ports = [p for p in ports.values() if _port_open(p)]
        if getattr(s, "api", None) is not None:
            s.api.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def stopped(stack):
    """The stack after `down` (the module fixture's teardown runs it; here it runs early)."""
    out = _sh(sys.executable, STACK, "down", cwd=ROOT, env=stack.stack_env, check=False)
    return SimpleNamespace(
        out=out, left=_stack_processes(stack.dir),
        open_ports=[p for p in stack.state["ports"].values() if _port_open(p)],
    )  # fmt: skip


@pytest.fixture
def as_user(stack, monkeypatch):
    """An MLflow client of the stack as `user` (credentials by env, as MLflow reads them)."""
    import mlflow

    def client(user: str = "ganops"):
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", stack.state["mlflow_users"][user])
        uri = use_store(monkeypatch, stack.env["MLFLOW_TRACKING_URI"])
        return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)

    return client


def _pg(s, db: str = "mlflow"):
    import psycopg2

    port, password = s.state["ports"]["postgres"], s.state["pg_mlflow_password"]
    return psycopg2.connect(
        host="127.0.0.1", port=port, user="mlflow", password=password, dbname=db
    )


def _s3(s, key: str | None = None, secret: str | None = None):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s.env["AWS_ENDPOINT_URL_S3"],
        aws_access_key_id=key or s.state["s3_access_key"],
        aws_secret_access_key=secret or s.state["s3_secret_key"],
        region_name="us-east-1",
    )


def _s3_prefix(uri: str) -> str:
    """mlflow-artifacts:/1/abc/artifacts -> 1/abc/artifacts (the server proxies to s3://mlflow)."""
    assert uri.startswith("mlflow-artifacts:/"), uri
    return uri[len("mlflow-artifacts:/") :].lstrip("/")


def _s3_keys(s, prefix: str) -> set[str]:
    listing = _s3(s).list_objects_v2(Bucket="mlflow", Prefix=prefix)
    return {o["Key"][len(prefix) :].lstrip("/") for o in listing.get("Contents", [])}


def _version_objects(s, client, version) -> set[str]:
    """The S3 objects under a model version's logged model (artifacts proxied to s3://mlflow)."""
    model_id = version.model_id or version.source.split("/")[-1]
    return _s3_keys(s, _s3_prefix(client.get_logged_model(model_id).artifact_location))


# ---------------------------------------------------------------- start-up


def test_up_starts_every_service_on_loopback_and_is_idempotent(stack):
    print(f"cold start {stack.cold_start:.1f}s\n{stack.up}")
    assert stack.cold_start < COLD_START_LIMIT, stack.up
    for name in ("postgres", "s3", "mlflow", "prefect", "worker"):
        assert re.search(rf"^\s+{name}\s+started in", stack.up, re.M), stack.up
        assert re.search(rf"^\s+{name}\s+already running", stack.up_again, re.M), stack.up_again
        assert re.search(rf"^\s+{name}\s+healthy", stack.status, re.M), stack.status
    assert f"to use it: . {stack.dir / 'env'}" in stack.up
    for path in (stack.dir / "env", stack.dir / "stack.json"):
        assert path.stat().st_mode & 0o777 == 0o600
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    for port in stack.state["ports"].values():
        bound = re.findall(rf"(\S+):{port}\s", listening)
        assert bound and set(bound) == {"127.0.0.1"}, (port, bound)
    assert stack.env["MLFLOW_TRACKING_URI"].startswith("http://127.0.0.1:")
    assert "AWS_SECRET_ACCESS_KEY" in stack.env and "PREFECT_API_AUTH_STRING" in stack.env


# ---------------------------------------------------------------- the pipeline on the stack


def test_deployed_pipeline_registers_rows_in_postgres_and_objects_in_s3(stack, as_user):
    import mlflow
    import numpy as np
    import pandas as pd

    run = stack.flow_run
    assert run["state"]["type"] == "COMPLETED", run["state"]["message"]
    assert run["parameters"]["params_file"] == "tests/params-smoke.yaml"
    client = as_user("ganops")
    (version,) = client.search_model_versions(f"name='{MODEL}'")
    assert version.status == "READY"
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == version.version
    assert {"MLmodel", "artifacts/G_ema.safetensors"} <= _version_objects(stack, client, version)
    run_objects = _s3_keys(stack, _s3_prefix(client.get_run(version.run_id).info.artifact_uri))
    assert any(k.startswith("decisions/") for k in run_objects), run_objects

    with _pg(stack) as conn, conn.cursor() as cur:
        cur.execute("SELECT version, status FROM model_versions WHERE name = %s", (MODEL,))
        assert cur.fetchall() == [(int(version.version), "READY")]
        cur.execute("SELECT alias, version FROM registered_model_aliases WHERE name = %s", (MODEL,))
        assert ("champion", int(version.version)) in cur.fetchall()
        cur.execute("SELECT status FROM runs WHERE run_uuid = %s", (version.run_id,))
        assert cur.fetchone() == ("FINISHED",)

    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    images = model.predict(pd.DataFrame({"label": [3, 7], "seed": [0, 0]}))
    assert images.shape == (2, 1, 28, 28) and images.dtype == np.uint8


def test_dvc_push_and_pull_round_trip_through_the_s3_remote(stack):
    assert "stack" in (stack.project / ".dvc" / "config.local").read_text()
    assert re.search(r"\d+ files? pushed", stack.dvc_push), stack.dvc_push
    assert stack.dvc_pulled == stack.dvc_manifest
    objects = _s3(stack).list_objects_v2(Bucket="dvc", Prefix="ganops/")
    assert objects.get("KeyCount", 0) >= 3  # manifest, meta, images (and the .dir listing)


# ---------------------------------------------------------------- correctness across hosts


def test_four_registrations_racing_leave_one_champion_and_whole_versions(stack, as_user):
    client = as_user("ganops")
    versions = client.search_model_versions(f"name='{RACE_MODEL}'")
    assert len(versions) == len(RACE_FIDS), stack.race
    assert all(v.status == "READY" for v in versions)
    for v in versions:  # no torn version: every one has its model files in S3
        assert {"MLmodel", "artifacts/G_ema.safetensors"} <= _version_objects(stack, client, v)
    champion = client.get_model_version_by_alias(RACE_MODEL, "champion")
    assert float(champion.tags["fid"]) == min(RACE_FIDS)
    assert sum("@champion" in line for line in stack.race) >= 1
    assert sorted(v.tags["decision_action"] for v in versions) == ["register"] * len(RACE_FIDS)
    # the promotions took turns: only the first one found no champion
    reasons = [v.tags["decision_reason"] for v in versions]
    assert sum("no champion yet" in r for r in reasons) == 1, reasons
    # the lock that serialized them is the Prefect server's, not a file on this host
    limits = stack.api.post("/v2/concurrency_limits/filter", json={}).raise_for_status().json()
    promotion = [gcl for gcl in limits if gcl["name"].startswith("ganops-promotion-")]
    assert len(promotion) == 1 and promotion[0]["limit"] == 1
    assert promotion[0]["active_slots"] == 0


def test_mlflow_outage_during_training_loses_nothing(stack, as_user):
    o = stack.outage
    assert "stopped" in o.stop.stdout and re.search(r"mlflow\s+started in", o.up.stdout)
    assert o.rc == 0, o.log[-3000:]
    assert o.end > o.down_at  # training was still running when the server went away
    client = as_user("ganops")
    run_id = json.loads((stack.project / "models" / "run.json").read_text())["run_id"]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["train.seed"] == "1"
    history = client.get_metric_history(run_id, "d_loss")
    steps = sorted(m.step for m in history)
    total = 8000 // 64 + (8000 % 64 > 0)
    assert steps and steps[-1] >= total - 10, steps[-5:]  # the last interval made it too


# ---------------------------------------------------------------- security


def test_unauthenticated_requests_get_401(stack):
    import httpx

    mlflow_api = stack.env["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow"
    for auth in (None, ("ganops", "wrong")):
        r = httpx.get(f"{mlflow_api}/experiments/search", params={"max_results": 1}, auth=auth)
        assert r.status_code == 401, r.text
        r = httpx.get(f"{mlflow_api}/registered-models/alias", params={"name": MODEL, "alias": "x"})
        assert r.status_code == 401
    prefect = stack.env["PREFECT_API_URL"]
    for auth in (None, ("admin", "wrong")):
        assert httpx.post(f"{prefect}/flows/filter", json={}, auth=auth).status_code == 401
        assert httpx.get(f"{prefect}/work_pools/ganops", auth=auth).status_code == 401
    assert stack.api.post("/flows/filter", json={}).status_code == 200


def test_read_only_user_loads_models_but_cannot_set_aliases(stack, as_user):
    import mlflow
    from mlflow.exceptions import MlflowException

    client = as_user("reader")
    version = client.get_model_version_by_alias(MODEL, "champion")
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}/{version.version}")
    assert model.metadata.metadata["num_classes"] == 10
    with pytest.raises(MlflowException) as denied:
        client.set_registered_model_alias(MODEL, "champion", version.version)
    assert denied.value.get_http_status_code() == 403
    with pytest.raises(MlflowException) as denied:
        client.delete_registered_model_alias(MODEL, "champion")
    assert denied.value.get_http_status_code() == 403


def test_s3_store_refuses_wrong_keys(stack):
    import urllib.error
    import urllib.request

    from botocore.exceptions import ClientError

    for key, secret, code in (
        (stack.state["s3_access_key"], "wrong-secret", "SignatureDoesNotMatch"),
        ("nobody", "nothing", "InvalidAccessKeyId"),
    ):
        with pytest.raises(ClientError) as refused:
            _s3(stack, key, secret).list_objects_v2(Bucket="mlflow")
        assert refused.value.response["Error"]["Code"] == code
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(stack.env["AWS_ENDPOINT_URL_S3"] + "/mlflow/")
    assert anonymous.value.code == 403


# ---------------------------------------------------------------- shut-down


def test_down_leaves_no_process_and_no_port(stack, stopped):
    assert stopped.out.returncode == 0, stopped.out.stderr
    assert re.search(
        r"stopped: worker .*, prefect .*, mlflow .*, s3 .*, postgres", stopped.out.stdout
    )
    assert stopped.left == []
    assert stopped.open_ports == []
