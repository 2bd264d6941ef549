"""ingest: stream a source into a processed dataset (uint8 N×C×H×W + metadata + manifest).

The dataset's kind follows the source: `generate` (one image set), `unpaired` or `paired`
(translation: domains A and B; see components/dataset.py for what is written). Sources
(components/sources.py) yield chunks; each is converted (channels, 0..255 uint8,
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
    FolderSource,
    Source,
    SplitFolderSource,
    Translation,
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
    if isinstance(source, FolderSource | SplitFolderSource):
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


def build(cfg: IngestConfig, out_dir: Path, scratch: Path) -> dict:
    """Stream the source into out_dir (images .npy memmap, meta.csv); returns the manifest."""
    source = open_dataset(cfg.source, list(cfg.classes), scratch, cfg.image_size)
    if isinstance(source, Translation):
        return build_translation(cfg, source, out_dir)
    info = source.info
    channels = info.channels if cfg.channels == "auto" else int(cfg.channels)
    size = cfg.image_size
    shape = (info.n_images, channels, size, size)
    target = out_dir / "images.npy"
    # create the .npy at full size; each chunk below maps it afresh and unmaps it again
    np.lib.format.open_memmap(target, mode="w+", dtype=np.uint8, shape=shape).flush()
    scale = float_scale(source)
    parts, start, digest = [], 0, hashlib.sha256()
    for chunk in track(source.chunks(), info.n_images, "ingest"):
        block, readable, stats = process_chunk(chunk, size, channels, scale)
        _write_rows(target, start, block)
        digest.update(block.tobytes())
        parts.append(_meta_frame(chunk, readable, block, stats, domain="", pair=-1))
        start += len(block)
    meta = pd.concat(parts, ignore_index=True)
    given = getattr(source, "splits", None)  # a set that comes split keeps its split
    if given is not None:
        is_test = given == "test"
    else:
        is_test = split_indices(meta["label"].to_numpy(), cfg.test_fraction, cfg.seed)
    meta["split"] = np.where(is_test, "test", "train")
    meta = meta[META_COLUMNS]
    meta.to_csv(out_dir / "meta.csv", index_label="index")
    digest.update(repr((info.n_images, channels, size)).encode())
    digest.update(meta[["label", "split"]].to_csv(index=False).encode())  # as before: same hash
    return {
        "kind": "generate",
        "source": cfg.source,
        "source_kind": info.description,
        "n_images": int(info.n_images),
        "n_unreadable": int((~meta["readable"]).sum()),
        "shape": [channels, size, size],
        "image_size": size,
        "class_names": info.class_names,
        "conditional": info.conditional,
        "n_train": int((~is_test).sum()),
        "n_test": int(is_test.sum()),
        "storage": "images.npy",
        "content_hash": digest.hexdigest(),
    }


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


def split_halves(chunk: Chunk) -> dict[str, Chunk]:
    """Side-by-side A|B images -> an A chunk (left half) and a B chunk (right half)."""
    halves = {"A": [], "B": []}
    for img in chunk.images:  # (C, H, W)
        if img is not None and img.shape[2] < 2:
            img = None  # nothing to split: counted unreadable (and fails the 2:1 rule)
        half = None if img is None else img.shape[2] // 2
        halves["A"].append(None if img is None else img[:, :, :half])  # (C, H, W // 2)
        halves["B"].append(None if img is None else img[:, :, half:])
    return {d: Chunk(imgs, chunk.labels, chunk.files) for d, imgs in halves.items()}


class _Store:
    """The uint8 arrays on disk: images.npy (A rows, then B rows) when A and B have the same
    channels, else images_A.npy and images_B.npy."""

    def __init__(self, out_dir: Path, counts: dict[str, int], channels: dict[str, int], size: int):
        if channels["A"] == channels["B"]:
            self.storage = "images.npy"
            self.where = {
                "A": (out_dir / "images.npy", 0),
                "B": (out_dir / "images.npy", counts["A"]),
            }
            shapes = {out_dir / "images.npy": (counts["A"] + counts["B"], channels["A"])}
        else:
            self.storage = {d: f"images_{d}.npy" for d in counts}
            self.where = {d: (out_dir / f"images_{d}.npy", 0) for d in counts}
            shapes = {out_dir / f"images_{d}.npy": (counts[d], channels[d]) for d in counts}
        for path, (n, c) in shapes.items():
            np.lib.format.open_memmap(
                path, mode="w+", dtype=np.uint8, shape=(n, c, size, size)
            ).flush()
        self.filled = dict.fromkeys(counts, 0)

    def write(self, domain: str, block: np.ndarray) -> None:
        path, base = self.where[domain]
        _write_rows(path, base + self.filled[domain], block)
        self.filled[domain] += len(block)


def build_translation(cfg: IngestConfig, source: Translation, out_dir: Path) -> dict:
    """Unpaired or paired: each part's images go to their domain (paired images are split at
    the middle first, then each half is resized); bundled parts are split here."""
    size = cfg.image_size
    auto = cfg.channels == "auto"
    channels = {d: source.channels[d] if auto else int(cfg.channels) for d in ("A", "B")}
    counts = {
        d: sum(p.source.info.n_images for p in source.parts if d in p.domain) for d in channels
    }
    store = _Store(out_dir, counts, channels, size)
    frames: dict[str, list[pd.DataFrame]] = {"A": [], "B": []}
    digests = {d: hashlib.sha256() for d in channels}
    n_pairs = 0
    for index, part in enumerate(source.parts):
        scale = float_scale(part.source)
        total = part.source.info.n_images
        for chunk in track(part.source.chunks(), total, f"ingest {part.domain} {part.split or ''}"):
            paired = part.domain == "AB"
            pair = np.arange(n_pairs, n_pairs + len(chunk.files)) if paired else -1
            n_pairs += len(chunk.files) if paired else 0
            dims = raw_dims(chunk)  # of the whole A|B image for paired data
            for domain, sub in (split_halves(chunk) if paired else {part.domain: chunk}).items():
                block, readable, stats = process_chunk(sub, size, channels[domain], scale)
                store.write(domain, block)
                digests[domain].update(block.tobytes())
                frame = _meta_frame(sub, readable, block, stats, domain, pair, part.split or "")
                frame["raw_height"], frame["raw_width"] = dims["raw_height"], dims["raw_width"]
                frame["part"] = index
                frames[domain].append(frame)
    meta = {d: pd.concat(f, ignore_index=True) for d, f in frames.items()}
    _split_bundled(source, meta, cfg.test_fraction, cfg.seed)
    table = pd.concat([meta["A"], meta["B"]], ignore_index=True)[META_COLUMNS]
    table.to_csv(out_dir / "meta.csv", index_label="index")
    return _translation_manifest(cfg, source, table, channels, store, digests)


def _split_bundled(source: Translation, meta: dict[str, pd.DataFrame], fraction: float, seed: int):
    """Parts without their own split get a stratified one; a pair's halves stay together."""
    for index, part in enumerate(source.parts):
        if part.split is not None:
            continue
        first = "A" if part.domain == "AB" else part.domain
        rows = (meta[first]["part"] == index).to_numpy()
        is_test = split_indices(meta[first]["label"].to_numpy()[rows], fraction, seed)
        for domain in ("A", "B") if part.domain == "AB" else (part.domain,):
            meta[domain].loc[rows, "split"] = np.where(is_test, "test", "train")


