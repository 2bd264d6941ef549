"""export: the music G as a module from the flat latent (B, latent_dim) to note probabilities
(B, tracks, steps, pitches) in [0, 1] (a conditional G also takes the class indices (B,));
threshold at 0.5 for notes (roll.roll_to_midi writes them as MIDI)."""

from __future__ import annotations

from pathlib import Path


def export_module(model_dir: Path, spec: dict, direction: str):
    import torch

    from components.families.music.evaluate import load_generator
    from components.seeds import latents

    G, spec = load_generator(model_dir)
    k = len(spec.get("class_names", []))
    G.input_names = ("z", "label") if k else ("z",)  # ONNX: the flat latent [, the class]

    def inputs(batch: int, seed: int) -> tuple:
        z = latents(range(seed, seed + batch), spec["latent_dim"])
        return (z, torch.arange(batch) % k) if k else (z,)

    return G, inputs
