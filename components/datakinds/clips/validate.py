"""The clip set's GX rules: the image set's rules on one row per clip (count, unreadable files
named, channels, frame size, pixel range, duplicates, blank clips, classes), then the clips':
every clip has the manifest's frame count (a short clip is named, never padded in silence) and
the share of static clips (mean |frame difference| below validate.static_motion)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.config import ValidateConfig
from components.datakinds.images.validate import suite as image_rules
from components.dataset import Dataset
from components.errors import DataError
from components.validate import Rule

CLIP_KEYS = ("static_motion", "max_static_fraction")


def motion(clips: np.ndarray) -> np.ndarray:
    """Each clip's mean |difference| between consecutive frames (0-255 scale), (N,)."""
    out = np.zeros(len(clips))
    for start in range(0, len(clips), 256):
        block = np.asarray(clips[start : start + 256], dtype=np.float32)  # (n, T, C, S, S)
        if block.shape[1] > 1:
            out[start : start + len(block)] = np.abs(np.diff(block, axis=1)).mean(axis=(1, 2, 3, 4))
    return out


def clip_std(clips: np.ndarray) -> np.ndarray:
    """Each clip's pixel std over all its frames (the largest over channels)."""
    out = np.zeros(len(clips))
    for start in range(0, len(clips), 256):
        block = np.asarray(clips[start : start + 256], dtype=np.float32)
        per_channel = block.transpose(0, 2, 1, 3, 4).reshape(len(block), block.shape[2], -1)
        out[start : start + len(block)] = per_channel.std(axis=2).max(axis=1)
    return out


def summarize(data: Dataset) -> pd.DataFrame:
    """One row per clip: file, readable, frames, channels, height, width, raw pixel range,
    pixel std, motion, label, duplicates, class share, split."""
    clips, meta = data.images, data.meta
    readable = meta["readable"].to_numpy(dtype=bool)
    hashes = meta["hash"].where(readable)
    _, _, c, h, w = clips.shape

    def only(values):
        return np.where(readable, values, np.nan)

    return pd.DataFrame(
        {
            "file": meta["file"].to_numpy(),
            "readable": readable,
            "n_frames": only(meta["n_frames"].to_numpy(dtype=float)),
            "channels": only(np.full(len(meta), c)),
            "height": only(np.full(len(meta), h)),
            "width": only(np.full(len(meta), w)),
            "pixel_min": meta["raw_min"].to_numpy(),
            "pixel_max": meta["raw_max"].to_numpy(),
            "pixel_std": only(clip_std(clips)),
            "motion": only(motion(clips)),
            "n_nonfinite": meta["n_nonfinite"].to_numpy(),
            "label": meta["label"].to_numpy(),
            "duplicate_count": hashes.map(hashes.value_counts()).to_numpy(dtype=float),
            "class_fraction": meta["label"].map(meta["label"].value_counts(normalize=True)),
            "split": meta["split"].to_numpy(),
        }
    )


def suite(cfg: ValidateConfig, manifest: dict) -> list[Rule]:
    import great_expectations as gx

    missing = [k for k in CLIP_KEYS if getattr(cfg, k, None) is None]
    if missing:
        raise DataError(
            f"validate.{missing[0]}: clip data needs the video params (params-video.yaml)"
        )
    E = gx.expectations
    frames = manifest["frames"]
    rules = [
        Rule(
            r.what.replace("dataset size", "clips")
            .replace("images", "clips")
            .replace("every image", "every clip"),
            r.expectation,
            r.severity,
        )
        for r in image_rules(cfg, manifest)
    ]
    return rules + [
        Rule(
            f"every clip has {frames} frames (ingest.frames {manifest['frames_setting']}, "
            f"every {manifest['frame_step']}. frame)",
            E.ExpectColumnValuesToBeBetween(column="n_frames", min_value=frames),
        ),
        Rule(
            f"static clips (mean |frame difference| < validate.static_motion "
            f"{cfg.static_motion}) <= validate.max_static_fraction ({cfg.max_static_fraction})",
            E.ExpectColumnValuesToBeBetween(
                column="motion", min_value=cfg.static_motion, mostly=1 - cfg.max_static_fraction
            ),
        ),
        Rule(
            "both splits hold clips",
            E.ExpectColumnDistinctValuesToContainSet(column="split", value_set=["train", "test"]),
        ),
    ]
