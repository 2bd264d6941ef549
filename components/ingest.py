"""ingest: stream a source into a processed dataset (uint8 N×C×H×W + metadata + manifest).

The dataset's kind follows the source (components/datakinds: the data kind whose layout it is,
or the one the family's ingest config names); see components/dataset.py for what is written.
Sources (components/sources.py) yield chunks; each is converted (channels, 0..255 uint8,
antialiased resize + centre crop) into a memory-mapped array, so memory stays bounded. Raw pixel
statistics go into the metadata for the validation gate. Output is built in a temp folder and
renamed into place: a failed ingest never leaves half a dataset behind.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from components.config import IngestConfig
from components.layout import Layout, atomic_dir, write_json
from components.sources import (
    Chunk,
    Source,
    open_dataset,
)


def split_indices(labels: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Deterministic stratified split: True where the image is held out for testing."""
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        rng.shuffle(idx)
        is_test[idx[: int(round(len(idx) * test_fraction))]] = True
    return is_test


def image_hashes(images: np.ndarray) -> list[str]:
    """Content hash of each image's pixels (shape included), 16 hex chars."""
    shape = repr(images.shape[1:]).encode()
    return [hashlib.sha256(shape + img.tobytes()).hexdigest()[:16] for img in images]


def _to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    """(n, C, H, W) float -> (n, channels, H, W); RGB -> L uses ITU-R 601-2 luma, as PIL does."""
    if x.shape[1] == channels:
        return x
    if channels == 3:
        return np.repeat(x, 3, axis=1)
    return x[:, 0:1] * 0.299 + x[:, 1:2] * 0.587 + x[:, 2:3] * 0.114


def resize_center_crop(img: np.ndarray, size: int) -> np.ndarray:
    """uint8 (C, H, W) -> (C, size, size): shorter side to `size` with PIL LANCZOS (antialiased),
    then a centre crop. The filter is fixed because resize choices change FID."""
    from PIL import Image

    c, h, w = img.shape
    if h == size and w == size:
        return img
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    top, left = (nh - size) // 2, (nw - size) // 2
    out = np.empty((c, size, size), dtype=np.uint8)
    for ch in range(c):
        big = Image.fromarray(img[ch]).resize((nw, nh), Image.Resampling.LANCZOS)
        out[ch] = np.asarray(big)[top : top + size, left : left + size]
    return out


def process_chunk(chunk: Chunk, size: int, channels: int, scale: float):
    """Raw chunk -> (uint8 (n, channels, size, size), readable mask, per-image raw stats)."""
    n = len(chunk.images)
    readable = np.array([img is not None for img in chunk.images])
    stats = {k: np.full(n, np.nan) for k in ("raw_min", "raw_max", "n_nonfinite")}
    out = np.zeros((n, channels, size, size), dtype=np.uint8)
    shapes = {img.shape for img in chunk.images if img is not None}
    if readable.all() and len(shapes) == 1:  # fast path: one vectorised block
        groups = [(np.arange(n), np.stack(chunk.images))]
    else:
        groups = [
            (np.array([i]), img[None]) for i, img in enumerate(chunk.images) if img is not None
        ]
    for idx, raw in groups:
        x = _to_channels(raw.astype(np.float64) * scale, channels)  # (k, C, H, W)
        finite = np.isfinite(x)
        flat_finite = finite.reshape(len(x), -1)
        stats["n_nonfinite"][idx] = (~flat_finite).sum(axis=1)
        flat = x.reshape(len(x), -1)
        with np.errstate(invalid="ignore"):
            stats["raw_min"][idx] = np.where(flat_finite, flat, np.inf).min(axis=1)
            stats["raw_max"][idx] = np.where(flat_finite, flat, -np.inf).max(axis=1)
        pixels = np.where(finite, x, 0.0).round().clip(0, 255).astype(np.uint8)
        if pixels.shape[2:] == (size, size):
            out[idx] = pixels
        else:
            for j, i in enumerate(idx):
                out[i] = resize_center_crop(pixels[j], size)
    return out, readable, stats


