"""Model: the text-to-image nets and their losses, on constructed cases."""

from __future__ import annotations

import math

import pytest
import torch

from components.families.text2image import nets


class LinearD(torch.nn.Module):
    """D(x, s) = <w, x> + <u, s>: its gradient is (w, u) wherever it is taken."""

    def __init__(self, w: torch.Tensor, u: torch.Tensor):
        super().__init__()
        self.w, self.u = w, u

    def forward(self, x, s):
        return (x.flatten(1) * self.w).sum(1) + (s * self.u).sum(1)


@pytest.mark.parametrize("power", [2.0, 6.0])
def test_matching_aware_penalty_equals_the_closed_form(power):
    """MA-GP = mean over real pairs of ||(dD/dx, dD/ds)||^p: for a linear D that is
    (|w|^2 + |u|^2)^(p/2), whatever the pair."""
    gen = torch.Generator().manual_seed(0)
    x, s = torch.randn(5, 3, 4, 4, generator=gen), torch.randn(5, 7, generator=gen)
    w, u = torch.randn(3 * 4 * 4, generator=gen), torch.randn(7, generator=gen)
    got = nets.matching_aware_gp(LinearD(w, u), x, s, power)
    want = (w.square().sum() + u.square().sum()) ** (power / 2)
    assert math.isclose(float(got), float(want), rel_tol=1e-5)


def test_penalty_sees_the_sentence_not_only_the_image():
    """A D that ignores the image still has a penalty: the gradient is taken w.r.t. s too."""
    x, s = torch.randn(4, 3, 4, 4), torch.randn(4, 7)
    u = torch.full((7,), 2.0)
    got = nets.matching_aware_gp(LinearD(torch.zeros(48), u), x, s, 2.0)
    assert math.isclose(float(got), float(u.square().sum()), rel_tol=1e-5)


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("condition", ["fusion", "projection"])
def test_generator_and_discriminator_shapes(size, condition):
    G = nets.Generator(z_dim=8, sentence_dim=16, channels=3, image_size=size, ngf=8)
    D = nets.Discriminator(sentence_dim=16, channels=3, image_size=size, ndf=8, condition=condition)
    z, s = torch.randn(2, 8), torch.randn(2, 16)
    img = G(z, s)
    assert img.shape == (2, 3, size, size) and img.abs().max() <= 1
    assert D(img, s).shape == (2,)
    with pytest.raises(AssertionError, match="expected shape"):
        G(z, torch.randn(3, 16))  # one sentence too many


def test_text_encoder_ignores_padding():
    """The sentence vector is the mean over the caption's words: padding changes nothing."""
    torch.manual_seed(0)
    enc = nets.TextEncoder(vocab_size=20, embed_dim=8, sentence_dim=8).eval()
    short = torch.tensor([[5, 6, 7, 0, 0, 0]])
    longer_pad = torch.tensor([[5, 6, 7, 0, 0, 0, 0, 0, 0]])
    other = torch.tensor([[8, 9, 10, 0, 0, 0]])
    a, b, c = enc(short), enc(longer_pad), enc(other)
    assert a.shape == (1, 8)
    torch.testing.assert_close(a, b)  # packed: the backward GRU never reads the padding
    assert not torch.allclose(a, c)


def test_contrastive_loss_is_low_for_matching_pairs():
    img = torch.eye(4) * 10
    assert nets.contrastive_loss(img, img.clone(), 0.1) < 1e-3
    assert nets.contrastive_loss(img, img.roll(1, 0), 0.1) > 5


@pytest.mark.parametrize("condition", ["fusion", "projection"])
def test_semantic_head_reads_a_sentence_without_changing_the_logit(condition):
    torch.manual_seed(0)
    D = nets.Discriminator(16, 3, 32, 8, condition, read_sentence=True).eval()
    x, s = torch.randn(3, 3, 32, 32), torch.randn(3, 16)
    logit, read = D(x, s, read=True)
    assert read.shape == (3, 16)
    torch.testing.assert_close(logit, D(x, s))
    torch.testing.assert_close(read, D(x, torch.randn(3, 16), read=True)[1])  # image alone
    with pytest.raises(TypeError):
        nets.Discriminator(16, 3, 32, 8, condition)(x, s, read=True)  # no head: no reading


def test_semantic_loss_is_one_minus_cosine():
    s = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    read = torch.tensor([[2.0, 0.0], [0.0, -1.0], [0.0, 5.0]])  # same, opposite, orthogonal
    torch.testing.assert_close(nets.semantic_loss(read, s), torch.tensor((0.0 + 2.0 + 1.0) / 3))


def test_encoder_features_branch_is_a_frozen_copy_that_the_logit_reads():
    torch.manual_seed(0)
    enc = nets.ImageEncoder(3, 32, 16)
    D = nets.Discriminator(16, 3, 32, 8, "fusion", read_sentence=True, encoder=enc)
    x, s = torch.randn(3, 3, 32, 32), torch.randn(3, 16)
    before = D(x, s)
    assert not any(p.requires_grad for p in D.aid.parameters())
    D.requires_grad_(False).requires_grad_(True)  # G's step freezes D, then thaws it
    assert not any(p.requires_grad for p in D.aid.parameters())
    assert all(p.requires_grad for p in D.body.parameters())
    with torch.no_grad():
        enc.body[0].weight.add_(1.0)  # the caller's encoder: D holds its own copy
    torch.testing.assert_close(D(x, s), before)
    with torch.no_grad():
        D.aid[0].weight.mul_(-1.0)  # D's copy: the logit reads its features
    assert not torch.allclose(D(x, s), before)
    x.requires_grad_(True)
    D(x, s).sum().backward()  # G's gradient passes through the frozen features
    assert x.grad.abs().sum() > 0 and all(p.grad is None for p in D.aid.parameters())


@pytest.mark.parametrize("condition", ["fusion", "projection"])
def test_mismatched_logits_in_the_same_pass_equal_a_separate_pass(condition):
    torch.manual_seed(0)
    D = nets.Discriminator(16, 3, 32, 8, condition, read_sentence=True).eval()
    x, s, other = torch.randn(3, 3, 32, 32), torch.randn(3, 16), torch.randn(3, 16)
    logit, read, mis = D(x, s, read=True, mismatched=other)
    torch.testing.assert_close(logit, D(x, s))
    torch.testing.assert_close(read, D(x, s, read=True)[1])
    torch.testing.assert_close(mis, D(x, other))
    logit2, mis2 = D(x, s, mismatched=other)
    torch.testing.assert_close(mis2, mis)
