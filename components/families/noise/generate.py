"""`ganops generate` for a noise -> image generator: an image folder (class sub-folders named
like the training classes) or an .npz with `images` and `labels`; either is an `ingest.source`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.generate import Request, manifest_head, plan_labels, write_manifest
from components.layout import atomic_dir, write_json
from components.seeds import latent_seeds


def generate(model, model_uri: str, request: Request, out: Path) -> dict:
    import pandas as pd
    from PIL import Image

    spec = model.metadata.metadata or {}  # written by register: num_classes, class_names
    num_classes = int(spec.get("num_classes", 0))
    names = spec.get("class_names") or [str(i) for i in range(num_classes)]
    n, label, balanced = request.n, request.label, request.balanced
    labels = plan_labels(n, num_classes, label, balanced)
    frame = {"seed": latent_seeds(request.seed, n)}  # the same latents evaluate draws
    if labels is not None:
        frame["label"] = labels
    images = model.predict(pd.DataFrame(frame), params={"truncation": request.truncation})
    # images: uint8 (N, C, H, W)
    manifest = manifest_head(model, model_uri) | {
        "n_images": n,
        "seed": request.seed,
        "truncation": request.truncation,
        "class_names": names,
        "labels": "balanced" if balanced else label,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npz":
        tmp = out.with_name(f".{out.name}.tmp.npz")
        arrays = {"images": images} | ({"labels": labels} if labels is not None else {})
        np.savez(tmp, **arrays)
        tmp.replace(out)
        write_json(out.with_suffix(".manifest.json"), manifest)
        return manifest
    with atomic_dir(out) as tmp:
        for i, img in enumerate(images):
            folder = tmp / names[labels[i]] if labels is not None else tmp
            folder.mkdir(exist_ok=True)
            pixels = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
            Image.fromarray(pixels).save(folder / f"{i:06d}.png")
    write_manifest(out, manifest)
    return manifest
