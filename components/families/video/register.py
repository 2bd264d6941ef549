"""The video family's registration: gates (video_fd within a factor of its real floor and
below both negative controls, frozen-clip rate under a threshold, and on labelled data the
asked class drawn at least a share as often as the classifier reads it in real clips), the
champion comparison on video_fd, the pyfunc (models from code) and the model card."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.families.video.options import SPEC_FILE
from components.families.video.options import VideoRegisterConfig as RegisterConfig
from components.layout import Layout, read_json
from components.register import (
    card_head,
    compare,
    figure_tags,
    log_pyfunc,
    param_table,
    recorded_figure,
    require_metrics,
)

FILES = (SPEC_FILE, "G_ema.safetensors")
TAGS = (
    "video_fd", "video_fd_floor", "video_fd_ratio", "video_fd_shuffled", "video_fd_frozen",
    "fid", "fid_floor", "kid", "frozen_rate", "frozen_rate_real", "speed_w1", "speed_w1_floor",
    "speed_w1_shuffled", "speed_w1_frozen", "identity_consistency", "identity_consistency_real",
    "cond_acc", "cond_acc_real",
)  # fmt: skip


def gate_failures(cfg: RegisterConfig, metrics: dict) -> list[str]:
    """Each failed gate, quoting the value and the threshold (NaN fails)."""
    failures = []
    ratio = metrics["video_fd_ratio"]
    if not ratio <= cfg.max_video_fd_ratio:
        failures.append(
            f"video_fd/video_fd_floor {ratio:.2f} > register.max_video_fd_ratio "
            f"{cfg.max_video_fd_ratio}"
        )
    for control in ("shuffled", "frozen"):
        if not metrics["video_fd"] < metrics[f"video_fd_{control}"]:
            failures.append(
                f"video_fd {metrics['video_fd']:.3f} is not below the {control}-real control's "
                f"{metrics[f'video_fd_{control}']:.3f}"
            )
    if not metrics["frozen_rate"] <= cfg.max_frozen_rate:
        failures.append(
            f"frozen_rate {metrics['frozen_rate']:.3f} > register.max_frozen_rate "
            f"{cfg.max_frozen_rate}"
        )
    if "cond_acc" in metrics:  # labelled data, conditional G: the asked class, read per clip
        share = metrics["cond_acc"] / max(metrics["cond_acc_real"], 1e-12)
        if not share >= cfg.min_cond_acc_share:
            failures.append(
                f"cond_acc {metrics['cond_acc']:.3f} is {share:.2f} of the real clips' "
                f"{metrics['cond_acc_real']:.3f} < register.min_cond_acc_share "
                f"{cfg.min_cond_acc_share}"
            )
    return failures


def signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    return ModelSignature(
        inputs=Schema([ColSpec("long", "seed"), ColSpec("long", "label", required=False)]),
        outputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, -1, -1, -1, -1))]),
    )


# the stage hooks (components/families/base.py)


def read_model(layout: Layout, metrics: dict):
    require_metrics(metrics, "video_fd", "video metrics (video_fd ...)")
    return read_json(layout.models / SPEC_FILE), {}


def log_model(layout: Layout, spec: dict, about: dict, name: str):
    import pandas as pd

    keys = ("arch", "channels", "image_size", "frames", "num_classes", "class_names")
    example = {"seed": [0, 1]} | ({"label": [0, 0]} if spec["num_classes"] else {})
    metadata = {"family": "video"} | {k: spec[k] for k in keys}
    return log_pyfunc(
        layout,
        name,
        family_dir=Path(__file__).resolve().parent,
        artifact="video",
        files=FILES,
        signature=signature(),
        input_example=pd.DataFrame(example),
        metadata=metadata,
    )


def version_tags(metrics: dict, spec: dict, about: dict) -> dict[str, str]:
    return {"family": "video", "arch": spec["arch"]} | figure_tags(metrics, TAGS)


def champion_fid(client, name: str, layout: Layout, run, champion):
    return recorded_figure(run, champion, "video_fd")


def decide(cfg: RegisterConfig, metrics: dict, champion_fid):
    return compare(cfg, gate_failures(cfg, metrics), metrics["video_fd"], champion_fid, "video_fd")


def card(metrics: dict, tags: dict, params: dict, alias: str, reason: str) -> str:
    rows = [f"| {k} | {metrics[k]:.4g} |" for k in TAGS if isinstance(metrics.get(k), int | float)]
    keys = [k for k in sorted(params) if k.startswith(("train.", "evaluate.n_samples"))]
    note = (
        "video_fd: Fréchet distance in a small 3-D CNN trained on the real train clips "
        "(an offline stand-in for FVD, not FVD)."
    )
    return "\n".join(
        [
            *card_head("ganops video generator (G_ema)", alias, reason, tags, note=note),
            "",
            "| metric | value |",
            "|---|---|",
            *rows,
            "",
            *param_table(params, keys),
        ]
    )
