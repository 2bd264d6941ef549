"""The music family's registration: gates (the Frechet distance and the two-sample accuracy
within a factor of their real floors and below both controls', the copy rate under a
threshold), the champion comparison on the Frechet distance, the pyfunc (models from code)
and the model card."""

from __future__ import annotations

from pathlib import Path

from components.families.music.options import SPEC_FILE
from components.families.music.options import MusicRegisterConfig as RegisterConfig
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

FILES = (SPEC_FILE, "G_ema.safetensors")
TAGS = (
    "fd", "fd_floor", "fd_ratio", "fd_random", "fd_shuffled", "c2st", "c2st_floor",
    "c2st_ratio", "c2st_random", "c2st_shuffled", "copy_rate", "copy_rate_floor", "stats_gap",
    "stats_gap_floor", "pc_hist_tv", "duration_hist_tv", "ioi_hist_tv",
)  # fmt: skip


def gate_failures(cfg: RegisterConfig, metrics: dict) -> list[str]:
    """Each failed gate, quoting the value and the threshold (NaN fails)."""
    m, failures = metrics, []
    if not m["fd_ratio"] <= cfg.max_fd_ratio:
        failures.append(
            f"fd/fd_floor {m['fd_ratio']:.2f} > register.max_fd_ratio {cfg.max_fd_ratio}"
        )
    if not m["c2st_ratio"] <= cfg.max_c2st_ratio:
        failures.append(
            f"c2st/c2st_floor {m['c2st_ratio']:.2f} > register.max_c2st_ratio {cfg.max_c2st_ratio}"
        )
    for what in ("fd", "c2st") if cfg.beat_controls else ():
        for control in ("random", "shuffled"):
            if not m[what] < m[f"{what}_{control}"]:
                failures.append(
                    f"{what} {m[what]:.3f} is not below the {control} control's "
                    f"{m[f'{what}_{control}']:.3f}"
                )
    if not m["copy_rate"] <= cfg.max_copy_rate:
        failures.append(
            f"copy_rate {m['copy_rate']:.3f} > register.max_copy_rate {cfg.max_copy_rate}"
        )
    return failures


def requirements() -> list[str]:
    from importlib.metadata import version

    return pip_requirements() + [f"{p}=={version(p)}" for p in ("pretty_midi", "mido")]


def signature(spec: dict):
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    cols = [ColSpec("long", "seed")]
    if spec.get("class_names"):  # a class name or its index, resolved by the model
        cols.append(ColSpec(AnyType(), "label"))
    return ModelSignature(inputs=Schema(cols))


# the stage hooks (components/families/base.py)


def read_model(layout: Layout, metrics: dict):
    require_metrics(metrics, "c2st", "music metrics (fd, c2st ...)")
    return read_json(layout.models / SPEC_FILE), {}


def log_model(layout: Layout, spec: dict, about: dict, name: str):
    import pandas as pd

    keys = ("family", "arch", "tracks", "bars", "steps_per_beat", "steps_per_bar",
            "window_steps", "pitch_low", "pitch_high", "tempo", "latent_dim")  # fmt: skip
    metadata = {k: spec[k] for k in keys}  # "family": `ganops generate` finds its writer
    metadata["class_names"] = list(spec.get("class_names", []))
    example = {"seed": [0, 1]} | ({"label": spec["class_names"][:1] * 2}
                                  if spec.get("class_names") else {})  # fmt: skip
    return log_pyfunc(
        layout,
        name,
        family_dir=Path(__file__).resolve().parent,
        artifact="music",
        files=FILES,
        signature=signature(spec),
        input_example=pd.DataFrame(example),
        metadata=metadata,
        requirements=requirements(),
    )


def version_tags(metrics: dict, spec: dict, about: dict) -> dict[str, str]:
    return {"family": "music", "arch": spec["arch"]} | figure_tags(metrics, TAGS)


def champion_fid(client, name: str, layout: Layout, run, champion):
    return recorded_figure(run, champion, "fd", what="music figures")


def decide(cfg: RegisterConfig, metrics: dict, champion_fid):
    return compare(cfg, gate_failures(cfg, metrics), metrics["fd"], champion_fid, "fd")


def card(metrics: dict, tags: dict, params: dict, alias: str, reason: str) -> str:
    rows = []
    for base in ("fd", "c2st", "stats_gap", "pc_hist_tv", "duration_hist_tv", "ioi_hist_tv"):
        cells = [metrics.get(f"{base}{s}") for s in ("", "_floor", "_random", "_shuffled")]
        rows.append(f"| {base} | " + " | ".join(
            f"{v:.4g}" if isinstance(v, int | float) else "-" for v in cells) + " |")  # fmt: skip
    keys = [k for k in sorted(params) if k.startswith(("train.", "evaluate.n_samples"))]
    title = "ganops symbolic-music generator (MuseGAN line, G_ema)"
    return "\n".join(
        [
            *card_head(title, alias, reason, tags),
            "",
            "| metric | generated | real floor | random control | shuffled control |",
            "|---|---|---|---|---|",
            *rows,
            f"| copy_rate | {metrics.get('copy_rate', float('nan')):.4g} | "
            f"{metrics.get('copy_rate_floor', float('nan')):.4g} | - | - |",
            "",
            *param_table(params, keys),
        ]
    )
