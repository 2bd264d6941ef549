"""A held-out corpus for the music family: another style than the chorales, as a folder of
MIDI files, run with only `--set ingest.source=` and `--set register.model_name=` on top of
params-music.yaml; then the generated MIDI judged against the held-out real pieces.

    python bench/music_heldout.py make DIR       # Monteverdi's 5-voice madrigals (music21's
                                                 # corpus) written as MIDI files into DIR
    ganops run --params params-music.yaml --set ingest.source=DIR \
        --set register.model_name=ganops-music-heldout
    ganops generate --model models:/ganops-music-heldout@champion -n 64 --out gen/
    python bench/music_heldout.py judge gen/     # in the project folder of that run

`judge` is independent of the project: pretty_midi and numpy only, never `components.*`. It
reads the real pieces straight from the ingested folder (manifest.json `source`; the split in
pieces.csv): the test pieces are the reference, a sample of train pieces the floor (as many
pieces as the test has, then as many windows as were generated). Times are in beats (quarter
notes) through each file's own tempo map (pretty_midi's seconds, integrated over
get_tempo_changes()). Real pieces are cut into 16-beat (4-bar) windows, hop 16, notes that
overlap a window clipped to it; each generated file is such a window. Statistics, pooled over
windows: pitch-class histogram (12 bins, one count per note), polyphony (mean count of
sounding notes on a 1/12-beat grid, over the samples where any sounds) and the histogram of
that count (0, 1, ..., 8+; silence included: `voices_tv`), note-duration and
inter-onset-interval histograms (IOI between the distinct onsets of all tracks merged), both
in bins centred on 1/8, 1/4, 1/2, 1, 2 and 4+ beats. Distances to the reference: total
variation for histograms, the absolute gap for polyphony; rhythm = mean of duration and IOI.
Controls, from the test windows (numpy default_rng(0)): random (the window's note count, onsets
on a 1/4-beat grid, each note the window's mean duration, pitches uniform in the real range)
and shuffled (the window's notes kept in time, their pitches mapped through a random
permutation of the real pitch range: rhythm and polyphony kept exactly, pitch content gone;
swapping pitches among the window's own notes would keep its pitch-class histogram). One JSON
line per set, then a `verdict` line: per family, generated closer than each control, and
within the floor.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

WINDOW = 16.0  # beats: 4 bars of 4/4, the length of a generated window
SAMPLES = 12  # polyphony samples per beat
MAX_VOICES = 8  # the histogram of notes sounding at once: 0, 1, ..., 8 or more
BINS = np.array([0.0, *2.0 ** np.arange(-2.5, 2.0), np.inf])  # centred on 1/8 .. 2, then 4+
MIDI = {".mid", ".midi"}


def make(out: Path) -> None:
    from music21 import converter, corpus

    out.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in corpus.getComposer("monteverdi") if p.suffix == ".mxl")
    for path in files:
        score = converter.parse(str(path))
        score.write("midi", fp=str(out / f"{path.stem}.mid"))
    print(json.dumps({"pieces": len(files), "folder": str(out)}))


def read_notes(path: Path) -> np.ndarray:
    """(n, 3) start beat, end beat, pitch of every non-drum note of a MIDI file."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    notes = [(n.start, n.end, n.pitch) for i in pm.instruments if not i.is_drum for n in i.notes]
    a = np.array(notes, dtype=np.float64).reshape(-1, 3)
    times, tempi = pm.get_tempo_changes()  # the first change is at 0 s
    knots = np.append(times, max(times[-1], a[:, 1].max(initial=0.0)) + 1.0)
    beats = np.concatenate([[0.0], np.cumsum(np.diff(knots) * tempi / 60.0)])
    a[:, :2] = np.interp(a[:, :2], knots, beats)
    return a[a[:, 1] > a[:, 0]]


def cut(notes: np.ndarray) -> list[np.ndarray]:
    """The non-empty WINDOW-beat windows of a piece, times relative to the window start."""
    out = []
    for w0 in np.arange(0.0, notes[:, 1].max(initial=0.0), WINDOW):
        w = notes[(notes[:, 0] < w0 + WINDOW) & (notes[:, 1] > w0)].copy()
        w[:, :2] = np.clip(w[:, :2] - w0, 0.0, WINDOW)
        if len(w):
            out.append(w)
    return out


def windows(files: list[Path]) -> list[np.ndarray]:
    return [w for f in files for w in cut(read_notes(f))]


def histogram(values: np.ndarray, bins: np.ndarray = BINS) -> np.ndarray:
    h = np.histogram(values, bins)[0].astype(np.float64)
    return h / max(h.sum(), 1.0)


