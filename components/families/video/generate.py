"""`ganops generate` for a video model: each clip as an animated GIF (`000000.gif`, exact for
gray clips; colour GIFs are palette-quantised) and a frame strip (`000000.strip.png`), plus
`metadata.jsonl` (`file_name`, `seed`, `label`): the folder is a clip dataset ingest reads back
(the strips are listed as ignored there)."""

from __future__ import annotations

import json
from pathlib import Path

from components.errors import GanopsError
from components.generate import Request, manifest_head, plan_labels, write_manifest
from components.layout import atomic_dir
from components.seeds import latent_seeds


def generate(model, model_uri: str, request: Request, out: Path) -> dict:
    import pandas as pd

    from components.families.video.clipfiles import save_gif, save_strip

    if out.suffix == ".npz":
        raise GanopsError("--out: a video model writes a folder of GIFs (a clip dataset)")
    spec = model.metadata.metadata or {}
    n, label = request.n, request.label
    k = int(spec.get("num_classes", 0))
    names = spec.get("class_names") or [str(i) for i in range(k)]
    # a conditional video model draws every class in turn unless --label names one
    labels = plan_labels(n, k, label, request.balanced or (k > 0 and label is None))
    seeds = latent_seeds(request.seed, n)
    frame = {"seed": seeds} | ({"label": labels} if labels is not None else {})
    clips = model.predict(pd.DataFrame(frame))  # uint8 (N, T, C, S, S)
    with atomic_dir(out) as tmp:
        lines = []
        for i, clip in enumerate(clips):
            name = f"{i:06d}.gif"
            save_gif(clip[None], tmp / name)
            save_strip(clip[None], tmp / f"{i:06d}.strip.png")
            row = {"file_name": name, "seed": int(seeds[i])}
            row["label"] = names[int(labels[i])] if labels is not None else None
            lines.append(json.dumps(row))
        (tmp / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    manifest = (
        manifest_head(model, model_uri)
        | {
            "n_images": n,  # clips (the CLI's count)
            "unit": "clips",
            "n_clips": n,
            "clip_shape": list(clips.shape[1:]),
            "seed": request.seed,
            "class_names": names,
            "labels": label if label is not None else ("balanced" if k else None),
        }
    )
    write_manifest(out, manifest)
    return manifest
