"""export: the text-to-image G with its sentence encoder, as one module taking token ids and z
(the ingest vocabulary, shipped in the model folder, tokenises captions for it; for a
pretrained text encoder, its tokenizer in text_model/)."""

from __future__ import annotations

from pathlib import Path

import torch


class TokensToImage(torch.nn.Module):
    """(token ids (B, L) int64, z (B, z_dim)) -> images (B, C, S, S) in [-1, 1]."""

    def __init__(self, text: torch.nn.Module, G: torch.nn.Module):
        super().__init__()
        self.text, self.G = text, G

    def forward(self, tokens: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.G(z, self.text(tokens))


def export_module(model_dir: Path, spec: dict, direction: str):
    from components.families.noise.nets import latents
    from components.families.text2image.evaluate import load_generator

    G, text, spec, prompts = load_generator(model_dir)
    net = TokensToImage(text, G).eval()

    def inputs(batch: int, seed: int) -> tuple:
        gen = torch.Generator().manual_seed(seed)
        length = spec["text_model"]["max_tokens"] if spec.get("text_model") else spec["max_words"]
        tokens = torch.randint(2, prompts.vocab_size, (batch, length), generator=gen)
        return tokens, latents(range(seed, seed + batch), spec["z_dim"])

    return net, inputs
