"""export: the noise family's G and its example inputs, for ONNX / TorchScript."""

from __future__ import annotations

from pathlib import Path


def export_module(model_dir: Path, spec: dict, direction: str):
    import torch

    from components.families.model_files import require
    from components.families.noise.nets import load_generator
    from components.seeds import latents

    G = load_generator(require(model_dir, "G_ema.safetensors"), spec)
    G.input_names = ("z", "c") if spec["num_classes"] else ("z",)  # ONNX: latents, class ids

    def noise(batch: int, seed: int) -> tuple:
        z = latents(range(seed, seed + batch), spec["z_dim"])  # (B, z_dim)
        if spec["num_classes"]:
            return z, torch.arange(batch) % spec["num_classes"]  # c: (B,) int64
        return (z,)

    return G, noise
