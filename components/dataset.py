"""The processed dataset: the contract between ingest and every later stage.

ingest writes `data/processed/` (images.npy uint8 N×C×H×W, meta.csv one row per image with its
label, split and content hash, manifest.json); validate, train, evaluate and register read it
back through `load_dataset`, numpy arrays only (no pickle).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from components.errors import DataError
from components.layout import Layout, read_json


@dataclass(frozen=True)
class Dataset:
    images: np.ndarray  # (N, C, H, W) uint8
    meta: pd.DataFrame
    manifest: dict

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of one split, readable images only."""
        mask = ((self.meta["split"] == name) & self.meta["readable"]).to_numpy()
        return self.images[mask], self.meta["label"].to_numpy()[mask]

    @property
    def num_classes(self) -> int:
        return len(self.manifest["class_names"]) if self.manifest["conditional"] else 0


def load_dataset(layout: Layout) -> Dataset:
    """Read what ingest wrote (numpy arrays only: no pickle)."""
    if not layout.manifest.is_file():
        raise DataError(f"{layout.processed}: no processed dataset; run `ganops stage ingest`")
    images = np.load(layout.images, mmap_mode="r", allow_pickle=False)
    meta = pd.read_csv(layout.meta, index_col="index")
    return Dataset(images, meta, read_json(layout.manifest))
