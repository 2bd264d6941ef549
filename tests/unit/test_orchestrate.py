"""The flow's helpers (components/orchestrate.py), without Prefect: cache keys hash data content
and stage params only, a cache hit needs the outputs that key produced, run names, artifacts'
text, and the Kubernetes GPU job template."""

from __future__ import annotations

import json
import os
import shutil

import yaml

from components import ingest, orchestrate
from components.config import load_params
from components.layout import Layout, write_json
from tests import datagen
from tests.conftest import ROOT, SMOKE


def test_folder_fingerprint_follows_content_not_location(tmp_path):
    a = datagen.image_folder(tmp_path / "a" / "pets")
    b = shutil.copytree(a, tmp_path / "b" / "pets")
    assert orchestrate.source_fingerprint(str(a)) == orchestrate.source_fingerprint(str(b))
    before = orchestrate.source_fingerprint(str(b))
    first = sorted((b / "cat").iterdir())[0]
    first.write_bytes(first.read_bytes() + b"\0")  # one byte more in one file
    assert orchestrate.source_fingerprint(str(b)) != before
    assert orchestrate.source_fingerprint("mnist5k") != orchestrate.source_fingerprint("digits")
    assert orchestrate.source_fingerprint(str(tmp_path / "nope")) != before


def test_stage_keys_follow_their_own_params_and_data(tmp_path):
    base = load_params(SMOKE)
    layout = Layout(tmp_path)
    key = orchestrate.stage_key("ingest", base, layout)
    assert key.startswith("ganops-ingest-")
    assert orchestrate.stage_key("ingest", load_params(SMOKE), layout) == key
    changed_ingest = load_params(SMOKE, ["ingest.seed=1"])
    changed_train = load_params(SMOKE, ["train.seed=1", "validate.min_images=10"])
    assert orchestrate.stage_key("ingest", changed_ingest, layout) != key
    assert orchestrate.stage_key("ingest", changed_train, layout) == key

    v_key = orchestrate.stage_key("validate", base, layout)
    assert orchestrate.stage_key("validate", changed_train, layout) != v_key
    write_json(layout.manifest, {"content_hash": "abc"})  # another dataset on disk
    assert orchestrate.stage_key("validate", base, layout) != v_key


def test_a_hit_needs_the_outputs_its_key_produced(tmp_path):
    params = load_params(SMOKE, ["ingest.source=digits"])
    layout = Layout(tmp_path)
    key = orchestrate.stage_key("ingest", params, layout)
    assert not orchestrate.outputs_intact("ingest", key, layout)  # nothing ran yet
    ingest.run(params.ingest, layout)
    assert not orchestrate.outputs_intact("ingest", key, layout)  # not recorded (e.g. dvc)
    orchestrate.record_outputs("ingest", key, layout)
    assert orchestrate.outputs_intact("ingest", key, layout)
    assert not orchestrate.outputs_intact("ingest", "ganops-ingest-other", layout)

    ingest.run(params.ingest, layout)  # rewritten by someone else (same content, new files)
    assert not orchestrate.outputs_intact("ingest", key, layout)
    orchestrate.record_outputs("ingest", key, layout)
    layout.images.unlink()  # outputs gone: never a hit
    assert not orchestrate.outputs_intact("ingest", key, layout)


def test_run_name_says_what_ran(tmp_path):
    name = orchestrate.run_name(str(SMOKE), ["train.seed=3"])
    src = orchestrate.source_fingerprint("mnist5k")[:8]
    digest = load_params(SMOKE, ["train.seed=3"]).digest()[:8]
    assert name == f"mnist5k-src{src}-params{digest}"
    assert orchestrate.run_name(str(SMOKE), []) != name
    assert orchestrate.run_name(str(tmp_path / "missing.yaml"), []) == "invalid-params-missing.yaml"


def test_validation_summary_is_never_stale(tmp_path):
    layout = Layout(tmp_path)
    write_json(layout.manifest, {"content_hash": "new"})
    verdict = {
        "success": True,
        "dataset_hash": "old",
        "n_images": 3,
        "results": [{"check": "dataset size", "success": True, "observed": 3}],
    }
    write_json(layout.validation_result, verdict)
    assert orchestrate.validation_markdown(layout) is None
    write_json(layout.validation_result, {**verdict, "dataset_hash": "new"})
    assert "| dataset size | pass | 3 |" in orchestrate.validation_markdown(layout)
    table = orchestrate.metrics_markdown({"fid": 12.5, "fid_floor": 4.0, "modes": "n/a"})
    assert table.splitlines()[2] == "| fid | 12.5 | 4 |" and "modes" not in table


def test_k8s_job_template_requests_gpus():
    from prefect.utilities.templating import apply_values

    template = json.loads((ROOT / "infra" / "k8s" / "base-job-template.json").read_text())
    assert template["variables"]["properties"]["gpus"]["type"] == "integer"
    values = {"gpus": 2, "cpu": "8", "memory": "32Gi", "image": "ganops:1", "namespace": "ml"}
    job = apply_values(template["job_configuration"], values)
    (container,) = job["job_manifest"]["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert container["resources"]["requests"]["nvidia.com/gpu"] == 2
    assert container["image"] == "ganops:1"


def test_prefect_file_declares_the_deployments():
    from components.config import load_params

    spec = yaml.safe_load((ROOT / "infra" / "prefect.yaml").read_text())
    by_name = {d["name"]: d for d in spec["deployments"]}
    assert set(by_name) == {
        "nightly-retrain",
        "on-demand",
        "nightly-translator",
        "nightly-text2image",
        "nightly-video",
        "nightly-music",
    }
    params_files = {
        "nightly-translator": "params-translate.yaml",
        "nightly-text2image": "params-text2image.yaml",
        "nightly-video": "params-video.yaml",
        "nightly-music": "params-music.yaml",
    }
    for name, d in by_name.items():
        assert d["entrypoint"] == "flows/pipeline.py:ganops_pipeline"
        params_file = params_files.get(name, "params.yaml")
        assert d["parameters"] == {"params_file": params_file, "overrides": []}
        assert os.path.isfile(ROOT / d["entrypoint"].split(":")[0])
        load_params(ROOT / params_file)  # the file it names loads
    assert [s["cron"] for s in by_name["nightly-retrain"]["schedules"]] == ["0 2 * * *"]
    assert "schedules" not in by_name["on-demand"]
    assert load_params(ROOT / "params-translate.yaml").train.arch == "cyclegan"
    assert load_params(ROOT / "params-text2image.yaml").train.arch == "text2image"
    assert load_params(ROOT / "params-video.yaml").train.arch == "mocogan"
    assert load_params(ROOT / "params-music.yaml").train.arch == "musegan"
