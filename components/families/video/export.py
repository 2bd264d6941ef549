"""export: the video G as one module (z_content (B, Zc), eps (B, T, Zm)[, labels (B,)]) ->
clips (B, T, C, S, S) in [-1, 1]; nets.clip_latents draws the inputs of a seed."""

from __future__ import annotations

from pathlib import Path

import torch


class Unconditional(torch.nn.Module):
    input_names = ("z_content", "eps")  # the ONNX graph's input names

    def __init__(self, G):
        super().__init__()
        self.G = G

    def forward(self, z_content: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return self.G(z_content, eps, None)


def export_module(model_dir: Path, spec: dict, direction: str):
    from components.families.video.nets import clip_latents, load_generator

    G, spec = load_generator(model_dir)
    k = spec["num_classes"]
    net = G if k else Unconditional(G).eval()
    if k:
        net.input_names = ("z_content", "eps", "label")

    def inputs(batch: int, seed: int) -> tuple:
        zc, eps = clip_latents(range(seed, seed + batch), spec)
        return (zc, eps, torch.arange(batch) % k) if k else (zc, eps)

    return net, inputs
