"""The captioned set's GX rules: the image rules of an unlabelled image set (size, unreadable
files, shape, pixel range, blank and duplicate images; no class rules: captions are not
classes), and the captions': every image has a caption with words, caption lengths within
validate's bounds, and test captions in the train vocabulary."""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.config import ValidateConfig
from components.datakinds.captioned import test_oov_fraction
from components.datakinds.captioned.read import read
from components.datakinds.images.validate import suite as image_rules
from components.dataset import Dataset
from components.errors import DataError
from components.validate import Rule

CAPTION_KEYS = ("min_caption_words", "max_caption_words", "max_test_oov_fraction")


def summarize(data: Dataset) -> pd.DataFrame:
    """One row per image: the image set's columns, plus split, its captions with words
    (n_captions), the fewest and most words of its captions (NaN without captions), and the
    set's test-caption OOV share (the same on every row: one number for the whole set)."""
    from components.validate import summarize as per_image

    table = per_image(data.images, data.meta)
    captions = read(data).table
    rows = pd.RangeIndex(len(table))
    words = captions.groupby("image")["n_words"]
    with_words = captions[captions["n_words"] > 0].groupby("image").size()
    table["split"] = data.meta["split"].to_numpy()
    table["n_captions"] = with_words.reindex(rows, fill_value=0).to_numpy()
    table["min_words"] = words.min().reindex(rows).to_numpy(dtype=float)
    table["max_words"] = words.max().reindex(rows).to_numpy(dtype=float)
    table["test_oov_fraction"] = np.full(len(table), test_oov_fraction(captions))
    return table


def suite(cfg: ValidateConfig, manifest: dict) -> list[Rule]:
    """The image rules (no class rules), then the caption rules from the text-to-image keys."""
    import great_expectations as gx

    missing = [k for k in CAPTION_KEYS if getattr(cfg, k, None) is None]
    if missing:
        raise DataError(
            f"validate.{missing[0]}: captioned data needs the text-to-image params "
            "(params-text2image.yaml)"
        )
    E = gx.expectations
    least, most = cfg.min_caption_words, cfg.max_caption_words
    return [
        *image_rules(cfg, {**manifest, "conditional": False}),
        Rule(
            "every image has a caption with words",
            E.ExpectColumnValuesToBeBetween(column="n_captions", min_value=1),
        ),
        Rule(
            f"every caption has >= validate.min_caption_words ({least}) words",
            E.ExpectColumnValuesToBeBetween(column="min_words", min_value=least),
        ),
        Rule(
            f"every caption has <= validate.max_caption_words ({most}) words",
            E.ExpectColumnValuesToBeBetween(column="max_words", max_value=most),
        ),
        Rule(
            "test-caption words outside the train vocabulary <= "
            f"validate.max_test_oov_fraction ({cfg.max_test_oov_fraction})",
            E.ExpectColumnMaxToBeBetween(
                column="test_oov_fraction", max_value=cfg.max_test_oov_fraction
            ),
        ),
    ]
