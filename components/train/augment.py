"""DiffAugment (Zhao et al. 2020): differentiable augmentations applied to every image D sees,
real and generated alike, in both the D and the G step. Helps D not overfit small datasets.

`train.diffaugment` names the policy: a comma-separated subset of translation, cutout, color
("" turns it off). Batched tensor ops only: no per-image Python loop, no host sync.
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
