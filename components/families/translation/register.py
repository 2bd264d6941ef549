"""The translation family's registration: gates per direction (share of the FID gap closed,
domain accuracy, class preservation, no-op ratio), the champion comparison on the mean FID over
directions, the pyfunc and the model card."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.errors import DataError
from components.families.translation.nets import SPEC_FILE
from components.families.translation.options import TranslationRegisterConfig as RegisterConfig
from components.layout import Layout, read_json
from components.register import (
    card_head,
    compare,
    log_pyfunc,
    param_table,
    pip_requirements,
    recorded_figure,
)

# per-direction metric of reports/metrics.json -> the register key of its lower bound
TRANSLATOR_GATES = {
    "gap_closed": "min_gap_closed",
    "domain_acc": "min_domain_acc",
    "class_preservation": "min_class_preservation",  # absent for unlabelled data: no gate
    "noop_ratio": "min_noop_ratio",
}


# per-direction figures copied to the version's tags (those present)
TRANSLATOR_TAGS = (
    "fid", "fid_floor", "fid_ceiling", "gap_closed", "domain_acc", "class_preservation",
    "class_preservation_copy", "noop_ratio", "cycle_l1", "l1", "l1_copy", "psnr", "psnr_copy",
    "ssim", "ssim_copy",
)  # fmt: skip


def directions(metrics: dict) -> list[str]:
    """The directions a translation evaluation scored (a2b, and b2a for cyclegan)."""
    found = [d for d in ("a2b", "b2a") if f"{d}_fid" in metrics]
    if not found:
        raise DataError(
            "reports/metrics.json holds no translation metrics (a2b_fid ...); "
            "run `ganops stage evaluate` on this translator"
        )
    return found


def mean_fid(metrics: dict) -> float:
    """FID of the translations against the real target domain, mean over directions."""
    return float(np.mean([metrics[f"{d}_fid"] for d in directions(metrics)]))


def translator_gate_failures(cfg: RegisterConfig, metrics: dict) -> list[str]:
    """Each failed gate of each direction, quoting the value and the threshold. NaN fails
    (gap_closed is NaN when the no-translation ceiling is not above the floor: no gap)."""
    failures = []
    for d in directions(metrics):
        for metric, key in TRANSLATOR_GATES.items():
            threshold = getattr(cfg, key)
            value = metrics.get(f"{d}_{metric}")
            if value is None:
                if metric != "class_preservation":
                    failures.append(f"{d}_{metric} missing from reports/metrics.json")
                continue
            if not value >= threshold:  # NaN fails too
                failures.append(f"{d}_{metric} {value:.3f} < register.{key} {threshold}")
        failures += _class_loss(cfg, metrics, d)
    return failures


def _class_loss(cfg: RegisterConfig, metrics: dict, d: str) -> list[str]:
    """A translation must keep the class about as well as the class head reads what it is
    given: the untranslated copy (the class evidence the inputs carry) and the real target
    images (how well the head reads that domain at all: a perfect translation is read no
    better). Below the lower of the two by more than `register.max_class_loss`, it lost class
    evidence its inputs carried."""
    kept, copy, floor = (metrics.get(f"{d}_class_preservation{s}") for s in ("", "_copy", "_floor"))
    if kept is None or copy is None or floor is None:
        return []
    bar = min(copy, floor)
    if kept >= bar - cfg.max_class_loss:
        return []
    return [
        f"{d}_class_preservation {kept:.3f} < min(copy {copy:.3f}, floor {floor:.3f}) "
        f"- register.max_class_loss {cfg.max_class_loss}"
    ]


def decide_translator(
    cfg: RegisterConfig, metrics: dict, champion_fid: float | None
) -> tuple[str, str]:
    """(alias, reason) for a translator: every direction passes the gates, and the mean FID
    over directions beats the champion's by `register.fid_margin`."""
    failures = translator_gate_failures(cfg, metrics)
    return compare(cfg, failures, mean_fid(metrics), champion_fid, "mean fid")


def translator_champion_fid(client, name: str, run, champion) -> tuple[float | None, str]:
    """The champion's recorded mean FID when it was evaluated on the same dataset; (None, why)
    when it is not comparable (it is kept then)."""
    return recorded_figure(run, champion, "fid")


def translator_signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    # binary: bytes in Python; over REST a base64 string that MLflow decodes (and encodes back)
    return ModelSignature(
        inputs=Schema([ColSpec("binary", "image"), ColSpec("string", "direction")]),
        outputs=Schema([ColSpec("binary", "image")]),
    )


