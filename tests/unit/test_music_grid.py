"""Quantisation and window cutting of the scores kind against hand-made notes."""

from __future__ import annotations

import numpy as np

from components.datakinds.scores.grid import Grid, cut_windows, piece_roll, transposed

GRID = Grid(steps_per_beat=4, beats_per_bar=4, bars_per_window=1, hop_bars=1, pitch_low=48,
            pitch_high=72, tracks=2)  # fmt: skip


def piece(notes, n_parts=2):
    part, start, end, pitch = (np.array(c) for c in zip(*notes, strict=True))
    return {"part": part, "start": start.astype(float), "end": end.astype(float),
            "pitch": pitch, "n_parts": n_parts}  # fmt: skip


def test_notes_land_on_the_grid_highest_part_on_track_0():
    # part 0 low (bass), part 1 high: sorted by mean pitch, part 1 becomes track 0
    p = piece([(0, 0.0, 1.0, 48), (1, 0.5, 1.5, 60), (1, 1.5, 2.0, 62)])
    r, stats = piece_roll(p, GRID)
    assert r.shape == (2, 8, 24)
    assert r[1, 0:4, 0].all() and r[1].sum() == 4  # C3 for a beat = 4 steps, track 1
    assert r[0, 2:6, 12].all() and r[0, 6:8, 14].all() and r[0].sum() == 6
    assert stats == {"n_notes": 3, "n_lost_onsets": 0, "n_folded": 0}


def test_off_grid_and_colliding_onsets_are_counted_and_far_pitches_fold():
    p = piece([(0, 0.1, 1.0, 60), (0, 1.0, 2.0, 62), (0, 1.0, 1.5, 62), (0, 2.0, 3.0, 84)], 1)
    r, stats = piece_roll(p, GRID)
    # 0.1 beat = 0.4 steps off the grid: lost; the second note at 1.0 on pitch 62: lost
    assert stats["n_lost_onsets"] == 2
    assert stats["n_folded"] == 1  # C6 moved down by an octave to C5 (row 12)
    assert r[0, 8:12, 12].all()


def test_repeated_notes_stay_two_runs():
    p = piece([(0, 0.0, 1.0, 60), (0, 1.0, 2.0, 60)], 1)
    r, _ = piece_roll(p, GRID)
    assert r[0, :, 12].tolist() == [1, 1, 1, 0, 1, 1, 1, 1]


def test_windows_every_hop_bars_and_transposition_drops_edge_windows():
    p = piece([(0, 0.0, 4.0, 60), (0, 4.0, 8.0, 71), (0, 8.0, 9.0, 50)], 1)
    r, _ = piece_roll(p, GRID)
    w, starts = cut_windows(r, GRID)  # 9 beats: two whole bars
    assert starts.tolist() == [0, 16] and w.shape == (2, 2, 16, 24)
    up, kept = transposed(w, 1)
    assert kept.tolist() == [True, False]  # the B4 (row 23) would leave the range
    assert up[0, 0, 0, 13] == 1
