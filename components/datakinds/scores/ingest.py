"""ingest of scores: parse every file (pool + cache), put each piece's notes on the grid, split
by piece, cut windows (train windows also transposed when ingest.transpose > 0) and write

- images.npy: uint8 (N, tracks, window steps, pitches), 1 where a note sounds;
- meta.csv: one row per window (piece, start step, transpose, split, notes, content hash);
- pieces.csv: one row per file (parsed or its error, parts, notes, onsets the grid lost,
  folded pitches, time signatures, tempo, windows, empty windows, split);
- preview.png: a few real windows as a piano roll, one colour per track;

and the manifest (the grid, counts, time signatures seen, median tempo)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pandas as pd

from components.config import IngestConfig
from components.datakinds.scores import FILES
from components.datakinds.scores.grid import Grid, cut_windows, piece_roll, transposed
from components.datakinds.scores.sources import BUNDLED_PACKAGE, ScoreSource, parse_all
from components.errors import DataError

PREVIEW_WINDOWS = 8
GRID_KEYS = ("steps_per_beat", "beats_per_bar", "bars_per_window", "hop_bars", "pitch_low",
             "pitch_high", "tracks", "transpose", "max_pieces")  # fmt: skip


def music_grid(cfg: IngestConfig) -> Grid:
    """The grid of ingest's music keys (params-music.yaml); one error line without them."""
    missing = [k for k in GRID_KEYS if getattr(cfg, k, None) is None]
    if missing:
        raise DataError(
            f"ingest.{missing[0]}: score data needs the music params (params-music.yaml)"
        )
    if cfg.classes:
        raise DataError(
            f"ingest.classes: {', '.join(cfg.classes)}: scores take their classes from "
            "sub-folders (one per style or composer); leave it []"
        )
    return Grid.of(cfg)