def stats(wins: list[np.ndarray]) -> dict:
    notes = np.concatenate(wins)
    t = (np.arange(int(WINDOW * SAMPLES)) + 0.5) / SAMPLES
    sounding = np.concatenate([((w[:, :1] <= t) & (t < w[:, 1:2])).sum(0) for w in wins])
    iois = [np.diff(np.unique(np.round(w[:, 0], 3))) for w in wins]
    return {
        "pitch_class": np.bincount(notes[:, 2].astype(int) % 12, minlength=12) / len(notes),
        "duration": histogram(notes[:, 1] - notes[:, 0]),
        "ioi": histogram(np.concatenate(iois)),
        "polyphony": float(sounding[sounding > 0].mean()) if sounding.any() else 0.0,
        "voices": np.bincount(np.minimum(sounding, MAX_VOICES), minlength=MAX_VOICES + 1)
        / max(len(sounding), 1),
    }


def tv(a: np.ndarray, b: np.ndarray) -> float:
    return float(0.5 * np.abs(a - b).sum())


def pitch_range(wins: list[np.ndarray]) -> tuple[int, int]:
    pitch = np.concatenate(wins)[:, 2]
    return int(pitch.min()), int(pitch.max())


def random_control(wins: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    lo, hi = pitch_range(wins)
    out = []
    for w in wins:
        n, dur = len(w), float((w[:, 1] - w[:, 0]).mean())
        start = rng.integers(0, int(WINDOW * 4), n) / 4.0
        out.append(
            np.column_stack([start, np.minimum(start + dur, WINDOW), rng.integers(lo, hi + 1, n)])
        )
    return out


def shuffled_control(wins: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    lo, hi = pitch_range(wins)
    out = []
    for w in wins:
        s = w.copy()
        s[:, 2] = rng.permutation(np.arange(lo, hi + 1))[w[:, 2].astype(int) - lo]
        out.append(s)
    return out


def pieces(split: str) -> list[Path]:
    """The readable MIDI files of one split, from the ingested source folder."""
    source = Path(json.loads(Path("data/processed/manifest.json").read_text())["source"])
    with open("data/processed/pieces.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split and r["readable"] == "True"]
    files = [source / r["file"] for r in rows]  # an absolute name stays as it is
    return [p for p in files if p.suffix.lower() in MIDI]


def judge(gen: Path) -> None:
    rng = np.random.default_rng(0)
    test_files, train_files = pieces("test"), pieces("train")
    generated = windows(sorted(gen.glob("*.mid")))
    if not test_files or not generated:
        sys.exit(f"judge: {len(test_files)} test MIDI pieces, {len(generated)} generated windows")
    test = windows(test_files)
    pick = rng.choice(len(train_files), min(len(train_files), len(test_files)), replace=False)
    floor = windows([train_files[i] for i in sorted(pick)])
    if len(floor) > len(generated):  # the floor at the generated set's size
        floor = [floor[i] for i in sorted(rng.choice(len(floor), len(generated), replace=False))]
    sets = {
        "generated": generated,
        "floor (train pieces)": floor,
        "random control": random_control(test, rng),
        "shuffled control": shuffled_control(test, rng),
    }
    ref = stats(test)
    rows = {}
    for name, wins in sets.items():
        s = stats(wins)
        d = {k: tv(s[k], ref[k]) for k in ("pitch_class", "duration", "ioi", "voices")}
        rows[name] = {
            "set": name,
            "n_windows": len(wins),
            "pitch_class_tv": d["pitch_class"],
            "duration_tv": d["duration"],
            "ioi_tv": d["ioi"],
            "rhythm": (d["duration"] + d["ioi"]) / 2,
            "polyphony": s["polyphony"],
            "polyphony_gap": abs(s["polyphony"] - ref["polyphony"]),
            "voices_tv": d["voices"],
        }
        shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in rows[name].items()}
        print(json.dumps(shown))
    g, f = rows["generated"], rows["floor (train pieces)"]
    r, s = rows["random control"], rows["shuffled control"]
    keys = {"pitch_class": "pitch_class_tv", "polyphony": "polyphony_gap",
            "voices_at_once": "voices_tv", "rhythm": "rhythm"}  # fmt: skip
    verdict = {
        family: {
            "beats_random": g[k] < r[k],
            "beats_shuffled": g[k] < s[k],
            "within_floor": g[k] <= f[k],
        }
        for family, k in keys.items()
    }
    note = (
        "the shuffled control keeps the real notes' times, so its rhythm and polyphony "
        "distances are 0 by construction: there only the random control is a meaningful "
        "bar (reported anyway); the random control keeps each window's note count and mean "
        "duration, so its mean polyphony is near the real one too: read the mean against the "
        "floor, and voices_at_once (the distribution of notes sounding at once, silence "
        "included) against the random control"
    )
    reference = {
        "test_pieces": len(test_files),
        "test_windows": len(test),
        "polyphony": round(ref["polyphony"], 4),
    }
    print(json.dumps({"verdict": verdict, "reference": reference, "note": note}))


if __name__ == "__main__":
    {"make": make, "judge": judge}[sys.argv[1]](Path(sys.argv[2]))
