"""Model: architectures, losses and regularisers, precision, checkpoints and exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components.errors import ConfigError
from components.models import (
    CondBatchNorm2d,
    Discriminator,
    Generator,
    SelfAttention,
    init_weights,
    latents,
)
from components.train.checkpoint import latest_checkpoint
from components.train.gan import build_models, fit_gan
from components.train.loop import Callbacks
from tests.conftest import smoke_train

ARCHS = {  # name -> train overrides and the number of classes
    "dcgan-embed": ((), 10),
    "dcgan-cbn": (("g_cond=cbn",), 10),
    "dcgan-uncond": ((), 0),
    "sagan-cbn": (("arch=sagan", "g_cond=cbn", "reg.spectral_norm=both"), 10),
    "sagan-uncond": (("arch=sagan", "reg.spectral_norm=both"), 0),
}


def _data(n: int = 32, size: int = 28, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 1, size, size), dtype=np.uint8), np.arange(n) % 10


def _train(tmp_path, overrides, num_classes=10, n=32, size=28, **kw):
    images, labels = _data(n, size)
    cfg = smoke_train("batch_size=16", "log_every=1", "kimg=0.048", *overrides)
    logged: list[dict] = []
    state = fit_gan(
        cfg,
        images,
        labels if num_classes else None,
        num_classes,
        tmp_path,
        Callbacks(log=lambda step, row: logged.append(row)),
        **kw,
    )
    return cfg, state, logged


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("size", [28, 32, 64])
def test_shapes_and_range(arch, size):
    overrides, num_classes = ARCHS[arch]
    cfg = smoke_train(*overrides)
    G, D = build_models(cfg, num_classes, 3, size)
    G, D = G.eval(), D.eval()
    c = torch.randint(0, 10, (4,)) if num_classes else None
    img = G(torch.randn(4, cfg.z_dim), c)
    assert img.shape == (4, 3, size, size)
    assert img.min() >= -1 and img.max() <= 1
    logits = D(img, c)
    assert logits.shape == (4,) and torch.isfinite(logits).all()
    attention = [m for m in (*G.modules(), *D.modules()) if isinstance(m, SelfAttention)]
    assert len(attention) == (2 if cfg.arch == "sagan" else 0)


def test_canonical_dcgan_widths():
    """ngf = ndf = 64 at 64 px: 512-256-128-64 in G, 64-128-256-512 in D (Radford et al.)."""
    G = Generator(100, 0, 3, 64, 64)
    D = Discriminator(0, 3, 64, 64)
    g_widths = [G.width] + [b.conv.out_channels for b in G.blocks]
    d_widths = [m.out_channels for m in D.features if isinstance(m, torch.nn.Conv2d)]
    assert g_widths == [512, 256, 128, 64] and d_widths == [64, 128, 256, 512]


def test_wrong_input_shape_is_caught():
    G = Generator(16, 10, 1, 28, 32)
    with pytest.raises(AssertionError, match="expected shape"):
        G(torch.randn(4, 8), torch.zeros(4, dtype=torch.long))


def test_conditional_batchnorm_uses_the_label():
    G = Generator(16, 10, 1, 28, 16, cond="cbn")
    G.apply(init_weights)
    G.eval()
    assert G.embed is None  # the label enters through the norms only
    norms = [m for m in G.modules() if isinstance(m, CondBatchNorm2d)]
    assert len(norms) == 2  # after the projection and in the one 7->14 block (28 px)
    with torch.no_grad():
        e = G.class_embed.weight  # (10, COND_DIM): one shared row per class
        assert 0.4 < e.std() < 0.6
        for norm in norms:  # every class starts near plain BatchNorm, each a little apart
            gain = 1 + norm.gain(e)
            assert abs(gain.mean() - 1) < 0.1 and 0.02 < gain.std() < 0.3
        a, b = G(latents([7, 7], 16), torch.tensor([1, 2]))
    assert not torch.equal(a, b)


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


@pytest.mark.parametrize("loss", ["ns", "hinge", "wgan", "lsgan"])
@pytest.mark.parametrize("arch", list(ARCHS))
def test_every_arch_and_loss_trains(tmp_path, arch, loss):
    overrides, num_classes = ARCHS[arch]
    torch.manual_seed(0)
    cfg0 = smoke_train(*overrides)
    G0, D0 = build_models(cfg0, num_classes, 1, 28)  # fit's initial weights (same seed)
    cfg, state, logged = _train(tmp_path, (*overrides, f"loss={loss}"), num_classes)
    assert state.step == 3 and len(logged) == 3
    assert all(np.isfinite(row[k]) for row in logged for k in ("d_loss", "g_loss"))
    for net, before in ((state.module("G"), G0), (state.module("D"), D0)):
        start = dict(before.named_parameters())
        moved = [not torch.equal(p.cpu(), start[n]) for n, p in net.named_parameters()]
        assert sum(moved) >= len(moved) // 2, f"{sum(moved)}/{len(moved)} parameters moved"


@pytest.mark.parametrize(
    "overrides",
    [
        ("loss=ns", "reg.label_smoothing=0.1"),
        ("loss=hinge", "reg.spectral_norm=both"),
        ("loss=wgan", "reg.gp_weight=10", "reg.spectral_norm=none"),
        ("loss=lsgan", "reg.r1_gamma=1", "reg.r1_every=2"),
        ("loss=ns", "reg.diffaugment=translation,cutout,color"),
        ("loss=ns", "precision=bf16", "channels_last=true"),
    ],
    ids=lambda o: ",".join(o),
)
def test_every_regulariser_and_speed_option_trains(tmp_path, overrides):
    _, state, logged = _train(tmp_path, overrides)
    assert state.step == 3
    assert all(np.isfinite(row["d_loss"]) and np.isfinite(row["g_loss"]) for row in logged)


def test_fp16_checkpoint_holds_the_grad_scaler(tmp_path):
    cfg, state, _ = _train(tmp_path, ("precision=fp16",))
    scaler = state.family.scaler
    assert scaler.is_enabled()
    payload = torch.load(latest_checkpoint(tmp_path), weights_only=True)
    assert payload["extra"]["scaler"]["scale"] == scaler.get_scale()
    assert payload["config"] == cfg.model_dump(mode="json")
    assert payload["kimg"] == pytest.approx(0.048)
    assert set(payload["rng"]) == {"torch", "cuda", "numpy", "python"}


def assert_same_state(a, b, where: str = "state") -> None:
    """Every tensor equal (torch.equal) and every other value equal, through nested containers."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), f"{where} differs"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: keys differ"
        for key in a:
            assert_same_state(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_state_comparison_sees_what_str_hides():
    """str() of a large tensor elides its middle: a difference there is invisible to it."""
    a = {"state": {0: {"exp_avg": torch.zeros(2000), "step": torch.tensor(3.0)}}}
    b = {"state": {0: {"exp_avg": torch.zeros(2000), "step": torch.tensor(3.0)}}}
    b["state"][0]["exp_avg"][1000] = 1e-3
    assert str(a) == str(b)
    with pytest.raises(AssertionError, match="exp_avg"):
        assert_same_state(a, b)


def test_checkpoint_resume_is_exact(tmp_path):
    """Train 6 steps in one go vs 3 + resume 3: bit-identical nets and optimiser states."""
    images, labels = _data(64, seed=1)
    base = ("batch_size=16", "log_every=1", "ckpt_every_kimg=0.048")
    cfg6, cfg3 = smoke_train(*base, "kimg=0.096"), smoke_train(*base, "kimg=0.048")
    full = fit_gan(cfg6, images, labels, 10, tmp_path / "a", Callbacks())
    fit_gan(cfg3, images, labels, 10, tmp_path / "b", Callbacks())
    resumed = fit_gan(cfg6, images, labels, 10, tmp_path / "b", Callbacks())
    assert resumed.step == full.step == 6
    for kind in ("modules", "optimizers"):
        mine, theirs = getattr(full.family, kind)(), getattr(resumed.family, kind)()
        for name in mine:
            assert_same_state(mine[name].state_dict(), theirs[name].state_dict(), f"{kind}.{name}")


def test_shorter_schedule_than_the_checkpoint_is_an_error(tmp_path):
    images, labels = _data(64, seed=1)
    base = ("batch_size=16", "log_every=1", "ckpt_every_kimg=0.048")
    fit_gan(smoke_train(*base, "kimg=0.096"), images, labels, 10, tmp_path, Callbacks())
    with pytest.raises(ConfigError, match="train.kimg: 0.048 is behind the checkpoint"):
        fit_gan(smoke_train(*base, "kimg=0.048"), images, labels, 10, tmp_path, Callbacks())
