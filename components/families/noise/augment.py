"""Differentiable augmentations of every image D sees, real and generated alike, in both the D
and the G step: DiffAugment (Zhao et al. 2020), a fixed policy, and ADA (Karras et al. 2020),
whose strength p adapts to how much D overfits. Both help D not overfit small datasets.

`train.reg.diffaugment` names the policy: a comma-separated subset of translation, cutout, color
("" turns it off); `train.reg.ada` turns ADA on (see below). Batched tensor ops only: no
per-image Python loop, no host sync.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ratio * size pixels, filling with zeros."""
    B, C, H, W = x.shape
    sh, sw = int(H * ratio + 0.5), int(W * ratio + 0.5)
    th = torch.randint(-sh, sh + 1, (B, 1, 1), device=x.device)
    tw = torch.randint(-sw, sw + 1, (B, 1, 1), device=x.device)
    gb, gh, gw = torch.meshgrid(
        torch.arange(B, device=x.device),
        torch.arange(H, device=x.device),
        torch.arange(W, device=x.device),
        indexing="ij",
    )
    gh = torch.clamp(gh + th + 1, 0, H + 1)
    gw = torch.clamp(gw + tw + 1, 0, W + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # (B, H+2, W+2, C)
    return padded[gb, gh, gw].permute(0, 3, 1, 2).contiguous()  # (B, C, H, W)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one random square of side ratio * size in each image."""
    B, C, H, W = x.shape
    ch, cw = int(H * ratio + 0.5), int(W * ratio + 0.5)
    oh = torch.randint(0, H + (1 - ch % 2), (B, 1, 1), device=x.device)
    ow = torch.randint(0, W + (1 - cw % 2), (B, 1, 1), device=x.device)
    gb, gh, gw = torch.meshgrid(
        torch.arange(B, device=x.device),
        torch.arange(ch, device=x.device),
        torch.arange(cw, device=x.device),
        indexing="ij",
    )
    gh = torch.clamp(gh + oh - ch // 2, 0, H - 1)
    gw = torch.clamp(gw + ow - cw // 2, 0, W - 1)
    mask = torch.ones(B, H, W, dtype=x.dtype, device=x.device)
    mask[gb, gh, gw] = 0
    return x * mask.unsqueeze(1)


def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness, saturation and contrast."""
    B = x.shape[0]
    x = x + (torch.rand(B, 1, 1, 1, dtype=x.dtype, device=x.device) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(B, 1, 1, 1, dtype=x.dtype, device=x.device) * 2) + mean
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (torch.rand(B, 1, 1, 1, dtype=x.dtype, device=x.device) + 0.5) + mean


AUGMENTS = {"translation": translation, "cutout": cutout, "color": color}


def parse_policy(policy: str) -> list[str]:
    names = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [n for n in names if n not in AUGMENTS]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r} (one of {', '.join(AUGMENTS)})")
    return names


def diff_augment(x: torch.Tensor, names: list[str]) -> torch.Tensor:
    for name in names:
        x = AUGMENTS[name](x)
    return x


# -- ADA: adaptive discriminator augmentation (Karras et al. 2020, StyleGAN2-ADA) ------------------
# `train.reg.ada`: the ops below each touch an image with probability p, a 0-dim tensor on the
# device that `ada_adjust` moves every `ada_interval` steps from D's overfitting heuristic. The
# same random numbers are drawn whatever p is (an op is a no-op where it does not apply), so the
# RNG stream, and with it an exact resume, never depends on p; and p is never read on the host.
# Hand-written rather than kornia's containers (kornia 0.9.0, AugmentationSequential), by
# bench/ada_ops.py: forward + backward, CPU, one thread, p 0.2-1, median ms per batch:
# 64x1x32x32: these ops 2.1-2.3, kornia 7.3-9.7; 64x3x64x64: 18.8-19.6 vs 64-75 (3.5-4x slower;
# it warps bilinearly where these gather whole pixels, and takes p as a host float).


def _chosen(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """(B,) bool: the images an op touches, each with probability p."""
    return torch.rand(x.shape[0], device=x.device) < p


def _per_image(values: torch.Tensor) -> torch.Tensor:
    return values.view(-1, 1, 1, 1)  # (B,) -> (B, 1, 1, 1)


def ada_xflip(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Mirror left-right half of the chosen images (StyleGAN2-ADA: a chosen image draws a flip
    in {0, 1}), so at p = 1 D still sees both orientations equally and the flip cannot leak."""
    coin = torch.rand(x.shape[0], device=x.device) < 0.5  # (B,)
    return torch.where(_per_image(_chosen(x, p) & coin), x.flip(3), x)


def ada_rotate90(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Rotate by k * 90 degrees, k uniform in {0, 1, 2, 3} (square images): as torch.rot90
    over (H, W), a transpose for odd k, then row and column flips."""
    k = torch.randint(0, 4, (x.shape[0],), device=x.device) * _chosen(x, p)  # (B,), 0 = as is
    x = torch.where(_per_image(k % 2 == 1), x.transpose(2, 3), x)
    x = torch.where(_per_image((k == 1) | (k == 2)), x.flip(2), x)
    return torch.where(_per_image(k >= 2), x.flip(3), x)


def _reflect(index: torch.Tensor, n: int) -> torch.Tensor:
    """Mirror indices in [-(n-1), 2(n-1)] back into [0, n): -1 -> 1, n -> n - 2."""
    return (n - 1) - ((n - 1) - index.abs()).abs()


def ada_translation(x: torch.Tensor, p: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift by a whole number of pixels, up to ratio * size each way, reflecting at the border
    (the paper's padding; a zero fill would tell D which images were shifted)."""
    B, C, H, W = x.shape
    chosen = _chosen(x, p)
    sh, sw = int(H * ratio + 0.5), int(W * ratio + 0.5)
    th = torch.randint(-sh, sh + 1, (B, 1), device=x.device) * chosen[:, None]  # (B, 1)
    tw = torch.randint(-sw, sw + 1, (B, 1), device=x.device) * chosen[:, None]
    rows = _reflect(torch.arange(H, device=x.device) - th, H)  # (B, H)
    cols = _reflect(torch.arange(W, device=x.device) - tw, W)  # (B, W)
    x = x.gather(2, rows[:, None, :, None].expand(B, C, H, W))
    return x.gather(3, cols[:, None, None, :].expand(B, C, H, W))  # (B, C, H, W)


def ada_brightness(x: torch.Tensor, p: torch.Tensor, std: float = 0.2) -> torch.Tensor:
    """Add b ~ N(0, std) to every pixel (images in [-1, 1])."""
    b = torch.randn(x.shape[0], dtype=x.dtype, device=x.device) * std
    return x + _per_image(b * _chosen(x, p))


def ada_contrast(x: torch.Tensor, p: torch.Tensor, std: float = 0.5) -> torch.Tensor:
    """Scale by c = 2^N(0, std) about mid-grey (0)."""
    log2_c = torch.randn(x.shape[0], dtype=x.dtype, device=x.device) * std
    return x * _per_image(torch.exp2(log2_c * _chosen(x, p)))


def ada_saturation(x: torch.Tensor, p: torch.Tensor, std: float = 1.0) -> torch.Tensor:
    """RGB: scale each pixel's distance from its grey (channel mean) by s = 2^N(0, std)."""
    log2_s = torch.randn(x.shape[0], dtype=x.dtype, device=x.device) * std
    grey = x.mean(dim=1, keepdim=True)  # (B, 1, H, W)
    return x + (x - grey) * _per_image(torch.exp2(log2_s * _chosen(x, p)) - 1)  # exact at s = 1


def ada_cutout(x: torch.Tensor, p: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of side ratio * size centred anywhere in the image (clipped at borders)."""
    B, _, H, W = x.shape
    chosen = _chosen(x, p)
    centre = torch.rand(B, 2, device=x.device)  # (B, 2): (y, x) in [0, 1)
    ys = (torch.arange(H, device=x.device) + 0.5) / H  # pixel centres in (0, 1)
    xs = (torch.arange(W, device=x.device) + 0.5) / W
    inside_y = (ys[None, :] - centre[:, :1]).abs() < ratio / 2  # (B, H)
    inside_x = (xs[None, :] - centre[:, 1:]).abs() < ratio / 2  # (B, W)
    cut = inside_y[:, :, None] & inside_x[:, None, :] & chosen[:, None, None]  # (B, H, W)
    return x * (~cut).unsqueeze(1).to(x.dtype)


def ada_augment(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """The ADA pipeline in the paper's order: geometry, then colour, then cutout; each op
    touches each image with probability p. Saturation only for RGB."""
    for op in (ada_xflip, ada_rotate90, ada_translation, ada_brightness, ada_contrast):
        x = op(x, p)
    if x.shape[1] == 3:
        x = ada_saturation(x, p)
    return ada_cutout(x, p)


def ada_adjust(
    p: torch.Tensor,
    sign_sum: torch.Tensor,
    count: torch.Tensor,
    target: float,
    images: int,
    ada_kimg: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One ADA update: r_t = E[sign(D(x_real))] over the interval (sign_sum / count), then
    p += sign(r_t - target) * images / (ada_kimg * 1000), clamped to [0, 1]; `images` is the
    number of reals D saw in the interval (global batch * interval). Returns (p, r_t)."""
    r_t = sign_sum / count.clamp(min=1)
    p = (p + torch.sign(r_t - target) * (images / (ada_kimg * 1000))).clamp(0.0, 1.0)
    return p, r_t
