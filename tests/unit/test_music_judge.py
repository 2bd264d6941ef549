"""bench/music_heldout.py `judge`, the independent judge of generated music (pretty_midi and
numpy only), on MIDI files made here: a tiny fake run folder, hand-computed statistics."""

from __future__ import annotations

import csv
import importlib.util
import json

import numpy as np
import pretty_midi
import pytest

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("music_heldout", ROOT / "bench" / "music_heldout.py")
mh = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mh)

HEADER = ["file", "readable", "error", "split", "n_parts", "n_notes", "tempo"]  # as ingest's
CHORDS = [[48, 64, 67, 72], [53, 65, 69, 72], [55, 62, 67, 71], [48, 64, 67, 76]]  # I IV V I


def write_midi(path, notes, tempo, tracks=4):
    """notes: (start beat, end beat, pitch); each note on a track where its pitch is free."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    insts = [pretty_midi.Instrument(0, name=f"track-{i}") for i in range(tracks)]
    sec = 60.0 / tempo
    for s, e, p in notes:
        free = [i for i in insts if all(n.pitch != p or n.end <= s * sec for n in i.notes)]
        free[0].notes.append(pretty_midi.Note(80, int(p), s * sec, e * sec))
    pm.instruments.extend(insts)
    pm.write(str(path))


def chorale(rng, bars=12):
    """Four voices on I-IV-V-I in C, half or quarter notes, voices moving together."""
    notes, t = [], 0.0
    while t < bars * 4:
        d = float(rng.choice([1.0, 2.0]))
        chord = CHORDS[int(t // 4) % 4]
        end = min(t + d, bars * 4.0)
        notes += [(t, end, p + int(rng.choice([0, 0, 2]))) for p in chord]
        t += d
    return notes


@pytest.fixture
def run(tmp_path, monkeypatch):
    """A run folder (data/processed: pieces.csv, manifest.json) over a source of 9 pieces."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(7)
    rows = []
    for i in range(9):
        name = f"sub/piece{i}.mid" if i == 8 else str(src / f"piece{i}.mid")  # relative too
        write_midi(src / name, chorale(rng), tempo=120.0)
        rows.append([name, True, "", "test" if i < 3 else "train", 4, 0, 120.0])
    (src / "broken.mid").write_bytes(b"not midi")
    rows.append([str(src / "broken.mid"), False, "bad file", "test", 0, 0, ""])
    out = tmp_path / "run" / "data" / "processed"
    out.mkdir(parents=True)
    with open(out / "pieces.csv", "w", newline="") as f:
        csv.writer(f).writerows([HEADER, *rows])
    (out / "manifest.json").write_text(json.dumps({"kind": "scores", "source": str(src)}))
    monkeypatch.chdir(tmp_path / "run")
    return tmp_path


def judge(gen, capsys):
    mh.judge(gen)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return {r["set"]: r for r in lines[:-1]}, lines[-1]


def test_statistics_of_one_window_by_hand():
    # C4 and E4 for a beat, G4 for two beats from beat 1, C5 for half a beat at beat 2
    w = np.array([(0, 1, 60), (0, 1, 64), (1, 3, 67), (2, 2.5, 72)], dtype=float)
    s = mh.stats([w])
    assert s["pitch_class"][[0, 4, 7]].tolist() == [0.5, 0.25, 0.25]  # C twice in 4 notes
    assert s["duration"].tolist() == [0, 0, 0.25, 0.5, 0.25, 0]  # 1/2, 1, 1 and 2 beats
    assert s["ioi"].tolist() == [0, 0, 0, 1, 0, 0]  # onsets 0, 1, 2: two IOIs of a beat
    # sounding: 2 notes in [0, 1), 1 in [1, 2), 2 in [2, 2.5), 1 in [2.5, 3) -> 54 / 36
    assert s["polyphony"] == pytest.approx(1.5)
    assert mh.tv(s["duration"], np.eye(6)[3]) == pytest.approx(0.5)


def test_beats_follow_each_files_tempo(tmp_path):
    for tempo in (60.0, 150.0):
        write_midi(tmp_path / "a.mid", [(2.0, 3.5, 60), (16.0, 18.0, 62)], tempo)
        notes = mh.read_notes(tmp_path / "a.mid")
        assert notes == pytest.approx(np.array([(2.0, 3.5, 60), (16.0, 18.0, 62)]), abs=1e-3)
        wins = mh.cut(notes)  # 16-beat windows, times relative to each
        assert len(wins) == 2 and wins[1][:, :2] == pytest.approx(np.array([[0.0, 2.0]]), abs=1e-3)


def test_controls_keep_what_they_say():
    rng = np.random.default_rng(0)
    wins = [np.array(chorale(rng, bars=4)) for _ in range(5)]
    shuffled = mh.shuffled_control(wins, np.random.default_rng(0))
    rand = mh.random_control(wins, np.random.default_rng(0))
    for w, s, r in zip(wins, shuffled, rand, strict=True):
        assert (s[:, :2] == w[:, :2]).all()  # times kept exactly
        assert len(r) == len(w) and r[:, 2].min() >= 48 and r[:, 2].max() <= 78
    assert (np.concatenate(shuffled)[:, 2] != np.concatenate(wins)[:, 2]).mean() > 0.5


def test_copies_of_the_test_pieces_score_zero_and_beat_both_controls(run, capsys):
    gen = run / "gen"
    gen.mkdir()
    for i, w in enumerate(mh.windows(mh.pieces("test"))):  # at another tempo than the source
        write_midi(gen / f"{i:03d}.mid", w, tempo=100.0)
    (gen / "preview.png").write_bytes(b"")  # not a .mid: ignored
    sets, last = judge(gen, capsys)
    assert mh.pieces("test")[0].parent.name == "src" and len(mh.pieces("train")) == 6
    g, floor = sets["generated"], sets["floor (train pieces)"]
    assert g["n_windows"] == 9 == last["reference"]["test_windows"]  # 3 pieces of 3 windows
    for key in ("pitch_class_tv", "duration_tv", "ioi_tv", "polyphony_gap"):
        assert g[key] == pytest.approx(0.0, abs=1e-4) and g[key] <= floor[key]
    assert sets["random control"]["pitch_class_tv"] > 0.2
    assert sets["shuffled control"]["pitch_class_tv"] > 0.2
    assert sets["shuffled control"]["rhythm"] == 0.0  # the real rhythm, by construction
    v = last["verdict"]
    assert v["pitch_class"] == {"beats_random": True, "beats_shuffled": True, "within_floor": True}
    assert v["rhythm"]["beats_random"] and v["rhythm"]["within_floor"]
    assert "shuffled" in last["note"]


def test_random_notes_are_told_apart_from_the_real_pieces(run, capsys):
    gen = run / "gen"
    gen.mkdir()
    rng = np.random.default_rng(1)
    for i in range(8):
        start, pitch = rng.uniform(0, 15, 30), rng.integers(40, 90, 30)
        notes = zip(start, start + rng.uniform(0.05, 1.0, 30), pitch, strict=True)
        write_midi(gen / f"{i}.mid", list(notes), tempo=120.0, tracks=30)
    sets, last = judge(gen, capsys)
    g, floor = sets["generated"], sets["floor (train pieces)"]
    assert g["pitch_class_tv"] > 2 * floor["pitch_class_tv"] and g["rhythm"] > 2 * floor["rhythm"]
    assert not any(v["within_floor"] for v in last["verdict"].values())
