"""Fixtures of the text-to-image family's tests (a pytest plugin: tests/conftest.py loads it),
shared by tests/model and tests/e2e: the bundled `shapes` captions ingested once per module,
and the smoke profile trained, evaluated and registered into a SQLite store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from components.layout import Layout
from tests.conftest import SMOKE_BY_FAMILY, use_store

SMOKE = SMOKE_BY_FAMILY["text2image"]
NAME = "ganops-text2image"  # the smoke profile's register.model_name


def t2i_params(*overrides: str):
    """The text2image smoke profile with `section.key=value` overrides, checked like --set."""
    from components.config import load_params

    return load_params(SMOKE, list(overrides))


def train_and_register(shapes: Path, root: Path, *overrides: str) -> tuple[dict, dict, str]:
    """train -> evaluate -> register of the smoke profile (with overrides) in `root`, on the
    ingested `shapes` data copied there: (metrics, decision, the store's URI). The store stays
    the process's MLflow store: the caller resets it."""
    from components import evaluate, register, train

    shutil.copytree(shapes / "data", root / "data")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    use_store(mp, uri)
    params = t2i_params(*overrides)
    train.run(params.train, Layout(root))
    metrics = evaluate.run(params.evaluate, Layout(root))
    decision = register.run(params.register_, Layout(root))
    return metrics, decision, uri


@pytest.fixture(scope="module")
def t2i_shapes(tmp_path_factory):
    """The bundled shapes set ingested once (a few seconds), as a project folder."""
    from components import ingest

    root = tmp_path_factory.mktemp("shapes")
    ingest.run(t2i_params().ingest, Layout(root))
    return root


@pytest.fixture(scope="module")
def t2i_registered(t2i_shapes, tmp_path_factory):
    """The smoke profile trained, evaluated and registered as ganops-text2image@champion: the
    root, the metrics, the decision and the store's URI."""
    import mlflow

    root = tmp_path_factory.mktemp("t2i")
    mp = pytest.MonkeyPatch()
    metrics, decision, uri = train_and_register(t2i_shapes, root)
    use_store(mp, uri)
    yield root, metrics, decision, uri
    mp.undo()
    mlflow.set_tracking_uri(None)
