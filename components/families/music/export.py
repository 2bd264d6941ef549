"""export: the music G as a module from the flat latent (B, latent_dim) to note probabilities
(B, tracks, steps, pitches) in [0, 1]; threshold at 0.5 for notes (roll.roll_to_midi writes
them as MIDI)."""

from __future__ import annotations

from pathlib import Path


def export_module(model_dir: Path, spec: dict, direction: str):
    from components.families.music.evaluate import load_generator
    from components.seeds import latents

    G, spec = load_generator(model_dir)
    G.input_names = ("z",)  # ONNX: the flat latent

    def inputs(batch: int, seed: int) -> tuple:
        return (latents(range(seed, seed + batch), spec["latent_dim"]),)

    return G, inputs
