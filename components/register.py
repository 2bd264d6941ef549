"""register: G_ema into the MLflow registry as a pyfunc; aliases decided by quality gates.

A new version becomes `champion` when every gate passes and it beats the current champion's
FID; otherwise it is the `challenger`. The decision and its numbers go to the version's tags,
to reports/registration.json and to the run. Aliases only: registry stages are deprecated.
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from components.config import RegisterConfig
from components.errors import DataError, RegistryError
from components.layout import Layout, read_json, write_json

COMPONENTS_DIR = Path(__file__).resolve().parent
LOCK_DIR = Path.home() / ".cache" / "ganops" / "locks"


def gate_failures(cfg: RegisterConfig, metrics: dict) -> list[str]:
    """Each failed quality gate as a sentence quoting the value and the threshold."""
    failures = []
    ratio = metrics["fid"] / max(metrics["fid_floor"], 1e-12)
    if ratio > cfg.max_fid_ratio:
        failures.append(f"fid/fid_floor {ratio:.2f} > register.max_fid_ratio {cfg.max_fid_ratio}")
    if "cond_acc" in metrics and metrics["cond_acc"] < cfg.min_cond_acc:
        failures.append(
            f"cond_acc {metrics['cond_acc']:.3f} < register.min_cond_acc {cfg.min_cond_acc}"
        )
    if "modes_covered" in metrics:
        share = metrics["modes_covered"] / max(metrics["modes_covered_floor"], 1)
        if share < cfg.min_modes_covered_fraction:
            failures.append(
                f"modes_covered {metrics['modes_covered']} of {metrics['modes_covered_floor']} "
                f"< register.min_modes_covered_fraction {cfg.min_modes_covered_fraction}"
            )
    if "tstr" in metrics and metrics["tstr"] < cfg.min_tstr:
        failures.append(f"tstr {metrics['tstr']:.3f} < register.min_tstr {cfg.min_tstr}")
    return failures


def decide(cfg: RegisterConfig, metrics: dict, champion_fid: float | None) -> tuple[str, str]:
    """(alias, reason) for a candidate with `metrics` against the champion's FID (None: none).

    The candidate must beat the champion's FID by `register.fid_margin` (relative), so noise
    between two equally good runs does not flip the champion back and forth.
    """
    failures = gate_failures(cfg, metrics)
    if failures:
        return "challenger", "gates failed: " + "; ".join(failures)
    fid = metrics["fid"]
    if champion_fid is None:
        return "champion", f"gates passed (fid {fid:.3f}); no champion yet"
    bar = champion_fid * (1 - cfg.fid_margin)
    if fid < bar:
        return "champion", (
            f"gates passed; fid {fid:.3f} < champion's {champion_fid:.3f} "
            f"less the {cfg.fid_margin:.0%} margin ({bar:.3f})"
        )
    return "challenger", (
        f"gates passed, but fid {fid:.3f} does not beat champion's {champion_fid:.3f} "
        f"by the {cfg.fid_margin:.0%} margin ({bar:.3f})"
    )


def model_signature(spec: dict):
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec
    from mlflow.types.schema import AnyType

    # label: an integer or a class name ("7", "cat"), resolved by the model itself
    cols = [ColSpec(AnyType(), "label")] if spec["num_classes"] else []
    cols.append(ColSpec("long", "seed"))
    shape = (-1, spec["channels"], spec["image_size"], spec["image_size"])
    return ModelSignature(
        inputs=Schema(cols),
        outputs=Schema([TensorSpec(np.dtype(np.uint8), shape)]),
        params=ParamSchema([ParamSpec("truncation", "double", 1.0)]),
    )


def pip_requirements() -> list[str]:
    """Exactly what the pyfunc imports, pinned to the versions it was trained with."""
    from importlib.metadata import version

    pins = {name: version(name) for name in ("mlflow-skinny", "numpy", "pandas", "safetensors")}
    torch_version = version("torch").split("+")[0]
    return [f"torch=={torch_version}"] + [f"{k}=={v}" for k, v in pins.items()]


def params_hash(run) -> str:
    blob = json.dumps(dict(sorted(run.data.params.items()))).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def champion_fid(client, name: str, layout: Layout, run) -> tuple[float | None, str]:
    """The champion's FID under the candidate's protocol: its recorded FID when it was evaluated
    on the same dataset, else re-evaluated now on the current test split. (None, why) when there
    is no champion or it cannot be compared (another image shape or class set)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        return None, "no champion"
    data_hash = run.data.tags.get("dataset_hash")
    if champion.tags.get("dataset_hash") == data_hash and "fid" in champion.tags:
        return float(champion.tags["fid"]), f"v{champion.version}, same dataset"

    from components.config import EvaluateConfig
    from components.dataset import load_dataset
    from components.evaluate import evaluate
    from components.evaluate.features import load_or_train_classifier
    from components.models import load_model_dir

    model_dir = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{champion.version}"))
    G, spec = load_model_dir(model_dir)
    data = load_dataset(layout)
    shape = [spec["channels"], spec["image_size"], spec["image_size"]]
    if shape != list(data.manifest["shape"]) or spec["num_classes"] != data.num_classes:
        return None, f"v{champion.version} was trained on another kind of data; not comparable"
    # the candidate's protocol, as evaluate logged it on this run (FID only)
    protocol = {
        k.split(".", 1)[1]: v
        for k, v in run.data.params.items()
        if k.startswith("evaluate.") and k != "evaluate.metrics"
    }
    cfg = EvaluateConfig.model_validate({**protocol, "metrics": ["fid"]})
    net, _ = load_or_train_classifier(cfg, layout, data)
    fid = evaluate(cfg, data, G, net)[0]["fid"]
    return fid, f"v{champion.version} re-evaluated on this dataset's test split"


