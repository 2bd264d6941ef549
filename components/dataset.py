"""The processed dataset: the contract between ingest and every later stage.

ingest writes `data/processed/`; validate, train, evaluate and register read it back through
`load_dataset`, numpy arrays only (no pickle):

- `manifest.json`: `kind` (the data kind's processed kind: components/datakinds, e.g. "generate" |
  "unpaired" | "paired" | "captioned" | "clips" | "scores"), `shape`, `image_size`,
  `class_names`, `conditional`, `n_train`, `n_test`, `storage`, `content_hash`; translation sets
  add `domains` = {"A": {channels, shape, class_names, n_train, n_test}, "B": {...}}.
- `images.npy`: uint8 (N, C, S, S), row i = meta row i. A translation set whose domains differ in
  channels stores `images_A.npy` and `images_B.npy` instead (`storage` names the files); meta rows
  are ordered A first, then B, so domain d's k-th meta row is row k of its array.
- `meta.csv`: one row per image: label (-1 unlabelled), split, file, readable, hash (content),
  raw_min / raw_max / n_nonfinite (before the uint8 cast), domain ("A" / "B"; "" for generate),
  pair (pair id shared by the two halves of a paired image; -1 otherwise), raw_height / raw_width
  (of the file as it came: the whole A|B image for paired data).

Translation labels are class names (from class sub-folders) used only to evaluate class
preservation: `manifest["class_names"]` is one index shared by A and B; `conditional` is False.

A kind may write more files beside images.npy (its `DataKind.files`, by key: a captioned set's
captions, vocabulary and attributes); `Dataset.file(key)` finds them and the kind's own package
reads them (e.g. components/datakinds/captioned/read.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from components import datakinds
from components.errors import DataError
from components.layout import Layout, read_json

# what a kind's processed set looks like (one array split by meta.csv, or domains A and B; the
# files beside images.npy) is the kind's to say: components/datakinds/<kind>/__init__.py
DOMAINS = ("A", "B")
SPLITS = ("train", "test")


@dataclass(frozen=True)
class Dataset:
    images: np.ndarray | None  # (N, C, H, W) uint8; None when A and B differ in channels
    meta: pd.DataFrame
    manifest: dict
    domain_images: dict[str, np.ndarray] = field(default_factory=dict)  # per domain, when split
    folder: Path | None = None  # where it was read from: a kind's other files load on demand

    @property
    def kind(self) -> str:
        return self.manifest.get("kind", datakinds.LEGACY_PROCESSED)

    @property
    def data_kind(self) -> datakinds.DataKind:
        """The data kind that wrote this set (components/datakinds)."""
        return datakinds.of_processed(self.manifest)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) of one split of a dataset without domains, readable images only
        (labels -1 where unlabelled)."""
        if self.data_kind.domains:
            raise DataError(
                f"a {self.kind} translation dataset: use Dataset.domain(name, split) "
                "or Dataset.pairs(split), not Dataset.split"
            )
        mask = ((self.meta["split"] == name) & self.meta["readable"]).to_numpy()
        return self.images[mask], self.meta["label"].to_numpy()[mask]

    def _select(self, name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(meta mask of domain `name`'s readable rows in `split`, their rows in its array)."""
        if not self.data_kind.domains:
            raise DataError(f"a {self.kind} dataset has no domains: use Dataset.split(name)")
        if name not in DOMAINS or split not in SPLITS:
            raise DataError(f"no domain {name!r} / split {split!r} (domains A, B; train, test)")
        in_domain = (self.meta["domain"] == name).to_numpy()
        keep = in_domain & (self.meta["split"] == split).to_numpy()
        keep &= self.meta["readable"].to_numpy(dtype=bool)
        rows = np.flatnonzero(keep if self.images is not None else keep[in_domain])
        return keep, rows

    def domain(self, name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(uint8 images (N, C, S, S), int labels (N,), -1 where unlabelled) of one domain
        ("A" | "B") and split ("train" | "test"), readable images only."""
        keep, rows = self._select(name, split)
        array = self.images if self.images is not None else self.domain_images[name]
        return np.asarray(array[rows]), self.meta["label"].to_numpy()[keep]

    def pairs(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(A images, B images, labels) of a paired dataset, aligned row by row (by pair id)."""
        if self.kind not in self.data_kind.aligned_kinds:
            raise DataError(f"a {self.kind} dataset has no pairs; Dataset.pairs needs paired data")
        a, labels = self.domain("A", split)
        b, _ = self.domain("B", split)
        pair = self.meta["pair"].to_numpy()
        a_ids, b_ids = pair[self._select("A", split)[0]], pair[self._select("B", split)[0]]
        _, ia, ib = np.intersect1d(a_ids, b_ids, assume_unique=True, return_indices=True)
        return a[ia], b[ib], labels[ia]

    def file(self, key: str) -> Path:
        """The path of one of the files a kind writes beside images.npy (its DataKind.files,
        by key)."""
        files = self.data_kind.files
        if key not in files:
            raise DataError(f"a {self.kind} dataset has no {key!r} file (it has: {sorted(files)})")
        if self.folder is None:
            raise DataError(f"this dataset was not read from a folder: no {key!r} file to load")
        return self.folder / files[key]

    @property
    def num_classes(self) -> int:
        """Classes a generator is conditioned on (0 for translation: labels are for evaluation)."""
        return len(self.manifest["class_names"]) if self.manifest["conditional"] else 0


def load_dataset(layout: Layout) -> Dataset:
    """Read what ingest wrote (numpy arrays only: no pickle)."""
    if not layout.manifest.is_file():
        raise DataError(f"{layout.processed}: no processed dataset; run `ganops stage ingest`")
    manifest = read_json(layout.manifest)
    meta = pd.read_csv(layout.meta, index_col="index", dtype={"domain": object})
    if "domain" not in meta:  # written before translation support
        meta["domain"], meta["pair"] = "", -1
    meta["domain"] = meta["domain"].fillna("").astype(str)  # "" reads back as NaN
    storage = manifest.get("storage", "images.npy")
    if isinstance(storage, dict):  # A and B differ in channels: one array per domain
        arrays = {
            d: np.load(layout.domain_images(d), mmap_mode="r", allow_pickle=False) for d in storage
        }
        return Dataset(None, meta, manifest, arrays, layout.processed)
    images = np.load(layout.processed / storage, mmap_mode="r", allow_pickle=False)
    return Dataset(images, meta, manifest, folder=layout.processed)
