"""Notes -> a quantised multi-track piano roll -> fixed-length windows.

The roll of a piece is uint8 (tracks, steps, pitches): 1 where a note sounds. Grid rules:

- a note's onset and end are rounded to the nearest grid step (steps_per_beat per quarter
  note); a note shorter than a step keeps one step;
- an onset more than a quarter step off the grid, or one that lands on the same (track, step,
  pitch) as another note's, is an onset the grid loses (`onset_loss`, per piece);
- a binary roll cannot show a repeated note, so a note followed at once by the same pitch in
  its track ends one step early (when it is longer than a step): runs read back as notes;
- pitches outside [pitch_low, pitch_high) move by octaves into it (counted);
- parts -> tracks: parts sorted by mean pitch, highest first; with at most `tracks` parts,
  part i of n goes to track round(i * (tracks - 1) / (n - 1)) (a 3-part piece leaves an inner
  track empty), with more, consecutive parts share a track (np.array_split of the sorted
  parts: the extra middle voices merge).

Windows: `bars_per_window` bars of `beats_per_bar` quarter notes, every `hop_bars` bars from
the start (bar lines at multiples of the bar: parsers shift a pickup); a piece shorter than a
window gives none; windows with no note at all are counted and left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OFF_GRID = 0.25  # an onset further than this share of a step from the grid is lost


@dataclass(frozen=True)
class Grid:
    steps_per_beat: int
    beats_per_bar: int
    bars_per_window: int
    hop_bars: int
    pitch_low: int
    pitch_high: int
    tracks: int

    @classmethod
    def of(cls, cfg) -> Grid:
        return cls(*(getattr(cfg, k) for k in cls.__dataclass_fields__))

    @property
    def pitches(self) -> int:
        return self.pitch_high - self.pitch_low

    @property
    def steps_per_bar(self) -> int:
        return self.steps_per_beat * self.beats_per_bar

    @property
    def window_steps(self) -> int:
        return self.steps_per_bar * self.bars_per_window


def track_of_parts(part: np.ndarray, pitch: np.ndarray, n_parts: int, tracks: int) -> np.ndarray:
    """The track of each note, by the rule in the module docstring."""
    if n_parts == 0:
        return np.zeros(len(part), dtype=np.int64)
    means = np.array(
        [pitch[part == i].mean() if (part == i).any() else -1.0 for i in range(n_parts)]
    )
    order = np.argsort(-means, kind="stable")  # highest part first
    track = np.zeros(n_parts, dtype=np.int64)
    if n_parts <= tracks:
        for rank, i in enumerate(order):
            track[i] = round(rank * (tracks - 1) / max(n_parts - 1, 1))
    else:
        for t, group in enumerate(np.array_split(order, tracks)):
            track[group] = t
    return track[part]


def fold_pitch(pitch: np.ndarray, low: int, high: int) -> np.ndarray:
    """Pitches moved by octaves into [low, high)."""
    out = pitch.astype(np.int64).copy()
    while (below := out < low).any():
        out[below] += 12
    while (above := out >= high).any():
        out[above] -= 12
    return out


def piece_roll(piece: dict, grid: Grid) -> tuple[np.ndarray, dict]:
    """(uint8 (tracks, steps, pitches) roll, stats: n_notes, n_lost_onsets, n_folded)."""
    start = np.asarray(piece["start"], dtype=np.float64) * grid.steps_per_beat
    end = np.asarray(piece["end"], dtype=np.float64) * grid.steps_per_beat
    pitch = np.asarray(piece["pitch"], dtype=np.int64)
    part = np.asarray(piece["part"], dtype=np.int64)
    n = len(pitch)
    if n == 0:
        return np.zeros((grid.tracks, 0, grid.pitches), np.uint8), {
            "n_notes": 0, "n_lost_onsets": 0, "n_folded": 0,
        }  # fmt: skip
    on = np.rint(start).astype(np.int64).clip(0)
    off = np.maximum(np.rint(end).astype(np.int64), on + 1)
    off_grid = np.abs(start - np.rint(start)) > OFF_GRID
    track = track_of_parts(part, pitch, int(piece["n_parts"]), grid.tracks)
    folded = fold_pitch(pitch, grid.pitch_low, grid.pitch_high)
    row = folded - grid.pitch_low
    # same (track, onset, pitch) as an earlier note: one onset lost
    cell = (track * (on.max() + 2) + on) * grid.pitches + row
    _, first = np.unique(cell, return_index=True)
    collided = np.ones(n, dtype=bool)
    collided[first] = False
    # a note followed at once (or overlapped) by the same pitch in its track ends a step
    # before that next onset, so the two stay two runs of the roll
    order = np.lexsort((on, row, track))  # by track, pitch, onset
    same = (track[order][1:] == track[order][:-1]) & (row[order][1:] == row[order][:-1])
    next_on = np.full(n, np.iinfo(np.int64).max)
    next_on[order[:-1][same]] = on[order[1:][same]]
    off = np.where(next_on <= off, np.maximum(next_on - 1, on + 1), off)
    steps = int(off.max())
    roll = np.zeros((grid.tracks, steps, grid.pitches), np.uint8)
    for ti, a, b, ri in zip(track, on, off, row, strict=True):
        roll[ti, a:b, ri] = 1
    stats = {
        "n_notes": int(n),
        "n_lost_onsets": int((off_grid | collided).sum()),
        "n_folded": int((folded != pitch).sum()),
    }
    return roll, stats


def cut_windows(roll: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """(windows (k, tracks, window_steps, pitches), their start steps) of a piece's roll."""
    w, hop = grid.window_steps, grid.steps_per_bar * grid.hop_bars
    starts = np.arange(0, roll.shape[1] - w + 1, hop, dtype=np.int64)
    if not len(starts):
        return np.zeros((0, roll.shape[0], w, roll.shape[2]), np.uint8), starts
    windows = np.stack([roll[:, s : s + w] for s in starts])
    return windows, starts


def transposed(windows: np.ndarray, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows shifted by `shift` semitones; those that would lose a note at the edge of the
    pitch range are dropped (a boolean mask says which were kept)."""
    if shift == 0:
        return windows, np.ones(len(windows), dtype=bool)
    p = windows.shape[-1]
    edge = windows[..., p - shift :] if shift > 0 else windows[..., :-shift]
    keep = ~edge.reshape(len(windows), -1).any(axis=1)
    out = np.roll(windows[keep], shift, axis=-1)
    return out, keep
