"""G and D: a conditional DCGAN for 28, 32 and 64 pixel images.

G(z, c) concatenates z with a learned label embedding, projects to a small feature map and
upsamples with stride-2 transposed convolutions (DCGAN). D(x, c) is the DCGAN discriminator
with a projection head (Miyato & Koyama 2018): D(x, c) = w·h(x) + embed(c)·h(x).
With num_classes == 0 both are unconditional.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

BASE_RES = {28: 7, 32: 4, 64: 4}  # image size -> side of G's first feature map


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


class Generator(nn.Module):
    def __init__(self, z_dim: int, num_classes: int, channels: int, image_size: int, width: int):
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        self.channels, self.image_size = channels, image_size
        self.base = BASE_RES.get(image_size, 4)
        n_up = _num_upsamplings(image_size)
        self.embed = nn.Embedding(num_classes, z_dim) if num_classes else None
        in_dim = z_dim * (2 if num_classes else 1)
        self.project = nn.Sequential(
            nn.Linear(in_dim, width * self.base * self.base, bias=False),
            nn.BatchNorm1d(width * self.base * self.base),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        ch = width
        for _ in range(n_up - 1):
            blocks += [
                nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ch // 2),
                nn.ReLU(inplace=True),
            ]
            ch //= 2
        blocks += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Tanh()]
        self.upsample = nn.Sequential(*blocks)
        self.width = width

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        assert_shape(z, (None, self.z_dim))
        h = torch.cat([z, self.embed(c)], dim=1) if self.embed is not None else z
        h = self.project(h).view(-1, self.width, self.base, self.base)  # (B, width, b, b)
        img = self.upsample(h)  # (B, C, S, S) in [-1, 1]
        assert_shape(img, (z.shape[0], self.channels, self.image_size, self.image_size))
        return img


class Discriminator(nn.Module):
    """spectral_norm=True: SN-DCGAN (Miyato et al. 2018), spectral norm on every layer, no BN."""

    def __init__(
        self,
        num_classes: int,
        channels: int,
        image_size: int,
        width: int,
        spectral_norm: bool = False,
    ):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)
        self.channels, self.image_size = channels, image_size
        base = BASE_RES.get(image_size, 4)
        n_down = _num_upsamplings(image_size)
        chans = [width // 2 ** (n_down - 1 - i) for i in range(n_down)]  # e.g. [32, 64]
        layers: list[nn.Module] = []
        prev = channels
        for i, ch in enumerate(chans):
            layers.append(sn(nn.Conv2d(prev, ch, 4, 2, 1, bias=i == 0 or spectral_norm)))
            if i > 0 and not spectral_norm:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            prev = ch
        self.features = nn.Sequential(*layers)
        feat_dim = width * base * base
        self.linear = sn(nn.Linear(feat_dim, 1))
        self.embed = sn(nn.Embedding(num_classes, feat_dim)) if num_classes else None

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        assert_shape(img, (None, self.channels, self.image_size, self.image_size))
        h = self.features(img).flatten(1)  # (B, width * b * b)
        logits = self.linear(h).squeeze(1)  # (B,)
        if self.embed is not None:
            logits = logits + (self.embed(c) * h).sum(dim=1)  # projection term
        return logits


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) weights, BN scale N(1, 0.02)."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def load_generator(weights: str | Path, spec: dict) -> Generator:
    """G from a safetensors file and its spec (generator.json), in eval mode."""
    from safetensors.torch import load_file

    G = Generator(
        spec["z_dim"], spec["num_classes"], spec["channels"], spec["image_size"], spec["width"]
    )
    G.load_state_dict(load_file(str(weights)))
    return G.eval().requires_grad_(False)


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
