"""Registry: the decision rules, promote/rollback, and concurrent pipelines on one store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from components import register as reg
from components.errors import RegistryError
from components.families.noise import register as noise_register
from components.families.noise.options import NoiseRegisterConfig
from components.layout import Layout
from tests.conftest import ROOT, free_port, start_server, use_store
from tests.registry_worker import register


@pytest.fixture
def store(tmp_path, monkeypatch):
    return use_store(monkeypatch, f"sqlite:///{tmp_path / 'mlflow.db'}")


def aliases(name="ganops-generator"):
    import mlflow

    model = mlflow.MlflowClient().get_registered_model(name)
    return {alias: str(version) for alias, version in model.aliases.items()}


METRICS = {
    "fid": 10.0,
    "fid_floor": 5.0,
    "cond_acc": 0.95,
    "tstr": 0.9,
    "modes_covered": 10,
    "modes_covered_floor": 10,
}


@pytest.mark.parametrize(
    ("change", "champion_fid", "alias", "why"),
    [
        ({}, None, "champion", "no champion yet"),
        ({"fid": 9.0}, 10.0, "champion", "< champion's 10.000"),
        ({"fid": 9.9}, 10.0, "challenger", "does not beat champion's"),  # inside the 2% margin
        ({"fid": 16.0}, None, "challenger", "fid/fid_floor 3.20 > register.max_fid_ratio 3.0"),
        ({"cond_acc": 0.5}, None, "challenger", "cond_acc 0.500 < register.min_cond_acc 0.9"),
        ({"modes_covered": 7}, None, "challenger", "modes_covered 7 of 10"),
        ({"tstr": 0.3}, None, "challenger", "tstr 0.300 < register.min_tstr 0.8"),
    ],
)
def test_decisions_quote_value_and_threshold(change, champion_fid, alias, why):
    got, reason = noise_register.decide(GATES, {**METRICS, **change}, champion_fid)
    assert got == alias and why in reason


GATES = NoiseRegisterConfig(  # explicit gates: the rules are under test, not params.yaml's
    model_name="ganops-generator",
    max_fid_ratio=3.0,
    min_cond_acc=0.9,
    min_modes_covered_fraction=1.0,
    min_tstr=0.8,
    fid_margin=0.02,
)


def test_registered_model_is_code_plus_safetensors_and_takes_class_names(tmp_path, store):
    """Loading a version runs model code and reads safetensors: no pickle anywhere in it."""
    import mlflow
    import pandas as pd

    decision = register(tmp_path, 6.0)
    uri = f"models:/ganops-generator/{decision['version']}"
    model_dir = Path(mlflow.artifacts.download_artifacts(uri))
    files = [p for p in model_dir.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".pkl", ".pickle", ".cloudpickle")]
    pickled = [
        p
        for p in files
        if p.read_bytes()[:2] in {b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"}
    ]
    assert not pickled, pickled
    assert "model_code_path" in (model_dir / "MLmodel").read_text()
    assert {"G_ema.safetensors", "generator.json"} <= {p.name for p in files}

    model = mlflow.pyfunc.load_model(uri)
    images = model.predict(pd.DataFrame({"label": ["3", 3, "7"], "seed": [5, 5, 5]}))
    assert images.shape == (3, 1, 28, 28) and images.dtype == np.uint8
    assert np.array_equal(images[0], images[1]) and not np.array_equal(images[0], images[2])
    with pytest.raises(Exception, match="'cat' is not a class of this generator"):
        model.predict(pd.DataFrame({"label": ["cat"], "seed": [0]}))


def test_register_run_again_on_the_same_training_run_makes_no_second_version(tmp_path, store):
    """The flow retries register after I/O errors; a retry after the pyfunc was logged (or a
    second `ganops stage register` on the same models/) answers the version already made."""
    import mlflow

    from components.config import load_params

    first = register(tmp_path, 6.0)
    cfg = load_params(ROOT / "tests" / "params-smoke.yaml").register_
    again = reg.run(cfg, Layout(tmp_path))
    versions = mlflow.MlflowClient().search_model_versions("name='ganops-generator'")
    assert [str(v.version) for v in versions] == ["1"]
    assert again["version"] == first["version"] == "1" and again["alias"] == "champion"
    assert again["tags"]["run_id"] == first["tags"]["run_id"]  # the shape the flow reads
    assert again["reason"].startswith("already registered from run") and aliases() == {
        "champion": "1"
    }


def test_worse_candidate_is_challenger_then_promote_and_rollback(store, tmp_path):
    first = register(tmp_path / "a", fid=5.0)
    second = register(tmp_path / "b", fid=8.0)
    assert (first["alias"], second["alias"]) == ("champion", "challenger")
    assert aliases() == {"champion": "1", "challenger": "2"}

    reg.promote(Layout(tmp_path), "ganops-generator", "2", reason="canary looked better")
    assert aliases()["champion"] == "2" and aliases()["previous-champion"] == "1"
    reg.rollback(Layout(tmp_path), "ganops-generator", reason="canary regressed")
    assert aliases()["champion"] == "1" and aliases()["previous-champion"] == "2"

    import mlflow

    version = mlflow.MlflowClient().get_model_version("ganops-generator", "1")
    assert version.tags["decision_action"] == "rollback"
    assert version.tags["decision_reason"] == "canary regressed"
    with pytest.raises(RegistryError, match="no such model version"):
        reg.promote(Layout(tmp_path), "ganops-generator", "9", reason="typo")
    with pytest.raises(RegistryError, match="promote --reason is empty: say why"):
        reg.promote(Layout(tmp_path), "ganops-generator", "2", reason="  ")
    assert aliases()["champion"] == "1"  # nothing moved


def race(tmp_path, uri, fids):
    """Register one candidate per FID from parallel processes; wait for all.

    The store is created first: concurrent first-time schema migrations of one SQLite file
    are MLflow's own race, not the registry's."""
    import mlflow

    mlflow.MlflowClient().search_experiments()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.registry_worker", str(tmp_path / f"w{i}"), str(fid), uri],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, fid in enumerate(fids)
    ]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]


def check_one_best_champion(fids):
    import mlflow

    client = mlflow.MlflowClient()
    versions = client.search_model_versions("name='ganops-generator'")
    assert len(versions) == len(fids)
    assert all(v.status == "READY" for v in versions)
    champion = client.get_model_version_by_alias("ganops-generator", "champion")
    assert float(champion.tags["fid"]) == min(fids)  # the best, whatever the finishing order
    # every version got exactly one decision, and the aliases agree with them
    assert sorted(v.tags["decision_action"] for v in versions) == ["register"] * len(fids)
    assert aliases()["champion"] == str(champion.version)
    assert aliases().get("previous-champion") != str(champion.version)


@pytest.mark.slow
def test_parallel_pipelines_leave_one_champion_sqlite(store, tmp_path):
    fids = [4.0, 2.0, 3.0, 5.0]
    race(tmp_path, store, fids)
    check_one_best_champion(fids)


_free_port = free_port  # the name other test modules import (tests/conftest.py holds it)


@pytest.fixture
def mlflow_server(tmp_path, monkeypatch):
    """A real `mlflow server` process on 127.0.0.1 with its own SQLite store."""

    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    server = start_server(
        [
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
            "--workers",
            "2",
        ],
        f"{uri}/health",
    )
    use_store(monkeypatch, uri)
    yield uri
    server.terminate()
    server.wait(timeout=30)


@pytest.mark.slow
def test_parallel_pipelines_leave_one_champion_mlflow_server(mlflow_server, tmp_path):
    fids = [3.0, 1.5, 2.5]
    race(tmp_path, mlflow_server, fids)
    check_one_best_champion(fids)


@pytest.mark.slow
def test_champion_from_another_dataset_is_reevaluated(project, smoke_params):
    """The candidate is compared with the champion on the candidate's own test split."""
    from components.layout import Layout
    from components.stages import run_stage

    register(project / "older", fid=0.5, blank=True)  # recorded FID 0.5, on dataset "test"
    layout = Layout(project)
    for stage in ("ingest", "validate", "train", "evaluate"):
        run_stage(stage, smoke_params, layout)
    decision = run_stage("register", smoke_params, layout)
    assert "v1 re-evaluated on this dataset's test split" in decision["reason"]
    assert decision["champion_before"] == "1"
    # the blank older champion, measured here, is far worse than its recorded 0.5
    assert decision["alias"] == "champion" and aliases()["previous-champion"] == "1"
