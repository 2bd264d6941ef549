"""register: G_ema into the MLflow registry as a pyfunc; aliases decided by quality gates.

A new version becomes `champion` when every gate passes and it beats the current champion's
FID; otherwise it is the `challenger`. The decision and its numbers go to the version's tags,
to reports/registration.json and to the run. Aliases only: registry stages are deprecated.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from components.config import RegisterConfig
from components.errors import DataError
from components.layout import Layout, read_json, write_json

COMPONENTS_DIR = Path(__file__).resolve().parent


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
    return failures


def decide(cfg: RegisterConfig, metrics: dict, champion_fid: float | None) -> tuple[str, str]:
    """(alias, reason) for a candidate with `metrics` against the champion's FID (None: none)."""
    failures = gate_failures(cfg, metrics)
    if failures:
        return "challenger", "gates failed: " + "; ".join(failures)
    if champion_fid is None:
        return "champion", f"gates passed (fid {metrics['fid']:.3f}); no champion yet"
    if metrics["fid"] < champion_fid:
        return "champion", f"gates passed; fid {metrics['fid']:.3f} < champion's {champion_fid:.3f}"
    return (
        "challenger",
        f"gates passed, but fid {metrics['fid']:.3f} >= champion's {champion_fid:.3f}",
    )


def model_signature(spec: dict):
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

    cols = [ColSpec("long", "label")] if spec["num_classes"] else []
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

    pins = {name: version(name) for name in ("mlflow", "numpy", "pandas", "safetensors")}
    torch_version = version("torch").split("+")[0]
    return [f"torch=={torch_version}"] + [f"{k}=={v}" for k, v in pins.items()]


def params_hash(run) -> str:
    blob = json.dumps(dict(sorted(run.data.params.items()))).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def champion_fid(client, name: str) -> float | None:
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        return None
    fid = version.tags.get("fid")
    return float(fid) if fid is not None else None


def log_generator(layout: Layout, spec: dict, name: str):
    """Log G_ema as a pyfunc into the active run and register it; returns the ModelInfo."""
    import mlflow
    import pandas as pd

    from components.serve import GeneratorModel

    example = (
        pd.DataFrame({"label": [0, 1], "seed": [0, 1]})
        if spec["num_classes"]
        else pd.DataFrame({"seed": [0, 1]})
    )
    return mlflow.pyfunc.log_model(
        name="generator",
        python_model=GeneratorModel(),
        artifacts={a: str(layout.models / a) for a in ("G_ema.safetensors", "generator.json")},
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
        "train.kimg",
        "train.batch_size",
        "train.z_dim",
        "train.lr_g",
        "train.lr_d",
        "train.spectral_norm_d",
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
    with mlflow.start_run(run_id=run_id):
        mlflow.log_params({f"register.{k}": v for k, v in cfg.model_dump().items()})
        info = log_generator(layout, spec, cfg.model_name)
        version = str(info.registered_model_version)
        alias, reason = decide(cfg, metrics, champion_fid(client, cfg.model_name))
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
            "decision": alias,
            "decision_reason": reason,
        }
        for key, value in tags.items():
            client.set_model_version_tag(cfg.model_name, version, key, value)
        client.update_model_version(
            cfg.model_name,
            version,
            description=model_card(metrics, tags, run.data.params, alias, reason),
        )
        client.set_registered_model_alias(cfg.model_name, alias, version)
        decision = {
            "model_name": cfg.model_name,
            "version": version,
            "alias": alias,
            "reason": reason,
            "metrics": metrics,
            "tags": tags,
        }
        write_json(layout.registration, decision)
        mlflow.log_artifact(str(layout.registration))
        mlflow.set_tag("registered_version", version)
    print(f"register: {cfg.model_name} v{version} -> @{alias} ({reason})")
    return decision
