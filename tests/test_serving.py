"""Serving: `mlflow models serve` of @champion answers a REST /invocations request."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pandas as pd
import pytest

from .conftest import use_store
from .registry_worker import register
from .test_register import _free_port

pytestmark = pytest.mark.slow


def test_rest_invocations_return_the_pyfunc_images(tmp_path, monkeypatch):
    import mlflow

    use_store(monkeypatch, f"sqlite:///{tmp_path / 'mlflow.db'}")
    register(tmp_path / "cand", fid=2.0)
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            "models:/ganops-generator@champion",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()[-3000:]
                assert time.monotonic() < deadline, "model server did not start"
                time.sleep(0.5)
        frame = pd.DataFrame({"label": [0, 3, 7, 3], "seed": [1, 2, 3, 2]})
        body = json.dumps({"dataframe_split": frame.to_dict(orient="split", index=False)})
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            served = np.asarray(json.loads(response.read())["predictions"], dtype=np.uint8)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert served.shape == (4, 1, 28, 28)
    assert np.array_equal(served[1], served[3])  # same label and seed -> same image
    local = mlflow.pyfunc.load_model("models:/ganops-generator@champion").predict(frame)
    assert np.array_equal(served, local)