def _translation_manifest(cfg, source: Translation, table, channels, store, digests) -> dict:
    size = cfg.image_size
    domains = {}
    for d, c in channels.items():
        split = table.loc[table["domain"] == d, "split"]
        domains[d] = {
            "channels": c,
            "shape": [c, size, size],
            "class_names": source.class_names if source.labelled(d) else [],
            "n_train": int((split == "train").sum()),
            "n_test": int((split == "test").sum()),
        }
    digest = hashlib.sha256()
    for d in ("A", "B"):
        digest.update(digests[d].digest())
    digest.update(repr((source.kind, len(table), channels["A"], channels["B"], size)).encode())
    digest.update(table[["label", "split", "domain", "pair"]].to_csv(index=False).encode())
    same = channels["A"] == channels["B"]
    return {
        "kind": source.kind,
        "source": cfg.source,
        "source_kind": source.description,
        "n_images": len(table),
        "n_unreadable": int((~table["readable"]).sum()),
        "shape": [channels["A"], size, size] if same else None,
        "image_size": size,
        "class_names": source.class_names,
        "conditional": False,  # labels are for evaluation (class preservation), never training
        "n_train": int((table["split"] == "train").sum()),
        "n_test": int((table["split"] == "test").sum()),
        "domains": domains,
        "storage": store.storage,
        "content_hash": digest.hexdigest(),
    }


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
