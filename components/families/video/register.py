"""The video family's registration: gates (video_fd within a factor of its real floor and
below both negative controls, frozen-clip rate under a threshold), the champion comparison on
video_fd, the pyfunc (models from code) and the model card."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.errors import DataError
from components.families.video.options import SPEC_FILE
from components.families.video.options import VideoRegisterConfig as RegisterConfig
from components.layout import Layout, read_json
from components.register import compare, pip_requirements

MODEL_CODE = Path(__file__).resolve().parent / "pyfunc_model.py"  # models from code: no pickle
COMPONENTS_DIR = Path(__file__).resolve().parents[2]  # shipped as code_paths
FILES = (SPEC_FILE, "G_ema.safetensors")
TAGS = (
    "video_fd", "video_fd_floor", "video_fd_ratio", "video_fd_shuffled", "video_fd_frozen",
    "fid", "fid_floor", "kid", "frozen_rate", "frozen_rate_real", "speed_w1", "speed_w1_floor",
    "speed_w1_shuffled", "speed_w1_frozen", "identity_consistency", "identity_consistency_real",
    "cond_acc",
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
    if "video_fd" not in metrics:
        raise DataError(
            "reports/metrics.json holds no video metrics (video_fd ...); "
            "run `ganops stage evaluate` on this model"
        )
    return read_json(layout.models / SPEC_FILE), {}


def log_model(layout: Layout, spec: dict, about: dict, name: str):
    import mlflow
    import pandas as pd

    keys = ("arch", "channels", "image_size", "frames", "num_classes", "class_names")
    example = {"seed": [0, 1]} | ({"label": [0, 0]} if spec["num_classes"] else {})
    return mlflow.pyfunc.log_model(
        name="video",
        python_model=str(MODEL_CODE),
        artifacts={f: str(layout.models / f) for f in FILES},
        code_paths=[str(COMPONENTS_DIR)],
        signature=signature(),
        input_example=pd.DataFrame(example),
        pip_requirements=pip_requirements(),
        metadata={"family": "video"} | {k: spec[k] for k in keys},
        registered_model_name=name,
    )


def version_tags(metrics: dict, spec: dict, about: dict) -> dict[str, str]:
    tags = {"family": "video", "arch": spec["arch"]}
    for key in TAGS:
        if isinstance(metrics.get(key), int | float):
            tags[key] = f"{metrics[key]:.6f}"
    return tags


def champion_fid(client, name: str, layout: Layout, run, champion):
    v = f"v{champion.version}"
    if champion.tags.get("dataset_hash") != run.data.tags.get("dataset_hash"):
        return None, f"{v} was evaluated on another dataset; not comparable"
    if "video_fd" not in champion.tags:
        return None, f"{v} has no video_fd; not comparable"
    return float(champion.tags["video_fd"]), f"{v}, same dataset"


def decide(cfg: RegisterConfig, metrics: dict, champion_fid):
    return compare(cfg, gate_failures(cfg, metrics), metrics["video_fd"], champion_fid, "video_fd")


def card(metrics: dict, tags: dict, params: dict, alias: str, reason: str) -> str:
    rows = [f"| {k} | {metrics[k]:.4g} |" for k in TAGS if isinstance(metrics.get(k), int | float)]
    keys = [k for k in sorted(params) if k.startswith(("train.", "evaluate.n_samples"))]
    return "\n".join(
        [
            "# ganops video generator (G_ema)",
            f"**Decision:** `@{alias}`: {reason}",
            "",
            "video_fd: Fréchet distance in a small 3-D CNN trained on the real train clips "
            "(an offline stand-in for FVD, not FVD).",
            "",
            f"- dataset content hash: `{tags['dataset_hash']}`",
            f"- git commit: `{tags['git_commit']}`, params hash `{tags['params_hash']}`",
            "",
            "| metric | value |",
            "|---|---|",
            *rows,
            "",
            "| param | value |",
            "|---|---|",
            *[f"| {k} | {params[k]} |" for k in keys],
        ]
    )
