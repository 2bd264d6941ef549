"""G and D, conditional or not: DCGAN and SAGAN for 28, 32 and 64 px images, ResNet for 32-256.

dcgan (Radford et al. 2016): G projects z to a small feature map and upsamples with stride-2
transposed convolutions + BatchNorm + ReLU; D mirrors it with stride-2 convolutions + LeakyReLU.
Widths follow DCGAN's ngf/ndf: G's last hidden layer has ngf channels and each layer towards z
doubles it; D's first layer has ndf and each layer towards the logit doubles it. At 64 px with
ngf = ndf = 64 and z_dim = 100 this is the canonical DCGAN (its 4x4 "full" convolutions at either
end are written as the equivalent Linear layers, which also fits the 7x7 base of 28 px images).

sagan (Zhang et al. 2019): the same nets plus one self-attention block at a middle resolution
in G and in D, with spectral norm on both (the config enforces it).

resnet (Miyato et al. 2018's SNGAN, Brock et al. 2019's BigGAN): residual blocks. G: z -> linear
to 4x4, one up-block per doubling ((c)BN-ReLU-nearest 2x-conv3x3-(c)BN-ReLU-conv3x3, plus a
2x-conv1x1 shortcut), then BN-ReLU-conv3x3-tanh. D: spectrally normalised down-blocks (SNGAN's
"optimized" first block: conv-ReLU-conv-avgpool, shortcut avgpool-conv1x1), one more block at
4x4, ReLU, global sum pooling, linear head. Widths are g_channels / d_channels times a
multiplier that doubles per halving of the resolution away from the image, capped at 16 (at 128
px this is BigGAN's table; the cap keeps 256 px at about 50M weights in G for g_channels 64):

    image   G: 4x4  8   16  32  64  128 256     D: S/2 S/4 ... 4x4, then 4x4 again
    32          8   4   2   1                      1   2   4   4
    64         16   8   4   2   1                  1   2   4   8   8
    128        16  16   8   4   2   1              1   2   4   8  16  16
    256        16  16  16   8   4   2   1          1   2   4   8  16  16  16

Conditioning: D always by projection (Miyato & Koyama 2018), D(x, c) = w.h(x) + embed(c).h(x).
G either concatenates a label embedding to z (`embed`) or uses conditional BatchNorm (`cbn`, de
Vries et al. 2017) whose scale and shift are linear in one shared class embedding (BigGAN).
num_classes == 0: unconditional.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

BASE_RES = {28: 7, 32: 4, 64: 4}  # image size -> side of G's first feature map
ATTENTION_RES = {28: 14, 32: 16, 64: 16}  # image size -> resolution of SAGAN's attention block
COND_DIM = 128  # size of G's shared class embedding under conditional BatchNorm (BigGAN's)
# Its init scale sets how fast the classes' BN gains move under Adam (each step moves every weight
# by ~lr, so a gain by ~lr * |e|_1). Measured by `ganops stage train --set train.g_cond=cbn
# --set train.kimg=150` (reports/probe_log.csv, MNIST-5k) at each scale: 0.5 -> class accuracy
# 0.97, probe FID 15, 10/10 classes; 0.25 -> 0.98, FID 20; 1.0 -> one class died (all-black
# row, dead ReLUs); unit-norm rows (~0.09) -> the label still ignored at 60 kimg.
CLASS_EMBED_STD = 0.5
RESNET_SIZES = (32, 64, 128, 256)  # image sizes the resnet nets build: 4x4 doubled 3 to 6 times
RESNET_MAX_MULT = 16  # cap of the resnet width multiplier (BigGAN's widest is 16 x ch)


def assert_shape(t: torch.Tensor, shape: tuple) -> None:
    """Check a tensor's shape; None in `shape` matches any size."""
    if t.ndim != len(shape) or any(
        s is not None and s != d for s, d in zip(shape, t.shape, strict=False)
    ):
        raise AssertionError(f"expected shape {shape}, got {tuple(t.shape)}")


