"""DCGAN and SAGAN G and D for 28, 32 and 64 px images.

dcgan (Radford et al. 2016): G projects z to a small feature map and upsamples with stride-2
transposed convolutions + BatchNorm + ReLU; D mirrors it with stride-2 convolutions + LeakyReLU.
Widths follow DCGAN's ngf/ndf: G's last hidden layer has ngf channels and each layer towards z
doubles it; D's first layer has ndf and each layer towards the logit doubles it. At 64 px with
ngf = ndf = 64 and z_dim = 100 this is the canonical DCGAN (its 4x4 "full" convolutions at either
end are written as the equivalent Linear layers, which also fits the 7x7 base of 28 px images).

sagan (Zhang et al. 2019): the same nets plus one self-attention block at a middle resolution
in G and in D, with spectral norm on both (the config enforces it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from components.families.noise.nets.layers import (
    ConditionalInput,
    ProjectionHead,
    SelfAttention,
    apply_norm,
    assert_shape,
    g_norm,
    maybe_spectral_norm,
)

BASE_RES = {28: 7, 32: 4, 64: 4}  # image size -> side of G's first feature map
ATTENTION_RES = {28: 14, 32: 16, 64: 16}  # image size -> resolution of SAGAN's attention block


def _num_upsamplings(image_size: int) -> int:
    if image_size not in BASE_RES:
        raise ValueError(f"image_size {image_size} not supported (one of {sorted(BASE_RES)})")
    return (image_size // BASE_RES[image_size]).bit_length() - 1


class UpBlock(nn.Module):
    """ConvTranspose 4x4 stride 2, (conditional) BatchNorm, ReLU: doubles the resolution."""

    def __init__(self, cin: int, cout: int, cbn: bool, sn):
        super().__init__()
        self.conv = sn(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False))
        self.norm = g_norm(cout, cbn)

    def forward(self, h: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
        return F.relu(apply_norm(self.norm, self.conv(h), e))


class Generator(ConditionalInput):
    def __init__(
        self,
        z_dim: int,
        num_classes: int,
        channels: int,
        image_size: int,
        ngf: int,
        arch: str = "dcgan",
        cond: str = "embed",
        spectral_norm: bool = False,
    ):
        super().__init__()
        self.base = BASE_RES.get(image_size, 4)
        n_up = _num_upsamplings(image_size)
        sn = maybe_spectral_norm(spectral_norm)
        in_dim, cbn = self.add_input(z_dim, num_classes, channels, image_size, cond)
        self.width = ngf * 2 ** (n_up - 1)  # channels of the first feature map
        self.project = sn(nn.Linear(in_dim, self.width * self.base * self.base, bias=False))
        self.project_norm = g_norm(self.width, cbn)
        self.blocks = nn.ModuleList()
        self.attention = None
        ch, res = self.width, self.base
        for _ in range(n_up - 1):
            self.blocks.append(UpBlock(ch, ch // 2, cbn, sn))
            ch, res = ch // 2, res * 2
            if arch == "sagan" and res == ATTENTION_RES[image_size]:
                self.attention_after = len(self.blocks) - 1
                self.attention = SelfAttention(ch, spectral_norm)
        self.to_image = sn(nn.ConvTranspose2d(ch, channels, 4, 2, 1))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h, e = self.read_input(z, c)  # (B, in_dim), (B, COND_DIM) or None
        h = self.project(h).view(-1, self.width, self.base, self.base)  # (B, width, b, b)
        h = F.relu(apply_norm(self.project_norm, h, e))
        for i, block in enumerate(self.blocks):
            h = block(h, e)  # (B, ch/2, 2r, 2r)
            if self.attention is not None and i == self.attention_after:
                h = self.attention(h)
        img = torch.tanh(self.to_image(h))  # (B, C, S, S) in [-1, 1]
        return self.check_output(img, z)


class Discriminator(ProjectionHead):
    """spectral_norm=True: SN-DCGAN (Miyato et al. 2018), spectral norm on every layer, no BN."""

    def __init__(
        self,
        num_classes: int,
        channels: int,
        image_size: int,
        ndf: int,
        arch: str = "dcgan",
        spectral_norm: bool = False,
    ):
        super().__init__()
        sn = maybe_spectral_norm(spectral_norm)
        self.channels, self.image_size = channels, image_size
        base = BASE_RES.get(image_size, 4)
        n_down = _num_upsamplings(image_size)
        layers: list[nn.Module] = []
        prev, res = channels, image_size
        for i in range(n_down):
            ch = ndf * 2**i  # e.g. 64, 128, 256, 512 at 64 px
            layers.append(sn(nn.Conv2d(prev, ch, 4, 2, 1, bias=i == 0 or spectral_norm)))
            if i > 0 and not spectral_norm:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            prev, res = ch, res // 2
            if arch == "sagan" and res == ATTENTION_RES[image_size]:
                layers.append(SelfAttention(ch, spectral_norm))
        self.features = nn.Sequential(*layers)
        self.add_head(prev * base * base, num_classes, sn)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        assert_shape(img, (None, self.channels, self.image_size, self.image_size))
        h = self.features(img).flatten(1)  # (B, ndf * 2^(n-1) * b * b)
        return self.project(h, c)
