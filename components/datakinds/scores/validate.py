"""The scores' GX rules, on one row per score file (pieces.csv) with the set's figures beside:

errors: every file parses (an unreadable file is named), every parsed piece has notes, at
least validate.min_pieces pieces and validate.min_images windows, pieces held out for test,
the share of empty windows, duplicate pieces; warnings (named, never failing the gate): a
piece whose grid loses more than validate.max_onset_loss of its onsets, pieces in another
metre than the grid's bar, pieces with more parts than ingest.tracks (merged), pitches folded
into the roll's range."""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.config import ValidateConfig
from components.datakinds.scores import FILES
from components.dataset import Dataset
from components.errors import DataError
from components.validate import Rule

FOLDED_WARNING = 0.05  # a piece with more of its notes moved by octaves into range is named


def pieces_table(data: Dataset) -> pd.DataFrame:
    if data.folder is None:
        raise DataError("this scores dataset was not read from a folder: no pieces.csv")
    return pd.read_csv(
        data.folder / FILES["pieces"],
        dtype={"error": str, "time_signatures": str, "file": str, "split": str},
        keep_default_na=False,
        na_values={"bar_beats": [""], "tempo": [""]},
    )


def summarize(data: Dataset) -> pd.DataFrame:
    """pieces.csv, plus duplicate_count (pieces with the same notes), and the set's figures on
    every row: readable pieces, windows, test pieces, the empty-window share."""
    table = pieces_table(data)
    m = data.manifest
    readable = table["readable"].astype(bool)
    hashes = table["notes_hash"].where(readable & (table["notes_hash"] != ""))
    table["duplicate_count"] = hashes.map(hashes.value_counts()).to_numpy(dtype=float)
    table["has_notes"] = np.where(readable, table["n_notes"] > 0, np.nan)
    table["set_pieces"] = int(readable.sum())
    table["set_windows"] = int(m["n_windows_untransposed"])
    table["set_test_pieces"] = int(m["n_test_pieces"])
    table["set_empty_window_fraction"] = float(m["empty_window_fraction"])
    grid = m["grid"]
    table["other_metre"] = np.where(
        readable & table["bar_beats"].notna(), table["bar_beats"] != grid["beats_per_bar"], np.nan
    )
    table["extra_parts"] = np.where(readable, table["n_parts"] > grid["tracks"], np.nan)
    table["onset_loss"] = table["onset_loss"].where(readable)
    table["folded_fraction"] = table["folded_fraction"].where(readable)
    return table


def suite(cfg: ValidateConfig, manifest: dict) -> list[Rule]:
    import great_expectations as gx

    if getattr(cfg, "min_pieces", None) is None:
        raise DataError(
            "validate.min_pieces: score data needs the music params (params-music.yaml)"
        )
    E = gx.expectations
    grid = manifest["grid"]
    unreadable = cfg.max_unreadable_fraction
    return [
        Rule(
            f"every score file parses (share unreadable <= validate.max_unreadable_fraction "
            f"{unreadable})",
            E.ExpectColumnValuesToBeInSet(
                column="readable", value_set=[True], mostly=1.0 - unreadable
            ),
        ),  # fmt: skip
        Rule(
            "every parsed piece has notes",
            E.ExpectColumnValuesToBeInSet(column="has_notes", value_set=[True]),
        ),
        Rule(
            f"readable pieces >= validate.min_pieces ({cfg.min_pieces})",
            E.ExpectColumnMaxToBeBetween(column="set_pieces", min_value=cfg.min_pieces),
        ),
        Rule(
            f"windows (before transposition) >= validate.min_images ({cfg.min_images})",
            E.ExpectColumnMaxToBeBetween(column="set_windows", min_value=cfg.min_images),
        ),
        Rule(
            "at least one piece held out for test (split by piece)",
            E.ExpectColumnMaxToBeBetween(column="set_test_pieces", min_value=1),
        ),
        Rule(
            f"share of empty windows <= validate.max_blank_fraction ({cfg.max_blank_fraction})",
            E.ExpectColumnMaxToBeBetween(
                column="set_empty_window_fraction", max_value=cfg.max_blank_fraction
            ),
        ),
        Rule(
            "duplicate pieces (the same notes) <= validate.max_duplicate_fraction "
            f"({cfg.max_duplicate_fraction})",
            E.ExpectColumnValuesToBeBetween(
                column="duplicate_count", max_value=1, mostly=1.0 - cfg.max_duplicate_fraction
            ),
        ),
        Rule(
            f"onsets lost on the grid per piece <= validate.max_onset_loss ({cfg.max_onset_loss})"
            f" (ingest.steps_per_beat {grid['steps_per_beat']})",
            E.ExpectColumnValuesToBeBetween(column="onset_loss", max_value=cfg.max_onset_loss),
            severity="warning",
        ),
        Rule(
            f"pieces in the grid's bar of {grid['beats_per_bar']} quarter notes (others are "
            "cut on that grid)",
            E.ExpectColumnValuesToBeInSet(column="other_metre", value_set=[False]),
            severity="warning",
        ),
        Rule(
            f"pieces with at most ingest.tracks ({grid['tracks']}) parts (extra parts merge)",
            E.ExpectColumnValuesToBeInSet(column="extra_parts", value_set=[False]),
            severity="warning",
        ),
        Rule(
            f"notes moved by octaves into the pitch range {grid['pitch_low']}.."
            f"{grid['pitch_high'] - 1} per piece <= {FOLDED_WARNING}",
            E.ExpectColumnValuesToBeBetween(column="folded_fraction", max_value=FOLDED_WARNING),
            severity="warning",
        ),
    ]
