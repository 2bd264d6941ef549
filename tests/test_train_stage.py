"""Model: the train stage's failure and resume behaviour, with a real MLflow store."""

from __future__ import annotations

import pytest

from components import ingest
from components.errors import TrainingDiverged
from components.layout import Layout


@pytest.fixture
def digits_project(project, smoke_params):
    layout = Layout(project)
    ingest.run(smoke_params.ingest.model_copy(update={"source": "digits"}), layout)
    return layout


def test_divergence_stops_training_and_fails_the_run(digits_project, smoke_params):
    import mlflow

    from components import train

    cfg = smoke_params.train.model_copy(
        update={"lr_d": 1e30, "lr_g": 1e30, "kimg": 2.0, "log_every": 2, "loss": "wgan"}
    )
    with pytest.raises(TrainingDiverged, match=r"became (nan|inf|-inf) by step \d+"):
        train.run(cfg, digits_project)
    (run,) = mlflow.search_runs(experiment_names=["ganops"], output_format="list")
    assert run.info.status == "FAILED"
    assert not digits_project.models.exists()


def test_rerun_resumes_from_the_checkpoint(digits_project, smoke_params, capfd):
    from components import train

    cfg = smoke_params.train.model_copy(update={"kimg": 1.0, "ckpt_every_kimg": 0.5})
    first = train.run(cfg, digits_project)
    capfd.readouterr()
    again = train.run(cfg, digits_project)
    assert "train: resuming from" in capfd.readouterr().out
    assert again["run_id"] == first["run_id"] and again["steps"] == first["steps"]