def _num_upsamplings(image_size: int) -> int:
    if image_size not in BASE_RES:
        raise ValueError(f"image_size {image_size} not supported (one of {sorted(BASE_RES)})")
    return (image_size // BASE_RES[image_size]).bit_length() - 1


def _sn(enabled: bool):
    return nn.utils.parametrizations.spectral_norm if enabled else (lambda m: m)


class ClassEmbedding(nn.Embedding):
    """G's one class embedding, shared by all its conditional BatchNorms (as in BigGAN).

    Each layer's gain and shift are a learnt linear map of the class's row, so a step moves
    them at Adam's pace per weight times the row's size (CLASS_EMBED_STD). Gains looked up per
    class (de Vries et al.) move by lr per step only: here they learnt the label several times
    slower than `embed` (class accuracy 0.15 at 80 kimg).
    """


def resnet_mult(steps_from_image: int) -> int:
    """Width multiplier of a resnet feature map `steps_from_image` halvings away from the image."""
    return min(2**steps_from_image, RESNET_MAX_MULT)


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
        sn = _sn(spectral_norm)
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


class UpBlock(nn.Module):
    """ConvTranspose 4x4 stride 2, (conditional) BatchNorm, ReLU: doubles the resolution."""

    def __init__(self, cin: int, cout: int, cbn: bool, sn):
        super().__init__()
        self.conv = sn(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False))
        self.norm = g_norm(cout, cbn)

    def forward(self, h: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
        return F.relu(apply_norm(self.norm, self.conv(h), e))


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
        sn = _sn(spectral_norm)
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
        sn = _sn(spectral_norm)
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
        sn = _sn(spectral_norm)
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
        sn = _sn(True)
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


def build_generator(spec: dict) -> nn.Module:
    """G from its spec (generator.json, written by train)."""
    args = (spec["z_dim"], spec["num_classes"], spec["channels"], spec["image_size"])
    options = {"cond": spec["g_cond"], "spectral_norm": spec["g_spectral_norm"]}
    if spec["arch"] == "resnet":
        return ResnetGenerator(*args, spec["g_channels"], **options)
    return Generator(*args, spec["g_channels"], arch=spec["arch"], **options)


def build_discriminator(
    arch: str, num_classes: int, channels: int, image_size: int, ndf: int, spectral_norm: bool
) -> nn.Module:
    """D for train.arch; resnet's always carries spectral norm (the config requires it)."""
    if arch == "resnet":
        return ResnetDiscriminator(num_classes, channels, image_size, ndf)
    return Discriminator(num_classes, channels, image_size, ndf, arch, spectral_norm)


def load_generator(weights: str | Path, spec: dict) -> nn.Module:
    """G from a safetensors file and its spec (generator.json), in eval mode."""
    from safetensors.torch import load_file

    G = build_generator(spec)
    G.load_state_dict(load_file(str(weights)))
    return G.eval().requires_grad_(False)


GENERATOR_FILES = ("G_ema.safetensors", "generator.json")  # what a registered generator ships


def load_model_dir(folder: str | Path) -> tuple[nn.Module, dict]:
    """(G_ema in eval mode, its spec) from a folder holding GENERATOR_FILES at any depth:
    models/, a downloaded model version, or a pyfunc's artifacts. The one way G is rebuilt."""
    import json

    folder = Path(folder)
    found = {name: next(folder.rglob(name), None) for name in GENERATOR_FILES}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        from components.errors import DataError

        raise DataError(f"{folder}: no {' or '.join(missing)}; not a ganops generator")
    spec = json.loads(found["generator.json"].read_text())
    return load_generator(found["G_ema.safetensors"], spec), spec


def latents(seeds, z_dim: int, truncation: float = 1.0) -> torch.Tensor:
    """One z per seed, drawn on its own generator: the image of a seed never depends on the batch.

    truncation < 1 resamples |z| > truncation (the truncation trick): less variety, cleaner images.
    """
    rows = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(int(seed))
        z = torch.randn(1, z_dim, generator=gen)
        if truncation < 1.0:
            while (bad := z.abs() > truncation).any():
                z[bad] = torch.randn(int(bad.sum()), generator=gen)
        rows.append(z)
    return torch.cat(rows)  # (N, z_dim)
