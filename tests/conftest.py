"""Shared fixtures. Real stores only: a temp SQLite MLflow store, a real Prefect harness."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "tests" / "params-smoke.yaml"

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


@pytest.fixture
def smoke_params():
    from components.config import load_params

    return load_params(SMOKE)


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
