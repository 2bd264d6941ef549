"""`ganops generate`: a synthetic dataset from a registered generator, for data augmentation.

Writes an image folder (class sub-folders named like the training classes) or an .npz with
`images` and `labels`, plus a manifest naming the model version. The output is itself a valid
`ingest.source`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.errors import GanopsError
from components.layout import atomic_dir, write_json
from components.seeds import latent_seeds


def plan_labels(n: int, num_classes: int, label: int | None, balanced: bool) -> np.ndarray | None:
    """The label of each image to make: one class, an equal share of each, or None if
    the generator is unconditional."""
    if not num_classes:
        if label is not None or balanced:
            raise GanopsError("this generator is unconditional: drop --label/--balanced")
        return None
    if label is not None:
        if not 0 <= label < num_classes:
            raise GanopsError(f"--label {label}: out of range 0..{num_classes - 1}")
        return np.full(n, label, dtype=np.int64)
    if not balanced:
        raise GanopsError("conditional generator: pass --label L or --balanced")
    return np.arange(n, dtype=np.int64) % num_classes


def resolve_version(model_uri: str) -> str | None:
    """'name/version' for a models:/ URI (by alias or by version), else None."""
    from mlflow import MlflowClient

    if not model_uri.startswith("models:/"):
        return None
    ref = model_uri.removeprefix("models:/")
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return f"{name}/{MlflowClient().get_model_version_by_alias(name, alias).version}"
    return ref


def read_prompts(prompt: list[str] | None, prompts: Path | None) -> list[str] | None:
    """The captions of --prompt (repeatable) and --prompts FILE (one per line, in order; blank
    lines skipped), or None when neither is given."""
    texts = list(prompt or [])
    if prompts is not None:
        try:
            lines = prompts.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise GanopsError(
                f"--prompts {prompts}: cannot be read ({err.__class__.__name__})"
            ) from None
        texts += [line.strip() for line in lines if line.strip()]
        if not texts:
            raise GanopsError(f"--prompts {prompts}: no captions in it")
    if any(not t.strip() for t in texts):
        raise GanopsError("--prompt: an empty caption; give some words")
    return texts or None


def takes_text(model) -> bool:
    """Whether a loaded pyfunc is drawn from captions (its signature has a `text` input)."""
    schema = model.metadata.get_input_schema()
    return schema is not None and "text" in schema.input_names()


def generate_captioned(model, model_uri: str, texts: list[str], k: int, out: Path, seed: int,
                       truncation: float) -> dict:  # fmt: skip
    """k images per caption as PNGs in `out`, with out/metadata.jsonl: one row
    {"file_name", "text", "seed"} per image, so `out` is an imagefolder ingest reads back."""
    import json

    import pandas as pd
    from PIL import Image

    if out.suffix == ".npz":
        raise GanopsError("--out: a text-to-image model writes a folder (an imagefolder dataset)")
    seeds = latent_seeds(seed, len(texts) * k)
    rows = pd.DataFrame({"text": [t for t in texts for _ in range(k)], "seed": seeds})
    images = model.predict(rows, params={"truncation": truncation})  # (N, C, H, W) uint8
    with atomic_dir(out) as tmp:
        lines = []
        for i, (img, text, s) in enumerate(zip(images, rows["text"], seeds, strict=True)):
            name = f"{i // k:04d}-{i % k:02d}.png"
            pixels = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
            Image.fromarray(pixels).save(tmp / name)
            lines.append(json.dumps({"file_name": name, "text": text, "seed": int(s)}))
        (tmp / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    manifest = {
        "model_uri": model_uri,
        "model_version": resolve_version(model_uri),
        "model_run_id": model.metadata.run_id,
        "n_images": len(rows),
        "n_captions": len(texts),
        "per_caption": k,
        "seed": seed,
        "truncation": truncation,
    }
    write_json(out.parent / f"{out.name}.manifest.json", manifest)
    return manifest


def family_writer(hook: str):
    """The function a model's `generate_with` metadata names (a ganops family's module only)."""
    import importlib

    module, _, name = hook.partition(":")
    if not module.startswith("components.families.") or not name:
        raise GanopsError(f"model metadata generate_with {hook!r}: not a ganops family writer")
    return getattr(importlib.import_module(module), name)


def generate(
    model_uri: str,
    n: int,
    out: Path,
    label: int | None = None,
    balanced: bool = False,
    seed: int = 0,
    truncation: float = 1.0,
    texts: list[str] | None = None,
) -> dict:
    import mlflow
    import pandas as pd
    from mlflow.exceptions import MlflowException
    from PIL import Image

    if n < 1:
        raise GanopsError(f"-n {n}: make at least one image")
    if not truncation > 0:
        raise GanopsError(f"--truncation {truncation}: must be > 0 (1 = no truncation)")
    if out.suffix != ".npz" and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GanopsError(f"--out {out}: exists and is not an empty folder; choose a new one")
    out = out.resolve()  # `--out .` (an empty folder) names the folder, not ""
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except (MlflowException, OSError) as exc:
        raise GanopsError(f"--model {model_uri}: {getattr(exc, 'message', exc)}") from None
    spec = model.metadata.metadata or {}  # written by register: num_classes, class_names
    if spec.get("family") == "video":  # clips: GIFs + strips + metadata.jsonl
        from components.families.video.generate import generate_clips

        return generate_clips(model, model_uri, n, out, label, balanced, seed, spec)
    if takes_text(model) != (texts is not None):
        if texts is None:
            raise GanopsError(
                "this model draws from captions: pass --prompt TEXT or --prompts FILE"
            )
        raise GanopsError("this model takes no captions: drop --prompt/--prompts")
    if texts is not None:
        return generate_captioned(model, model_uri, texts, n, out, seed, truncation)
    hook = (model.metadata.metadata or {}).get("generate_with")
    if hook:  # a family that writes its own files (music: MIDI, piano roll, WAV)
        if label is not None or balanced:
            raise GanopsError("this generator is unconditional: drop --label/--balanced")
        return family_writer(hook)(model, model_uri, n, out, seed)
    num_classes = int(spec.get("num_classes", 0))
    names = spec.get("class_names") or [str(i) for i in range(num_classes)]
    labels = plan_labels(n, num_classes, label, balanced)
    frame = {"seed": latent_seeds(seed, n)}  # the same latents evaluate draws
    if labels is not None:
        frame["label"] = labels
    images = model.predict(pd.DataFrame(frame), params={"truncation": truncation})  # (N,C,H,W)
    manifest = {
        "model_uri": model_uri,
        "model_version": resolve_version(model_uri),
        "model_run_id": model.metadata.run_id,
        "n_images": n,
        "seed": seed,
        "truncation": truncation,
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
    write_json(out.parent / f"{out.name}.manifest.json", manifest)
    return manifest
