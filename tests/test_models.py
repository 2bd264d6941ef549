"""Model: shapes, ranges, determinism and one real training step of G and D."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components.models import Discriminator, Generator, latents
from components.train.loop import Callbacks, fit


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("num_classes", [0, 10])
def test_shapes_and_range(size, num_classes):
    G = Generator(16, num_classes, 3, size, 32).eval()
    D = Discriminator(num_classes, 3, size, 32).eval()
    c = torch.randint(0, 10, (4,)) if num_classes else None
    img = G(torch.randn(4, 16), c)
    assert img.shape == (4, 3, size, size)
    assert img.min() >= -1 and img.max() <= 1
    logits = D(img, c)
    assert logits.shape == (4,) and torch.isfinite(logits).all()


def test_wrong_input_shape_is_caught():
    G = Generator(16, 10, 1, 28, 32)
    with pytest.raises(AssertionError, match="expected shape"):
        G(torch.randn(4, 8), torch.zeros(4, dtype=torch.long))


def test_same_seed_same_image_different_seed_different():
    G = Generator(16, 10, 1, 28, 32).eval()
    z = latents([1, 1, 2], 16)
    assert torch.equal(z[0], z[1]) and not torch.equal(z[0], z[2])
    # a seed's latent does not depend on its batch
    assert torch.equal(latents([2], 16)[0], z[2])
    with torch.no_grad():
        img = G(z, torch.tensor([3, 3, 3]))
    assert torch.equal(img[0], img[1]) and not torch.equal(img[0], img[2])


def test_truncation_bounds_latents():
    z = latents(range(50), 16, truncation=0.5)
    assert z.abs().max() <= 0.5


def test_training_moves_parameters_and_losses_are_finite(smoke_params, tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 1, 28, 28), dtype=np.uint8)
    labels = np.arange(64) % 10
    cfg = smoke_params.train.model_copy(update={"kimg": 0.32, "log_every": 2})
    torch.manual_seed(0)
    G0 = Generator(cfg.z_dim, 10, 1, 28, cfg.g_channels)
    logged = []
    state = fit(cfg, images, labels, 10, tmp_path, Callbacks(log=lambda s, r: logged.append(r)))
    assert state.step == 5
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in logged)
    before = dict(G0.named_parameters())
    moved = [not torch.equal(p, before[n]) for n, p in state.G.named_parameters()]
    assert any(moved)
    assert (tmp_path / "checkpoint-000000005.pt").is_file()


def test_checkpoint_resume_is_exact(smoke_params, tmp_path):
    """Train 6 steps in one go vs 3 + resume 3: bit-identical weights."""
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (64, 1, 28, 28), dtype=np.uint8)
    labels = np.arange(64) % 10
    base = {"batch_size": 16, "log_every": 1, "ckpt_every_kimg": 0.048}
    cfg6 = smoke_params.train.model_copy(update={**base, "kimg": 0.096})
    cfg3 = smoke_params.train.model_copy(update={**base, "kimg": 0.048})
    full = fit(cfg6, images, labels, 10, tmp_path / "a", Callbacks())
    fit(cfg3, images, labels, 10, tmp_path / "b", Callbacks())
    resumed = fit(cfg6, images, labels, 10, tmp_path / "b", Callbacks())
    assert resumed.step == full.step == 6
    for name in ("G", "D", "G_ema"):
        a, b = getattr(full, name).state_dict(), getattr(resumed, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name


@pytest.mark.parametrize(
    "update",
    [
        {"loss": "ns", "label_smoothing": 0.1},
        {"loss": "hinge", "spectral_norm_d": True},
        {"loss": "wgan", "gp_weight": 10.0},
        {"loss": "lsgan", "r1_gamma": 1.0, "r1_every": 2},
        {"loss": "ns", "diffaugment": "translation,cutout,color"},
    ],
    ids=lambda u: "-".join(f"{k}={v}" for k, v in u.items()),
)
def test_every_loss_and_regulariser_trains(smoke_params, tmp_path, update):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (32, 1, 28, 28), dtype=np.uint8)
    labels = np.arange(32) % 10
    cfg = smoke_params.train.model_copy(
        update={"kimg": 0.064, "batch_size": 16, "log_every": 1, **update}
    )
    logged = []
    state = fit(cfg, images, labels, 10, tmp_path, Callbacks(log=lambda s, r: logged.append(r)))
    assert state.step == 4
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in logged)
