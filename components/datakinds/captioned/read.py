"""What a captioned set's ingest wrote beside images.npy and meta.csv, read back for validate,
train and evaluate (numpy and pandas only: no pickle):

- `captions.npy`: int32 (M, L) word ids of every caption (0 = <pad>, 1 = <unk>), L =
  `max_words`; `captions.csv`: one row per caption, the same order: image (its row of
  images.npy), split (its image's), text, n_words (before truncation), truncated, n_oov.
- `vocab.json`: {"tokens": [...] (id -> word, from the train captions), "max_words": L}.
- `attributes.csv` (bundled sets that have them): one row per image, its attribute values
  (shape, colour, ...) and `heldout` (its combination is never in train).
- the manifest adds `layout`, `n_captions`, `vocab_size`, `max_words`, `n_truncated`,
  `test_oov_fraction` and, with attributes.csv, `attributes` = {name: [its values]} and
  `heldout` = [{name: value, ...}] (the value combinations held out of train).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from components.dataset import SPLITS, Dataset
from components.errors import DataError
from components.layout import read_json


@dataclass(frozen=True)
class Captions:
    """The captions, vocabulary and attributes of one captioned Dataset, each loaded once, on
    first use (`read(data)` makes one)."""

    data: Dataset

    @functools.cached_property
    def vocab(self) -> dict:
        """vocab.json: {"tokens": [...] (word of each id; 0 <pad>, 1 <unk>), "max_words": L}."""
        return read_json(self.data.file("vocab"))

    @functools.cached_property
    def table(self) -> pd.DataFrame:
        """captions.csv, every caption (one row each, the rows of captions.npy)."""
        table = pd.read_csv(
            self.data.file("captions"), dtype={"text": str}, keep_default_na=False, na_values=[]
        )
        return table.astype({"image": np.int64, "n_words": np.int64, "n_oov": np.int64})

    @functools.cached_property
    def tokens(self) -> np.ndarray:
        """captions.npy: int32 (M, L) word ids of every caption."""
        return np.load(self.data.file("tokens"), allow_pickle=False)

    def split(self, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(image rows (M,) into `images`, int32 word ids (M, L), texts) of the captions of one
        split's readable images, in caption order: images[rows[m]] is caption m's image."""
        if split not in SPLITS:
            raise DataError(f"no split {split!r} (train, test)")
        meta = self.data.meta
        readable = meta["readable"].to_numpy(dtype=bool)
        rows = self.table["image"].to_numpy()
        keep = (self.table["split"] == split).to_numpy() & readable[rows]
        return rows[keep], self.tokens[keep], self.table["text"][keep].tolist()

    def attributes(self, split: str | None = None, ids: bool = True) -> pd.DataFrame | None:
        """Per-image attributes of a set that has them (None when it has none): one column
        per attribute of manifest["attributes"] (name -> its values) as value ids (an index
        into those values: classifier targets), or the values themselves with ids=False, plus
        `heldout` (a combination never in train). Rows: every image (split None) or one
        split's readable images; index: their rows of `images`."""
        values = self.data.manifest.get("attributes")
        if values is None:
            return None
        table = pd.read_csv(self.data.file("attributes"), index_col="index", keep_default_na=False)
        if ids:
            table = table.assign(
                **{n: table[n].map({v: i for i, v in enumerate(vs)}) for n, vs in values.items()}
            )
        if split is None:
            return table
        meta = self.data.meta
        keep = (meta["split"] == split) & meta["readable"].astype(bool)
        return table[keep.to_numpy()]


def read(data: Dataset) -> Captions:
    """The captions of a captioned Dataset (keep the reader: each file loads once per reader)."""
    if "captions" not in data.data_kind.files:
        raise DataError(f"a {data.kind} dataset has no captions; this needs captioned data")
    return Captions(data)
