"""Code: the history pool, cycle/identity/L1 losses, the lr decay, no-op and collapse measures."""

from __future__ import annotations

import io

import pytest
import torch

from components.families.translation.common import (
    ImagePool,
    collapse_score,
    cycle_loss,
    identity_loss,
    l1_loss,
    linear_decay_factor,
    noop_distance,
)


def _fakes(batch: int, start: int) -> torch.Tensor:
    """A batch whose images are constant at distinct values start, start+1, ... (B, 1, 2, 2)."""
    return (
        torch.arange(start, start + batch, dtype=torch.float32)
        .view(-1, 1, 1, 1)
        .expand(-1, 1, 2, 2)
    )


def _ids(images: torch.Tensor) -> list[int]:
    return images[:, 0, 0, 0].long().tolist()


def test_pool_of_size_zero_passes_through():
    pool = ImagePool(0)
    fakes = _fakes(4, 0)
    assert pool.query(fakes) is fakes
    assert pool.state_dict()["num_images"] == 0


def test_pool_returns_the_new_images_while_it_fills_up():
    pool = ImagePool(5)
    assert _ids(pool.query(_fakes(3, 0))) == [0, 1, 2]
    assert pool.num_images == 3
    out = pool.query(_fakes(3, 10))  # two fill the pool, the third may be swapped
    assert pool.num_images == 5
    assert out.shape == (3, 1, 2, 2)
    assert _ids(out)[:2] == [10, 11]
    assert _ids(out)[2] in (12, 0, 1, 2, 10, 11)


def test_full_pool_mixes_new_and_old_images():
    torch.manual_seed(0)
    pool = ImagePool(50)
    pool.query(_fakes(50, 0))  # full: ids 0..49
    out = pool.query(_fakes(200, 100))  # ids 100..299
    swapped = sum(i != j for i, j in zip(_ids(out), range(100, 300), strict=True))
    assert out.shape == (200, 1, 2, 2)
    assert 70 < swapped < 130  # each image swapped for a stored one with p = 0.5
    assert any(i < 100 for i in _ids(out))  # some of them from before this batch
    assert pool.num_images == 50
    assert not out.requires_grad


def test_pool_state_round_trip_reproduces_the_future_given_the_rng_state():
    torch.manual_seed(1)
    pool = ImagePool(8)
    for step in range(3):
        pool.query(_fakes(4, 100 * step))
    buf = io.BytesIO()
    torch.save(pool.state_dict(), buf)  # as a checkpoint does
    rng = torch.get_rng_state()
    expected = [_ids(pool.query(_fakes(4, 1000 + 10 * k))) for k in range(5)]

    resumed = ImagePool(8)
    resumed.load_state_dict(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    torch.set_rng_state(rng)
    assert [_ids(resumed.query(_fakes(4, 1000 + 10 * k))) for k in range(5)] == expected
    assert any(i < 1000 for batch in expected for i in batch)  # history really came back

    fresh = ImagePool(8)  # without the pool's state the same RNG gives another history
    torch.set_rng_state(rng)
    assert [_ids(fresh.query(_fakes(4, 1000 + 10 * k))) for k in range(5)] != expected


def test_pool_state_of_another_size_is_rejected():
    with pytest.raises(ValueError, match="pool_size"):
        ImagePool(4).load_state_dict(ImagePool(8).state_dict())


def test_l1_losses_against_closed_form():
    real = torch.tensor([[[[0.0, 1.0], [-1.0, 0.5]]]])  # (1, 1, 2, 2)
    rec = torch.tensor([[[[0.5, 1.0], [0.0, -0.5]]]])
    expected = (0.5 + 0.0 + 1.0 + 1.0) / 4  # 0.625
    assert float(cycle_loss(rec, real)) == pytest.approx(expected)
    assert float(identity_loss(rec, real)) == pytest.approx(expected)
    assert float(l1_loss(real, real)) == 0.0
    assert float(cycle_loss(-real, real)) == pytest.approx(2 * 2.5 / 4)


def test_cycle_loss_has_the_l1_gradient():
    real = torch.zeros(1, 1, 1, 2)
    rec = torch.tensor([[[[0.3, -0.2]]]], requires_grad=True)
    cycle_loss(rec, real).backward()
    assert rec.grad.tolist() == [[[[0.5, -0.5]]]]  # sign / number of pixels


@pytest.mark.parametrize(
    ("step", "factor"),
    [(0, 1.0), (50, 1.0), (51, 0.98), (75, 0.5), (90, 0.2), (100, 0.0), (120, 0.0)],
)
def test_linear_decay_factor(step, factor):
    assert linear_decay_factor(step, 100) == pytest.approx(factor)


def test_linear_decay_factor_other_start():
    assert linear_decay_factor(20, 100, decay_start=0.0) == pytest.approx(0.8)
    assert linear_decay_factor(99, 100, decay_start=1.0) == 1.0
    assert linear_decay_factor(100, 100, decay_start=1.0) == 0.0
    with pytest.raises(ValueError, match="decay_start"):
        linear_decay_factor(0, 100, decay_start=1.5)


def test_noop_distance():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 8, 8, generator=gen) * 2 - 1
    assert noop_distance(x, x) == 0.0
    assert noop_distance(x, x + 0.25) == pytest.approx(0.25)
    assert noop_distance(x, x.expand(-1, 3, -1, -1)) == pytest.approx(0.0, abs=1e-6)  # channel mean


def test_collapse_score():
    gen = torch.Generator().manual_seed(0)
    inputs = torch.rand(8, 1, 8, 8, generator=gen) * 2 - 1
    constant = torch.full((8, 3, 8, 8), 0.3)
    assert collapse_score(constant, inputs) == pytest.approx(0.0, abs=1e-6)
    assert collapse_score(inputs, inputs) == pytest.approx(1.0)
    assert collapse_score(0.5 * inputs + 0.1, inputs) == pytest.approx(0.5)
    nearly = constant + 0.01 * inputs  # all outputs nearly the same
    assert collapse_score(nearly, inputs) < 0.05
    with pytest.raises(ValueError, match="at least two"):
        collapse_score(inputs[:1], inputs[:1])
