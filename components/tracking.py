"""MLflow set-up shared by the stages: one experiment, one run per pipeline execution."""

from __future__ import annotations

import os
from pathlib import Path

from components.layout import Layout, read_json

EXPERIMENT = "ganops"


def tracking_uri(layout: Layout) -> str:
    """MLFLOW_TRACKING_URI when set, else a SQLite store in the project."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{layout.root / 'mlflow.db'}"


def setup(layout: Layout) -> str:
    """Point MLflow at the store and make sure the experiment exists; returns its id."""
    import logging

    import mlflow

    # "Creating initial MLflow database tables..." on every new store: not the user's business
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    uri = tracking_uri(layout)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    exp = mlflow.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    from mlflow.exceptions import MlflowException

    local = uri.startswith("sqlite:") or uri.startswith("file:")
    location = (layout.root / "mlartifacts").resolve().as_uri() if local else None
    try:
        return mlflow.create_experiment(EXPERIMENT, artifact_location=location)
    except MlflowException:  # another process created it first
        return mlflow.get_experiment_by_name(EXPERIMENT).experiment_id


def train_run_id(layout: Layout) -> str:
    """The MLflow run that train opened (evaluate and register add to it)."""
    from components.errors import DataError

    if not layout.train_run.is_file():
        raise DataError(f"{layout.train_run}: no trained model; run `ganops stage train`")
    return read_json(layout.train_run)["run_id"]


def git_commit(root: Path) -> str:
    """The project's git commit, or 'unknown' outside a repository."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def file_md5(path: Path) -> str:
    """md5 of a file's bytes, read in 1 MiB blocks."""
    import hashlib

    h = hashlib.md5()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def dvc_md5(path: Path) -> str:
    """The md5 DVC 3 records for `path` in dvc.lock: a file's md5, or for a folder the md5 of
    its sorted [{md5, relpath}] listing plus '.dir'. Lets a model version name its exact data
    whether the pipeline ran under Prefect or `dvc repro`."""
    import hashlib
    import json

    if path.is_file():
        return file_md5(path)
    entries = sorted(
        (
            {"md5": file_md5(p), "relpath": p.relative_to(path).as_posix()}
            for p in path.rglob("*")
            if p.is_file()
        ),
        key=lambda e: e["relpath"],
    )
    listing = json.dumps(entries, sort_keys=True).encode()
    return hashlib.md5(listing).hexdigest() + ".dir"
