"""End to end: the Prefect flow on the smoke profile, with a real temp MLflow SQLite store."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import yaml

from components.config import STAGES
from components.errors import ValidationFailed

from .conftest import ROOT

pytestmark = pytest.mark.slow


def _task_names_in_order(flow_run_id) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return [r.name.rsplit("-", 1)[0] for r in sorted(runs, key=lambda r: r.start_time)]


def test_flow_registers_a_champion_that_generates(project, prefect_harness):
    import mlflow

    from flows.pipeline import ganops_pipeline

    state = ganops_pipeline(params_file="params.yaml", return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert result["alias"] == "champion" and result["version"] == "1"

    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    for key in ("fid", "kid", "cond_acc", "fid_floor", "classifier_acc"):
        assert np.isfinite(metrics[key]), key

    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    model = mlflow.pyfunc.load_model("models:/ganops-generator@champion")
    images = model.predict(pd.DataFrame({"label": list(range(10)) * 2, "seed": [5] * 20}))
    assert images.shape == (20, 1, 28, 28) and images.dtype == np.uint8
    assert np.array_equal(images[:10], images[10:])  # deterministic per seed

    version = mlflow.MlflowClient().get_model_version_by_alias("ganops-generator", "champion")
    assert {
        "dataset_hash",
        "dataset_dvc_md5",
        "git_commit",
        "params_hash",
        "decision_reason",
    } <= set(version.tags)

    # The flow and dvc.yaml agree on the stages and their order.
    dvc_stages = list(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])
    assert _task_names_in_order(state.state_details.flow_run_id) == dvc_stages == list(STAGES)


def test_failed_validation_stops_before_training(project, prefect_harness):
    from flows.pipeline import ganops_pipeline

    with pytest.raises(ValidationFailed, match="dataset size >= validate.min_images"):
        ganops_pipeline(params_file="params.yaml", overrides=["validate.min_images=100000"])
    assert (project / "reports" / "validation" / "data_docs" / "index.html").is_file()
    assert not (project / "models").exists()
    import mlflow

    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    assert mlflow.MlflowClient().search_registered_models() == []  # registry untouched
    (failed_run,) = mlflow.search_runs(experiment_names=["ganops"], output_format="list")
    assert failed_run.data.tags["passed"] == "false"  # the verdict is in MLflow all the same