def float_scale(source: Source) -> float:
    """255 when a float source holds 0..1 values (judged on its first chunk), else 1."""
    if source.decodes_files:
        return 1.0  # decoded files are uint8
    first = next(iter(source.chunks()), None)
    if first is None:
        return 1.0
    arrays = [img for img in first.images if img is not None]
    if not arrays or not np.issubdtype(arrays[0].dtype, np.floating):
        return 1.0
    peak = max(float(np.nanmax(a)) if np.isfinite(a).any() else 0.0 for a in arrays)
    return 255.0 if peak <= 1.0 else 1.0


def raw_dims(chunk: Chunk) -> dict[str, np.ndarray]:
    """Height and width of each image as it came (NaN when unreadable), before any resize."""
    dims = np.array(
        [img.shape[1:] if img is not None else (np.nan, np.nan) for img in chunk.images]
    )
    dims = dims.reshape(len(chunk.images), 2)
    return {"raw_height": dims[:, 0], "raw_width": dims[:, 1]}


def _write_rows(target: Path, start: int, block: np.ndarray) -> None:
    """Write rows into an .npy on disk, mapped for this write only (memory stays one chunk)."""
    images = np.load(target, mmap_mode="r+")  # (N, C, S, S) on disk
    images[start : start + len(block)] = block
    images.flush()
    del images  # unmap: written pages leave this process


# meta.csv columns, in order (plus its `index`): one row per image, A rows before B rows
META_COLUMNS = [
    "label", "split", "file", "readable", "hash", "raw_min", "raw_max", "n_nonfinite",
    "domain", "pair", "raw_height", "raw_width",
]  # fmt: skip


def _meta_frame(chunk: Chunk, readable, block, stats, domain: str, pair, split="") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label": chunk.labels,
            "split": split,
            "file": chunk.files,
            "readable": readable,
            "hash": image_hashes(block),
            **stats,
            "domain": domain,
            "pair": pair,
            **raw_dims(chunk),
        }
    )


def track(chunks, total: int, label: str):
    """A rich progress bar over chunks (counted in images)."""
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=total)
        for chunk in chunks:
            yield chunk
            bar.advance(task, len(chunk.files))


def run(cfg: IngestConfig, layout: Layout) -> dict:
    """The ingest stage: build into a temp folder, then swap it into data/processed."""
    layout.processed.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=layout.processed.parent, prefix=".extract-"))
    try:
        with atomic_dir(layout.processed) as tmp:
            manifest = build(cfg, tmp, scratch)
            manifest["params"] = cfg.model_dump(mode="json")  # logged on the MLflow run by train
            write_json(tmp / layout.manifest.name, manifest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return manifest


def build(cfg: IngestConfig, out_dir: Path, scratch: Path) -> dict:
    """Stream the source into out_dir; its data kind writes the arrays, meta.csv and the
    manifest (components/datakinds/<kind>/ingest.py). A family whose data is one kind whatever
    the folder looks like names it on its ingest config (`data_kind`: a datakinds registry
    name), and that kind opens the source."""
    if (owner := getattr(cfg, "data_kind", None)) is not None:
        from components import datakinds

        kind = datakinds.named(owner)
        return kind.build(cfg, kind.open_source(cfg, scratch), out_dir)
    kind, source = open_dataset(cfg.source, list(cfg.classes), scratch, cfg.image_size)
    return kind.build(cfg, source, out_dir)


def write_images(cfg: IngestConfig, source: Source, out_dir: Path, label: str = "ingest"):
    """Stream an image source into out_dir/images.npy, chunk by chunk (bounded memory): (meta
    without split, channels, the sha256 of the pixels so far). Shared by the kinds that store
    one image array."""
    info = source.info
    channels = info.channels if cfg.channels == "auto" else int(cfg.channels)
    size = cfg.image_size
    target = out_dir / "images.npy"
    shape = (info.n_images, channels, size, size)
    # create the .npy at full size; each chunk below maps it afresh and unmaps it again
    np.lib.format.open_memmap(target, mode="w+", dtype=np.uint8, shape=shape).flush()
    scale = float_scale(source)
    parts, start, digest = [], 0, hashlib.sha256()
    for chunk in track(source.chunks(), info.n_images, label):
        block, readable, stats = process_chunk(chunk, size, channels, scale)
        _write_rows(target, start, block)
        digest.update(block.tobytes())
        parts.append(_meta_frame(chunk, readable, block, stats, domain="", pair=-1))
        start += len(block)
    return pd.concat(parts, ignore_index=True), channels, digest
