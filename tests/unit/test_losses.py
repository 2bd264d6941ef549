"""Code: every GAN loss, penalty, the EMA update, DiffAugment's and ADA's ops and ADA's p update
against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from components.config import ADA_LOSSES
from components.families.noise.augment import (
    ada_adjust,
    ada_augment,
    ada_brightness,
    ada_contrast,
    ada_cutout,
    ada_rotate90,
    ada_saturation,
    ada_translation,
    ada_xflip,
    color,
    cutout,
    translation,
)
from components.train.loop import ema_beta, update_ema
from components.train.losses import DECISION_BOUNDARY, LOSSES, gradient_penalty, r1_penalty

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


# -- ADA ------------------------------------------------------------------------------------------
ALWAYS, NEVER = torch.tensor(1.0), torch.tensor(0.0)  # p


def test_ada_at_p_zero_is_the_identity_and_draws_as_many_numbers():
    """p = 0 leaves every image exactly as it was, yet consumes the RNG as p = 1 does, so an
    exact resume never depends on p."""
    x = torch.randn(8, 3, 8, 8)
    torch.manual_seed(0)
    assert torch.equal(ada_augment(x, NEVER), x)
    after_zero = torch.rand(1)
    torch.manual_seed(0)
    ada_augment(x, ALWAYS)
    assert torch.equal(torch.rand(1), after_zero)


def test_ada_xflip_and_rotate90_are_torch_flip_and_rot90_per_image():
    x = torch.randn(32, 2, 6, 6)
    flipped = ada_xflip(x, ALWAYS)
    mirrored = torch.tensor([torch.equal(f, m) for f, m in zip(flipped, x.flip(3), strict=True)])
    kept = torch.tensor([torch.equal(f, o) for f, o in zip(flipped, x, strict=True)])
    assert (mirrored | kept).all() and mirrored.any() and kept.any()  # each image one or other
    torch.manual_seed(1)
    out = ada_rotate90(x, ALWAYS)
    torch.manual_seed(1)
    k = torch.randint(0, 4, (32,))  # the op's first draw
    assert set(k.tolist()) == {0, 1, 2, 3}
    for i in range(32):
        assert torch.equal(out[i], torch.rot90(x[i], int(k[i]), dims=(1, 2))), int(k[i])


def test_ada_translation_is_a_whole_pixel_shift_with_reflection():
    torch.manual_seed(0)
    x = torch.randn(32, 1, 8, 8)
    out = ada_translation(x, ALWAYS)  # up to 1 px each way (8 / 8)
    reflected = torch.nn.functional.pad(x, [1, 1, 1, 1], mode="reflect")
    offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    seen = set()
    for i in range(32):
        shifts = [reflected[i, :, 1 - dy : 9 - dy, 1 - dx : 9 - dx] for dy, dx in offsets]
        match = [o for o, s in zip(offsets, shifts, strict=True) if torch.equal(out[i], s)]
        assert match, i
        seen.add(match[0])
    assert len(seen) == 9  # every shift occurs


def test_ada_colour_ops_keep_their_closed_form():
    torch.manual_seed(0)
    flat = torch.full((64, 1, 4, 4), 0.3)
    shift = ada_brightness(flat, ALWAYS)[:, 0, 0, 0] - 0.3  # b ~ N(0, 0.2), per image
    assert shift.std().item() == pytest.approx(0.2, rel=0.3) and shift.abs().max() > 0
    x = torch.randn(64, 1, 4, 4)
    ratio = ada_contrast(x, ALWAYS) / x  # one c = 2^N(0, 0.5) > 0 per image
    assert torch.allclose(ratio, ratio[:, :1, :1, :1].expand_as(ratio), rtol=1e-4)
    assert (ratio > 0).all() and ratio.log2().std() > 0.2
    rgb = torch.randn(64, 3, 4, 4)
    torch.manual_seed(1)
    out = ada_saturation(rgb, ALWAYS)  # grey kept, colour scaled by s = 2^N(0, 1) per image
    torch.manual_seed(1)
    s = torch.exp2(torch.randn(64)).view(-1, 1, 1, 1)  # the op's first draw
    grey = rgb.mean(1, keepdim=True)
    assert torch.allclose(out, grey + s * (rgb - grey), atol=1e-5)


def test_ada_cutout_zeroes_at_most_a_half_side_square():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 8, 8) + 1
    out = ada_cutout(x, ALWAYS)
    zero = out == 0
    assert torch.equal(out[~zero], x[~zero]) and torch.equal(zero[:, 0], zero[:, 2])
    per_image = zero[:, 0].flatten(1).sum(1)
    assert per_image.max() == 16 and (per_image > 0).all()  # 4x4, clipped at the border


def test_ada_applies_each_op_to_about_p_of_the_images_and_passes_gradients():
    torch.manual_seed(0)
    x = torch.randn(4000, 1, 4, 4)
    flipped = ~torch.isclose(ada_xflip(x, torch.tensor(0.3)), x).flatten(1).all(1)
    assert flipped.float().mean().item() == pytest.approx(0.15, abs=0.02)  # chosen, then a coin
    x = torch.randn(8, 3, 8, 8, requires_grad=True)
    ada_augment(x, torch.tensor(0.5)).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("p", "signs", "count", "expected_p", "expected_r_t"),
    [
        (0.0, 48.0, 64.0, 0.256, 0.75),  # r_t 0.75 > 0.6: up by 64 * 4 / (1 * 1000)
        (0.5, 0.0, 64.0, 0.244, 0.0),  # r_t 0 < 0.6: down by the same step
        (0.1, -64.0, 64.0, 0.0, -1.0),  # clamped at 0
        (0.9, 64.0, 64.0, 1.0, 1.0),  # clamped at 1
        (0.5, 38.4, 64.0, 0.5, 0.6),  # r_t on target: p stays
    ],
)
def test_ada_adjust_moves_p_one_step_towards_the_target(p, signs, count, expected_p, expected_r_t):
    new_p, r_t = ada_adjust(
        torch.tensor(p), torch.tensor(signs), torch.tensor(count), 0.6, 64 * 4, 1.0
    )
    assert r_t.item() == pytest.approx(expected_r_t, abs=1e-6)
    assert new_p.item() == pytest.approx(expected_p, abs=1e-6)


def test_ada_losses_each_have_a_decision_boundary():
    assert set(DECISION_BOUNDARY) == set(ADA_LOSSES) < set(LOSSES)