def log_generator(layout: Layout, spec: dict, name: str):
    """Log G_ema as a pyfunc into the active run and register it; returns the ModelInfo."""
    import mlflow
    import pandas as pd

    from components.models import GENERATOR_FILES

    example = (
        pd.DataFrame({"label": [0, 1], "seed": [0, 1]})
        if spec["num_classes"]
        else pd.DataFrame({"seed": [0, 1]})
    )
    return mlflow.pyfunc.log_model(
        name="generator",
        python_model=str(COMPONENTS_DIR / "pyfunc_generator.py"),  # models from code: no pickle
        artifacts={a: str(layout.models / a) for a in GENERATOR_FILES},
        code_paths=[str(COMPONENTS_DIR)],
        signature=model_signature(spec),
        input_example=example,
        pip_requirements=pip_requirements(),
        metadata={
            k: spec[k] for k in ("num_classes", "class_names", "channels", "image_size", "z_dim")
        },
        registered_model_name=name,
    )


def model_card(metrics: dict, tags: dict, params: dict, alias: str, reason: str) -> str:
    """The version's description: data, metrics with floors, key params, commit, decision."""
    rows = [
        f"| {k} | {metrics[k]:.4g} | {metrics.get(k + '_floor', float('nan')):.4g} |"
        for k in sorted(metrics)
        if not k.endswith("_floor") and k + "_floor" in metrics
    ]
    keys = (
        "train.arch",
        "train.g_cond",
        "train.loss",
        "train.kimg",
        "train.batch_size",
        "train.z_dim",
        "train.lr_g",
        "train.lr_d",
        "train.reg.spectral_norm",
        "train.seed",
        "evaluate.n_samples",
    )
    return "\n".join(
        [
            "# ganops generator (G_ema)",
            f"**Decision:** `@{alias}`: {reason}",
            "",
            f"- dataset content hash: `{tags['dataset_hash']}`",
            f"- dataset DVC md5: `{tags['dataset_dvc_md5']}`",
            f"- git commit: `{tags['git_commit']}`, params hash `{tags['params_hash']}`",
            "",
            "| metric | value | real-vs-real floor |",
            "|---|---|---|",
            *rows,
            "",
            "| param | value |",
            "|---|---|",
            *[f"| {k} | {params[k]} |" for k in keys if k in params],
        ]
    )


@contextmanager
def promotion_lock(uri: str, timeout: float = 600):
    """One alias decision at a time per registry: the read-decide-write of aliases is atomic for
    every process that promotes into it. A Postgres store or an MLflow server next to a Prefect
    server gets a lock that holds across machines; the embedded default keeps a file lock
    (components/locks.py)."""
    from components.locks import promotion_lock as registry_lock

    with registry_lock(uri, timeout):
        yield


