"""`ganops generate --prompt/--prompts` for a text-to-image model: k images per caption as PNGs,
with metadata.jsonl (one row {"file_name", "text", "seed"} per image), so the folder is an
imagefolder dataset ingest reads back (the captioned data kind)."""

from __future__ import annotations

import json
from pathlib import Path

from components.errors import GanopsError
from components.generate import Request, manifest_head, write_manifest
from components.layout import atomic_dir
from components.seeds import latent_seeds


def generate(model, model_uri: str, request: Request, out: Path) -> dict:
    import pandas as pd
    from PIL import Image

    if out.suffix == ".npz":
        raise GanopsError("--out: a text-to-image model writes a folder (an imagefolder dataset)")
    texts, k = request.texts, request.n
    seeds = latent_seeds(request.seed, len(texts) * k)
    rows = pd.DataFrame({"text": [t for t in texts for _ in range(k)], "seed": seeds})
    images = model.predict(rows, params={"truncation": request.truncation})  # (N, C, H, W) uint8
    with atomic_dir(out) as tmp:
        lines = []
        for i, (img, text, s) in enumerate(zip(images, rows["text"], seeds, strict=True)):
            name = f"{i // k:04d}-{i % k:02d}.png"
            pixels = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
            Image.fromarray(pixels).save(tmp / name)
            lines.append(json.dumps({"file_name": name, "text": text, "seed": int(s)}))
        (tmp / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    manifest = manifest_head(model, model_uri) | {
        "n_images": len(rows),
        "n_captions": len(texts),
        "per_caption": k,
        "seed": request.seed,
        "truncation": request.truncation,
    }
    write_manifest(out, manifest)
    return manifest
