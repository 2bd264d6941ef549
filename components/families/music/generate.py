"""`ganops generate` for a music model: K windows as `.mid` files, a piano-roll `.png` and a
`.wav` preview each (roll.synthesize: pure numpy, offline), and `metadata.jsonl` (file_name,
seed, picture, audio; label for a conditional model, which draws every class in turn unless
--label names one), written as one folder; the manifest beside it names the version."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from components.errors import GanopsError
from components.generate import Request, manifest_head, plan_labels, write_manifest
from components.layout import atomic_dir
from components.seeds import latent_seeds


def generate(model, model_uri: str, request: Request, out: Path) -> dict:
    import pandas as pd

    from components.datakinds.scores.roll import (
        png_bytes,
        render_rolls,
        synthesize,
        wav_bytes,
    )

    n, seed = request.n, request.seed
    if out.suffix == ".npz":
        raise GanopsError("--out: a music model writes a folder (.mid, .png, .wav per window)")
    spec = model.metadata.metadata or {}
    names = list(spec.get("class_names") or [])
    # a conditional model draws every class in turn unless --label names one
    k = len(names)
    labels = plan_labels(n, k, request.label, request.balanced or (k > 0 and request.label is None))
    seeds = latent_seeds(seed, n)
    frame = {"seed": seeds} | ({"label": labels} if labels is not None else {})
    result = model.predict(pd.DataFrame(frame))
    with atomic_dir(out) as tmp:
        lines = []
        for i, (s, midi, roll) in enumerate(
            zip(result["seed"], result["midi"], result["roll"], strict=True)
        ):
            roll = np.asarray(roll, dtype=np.uint8)  # (tracks, T, P)
            stem = f"{i:04d}"
            (tmp / f"{stem}.mid").write_bytes(midi)
            picture = render_rolls(roll[None], int(spec["steps_per_bar"]), cols=1)
            (tmp / f"{stem}.png").write_bytes(png_bytes(picture))
            audio = synthesize(roll, int(spec["steps_per_beat"]), int(spec["pitch_low"]),
                               float(spec["tempo"]))  # fmt: skip
            (tmp / f"{stem}.wav").write_bytes(wav_bytes(audio))
            row = {"file_name": f"{stem}.mid", "seed": int(s), "picture": f"{stem}.png",
                   "audio": f"{stem}.wav"}  # fmt: skip
            if labels is not None:
                row["label"] = names[int(labels[i])]
            lines.append(json.dumps(row))
        (tmp / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    manifest = manifest_head(model, model_uri) | {
        "n_images": n,  # windows (the CLI's count)
        "unit": "MIDI windows",
        "n_midi": n,
        "seed": seed,
        "audio": "pure-numpy additive synthesiser (components/datakinds/scores/roll.py)",
    }
    write_manifest(out, manifest)
    return manifest
