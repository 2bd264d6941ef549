"""Code: every GAN loss, penalty, the EMA update and DiffAugment's ops against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from components.train.augment import color, cutout, translation
from components.train.loop import ema_beta, update_ema
from components.train.losses import LOSSES, gradient_penalty, r1_penalty

REAL = torch.tensor([2.0, -1.0])  # D's logits on reals
FAKE = torch.tensor([-3.0, 0.5])  # ... and on generated images


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


@pytest.mark.parametrize(
    ("name", "smoothing", "d_expected", "g_expected"),
    [
        # ns: BCE; real target 1 - s: (1-s) softplus(-x) + s softplus(x); fake: softplus(x)
        (
            "ns",
            0.0,
            (softplus(-2) + softplus(1)) / 2 + (softplus(-3) + softplus(0.5)) / 2,
            (softplus(3) + softplus(-0.5)) / 2,
        ),
        (
            "ns",
            0.1,
            (0.9 * softplus(-2) + 0.1 * softplus(2) + 0.9 * softplus(1) + 0.1 * softplus(-1)) / 2
            + (softplus(-3) + softplus(0.5)) / 2,
            (softplus(3) + softplus(-0.5)) / 2,
        ),
        # hinge: relu(1 - real) + relu(1 + fake); G: -fake
        ("hinge", 0.0, (0 + 2) / 2 + (0 + 1.5) / 2, -(-3 + 0.5) / 2),
        # wgan: mean fake - mean real; G: -fake
        ("wgan", 0.0, (-3 + 0.5) / 2 - (2 - 1) / 2, -(-3 + 0.5) / 2),
        # lsgan: 0.5 (real - (1-s))^2 + 0.5 fake^2; G: 0.5 (fake - 1)^2
        ("lsgan", 0.0, 0.5 * (1 + 4) / 2 + 0.5 * (9 + 0.25) / 2, 0.5 * (16 + 0.25) / 2),
        (
            "lsgan",
            0.2,
            0.5 * (1.2**2 + 1.8**2) / 2 + 0.5 * (9 + 0.25) / 2,
            0.5 * (16 + 0.25) / 2,
        ),
    ],
)
def test_losses_match_their_closed_form(name, smoothing, d_expected, g_expected):
    d_loss, g_loss = LOSSES[name]
    assert d_loss(REAL, FAKE, smoothing=smoothing).item() == pytest.approx(d_expected, rel=1e-6)
    assert g_loss(FAKE).item() == pytest.approx(g_expected, rel=1e-6)


def _linear_critic(weight: torch.Tensor):
    """D(x) = <w, x>: its input gradient is w everywhere."""
    return lambda x, c: (x * weight).flatten(1).sum(1)


def test_penalties_of_a_linear_critic():
    weight = torch.full((1, 1, 2, 2), 0.25)  # ||w|| = 0.5
    real, fake = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    D = _linear_critic(weight)
    assert gradient_penalty(D, real, fake, None).item() == pytest.approx((0.5 - 1) ** 2)
    assert r1_penalty(D, real, None).item() == pytest.approx(0.25)


def test_ema_update_and_half_life():
    G, G_ema = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    with torch.no_grad():
        G.weight.fill_(1.0)
        G_ema.weight.fill_(0.0)
    update_ema(G_ema, G, beta=0.9)  # 0.9 * 0 + 0.1 * 1
    assert torch.allclose(G_ema.weight, torch.full((2, 2), 0.1))
    beta = ema_beta(batch_size=64, half_life_kimg=1.0)
    assert beta ** (1000 / 64) == pytest.approx(0.5)  # half the weight gone after 1 kimg


def test_ema_copies_buffers():
    G, G_ema = torch.nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    G.running_mean.fill_(2.0)
    update_ema(G_ema, G, beta=0.99)
    assert torch.equal(G_ema.running_mean, G.running_mean)


def test_translation_shifts_with_zero_fill_and_is_identity_at_zero():
    torch.manual_seed(0)
    x = torch.rand(16, 1, 8, 8) + 1  # all > 0, so the zero fill is visible
    assert torch.equal(translation(x, ratio=0.0), x)
    out = translation(x, ratio=0.125)  # up to 1 px each way
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, [1, 1, 1, 1])
    for i in range(16):  # each image is one of the 9 one-pixel shifts of its input
        offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        shifts = [padded[i, :, 1 + dy : 9 + dy, 1 + dx : 9 + dx] for dy, dx in offsets]
        assert any(torch.equal(out[i], s) for s in shifts)


def test_cutout_zeroes_one_square_and_is_identity_at_zero():
    torch.manual_seed(0)
    x = torch.rand(16, 3, 8, 8) + 1
    assert torch.equal(cutout(x, ratio=0.0), x)
    out = cutout(x, ratio=0.5)  # a 4x4 square, clipped at the border
    assert out.shape == x.shape
    zero = out == 0
    assert torch.equal(out[~zero], x[~zero])  # everything else untouched
    per_image = zero[:, 0].flatten(1).sum(1)
    assert (per_image > 0).all() and (per_image <= 16).all()
    assert torch.equal(zero[:, 0], zero[:, 1])  # the same square in every channel


def test_color_shifts_a_flat_image_by_less_than_half():
    torch.manual_seed(0)
    x = torch.full((32, 1, 4, 4), 0.2)
    out = color(x)  # brightness +-0.5; saturation and contrast keep a flat image flat
    assert out.shape == x.shape
    assert torch.allclose(out, out.mean(dim=[1, 2, 3], keepdim=True).expand_as(out), atol=1e-6)
    shift = out[:, 0, 0, 0] - 0.2
    assert (shift.abs() <= 0.5).all() and shift.std() > 0.1
