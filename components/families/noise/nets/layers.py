"""The pieces every noise G and D shares: shape checks, (conditional) BatchNorm, self-attention,
G's conditional input, D's projection head, and DCGAN's initialisation.

Conditioning: D always by projection (Miyato & Koyama 2018), D(x, c) = w.h(x) + embed(c).h(x).
G either concatenates a label embedding to z (`embed`) or uses conditional BatchNorm (`cbn`, de
Vries et al. 2017) whose scale and shift are linear in one shared class embedding (BigGAN).
num_classes == 0: unconditional.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from components.shapes import assert_shape  # noqa: F401  (nets/ re-exports it)

COND_DIM = 128  # size of G's shared class embedding under conditional BatchNorm (BigGAN's)
# Its init scale sets how fast the classes' BN gains move under Adam (each step moves every weight
# by ~lr, so a gain by ~lr * |e|_1). Measured by `ganops stage train --set train.g_cond=cbn
# --set train.kimg=150` (reports/probe_log.csv, MNIST-5k) at each scale: 0.5 -> class accuracy
# 0.97, probe FID 15, 10/10 classes; 0.25 -> 0.98, FID 20; 1.0 -> one class died (all-black
# row, dead ReLUs); unit-norm rows (~0.09) -> the label still ignored at 60 kimg.
CLASS_EMBED_STD = 0.5


def maybe_spectral_norm(enabled: bool):
    """Spectral norm as a layer wrapper, or the identity when disabled."""
    return nn.utils.parametrizations.spectral_norm if enabled else (lambda m: m)


class ClassEmbedding(nn.Embedding):
    """G's one class embedding, shared by all its conditional BatchNorms (as in BigGAN).

    Each layer's gain and shift are a learnt linear map of the class's row, so a step moves
    them at Adam's pace per weight times the row's size (CLASS_EMBED_STD). Gains looked up per
    class (de Vries et al.) move by lr per step only: here they learnt the label several times
    slower than `embed` (class accuracy 0.15 at 80 kimg).
    """


class CondBatchNorm2d(nn.Module):
    """BatchNorm without its own affine: gain 1 + W_g e and shift W_b e of the class embedding e."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(cond_dim, channels, bias=False)
        self.shift = nn.Linear(cond_dim, channels, bias=False)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        gain = 1.0 + self.gain(e)[:, :, None, None]  # (B, C, 1, 1)
        return self.bn(x) * gain + self.shift(e)[:, :, None, None]


def apply_norm(norm: nn.Module, h: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
    """G's one norm dispatch: conditional BatchNorm takes the class embedding e, plain BN not."""
    return norm(h, e) if e is not None else norm(h)


def g_norm(channels: int, cbn: bool) -> nn.Module:
    return CondBatchNorm2d(channels, COND_DIM) if cbn else nn.BatchNorm2d(channels)


class SelfAttention(nn.Module):
    """SAGAN's block: x + gamma * o(softmax(f(x)^T g(x)) h(x)); gamma starts at 0."""

    def __init__(self, channels: int, spectral_norm: bool = True):
        super().__init__()
        sn = maybe_spectral_norm(spectral_norm)
        self.f = sn(nn.Conv2d(channels, max(channels // 8, 1), 1, bias=False))  # queries
        self.g = sn(nn.Conv2d(channels, max(channels // 8, 1), 1, bias=False))  # keys
        self.h = sn(nn.Conv2d(channels, max(channels // 2, 1), 1, bias=False))  # values
        self.o = sn(nn.Conv2d(max(channels // 2, 1), channels, 1, bias=False))
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        q = self.f(x).flatten(2).transpose(1, 2)  # (B, N, C/8), N = H*W positions
        k = self.g(x).flatten(2).transpose(1, 2)  # (B, N, C/8)
        v = self.h(x).flatten(2).transpose(1, 2)  # (B, N, C/2)
        out = F.scaled_dot_product_attention(q, k, v, scale=1.0)  # (B, N, C/2), as in the paper
        return x + self.gamma * self.o(out.transpose(1, 2).reshape(B, -1, H, W))


class ConditionalInput(nn.Module):
    """What every G does with (z, c): `embed` concatenates a label embedding to z, `cbn` looks up
    the shared class embedding e that its conditional BatchNorms take; no classes: z alone."""

    def add_input(
        self, z_dim: int, num_classes: int, channels: int, image_size: int, cond: str
    ) -> tuple[int, bool]:
        """Set the input layers; returns (size of the vector G projects, whether G uses cBN)."""
        self.z_dim, self.num_classes = z_dim, num_classes
        self.channels, self.image_size = channels, image_size
        cbn = bool(num_classes) and cond == "cbn"
        self.embed = nn.Embedding(num_classes, z_dim) if num_classes and not cbn else None
        self.class_embed = ClassEmbedding(num_classes, COND_DIM) if cbn else None
        return z_dim * (2 if self.embed is not None else 1), cbn

    def read_input(self, z: torch.Tensor, c: torch.Tensor | None):
        """(the vector G projects (B, in_dim), the class embedding (B, COND_DIM) or None)."""
        assert_shape(z, (None, self.z_dim))
        h = torch.cat([z, self.embed(c)], dim=1) if self.embed is not None else z
        e = self.class_embed(c) if self.class_embed is not None else None
        return h, e

    def check_output(self, img: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        assert_shape(img, (z.shape[0], self.channels, self.image_size, self.image_size))
        return img


class ProjectionHead(nn.Module):
    """What every D does with its features h and the label c (Miyato & Koyama 2018):
    D(x, c) = w.h + embed(c).h; without classes w.h alone."""

    def add_head(self, feat_dim: int, num_classes: int, sn) -> None:
        self.linear = sn(nn.Linear(feat_dim, 1))
        self.embed = sn(nn.Embedding(num_classes, feat_dim)) if num_classes else None

    def project(self, h: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        logits = self.linear(h).squeeze(1)  # (B,)
        if self.embed is not None:
            logits = logits + (self.embed(c) * h).sum(dim=1)  # projection term
        return logits


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) weights, BN scale N(1, 0.02); G's shared class embedding
    N(0, CLASS_EMBED_STD^2), so conditional BN gains start near 1. Spectrally normalised
    layers keep PyTorch's default initialisation, as in SN-GAN and SAGAN."""
    if nn.utils.parametrize.is_parametrized(module):
        return
    if isinstance(module, ClassEmbedding):
        nn.init.normal_(module.weight, 0.0, CLASS_EMBED_STD)
    elif isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
