"""GAN losses: a registry keyed by the name `train.loss` uses. Each takes D's logits."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

LossFn = Callable[..., torch.Tensor]


def ns_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating GAN (Goodfellow 2014): -log D(x) - log(1 - D(G(z)))."""
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def ns_g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: -log D(G(z))."""
    return F.softplus(-d_fake).mean()


LOSSES: dict[str, tuple[LossFn, LossFn]] = {
    "ns": (ns_d_loss, ns_g_loss),
}
