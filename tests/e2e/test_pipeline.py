"""The Prefect flow in-process (a temporary Prefect server, a real temp MLflow SQLite store).

The successful run is tested against a real server with a real deployment and worker in
test_prefect_server.py; here: a failing gate stops the flow before training, and the ingest
cache is a hit only while the outputs it produced are on disk.
"""

from __future__ import annotations

import os
import shutil

import pytest

from components.errors import ValidationFailed

pytestmark = pytest.mark.slow


def _task_states(flow_run_id) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {r.name.rsplit("-", 1)[0]: r.state.name for r in runs}


def test_failed_validation_stops_before_training(project, prefect_harness):
    from flows.pipeline import ganops_pipeline

    bad = ["validate.min_images=100000"]
    with pytest.raises(ValidationFailed, match="dataset size >= validate.min_images"):
        ganops_pipeline(params_file="params.yaml", overrides=bad)
    assert (project / "reports" / "validation" / "data_docs" / "index.html").is_file()
    assert not (project / "models").exists()
    import mlflow

    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    assert mlflow.MlflowClient().search_registered_models() == []  # registry untouched
    (failed_run,) = mlflow.search_runs(experiment_names=["ganops"], output_format="list")
    assert failed_run.data.tags["passed"] == "false"  # the verdict is in MLflow all the same

    # Again, outputs intact: ingest is a cache hit; the failed gate was not cached.
    state = ganops_pipeline(params_file="params.yaml", overrides=bad, return_state=True)
    assert state.is_failed() and "dataset size >= validate.min_images" in state.message
    states = _task_states(state.state_details.flow_run_id)
    assert states == {"ingest": "Cached", "validate": "Failed"}

    # The processed data gone: the same key is no hit, ingest runs and writes it again.
    shutil.rmtree(project / "data" / "processed")
    state = ganops_pipeline(params_file="params.yaml", overrides=bad, return_state=True)
    assert _task_states(state.state_details.flow_run_id)["ingest"] == "Completed"
    assert (project / "data" / "processed" / "images.npy").is_file()