def _alias_version(client, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def wait_until_ready(client, name: str, version: str, timeout: float = 300) -> None:
    """An alias never points at a half-registered version."""
    deadline = time.monotonic() + timeout
    while (status := client.get_model_version(name, version).status) != "READY":
        if status == "FAILED_REGISTRATION" or time.monotonic() > deadline:
            raise RegistryError(f"{name} v{version}: registration ended {status}")
        time.sleep(0.5)


def record(client, name: str, version: str, decision: dict) -> None:
    """Tags on the version and a JSON artifact on its run: the numbers behind the decision."""
    client.set_model_version_tag(name, version, "decision", decision["alias"])
    client.set_model_version_tag(name, version, "decision_reason", decision["reason"])
    client.set_model_version_tag(name, version, "decision_action", decision["action"])
    run_id = client.get_model_version(name, version).run_id
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    client.log_dict(run_id, decision, f"decisions/{stamp}-v{version}-{decision['action']}.json")


def set_champion(client, name: str, version: str) -> str | None:
    """`version` becomes champion; the one it replaces becomes previous-champion."""
    old = _alias_version(client, name, "champion")
    if old is not None and old != version:
        client.set_registered_model_alias(name, "previous-champion", old)
    client.set_registered_model_alias(name, "champion", version)
    return old


def run(cfg: RegisterConfig, layout: Layout) -> dict:
    """The register stage: returns the decision (version, alias, reason, metrics)."""
    import mlflow
    from mlflow import MlflowClient

    from components import tracking

    if not layout.metrics.is_file():
        raise DataError(f"{layout.metrics}: no metrics; run `ganops stage evaluate` first")
    metrics = read_json(layout.metrics)
    spec = read_json(layout.models / "generator.json")
    tracking.setup(layout)
    client = MlflowClient()
    run_id = tracking.train_run_id(layout)
    name = cfg.model_name
    with mlflow.start_run(run_id=run_id):
        mlflow.log_params({f"register.{k}": v for k, v in cfg.model_dump().items()})
        info = log_generator(layout, spec, name)
    version = str(info.registered_model_version)
    run = client.get_run(run_id)
    tags = {
        "dataset_hash": run.data.tags.get("dataset_hash", "unknown"),
        "dataset_dvc_md5": run.data.tags.get("dataset_dvc_md5", "unknown"),
        "git_commit": tracking.git_commit(layout.root),
        "params_hash": params_hash(run),
        "run_id": run_id,
        "fid": f"{metrics['fid']:.6f}",
        "fid_floor": f"{metrics['fid_floor']:.6f}",
        "cond_acc": f"{metrics.get('cond_acc', float('nan')):.6f}",
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    wait_until_ready(client, name, version)

    with promotion_lock(tracking.tracking_uri(layout)):
        champion = _alias_version(client, name, "champion")
        champ_fid, basis = champion_fid(client, name, layout, run)
        alias, reason = decide(cfg, metrics, champ_fid)
        if champion is not None and champ_fid is None:
            alias, reason = "challenger", f"champion kept: {basis}"
        reason += f" [{basis}]" if champ_fid is not None else ""
        if alias == "champion":
            set_champion(client, name, version)
        else:
            client.set_registered_model_alias(name, "challenger", version)
        decision = {
            "action": "register",
            "model_name": name,
            "version": version,
            "alias": alias,
            "reason": reason,
            "champion_before": champion,
            "champion_fid_before": champ_fid,
            "metrics": metrics,
            "tags": tags,
            "gates": cfg.model_dump(),
        }
        record(client, name, version, decision)
    client.update_model_version(
        name, version, description=model_card(metrics, tags, run.data.params, alias, reason)
    )
    client.set_tag(run_id, "registered_version", version)
    write_json(layout.registration, decision)
    client.log_artifact(run_id, str(layout.registration))
    print(f"register: {name} v{version} -> @{alias} ({reason})")
    return decision


def _crown(layout: Layout, name: str, action: str, reason: str, pick) -> dict:
    """Under the promotion lock: `pick(client)` names the version to make champion; the old
    champion becomes previous-champion; the decision is recorded on the version."""
    from mlflow import MlflowClient

    from components import tracking

    tracking.setup(layout)
    client = MlflowClient()
    with promotion_lock(tracking.tracking_uri(layout)):
        version = pick(client)
        old = set_champion(client, name, version)
        decision = {
            "action": action,
            "model_name": name,
            "version": version,
            "alias": "champion",
            "reason": reason,
            "champion_before": old,
        }
        record(client, name, version, decision)
    return decision


def promote(layout: Layout, name: str, version: str, reason: str) -> dict:
    """By hand: `version` becomes champion, the old champion previous-champion."""

    def pick(client) -> str:
        _require_version(client, name, version)
        return version

    return _crown(layout, name, "promote", reason, pick)


def rollback(layout: Layout, name: str, reason: str) -> dict:
    """Back to `previous-champion`; the demoted champion becomes previous-champion in turn."""

    def pick(client) -> str:
        previous = _alias_version(client, name, "previous-champion")
        if previous is None:
            raise RegistryError(f"{name}: no @previous-champion to roll back to")
        return previous

    return _crown(layout, name, "rollback", reason, pick)


def _require_version(client, name: str, version: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(name, version)
    except MlflowException:
        raise RegistryError(f"{name} v{version}: no such model version") from None
