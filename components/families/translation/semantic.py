"""Semantic consistency (Hoffman et al. 2018, CyCADA): when both domains carry class labels, a
frozen classifier per domain, trained here on that domain's real train split, reads each
translation, and G pays cross-entropy when it does not read as the source's class. Labels stay
out of the generators (the pyfunc takes an image, never a label); they only tell G which
shapes must survive the translation. Unlabelled data trains as plain CycleGAN."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from components.families.translation.common import to_unit


def classifier(channels: int, n_classes: int, size: int) -> nn.Module:
    """A small all-convolutional digit-scale classifier, no normalisation and no dropout, so
    train and eval modes are the same net."""
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(32, 64, 3, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 3, 2, 1), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(128 * (size // 8) ** 2, n_classes),
    )  # fmt: skip


BATCH = 64  # images per classifier step


def classifier_epochs(n: int, epochs: int, min_steps: int) -> int:
    """Passes over n train images: `epochs`, or as many as make `min_steps` batches when the
    split is small (a classifier of 1,280 images is still weak after 5 passes of 20 steps)."""
    return max(epochs, math.ceil(min_steps / max(1, math.ceil(n / BATCH))))


def train_classifier(
    images: torch.Tensor, labels: torch.Tensor, n_classes: int, epochs: int, seed: int
) -> nn.Module:
    """A frozen classifier of uint8 images (N, C, S, S) with labels (N,), trained with +-2 px
    shifts for `epochs` passes. The global RNG is left as it was (the GAN's streams do not
    move), so a resumed run retrains the same classifier bit for bit."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        net = classifier(images.shape[1], n_classes, images.shape[2]).to(images.device)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        for _ in range(epochs):
            for idx in torch.randperm(len(images), generator=gen).split(BATCH):
                dy, dx = torch.randint(-2, 3, (2,), generator=gen).tolist()
                x = torch.roll(to_unit(images[idx.to(images.device)]), (dy, dx), (2, 3))
                loss = F.cross_entropy(net(x), labels[idx.to(labels.device)])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return net.eval().requires_grad_(False)


def semantic_loss(net: nn.Module, translated: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the target domain's classifier on translations of labelled sources
    (label -1: unlabelled, left out)."""
    keep = labels >= 0
    if not bool(keep.any()):
        return translated.new_zeros(())
    return F.cross_entropy(net(translated[keep]).float(), labels[keep])
