"""The music family's metrics against values worked out by hand on constructed rolls."""

from __future__ import annotations

import numpy as np
import pytest

from components.families.music import metrics as mm

LOW = 48  # roll row 0 is C3 (MIDI 48): row r is pitch class r mod 12
SPB = 4  # steps per bar in these rolls


def roll(tracks=2, steps=8, pitches=24) -> np.ndarray:
    return np.zeros((1, tracks, steps, pitches), np.uint8)


def test_empty_bar_rate_counts_the_empty_bars():
    r = roll()  # two bars of 4 steps per track
    r[0, 0, 0:2, 0] = 1  # track 0: bar 0 sounds, bar 1 empty
    # track 1: both bars empty
    np.testing.assert_allclose(mm.empty_bar_rate(r, SPB), [0.5, 1.0])


def test_used_pitch_classes_fold_octaves():
    r = roll()
    r[0, 0, 0, 0] = r[0, 0, 1, 12] = 1  # bar 0: C3 and C4, one pitch class
    r[0, 0, 4, 0] = r[0, 0, 5, 7] = r[0, 0, 6, 4] = 1  # bar 1: C, G, E: three
    upc = mm.used_pitch_classes(r, SPB, LOW)
    assert upc[0] == pytest.approx(2.0)  # (1 + 3) / 2 non-empty bars
    assert np.isnan(upc[1])  # no bar sounds: undefined, not 0


def test_chroma_folds_by_octave_not_by_seven_semitones():
    m = mm.chroma_matrix(24, LOW)
    assert m[0].argmax() == m[12].argmax() == 0  # C3, C4 -> C
    assert m[7].argmax() == 7  # G stays G (musegan#141 folded 7 adjacent semitones)


def test_qualified_notes_and_note_table():
    r = roll(tracks=1)
    r[0, 0, 0:1, 3] = 1  # a 1-step note
    r[0, 0, 2:5, 3] = 1  # a 3-step note, same pitch, after a gap
    r[0, 0, 0:2, 5] = 1  # a 2-step note
    notes = mm.note_table(r)
    assert sorted(notes["duration"].tolist()) == [1, 2, 3]
    assert mm.qualified_note_rate(r, 2)[0] == pytest.approx(2 / 3)


def test_polyphony_rate_and_polyphony():
    r = roll()
    r[0, 0, 0:2, [0, 4, 7]] = 1  # track 0: a 3-note chord for 2 steps
    r[0, 0, 2:4, 0] = 1  # then one note for 2 steps
    r[0, 1, 0:4, 12] = 1  # track 1: one note for 4 steps
    assert mm.polyphony_rate(r)[0] == pytest.approx(0.5)  # 2 of its 4 sounding steps
    assert mm.polyphony_rate(r)[1] == 0.0
    # all tracks: steps 0-1 sound 4 pitches, steps 2-3 sound 2: mean 3
    assert mm.polyphony(r) == pytest.approx(3.0)


def test_tonal_distance_zero_for_the_same_chord_and_positive_for_a_tritone():
    r = roll()
    r[0, 0, 0:4, [0, 4, 7]] = 1  # bar 0: C major in both tracks
    r[0, 1, 0:4, [12, 16, 19]] = 1
    td = mm.tonal_distance(r, SPB, LOW)
    assert td[0, 1] == pytest.approx(0.0, abs=1e-12)
    r2 = roll()
    r2[0, 0, 0:4, 0] = 1  # C
    r2[0, 1, 0:4, 6] = 1  # F#: a tritone
    centroid = mm.tonal_matrix()
    expected = np.linalg.norm(centroid[:, 0] - centroid[:, 6])
    assert mm.tonal_distance(r2, SPB, LOW)[0, 1] == pytest.approx(expected)
    assert expected > 1.0


def test_key_finding_and_in_key_rate():
    r = roll(tracks=1, steps=8)
    for step, row in enumerate([0, 4, 7, 12, 2, 5, 9, 11]):  # a C major scale-ish line
        r[0, 0, step, row] = 1
    tonic, minor = mm.find_keys(r, LOW)
    assert (tonic[0], bool(minor[0])) == (0, False)
    assert mm.in_key_rate(r, LOW)[0] == 1.0
    r[0, 0, 0, 1] = 1  # add a C#: 1 of 9 cells out of C major
    assert mm.in_key_rate(r, LOW)[0] == pytest.approx(8 / 9)


def test_histograms_and_tv_distance():
    r = roll(tracks=1, steps=8)
    r[0, 0, 0:2, 0] = 1  # onsets at 0 and 4: IOI 4; durations 2 and 4
    r[0, 0, 4:8, 7] = 1
    d = mm.duration_histogram(r)
    assert d[1] == 0.5 and d[3] == 0.5  # bins: 1 step at index 0
    assert mm.ioi_histogram(r)[3] == 1.0
    pc = mm.pitch_class_histogram(r, LOW)
    assert pc[0] == pytest.approx(2 / 6) and pc[7] == pytest.approx(4 / 6)
    assert mm.tv_distance([1, 0], [0, 1]) == 1.0 and mm.tv_distance(pc, pc) == 0.0


def test_range_violation():
    r = roll(tracks=1)
    r[0, 0, 0, 2] = r[0, 0, 2, 10] = r[0, 0, 4, 20] = 1
    ranges = np.array([[5.0, 15.0]])
    assert mm.range_violation(r, ranges)[0] == pytest.approx(2 / 3)
