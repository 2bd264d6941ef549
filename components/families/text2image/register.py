"""The text-to-image family's registration: gates (FID within a factor of its floor,
R-precision at least a share of the real-image ceiling, per-caption diversity not collapsed),
the champion comparison on FID, the pyfunc (models from code) and the model card."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.families.text2image.options import SPEC_FILE
from components.families.text2image.options import Text2ImageRegisterConfig as RegisterConfig
from components.layout import Layout, read_json
from components.register import (
    card_head,
    compare,
    figure_tags,
    log_pyfunc,
    param_table,
    pip_requirements,
    recorded_figure,
    require_metrics,
)

FILES = (SPEC_FILE, "vocab.json", "G_ema.safetensors", "text_encoder.safetensors")
TAGS = (
    "fid", "fid_floor", "fid_ratio", "r_precision", "r_precision_ceiling", "r_precision_shuffled",
    "r_precision_share", "diversity_ratio", "attr_exact", "attr_exact_seen", "attr_exact_heldout",
    "attr_exact_shuffled",
)  # fmt: skip


def gate_failures(cfg: RegisterConfig, metrics: dict) -> list[str]:
    """Each failed gate, quoting the value and the threshold (NaN fails)."""
    failures = []
    if not metrics["fid_ratio"] <= cfg.max_fid_ratio:
        failures.append(
            f"fid/fid_floor {metrics['fid_ratio']:.2f} > register.max_fid_ratio {cfg.max_fid_ratio}"
        )
    share = metrics["r_precision_share"]
    if not share >= cfg.min_r_precision_share:
        failures.append(
            f"r_precision {metrics['r_precision']:.3f} is {share:.2f} of the real ceiling "
            f"{metrics['r_precision_ceiling']:.3f} < register.min_r_precision_share "
            f"{cfg.min_r_precision_share}"
        )
    if not metrics["diversity_ratio"] >= cfg.min_diversity_ratio:
        failures.append(
            f"diversity_ratio {metrics['diversity_ratio']:.3f} < register.min_diversity_ratio "
            f"{cfg.min_diversity_ratio}"
        )
    return failures


def artifacts(layout: Layout, spec: dict) -> dict[str, str]:
    """The files the pyfunc loads, and a pretrained text model's own copy (text_model/): the
    registered version never reads the folder it was trained from."""
    files = {f: str(layout.models / f) for f in FILES}
    if spec.get("text_model"):
        folder = spec["text_model"]["folder"]
        files[folder] = str(layout.models / folder)
    return files


def requirements(spec: dict) -> list[str]:
    """The pyfunc's pinned requirements; a pretrained text encoder adds transformers and
    tokenizers at the versions it was trained with (a fresh serving env needs them)."""
    from importlib.metadata import version

    extra = ("transformers", "tokenizers") if spec.get("text_model") else ()
    return pip_requirements() + [f"{name}=={version(name)}" for name in extra]


def signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec

    return ModelSignature(
        inputs=Schema([ColSpec("string", "text"), ColSpec("long", "seed", required=False)]),
        outputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, -1, -1, -1))]),
        params=ParamSchema([ParamSpec("truncation", "double", 1.0)]),
    )


# the stage hooks (components/families/base.py)


def read_model(layout: Layout, metrics: dict):
    require_metrics(metrics, "r_precision", "text-to-image metrics (r_precision ...)")
    return read_json(layout.models / SPEC_FILE), {}


def log_model(layout: Layout, spec: dict, about: dict, name: str):
    import pandas as pd

    keys = ("family", "arch", "channels", "image_size", "z_dim", "max_words", "panel")
    example = pd.DataFrame({"text": [spec["panel"][0], spec["panel"][-1]], "seed": [0, 1]})
    return log_pyfunc(
        layout,
        name,
        family_dir=Path(__file__).resolve().parent,
        artifact="text2image",
        files=tuple(artifacts(layout, spec)),  # + a pretrained text model's folder
        signature=signature(),
        input_example=example,
        requirements=requirements(spec),
        metadata={k: spec[k] for k in keys},
    )


def version_tags(metrics: dict, spec: dict, about: dict) -> dict[str, str]:
    return {"family": "text2image", "arch": spec["arch"]} | figure_tags(metrics, TAGS)


def champion_fid(client, name: str, layout: Layout, run, champion):
    return recorded_figure(run, champion, "fid")


def decide(cfg: RegisterConfig, metrics: dict, champion_fid):
    return compare(cfg, gate_failures(cfg, metrics), metrics["fid"], champion_fid, "fid")


def card(metrics: dict, tags: dict, params: dict, alias: str, reason: str) -> str:
    rows = [f"| {k} | {metrics[k]:.4g} |" for k in TAGS if isinstance(metrics.get(k), int | float)]
    keys = [k for k in sorted(params) if k.startswith(("train.", "evaluate.n_samples"))]
    title = "ganops text-to-image generator (G_ema + its sentence encoder)"
    return "\n".join(
        [
            *card_head(title, alias, reason, tags),
            "",
            "| metric | value |",
            "|---|---|",
            *rows,
            "",
            *param_table(params, keys),
        ]
    )
