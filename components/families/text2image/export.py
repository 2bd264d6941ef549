"""export: the text-to-image G with its sentence encoder, as one module taking token ids and z
(the ingest vocabulary, shipped in the model folder, tokenises captions for it; for a
pretrained text encoder, its tokenizer in text_model/). The scratch encoder's packed bi-GRU
is exported through UnpackedTextEncoder (the same numbers): ONNX's exporter cannot trace
pack_padded_sequence."""

from __future__ import annotations

from pathlib import Path

import torch


class UnpackedTextEncoder(torch.nn.Module):
    """The scratch TextEncoder's sentence vectors without pack_padded_sequence, which the ONNX
    exporter cannot trace: the forward direction runs over the padded caption (the padding
    comes after the words, so it cannot reach them), the backward direction over each caption
    reversed within its own length (a gather), then back; mean over the words. The same
    weights as the encoder (shared), the same numbers up to float rounding (tested)."""

    def __init__(self, enc):
        super().__init__()
        gru = enc.gru
        self.embed, self.sentence_dim = enc.embed, enc.sentence_dim
        self.fwd = torch.nn.GRU(gru.input_size, gru.hidden_size, batch_first=True)
        self.bwd = torch.nn.GRU(gru.input_size, gru.hidden_size, batch_first=True)
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            setattr(self.fwd, name, getattr(gru, name))
            setattr(self.bwd, name, getattr(gru, f"{name}_reverse"))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        from components.families.text2image.nets import PAD

        mask = tokens != PAD  # (B, L)
        lengths = mask.sum(1, keepdim=True)  # (B, 1)
        t = torch.arange(tokens.shape[1], device=tokens.device).unsqueeze(0)  # (1, L)
        rev = torch.where(t < lengths, lengths - 1 - t, t)  # each caption reversed in place
        x = self.embed(tokens)  # (B, L, E)
        h_fwd, _ = self.fwd(x)
        h_bwd, _ = self.bwd(torch.gather(x, 1, rev.unsqueeze(-1).expand_as(x)))
        h_bwd = torch.gather(h_bwd, 1, rev.unsqueeze(-1).expand_as(h_bwd))
        h = torch.cat([h_fwd, h_bwd], dim=2)  # (B, L, sentence_dim)
        m = mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp(min=1.0)


class TokensToImage(torch.nn.Module):
    """(token ids (B, L) int64, z (B, z_dim)) -> images (B, C, S, S) in [-1, 1]."""

    input_names = ("tokens", "z")  # the ONNX graph's input names

    def __init__(self, text: torch.nn.Module, G: torch.nn.Module):
        from components.families.text2image.nets import TextEncoder

        super().__init__()
        self.text = UnpackedTextEncoder(text) if isinstance(text, TextEncoder) else text
        self.G = G

    def forward(self, tokens: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.G(z, self.text(tokens))


def export_module(model_dir: Path, spec: dict, direction: str):
    from components.families.text2image.evaluate import load_generator
    from components.seeds import latents

    G, text, spec, prompts = load_generator(model_dir)
    net = TokensToImage(text, G).eval()

    def inputs(batch: int, seed: int) -> tuple:
        gen = torch.Generator().manual_seed(seed)
        length = spec["text_model"]["max_tokens"] if spec.get("text_model") else spec["max_words"]
        tokens = torch.randint(2, prompts.vocab_size, (batch, length), generator=gen)
        return tokens, latents(range(seed, seed + batch), spec["z_dim"])

    return net, inputs