def translator_example(spec: dict):
    """One mid-gray PNG of the a2b input's size and channels, direction a2b."""
    import pandas as pd

    from components.families.translation.translate import encode_png

    size, channels = spec["image_size"], spec["channels_a"]
    png = encode_png(np.full((channels, size, size), 128, dtype=np.uint8))
    return pd.DataFrame({"image": [png], "direction": ["a2b"]})


def log_translator(layout: Layout, spec: dict, about: dict, name: str):
    """Log the translator's generators as a pyfunc into the active run and register it."""
    from importlib.metadata import version

    from components.families.translation.nets import SPEC_FILE, WEIGHTS
    from components.families.translation.translate import directions_of

    files = [SPEC_FILE] + [WEIGHTS[d] for d in directions_of(spec)]
    metadata = {
        **spec,
        "directions": list(directions_of(spec)),
        "kind": about.get("kind", "unknown"),
        "class_names": about.get("class_names", []),
    }
    return log_pyfunc(
        layout,
        name,
        family_dir=Path(__file__).resolve().parent,
        artifact="translator",
        files=files,
        signature=translator_signature(),
        input_example=translator_example(spec),
        metadata=metadata,
        requirements=pip_requirements() + [f"pillow=={version('pillow')}"],
    )


def translator_card(metrics: dict, tags: dict, params: dict, alias: str, reason: str) -> str:
    """The version's description for a translator: per-direction figures beside floor and
    ceiling, paired scores beside copy-input, key params, data and commit, the decision."""
    dirs = directions(metrics)

    def cell(key: str) -> str:
        value = metrics.get(key)
        return "" if value is None else f"{value:.4g}"

    rows = [
        f"| {m} | " + " | ".join(cell(f"{d}_{m}") for d in dirs) + " |"
        for m in TRANSLATOR_TAGS
        if any(f"{d}_{m}" in metrics for d in dirs)
    ]
    keys = [
        k
        for k in sorted(params)
        if k.startswith(("train.translation.", "evaluate."))
        or k in ("train.arch", "train.kimg", "train.batch_size", "train.seed")
    ]
    title = f"ganops translator ({tags['arch']}, {tags['kind']}, {tags['directions']})"
    return "\n".join(
        [
            *card_head(title, alias, reason, tags, dvc_md5=True),
            f"- mean FID over directions: {tags['fid']} (floor {tags['fid_floor']})",
            "",
            "| metric | " + " | ".join(dirs) + " |",
            "|---|" + "---|" * len(dirs),
            *rows,
            "",
            *param_table(params, keys),
        ]
    )


def translator_files(layout: Layout) -> tuple[dict, dict]:
    """(spec, training.json) of the translator in models/; training.json may be absent."""
    from components.families.translation.nets import SPEC_KEYS, check_spec

    stored = read_json(layout.models / SPEC_FILE)
    spec = {k: stored[k] for k in SPEC_KEYS if k in stored}
    check_spec(spec)
    training = layout.models / "training.json"
    return spec, read_json(training) if training.is_file() else {}


def translator_tags(metrics: dict, spec: dict, about: dict) -> dict[str, str]:
    """family, kind, arch, directions, mean fid (what champions are compared on) and the
    per-direction figures."""
    dirs = directions(metrics)
    tags = {
        "family": "translation",
        "kind": str(metrics.get("kind") or about.get("kind", "unknown")),
        "arch": spec["arch"],
        "directions": ",".join(dirs),
        "fid": f"{mean_fid(metrics):.6f}",
        "fid_floor": f"{np.mean([metrics[f'{d}_fid_floor'] for d in dirs]):.6f}",
    }
    for d in dirs:
        for m in TRANSLATOR_TAGS:
            if isinstance(metrics.get(f"{d}_{m}"), int | float):
                tags[f"{d}_{m}"] = f"{metrics[f'{d}_{m}']:.6f}"
    for key in ("gap_closed", "domain_acc", "class_preservation", "fid_ratio"):
        if isinstance(metrics.get(key), int | float):
            tags[key] = f"{metrics[key]:.6f}"
    return tags


# the stage hooks (components/families/base.py)


def read_model(layout, metrics: dict):
    spec, about = translator_files(layout)
    directions(metrics)  # a translator's evaluation, or one clear error
    return spec, about


def log_model(layout, spec, about, name):
    return log_translator(layout, spec, about, name)


def version_tags(metrics, spec, about):
    return translator_tags(metrics, spec, about)


def champion_fid(client, name, layout, run, champion):
    return translator_champion_fid(client, name, run, champion)


def decide(cfg, metrics, champion_fid):
    return decide_translator(cfg, metrics, champion_fid)


def card(metrics, tags, params, alias, reason):
    return translator_card(metrics, tags, params, alias, reason)
