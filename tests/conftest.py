"""Shared fixtures. Real stores only: a temp SQLite MLflow store, a real Prefect harness."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "tests" / "params-smoke.yaml"  # the noise family's
SMOKE_BY_FAMILY = {
    "noise": SMOKE,
    "translation": ROOT / "tests" / "params-smoke-translation.yaml",
    "text2image": ROOT / "tests" / "params-smoke-text2image.yaml",
    "video": ROOT / "tests" / "params-smoke-video.yaml",
    "music": ROOT / "tests" / "params-smoke-music.yaml",
}

pytest_plugins = ["tests.text2image_fixtures"]  # the text2image family's shared fixtures

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `pytest -n 2` on two cores: one compute thread per worker, or the workers' OpenMP pools
    # fight over the cores. Set before torch is first imported; subprocesses inherit it.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# Results that in-process flow runs persist (and their cache records) go to a temp folder of
# this test process, not to ~/.prefect/storage.
_RESULTS = tempfile.mkdtemp(prefix="ganops-prefect-results-")
atexit.register(shutil.rmtree, _RESULTS, ignore_errors=True)
os.environ.setdefault("PREFECT_RESULTS_LOCAL_STORAGE_PATH", _RESULTS)


@pytest.fixture
def smoke_params():
    from components.config import load_params

    return load_params(SMOKE)


@pytest.fixture
def training_set_sizes(monkeypatch) -> list[int]:
    """A list that records the number of images of every train_classifier call in the test
    (labelled data's feature nets, in evaluate and the training probes, and TSTR all train
    through it; unlabeled data's autoencoders do not)."""
    from components.evaluate import features

    seen: list[int] = []
    fit = features.train_classifier
    monkeypatch.setattr(
        features,
        "train_classifier",
        lambda x, y, *a, **k: seen.append(len(x)) or fit(x, y, *a, **k),
    )
    return seen


def smoke_file(*overrides: str) -> Path:
    """The smoke profile of the family an `arch=...` override names (the noise family's else)."""
    from components import families

    archs = [item.split("=", 1)[1] for item in overrides if item.startswith("arch=")]
    return SMOKE_BY_FAMILY[families.for_arch(archs[-1]).name] if archs else SMOKE


def smoke_train(*overrides: str):
    """The smoke profile's train config with `train.KEY=VALUE` overrides, checked like --set."""
    from components.config import load_params

    return load_params(smoke_file(*overrides), [f"train.{item}" for item in overrides]).train


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A fresh project root (cwd) with its own MLflow SQLite store and the smoke params."""
    shutil.copy(SMOKE, tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    use_store(monkeypatch, f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


def use_store(monkeypatch, uri: str) -> str:
    """Point MLflow at `uri` for one test: the env var and MLflow's process-wide setting."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for the whole session (cold start ~25 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


def start_server(args: list[str], ready_url: str, timeout: float = 120):
    """Start a server process (this interpreter's bin first on PATH, since mlflow execs its web
    server from PATH) and wait until `ready_url` answers; fail the test if it never does."""
    import subprocess
    import sys
    import time
    import urllib.request

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    server = subprocess.Popen(
        [sys.executable, "-m", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(ready_url, timeout=2)
            return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"{args[:3]} did not start: {server.stderr.read()[-3000:]}")
            time.sleep(0.5)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_model(model_uri: str):
    """`mlflow models serve -m model_uri` (local env) on a free port of 127.0.0.1, started and
    waited for; yields its base URL and stops the process on the way out."""
    port = free_port()
    server = start_server(
        ["mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
         "--host", "127.0.0.1", "--port", str(port)],
        f"http://127.0.0.1:{port}/ping",
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def post_frame(url: str, frame, timeout: float = 120) -> dict:
    """POST a DataFrame to `url`/invocations as {"dataframe_split": ...}: the decoded JSON
    answer (urllib.error.HTTPError on a non-2xx status)."""
    import json
    import urllib.request

    body = json.dumps({"dataframe_split": frame.to_dict(orient="split", index=False)})
    request = urllib.request.Request(
        f"{url}/invocations", data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


KINDS = ("unit", "data", "model", "e2e")  # tests/<kind>/: what a test checks


def pytest_collection_modifyitems(config, items):
    """Mark each test with its folder's kind, so `-m unit` etc. select by what they check."""
    for item in items:
        kind = Path(str(item.fspath)).parent.name
        if kind in KINDS:
            item.add_marker(getattr(pytest.mark, kind))
