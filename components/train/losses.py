"""GAN losses and regularisers. Losses are a registry keyed by the name `train.loss` uses;
each pair takes D's logits. Regularisers take D and its inputs and return a scalar penalty."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from components.config import ADA_BOUNDARY


def ns_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    """Non-saturating GAN (Goodfellow 2014): BCE with real target 1 - smoothing (one-sided)."""
    target = 1.0 - smoothing
    real = target * F.softplus(-d_real) + (1 - target) * F.softplus(d_real)
    return real.mean() + F.softplus(d_fake).mean()


def ns_g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """-log D(G(z))."""
    return F.softplus(-d_fake).mean()


def hinge_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor, smoothing: float = 0.0):
    """Hinge (Lim & Ye 2017; SAGAN)."""
    return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()


def wgan_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor, smoothing: float = 0.0):
    """Wasserstein critic loss (Arjovsky 2017); pair it with train.reg.gp_weight (WGAN-GP)."""
    return d_fake.mean() - d_real.mean()


def linear_g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """-D(G(z)): the generator loss of hinge and WGAN."""
    return -d_fake.mean()


def lsgan_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor, smoothing: float = 0.0):
    """Least squares (Mao 2017): real to 1 - smoothing, fake to 0."""
    return 0.5 * ((d_real - (1.0 - smoothing)) ** 2).mean() + 0.5 * (d_fake**2).mean()


def lsgan_g_loss(d_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((d_fake - 1.0) ** 2).mean()


LossFn = Callable[..., torch.Tensor]
LOSSES: dict[str, tuple[LossFn, LossFn]] = {
    "ns": (ns_d_loss, ns_g_loss),
    "hinge": (hinge_d_loss, linear_g_loss),
    "wgan": (wgan_d_loss, linear_g_loss),
    "lsgan": (lsgan_d_loss, lsgan_g_loss),
}
DECISION_BOUNDARY = ADA_BOUNDARY  # ADA's real/fake boundary per loss (one table, in config)


def gradient_penalty(D, real_img: torch.Tensor, gen_img: torch.Tensor, c) -> torch.Tensor:
    """WGAN-GP (Gulrajani 2017): (||grad D(x_hat)|| - 1)^2 on real/fake interpolates."""
    alpha = torch.rand(real_img.shape[0], 1, 1, 1, device=real_img.device)
    x_hat = (alpha * real_img + (1 - alpha) * gen_img).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat, c).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def r1_penalty(D, real_img: torch.Tensor, c) -> torch.Tensor:
    """R1 (Mescheder 2018): ||grad D(x)||^2 on reals."""
    real_img = real_img.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(real_img, c).sum(), real_img, create_graph=True)
    return grad.flatten(1).pow(2).sum(dim=1).mean()
