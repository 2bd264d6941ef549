"""ResNet G and D (Miyato et al. 2018's SNGAN, Brock et al. 2019's BigGAN) for 32-256 px images.

G: z -> linear to 4x4, one up-block per doubling ((c)BN-ReLU-nearest 2x-conv3x3-(c)BN-ReLU-conv3x3,
plus a 2x-conv1x1 shortcut), then BN-ReLU-conv3x3-tanh. D: spectrally normalised down-blocks
(SNGAN's "optimized" first block: conv-ReLU-conv-avgpool, shortcut avgpool-conv1x1), one more
block at 4x4, ReLU, global sum pooling, linear head. Widths are g_channels / d_channels times a
multiplier that doubles per halving of the resolution away from the image, capped at 16 (at 128
px this is BigGAN's table; the cap keeps 256 px at about 50M weights in G for g_channels 64):

    image   G: 4x4  8   16  32  64  128 256     D: S/2 S/4 ... 4x4, then 4x4 again
    32          8   4   2   1                      1   2   4   4
    64         16   8   4   2   1                  1   2   4   8   8
    128        16  16   8   4   2   1              1   2   4   8  16  16
    256        16  16  16   8   4   2   1          1   2   4   8  16  16  16
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from components.families.noise.nets.layers import (
    ConditionalInput,
    ProjectionHead,
    apply_norm,
    assert_shape,
    g_norm,
    maybe_spectral_norm,
)

RESNET_SIZES = (32, 64, 128, 256)  # image sizes the resnet nets build: 4x4 doubled 3 to 6 times
RESNET_MAX_MULT = 16  # cap of the resnet width multiplier (BigGAN's widest is 16 x ch)


def resnet_mult(steps_from_image: int) -> int:
    """Width multiplier of a resnet feature map `steps_from_image` halvings away from the image."""
    return min(2**steps_from_image, RESNET_MAX_MULT)


def _resnet_upsamplings(image_size: int) -> int:
    if image_size not in RESNET_SIZES:
        raise ValueError(f"image_size {image_size} not supported by resnet (one of {RESNET_SIZES})")
    return image_size.bit_length() - 3  # doublings from 4x4: 3 at 32 px ... 6 at 256 px


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")  # (B, C, 2H, 2W)


class ResUpBlock(nn.Module):
    """G's residual block (BigGAN): (c)BN-ReLU-up-conv3x3-(c)BN-ReLU-conv3x3 + up-conv1x1."""

    def __init__(self, cin: int, cout: int, cbn: bool, sn):
        super().__init__()
        self.norm1, self.norm2 = g_norm(cin, cbn), g_norm(cout, cbn)
        self.conv1 = sn(nn.Conv2d(cin, cout, 3, 1, 1))
        self.conv2 = sn(nn.Conv2d(cout, cout, 3, 1, 1))
        self.shortcut = sn(nn.Conv2d(cin, cout, 1))

    def forward(self, x: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
        h = self.conv1(_up2(F.relu(apply_norm(self.norm1, x, e))))  # (B, cout, 2r, 2r)
        h = self.conv2(F.relu(apply_norm(self.norm2, h, e)))
        return h + self.shortcut(_up2(x))


class ResnetGenerator(ConditionalInput):
    """SNGAN/BigGAN G at 32-256 px; `ngf` is the width at the image's resolution (table above)."""

    def __init__(
        self,
        z_dim: int,
        num_classes: int,
        channels: int,
        image_size: int,
        ngf: int,
        cond: str = "embed",
        spectral_norm: bool = False,
    ):
        super().__init__()
        n_up = _resnet_upsamplings(image_size)
        sn = maybe_spectral_norm(spectral_norm)
        in_dim, cbn = self.add_input(z_dim, num_classes, channels, image_size, cond)
        self.widths = [ngf * resnet_mult(n_up - i) for i in range(n_up + 1)]  # 4x4 ... S
        self.project = sn(nn.Linear(in_dim, self.widths[0] * 4 * 4))
        self.blocks = nn.ModuleList(
            ResUpBlock(cin, cout, cbn, sn) for cin, cout in pairwise(self.widths)
        )
        self.out_norm = nn.BatchNorm2d(self.widths[-1])
        self.to_image = sn(nn.Conv2d(self.widths[-1], channels, 3, 1, 1))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h, e = self.read_input(z, c)  # (B, in_dim), (B, COND_DIM) or None
        h = self.project(h).view(-1, self.widths[0], 4, 4)  # (B, 16 ngf, 4, 4) at >= 64 px
        for block in self.blocks:
            h = block(h, e)  # (B, ch', 2r, 2r)
        img = torch.tanh(self.to_image(F.relu(self.out_norm(h))))  # (B, C, S, S) in [-1, 1]
        return self.check_output(img, z)


class ResDownBlock(nn.Module):
    """D's residual block (SNGAN): ReLU-conv3x3-ReLU-conv3x3[-avgpool] + conv1x1[-avgpool];
    `first`: SNGAN's optimized block on the image, conv-ReLU-conv-avgpool + avgpool-conv1x1."""

    def __init__(self, cin: int, cout: int, sn, down: bool = True, first: bool = False):
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = sn(nn.Conv2d(cin, cout, 3, 1, 1))
        self.conv2 = sn(nn.Conv2d(cout, cout, 3, 1, 1))
        self.shortcut = sn(nn.Conv2d(cin, cout, 1)) if cin != cout or down else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))  # (B, cout, r, r)
        h = F.avg_pool2d(h, 2) if self.down else h  # (B, cout, r/2, r/2)
        if self.shortcut is None:
            return h + x
        if self.first:  # pool first: the 1x1 conv then runs on a quarter of the pixels
            return h + self.shortcut(F.avg_pool2d(x, 2))
        s = self.shortcut(x)
        return h + (F.avg_pool2d(s, 2) if self.down else s)


class ResnetDiscriminator(ProjectionHead):
    """SNGAN/BigGAN D at 32-256 px, spectral norm on every layer always; `ndf` is the width
    after its first block (table above)."""

    def __init__(self, num_classes: int, channels: int, image_size: int, ndf: int):
        super().__init__()
        n_down = _resnet_upsamplings(image_size)
        sn = maybe_spectral_norm(True)
        self.channels, self.image_size = channels, image_size
        self.widths = [ndf * resnet_mult(i) for i in range(n_down)]  # at S/2 ... 4x4
        blocks = [ResDownBlock(channels, self.widths[0], sn, first=True)]
        blocks += [ResDownBlock(a, b, sn) for a, b in pairwise(self.widths)]
        blocks.append(ResDownBlock(self.widths[-1], self.widths[-1], sn, down=False))
        self.blocks = nn.Sequential(*blocks)
        self.add_head(self.widths[-1], num_classes, sn)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        assert_shape(img, (None, self.channels, self.image_size, self.image_size))
        h = F.relu(self.blocks(img)).sum(dim=(2, 3))  # (B, widths[-1]): global sum pooling
        return self.project(h, c)
