"""The translation set's GX rules: image rules over all rows, size and channels per domain, no
train/test overlap, 2:1 paired files, and a same-domain warning."""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.config import ValidateConfig
from components.dataset import Dataset
from components.validate import Rule, pixel_std

SAME_DOMAIN_SHARE = 0.5  # warn when more than this share of A-train images is also in B-train


def summarize(data: Dataset) -> pd.DataFrame:
    """One row per image of an unpaired or paired set (a paired file gives an A and a B row):
    generate's columns plus domain, split, raw aspect (width / height of the file as it came),
    whether its content hash is in both train and test, and (A-train rows) in B-train."""
    meta = data.meta
    domain = meta["domain"].to_numpy()
    if data.images is not None:
        arrays = [data.images]
    else:  # meta holds A rows, then B rows: the per-domain arrays concatenate in that order
        arrays = [data.domain_images[d] for d in ("A", "B")]
    std = np.concatenate([pixel_std(a) for a in arrays])
    dims = np.concatenate([np.repeat([a.shape[1:]], len(a), axis=0) for a in arrays])  # (N, 3)
    readable = meta["readable"].to_numpy(dtype=bool)
    hashes = meta["hash"].where(readable)
    split = meta["split"].to_numpy()
    in_train, in_test = (
        set(hashes[split == "train"].dropna()),
        set(hashes[split == "test"].dropna()),
    )
    b_train = set(hashes[(split == "train") & (domain == "B")].dropna())
    per_domain = hashes.groupby(domain).transform(lambda h: h.map(h.value_counts()))
    return pd.DataFrame(
        {
            "file": meta["file"].to_numpy(),
            "domain": domain,
            "split": split,
            "readable": readable,
            **{
                k: np.where(readable, dims[:, i], np.nan)
                for i, k in enumerate(("channels", "height", "width"))
            },
            "pixel_min": meta["raw_min"].to_numpy(),
            "pixel_max": meta["raw_max"].to_numpy(),
            "pixel_std": np.where(readable, std, np.nan),
            "n_nonfinite": meta["n_nonfinite"].to_numpy(),
            "label": meta["label"].to_numpy(),
            "duplicate_count": per_domain.to_numpy(dtype=float),
            "raw_aspect": (meta["raw_width"] / meta["raw_height"]).to_numpy(),
            "in_train_and_test": hashes.map(lambda h: h in in_train and h in in_test).to_numpy(),
            "in_B_train": hashes.map(lambda h: h in b_train).to_numpy() & (domain == "A"),
        }
    )


def suite(cfg: ValidateConfig, manifest: dict) -> list[Rule]:
    """Unpaired / paired sets: image rules over all rows (the example file names its domain and
    split), size and channels per domain, no train/test overlap, 2:1 paired files, and a
    same-domain warning. Labels are for evaluation only: their set is checked, not their shares."""
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    E = gx.expectations
    size = manifest["image_size"]
    a_train = (Column("domain") == "A") & (Column("split") == "train")
    rules = [
        Rule(
            f"unreadable files <= validate.max_unreadable_fraction ({cfg.max_unreadable_fraction})",
            E.ExpectColumnValuesToBeInSet(
                column="readable", value_set=[True], mostly=1 - cfg.max_unreadable_fraction
            ),
        ),
        Rule(
            f"every image is {size} px high",
            E.ExpectColumnValuesToBeInSet(column="height", value_set=[size]),
        ),
        Rule(
            f"every image is {size} px wide",
            E.ExpectColumnValuesToBeInSet(column="width", value_set=[size]),
        ),
        Rule("pixel values >= 0", E.ExpectColumnValuesToBeBetween(column="pixel_min", min_value=0)),
        Rule(
            "pixel values <= 255",
            E.ExpectColumnValuesToBeBetween(column="pixel_max", max_value=255),
        ),
        Rule(
            "no NaN or inf pixels",
            E.ExpectColumnValuesToBeBetween(column="n_nonfinite", min_value=0, max_value=0),
        ),
        Rule(
            f"duplicate images within a domain <= validate.max_duplicate_fraction "
            f"({cfg.max_duplicate_fraction})",
            E.ExpectColumnValuesToBeBetween(
                column="duplicate_count", max_value=1, mostly=1 - cfg.max_duplicate_fraction
            ),
        ),
        Rule(
            f"blank images (pixel std < {cfg.min_pixel_std}) <= validate.max_blank_fraction "
            f"({cfg.max_blank_fraction})",
            E.ExpectColumnValuesToBeBetween(
                column="pixel_std", min_value=cfg.min_pixel_std, mostly=1 - cfg.max_blank_fraction
            ),
        ),
        Rule(
            "no image in both train and test (content hash)",
            E.ExpectColumnValuesToBeInSet(column="in_train_and_test", value_set=[False]),
        ),
    ]
    for name, domain in manifest["domains"].items():
        where = {"row_condition": Column("domain") == name}
        train = (Column("domain") == name) & (Column("split") == "train")
        train = train & (Column("readable") == True)  # noqa: E712 - a GX condition, not a test
        rules += [
            Rule(
                f"domain {name}: readable train images >= validate.min_images ({cfg.min_images})",
                E.ExpectTableRowCountToBeBetween(min_value=cfg.min_images, row_condition=train),
            ),
            Rule(
                f"domain {name}: every image has {domain['channels']} channel(s)",
                E.ExpectColumnValuesToBeInSet(
                    column="channels", value_set=[domain["channels"]], **where
                ),
            ),
        ]
        if domain["class_names"]:
            names = domain["class_names"]
            rules.append(
                Rule(
                    f"domain {name}: labels in 0..{len(names) - 1} ({', '.join(names)})",
                    E.ExpectColumnValuesToBeInSet(
                        column="label", value_set=list(range(len(names))), **where
                    ),
                )
            )
    if manifest["kind"] == "paired":
        rules.append(
            Rule(
                "every paired image is 2:1 (width = 2 x height: A left, B right)",
                E.ExpectColumnValuesToBeBetween(
                    column="raw_aspect",
                    min_value=2,
                    max_value=2,
                    row_condition=Column("domain") == "A",  # one row per file
                ),
            )
        )
    rules.append(
        Rule(
            f"A and B are different domains: <= {SAME_DOMAIN_SHARE:.0%} of A-train images "
            "also in B-train",
            E.ExpectColumnValuesToBeInSet(
                column="in_B_train",
                value_set=[False],
                mostly=1 - SAME_DOMAIN_SHARE,
                row_condition=a_train,
                severity="warning",
            ),
            severity="warning",
        )
    )
    return rules
