"""A held-out corpus for the music family: another style than the chorales, as a folder of
MIDI files, run with only `--set ingest.source=` and `--set register.model_name=` on top of
params-music.yaml; then the generated MIDI judged against the held-out real pieces.

    python bench/music_heldout.py make DIR       # Monteverdi's 5-voice madrigals (music21's
                                                 # corpus) written as MIDI files into DIR
    ganops run --params params-music.yaml --set ingest.source=DIR \
        --set register.model_name=ganops-music-heldout
    ganops generate --model models:/ganops-music-heldout@champion -n 64 --out gen/
    python bench/music_heldout.py judge gen/     # in the project folder of that run

`judge` reads the generated .mid files back onto the run's grid and compares them with the
held-out real windows (the test pieces in data/processed), beside the real floor (train
windows) and the two controls (random rolls at the real density, real windows with shuffled
pitches): total variation distance of the pitch-class, duration and inter-onset histograms,
and the gap in polyphony. One JSON line per set.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def make(out: Path) -> None:
    from music21 import converter, corpus

    out.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in corpus.getComposer("monteverdi") if p.suffix == ".mxl")
    for path in files:
        score = converter.parse(str(path))
        score.write("midi", fp=str(out / f"{path.stem}.mid"))
    print(json.dumps({"pieces": len(files), "folder": str(out)}))


def judge(gen: Path) -> None:
    from components.datakinds.scores.roll import midi_to_roll
    from components.dataset import load_dataset
    from components.families.music import metrics as mm
    from components.families.music.evaluate import random_control, shuffled_control
    from components.layout import Layout

    data = load_dataset(Layout.here())
    grid = data.manifest["grid"]
    k, t, p = data.manifest["shape"]
    split = data.meta["split"].to_numpy()
    plain = (data.meta["transpose"] == 0).to_numpy()
    test = np.asarray(data.images[np.flatnonzero(split == "test")])
    train = np.asarray(data.images[np.flatnonzero((split == "train") & plain)])
    rolls = [
        midi_to_roll(
            f.read_bytes(), k, t, grid["steps_per_beat"], grid["pitch_low"], grid["pitch_high"]
        )  # fmt: skip
        for f in sorted(gen.glob("*.mid"))
    ]
    rng = np.random.default_rng(0)
    n = min(len(test), 500)
    sets = {
        "generated": np.stack(rolls),
        "floor (train windows)": train[rng.choice(len(train), min(n, len(train)), replace=False)],
        "random control": random_control(test, rng),
        "shuffled control": shuffled_control(test, rng),
    }
    low = grid["pitch_low"]
    ref = {
        "pc": mm.pitch_class_histogram(test, low),
        "dur": mm.duration_histogram(test),
        "ioi": mm.ioi_histogram(test),
        "poly": mm.polyphony(test),
    }
    for name, rolls in sets.items():
        row = {
            "set": name,
            "n": len(rolls),
            "pitch_class_tv": mm.tv_distance(mm.pitch_class_histogram(rolls, low), ref["pc"]),
            "duration_tv": mm.tv_distance(mm.duration_histogram(rolls), ref["dur"]),
            "ioi_tv": mm.tv_distance(mm.ioi_histogram(rolls), ref["ioi"]),
            "polyphony_gap": abs(mm.polyphony(rolls) - ref["poly"]),
        }
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}))


if __name__ == "__main__":
    {"make": make, "judge": judge}[sys.argv[1]](Path(sys.argv[2]))