def split_pieces(readable: np.ndarray, test_fraction: float, seed: int,
                 labels: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """'train' / 'test' / '' (unreadable) per piece: a seeded test_fraction of the readable
    pieces (at least one when there are two or more) is held out, whole; per class when the
    pieces have classes."""
    split = np.where(readable, "train", "").astype(object)
    groups = np.zeros(len(readable), int) if labels is None else np.asarray(labels)
    for g in np.unique(groups):
        idx = np.flatnonzero(readable & (groups == g))
        rng = np.random.default_rng(seed)
        rng.shuffle(idx)
        n_test = int(round(len(idx) * test_fraction))
        n_test = max(n_test, 1) if len(idx) >= 2 else 0
        split[idx[:n_test]] = "test"
    return split


def _first_bar(sigs: list[str]) -> float:
    """Quarter notes per bar of a piece's first time signature (NaN without one)."""
    if not sigs:
        return float("nan")
    num, den = sigs[0].split("/")
    return int(num) * 4 / int(den)


def _notes_hash(piece: dict) -> str:
    h = hashlib.sha256()
    for k in ("start", "pitch"):
        h.update(np.ascontiguousarray(piece[k]).tobytes())
    return h.hexdigest()[:16]


def build(cfg: IngestConfig, source: ScoreSource, out_dir: Path) -> dict:
    grid = music_grid(cfg)
    files, names = source.files, source.names
    class_of = source.labels or [""] * len(files)
    if cfg.max_pieces:
        files, names, class_of = (x[: cfg.max_pieces] for x in (files, names, class_of))
    class_names = sorted(set(class_of)) if source.labels else []
    labels = np.array([class_names.index(c) if class_names else -1 for c in class_of], int)
    began = time.perf_counter()
    pieces = parse_all(files)
    print(f"ingest: parsed {len(files)} score files in {time.perf_counter() - began:.1f} s")
    readable = np.array([p["error"] is None for p in pieces], dtype=bool)
    split = split_pieces(readable, cfg.test_fraction, cfg.seed, labels if class_names else None)
    windows, meta_rows, piece_rows = [], [], []
    for i, (piece, name) in enumerate(zip(pieces, names, strict=True)):
        row = _piece_row(piece, name, split[i]) | {"class": class_of[i]}
        if readable[i]:
            roll, stats = piece_roll(piece, grid)
            cut, starts = cut_windows(roll, grid)
            kept = cut.reshape(len(cut), -1).any(axis=1)
            row.update(stats, n_windows=int(kept.sum()), n_empty_windows=int((~kept).sum()))
            row["onset_loss"] = stats["n_lost_onsets"] / max(stats["n_notes"], 1)
            row["folded_fraction"] = stats["n_folded"] / max(stats["n_notes"], 1)
            cut, starts = cut[kept], starts[kept]
            shifts = range(-cfg.transpose, cfg.transpose + 1) if split[i] == "train" else [0]
            for shift in shifts:
                moved, ok = transposed(cut, shift)
                windows.append(moved)
                for s, w in zip(starts[ok], moved, strict=True):
                    meta_rows.append(
                        (i, name, split[i], int(s), shift, int(w.sum()), int(labels[i]))
                    )
        piece_rows.append(row)
    shape = (grid.tracks, grid.window_steps, grid.pitches)
    rolls = np.concatenate(windows) if windows else np.zeros((0, *shape), np.uint8)
    meta = pd.DataFrame(
        meta_rows,
        columns=["piece", "file", "split", "start_step", "transpose", "n_cells", "label"],
    )
    meta["readable"] = True
    meta["hash"] = [hashlib.sha256(w.tobytes()).hexdigest()[:16] for w in rolls]
    table = pd.DataFrame(piece_rows)
    np.save(out_dir / "images.npy", rolls)
    meta.to_csv(out_dir / "meta.csv", index_label="index")
    table.to_csv(out_dir / FILES["pieces"], index=False)
    _preview(rolls, meta, grid, out_dir / FILES["preview"])
    digest = hashlib.sha256(repr((shape, grid)).encode())
    digest.update(rolls.tobytes())
    digest.update(meta.to_csv(index=False).encode())
    digest.update(table.drop(columns=["content_key"]).to_csv(index=False).encode())
    return _manifest(cfg, source, grid, meta, table, shape) | {
        "content_hash": digest.hexdigest(),
        "class_names": class_names,
        "conditional": bool(class_names),
    }


def _piece_row(piece: dict, name: str, split: str) -> dict:
    sigs = list(piece["time_signatures"])
    pitch = np.asarray(piece["pitch"])
    return {
        "file": name,
        "readable": piece["error"] is None,
        "error": piece["error"] or "",
        "split": split,
        "n_parts": int(piece["n_parts"]),
        "n_notes": int(len(pitch)),
        "n_lost_onsets": 0,
        "onset_loss": 0.0,
        "n_folded": 0,
        "folded_fraction": 0.0,
        "n_drum_notes": int(piece["n_drum_notes"]),
        "pitch_min": int(pitch.min()) if len(pitch) else -1,
        "pitch_max": int(pitch.max()) if len(pitch) else -1,
        "time_signatures": ";".join(sigs),
        "bar_beats": _first_bar(sigs),
        "tempo": piece["tempo"] if piece["tempo"] else float("nan"),
        "n_windows": 0,
        "n_empty_windows": 0,
        "notes_hash": _notes_hash(piece) if len(pitch) else "",
        "content_key": piece["content_key"],
    }


def _preview(rolls: np.ndarray, meta: pd.DataFrame, grid: Grid, path: Path) -> None:
    """A few untransposed train windows of different pieces, one colour per track."""
    from components.datakinds.scores.roll import png_bytes, render_rolls

    plain = meta[(meta["transpose"] == 0) & (meta["split"] == "train")]
    first = plain.drop_duplicates("piece").index.to_numpy()[:PREVIEW_WINDOWS]
    if len(first):
        path.write_bytes(png_bytes(render_rolls(rolls[first], grid.steps_per_bar)))


def _manifest(cfg, source, grid: Grid, meta: pd.DataFrame, table: pd.DataFrame, shape) -> dict:
    readable = table[table["readable"]]
    sigs = pd.Series(
        [s for v in readable["time_signatures"] for s in v.split(";") if s]
    ).value_counts()
    windows = int(readable["n_windows"].sum())
    empty = int(readable["n_empty_windows"].sum())
    return {
        "kind": "scores",
        "source": cfg.source,
        "source_kind": source.info.description,
        "layout": source.layout,
        "n_files": len(table),
        "n_pieces": len(readable),
        "n_unreadable": int((~table["readable"]).sum()),
        "n_train_pieces": int((table["split"] == "train").sum()),
        "n_test_pieces": int((table["split"] == "test").sum()),
        "shape": list(shape),
        "image_size": 0,
        "class_names": [],
        "conditional": False,
        "n_train": int((meta["split"] == "train").sum()),
        "n_test": int((meta["split"] == "test").sum()),
        "n_windows_untransposed": windows,
        "n_empty_windows": empty,
        "empty_window_fraction": empty / max(windows + empty, 1),
        "storage": "images.npy",
        "grid": {k: getattr(grid, k) for k in Grid.__dataclass_fields__},
        "time_signatures": {str(k): int(v) for k, v in sigs.items()},
        "tempo_median": float(readable["tempo"].median())
        if readable["tempo"].notna().any()
        else None,
        "onset_loss": float(readable["n_lost_onsets"].sum() / max(readable["n_notes"].sum(), 1)),
    }


# the ingest hooks (components/datakinds/base.py)


def bundled() -> dict:
    from components.datakinds.scores.sources import bach_chorales

    return {"bach_chorales": (lambda size: bach_chorales(), BUNDLED_PACKAGE)}


def detect(root: Path, folders: dict[str, Path]) -> str | None:
    from components.datakinds.scores.sources import has_scores

    return "scores" if has_scores(root) else None


def open(root: Path, layout: str, classes: list[str], label: str):  # noqa: A001
    from components.datakinds.scores.sources import open_folder

    return open_folder(root, label)
