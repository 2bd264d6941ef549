"""export: the translation family's G and its example inputs, for ONNX / TorchScript."""

from __future__ import annotations

from pathlib import Path


def export_module(model_dir: Path, spec: dict, direction: str):
    import torch

    from components.families.model_files import require
    from components.families.translation import nets

    nets.check_spec(spec)
    nets.check_direction(spec, direction)
    G = nets.load_translator(require(model_dir, nets.WEIGHTS[direction]), spec, direction)
    G.input_names = ("x",)  # ONNX: source images
    shape = (G.in_channels, spec["image_size"], spec["image_size"])

    def images(batch: int, seed: int) -> tuple:
        gen = torch.Generator().manual_seed(seed)
        return (torch.rand(batch, *shape, generator=gen) * 2 - 1,)  # (B, C, S, S)

    return G, images
