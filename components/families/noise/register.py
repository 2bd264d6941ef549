"""The noise family's registration: quality gates (FID against the real floor, class accuracy,
modes, TSTR), the champion comparison on FID, the pyfunc and the model card."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.families.noise import SPEC_FILE
from components.families.noise.options import NoiseRegisterConfig as RegisterConfig
from components.layout import Layout
from components.register import card_head, compare, log_pyfunc, param_table, require_metrics


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
    return compare(cfg, gate_failures(cfg, metrics), metrics["fid"], champion_fid, "fid")


def champion_fid(client, name: str, layout: Layout, run, champion) -> tuple[float | None, str]:
    """The champion's FID under the candidate's protocol: its recorded FID when it was evaluated
    on the same dataset, else re-evaluated now on the current test split. (None, why) when it
    cannot be compared (another image shape or class set)."""
    import mlflow

    data_hash = run.data.tags.get("dataset_hash")
    if champion.tags.get("dataset_hash") == data_hash and "fid" in champion.tags:
        return float(champion.tags["fid"]), f"v{champion.version}, same dataset"

    from components.config import EvaluateConfig
    from components.dataset import load_dataset
    from components.evaluate import evaluate
    from components.evaluate.features import load_or_train_classifier
    from components.families.noise.nets import load_model_dir

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
    import pandas as pd

    from components.families.noise.nets import GENERATOR_FILES

    example = (
        pd.DataFrame({"label": [0, 1], "seed": [0, 1]})
        if spec["num_classes"]
        else pd.DataFrame({"seed": [0, 1]})
    )
    keys = ("num_classes", "class_names", "channels", "image_size", "z_dim")
    metadata = {"family": "noise"} | {k: spec[k] for k in keys}  # `ganops generate` reads family
    return log_pyfunc(
        layout,
        name,
        family_dir=Path(__file__).resolve().parent,
        artifact="generator",
        files=GENERATOR_FILES,
        signature=model_signature(spec),
        input_example=example,
        metadata=metadata,
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
            *card_head("ganops generator (G_ema)", alias, reason, tags, dvc_md5=True),
            "",
            "| metric | value | real-vs-real floor |",
            "|---|---|---|",
            *rows,
            "",
            *param_table(params, [k for k in keys if k in params]),
        ]
    )


# the stage hooks (components/families/base.py)


def read_model(layout, metrics: dict):
    from components.layout import read_json

    require_metrics(metrics, "fid", "generator metrics (fid ...)", subject="generator")
    return read_json(layout.models / SPEC_FILE), {}


def log_model(layout, spec, about, name):
    return log_generator(layout, spec, name)


def version_tags(metrics, spec, about):
    return {
        "family": "noise",
        "fid": f"{metrics['fid']:.6f}",
        "fid_floor": f"{metrics['fid_floor']:.6f}",
        "cond_acc": f"{metrics.get('cond_acc', float('nan')):.6f}",
    }


def card(metrics, tags, params, alias, reason):
    return model_card(metrics, tags, params, alias, reason)
