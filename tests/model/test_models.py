"""Model: architectures, losses and regularisers, precision, checkpoints and exact resume."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from components.config import load_params
from components.errors import ConfigError
from components.families.noise.nets import (
    CondBatchNorm2d,
    Discriminator,
    Generator,
    ResnetDiscriminator,
    ResnetGenerator,
    SelfAttention,
    init_weights,
    load_model_dir,
)
from components.families.noise.options import ARCH_SIZES
from components.families.noise.trainer import build_models, fit_gan, generator_spec
from components.seeds import latents
from components.train.checkpoint import latest_checkpoint
from components.train.loop import Callbacks
from tests.conftest import SMOKE, smoke_train

ARCHS = {  # name -> train overrides and the number of classes
    "dcgan-embed": ((), 10),
    "dcgan-cbn": (("g_cond=cbn",), 10),
    "dcgan-uncond": ((), 0),
    "sagan-cbn": (("arch=sagan", "g_cond=cbn", "reg.spectral_norm=both"), 10),
    "sagan-uncond": (("arch=sagan", "reg.spectral_norm=both"), 0),
}
RESNET = {  # shapes and the spec round trip; trained once, through the train stage
    "resnet-cbn": (("arch=resnet", "g_cond=cbn"), 10),
    "resnet-embed": (("arch=resnet",), 10),
    "resnet-uncond": (("arch=resnet",), 0),
}
TINY = ("g_channels=4", "d_channels=4")  # shapes only: seconds even at 256 px
SHAPE_CASES = [
    (name, size) for name in {**ARCHS, **RESNET} for size in ARCH_SIZES[name.split("-")[0]]
]


def _data(n: int = 32, size: int = 28, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 1, size, size), dtype=np.uint8), np.arange(n) % 10


def sized_train(size: int, *overrides: str):
    """The smoke profile's train config for images of `size` px (ingest.image_size)."""
    items = [f"ingest.image_size={size}", *(f"train.{item}" for item in overrides)]
    return load_params(SMOKE, items).train


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


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(("arch", "size"), SHAPE_CASES)
def test_shapes_and_range(arch, size, channels):
    """Every arch at every size it builds (config.ARCH_SIZES), with and without classes."""
    overrides, num_classes = {**ARCHS, **RESNET}[arch]
    cfg = sized_train(size, *overrides, *TINY)
    G, D = build_models(cfg, num_classes, channels, size)
    G, D = G.eval(), D.eval()
    c = torch.randint(0, 10, (4,)) if num_classes else None
    with torch.no_grad():
        img = G(torch.randn(4, cfg.z_dim), c)
        assert img.shape == (4, channels, size, size)
        assert img.min() >= -1 and img.max() <= 1
        logits = D(img, c)
    assert logits.shape == (4,) and torch.isfinite(logits).all()
    attention = [m for m in (*G.modules(), *D.modules()) if isinstance(m, SelfAttention)]
    assert len(attention) == (2 if cfg.arch == "sagan" else 0)
    if cfg.arch == "resnet":
        assert isinstance(G, ResnetGenerator) and isinstance(D, ResnetDiscriminator)


def test_arch_tables_match_the_config():
    """The sizes the config accepts per arch are exactly the ones the nets build."""
    from components.families.noise.nets import BASE_RES, RESNET_SIZES

    built = {"dcgan": tuple(sorted(BASE_RES)), "sagan": tuple(sorted(BASE_RES))}
    assert {**built, "resnet": RESNET_SIZES} == ARCH_SIZES


@pytest.mark.parametrize(
    ("arch", "size", "message"),
    [
        ("resnet", 28, "train.arch resnet cannot build ingest.image_size 28: resnet builds 32, "
         "64, 128, 256 px (dcgan or sagan builds 28)"),
        ("dcgan", 128, "train.arch dcgan cannot build ingest.image_size 128: dcgan builds 28, "
         "32, 64 px (resnet builds 128)"),
    ],
)  # fmt: skip
def test_a_size_the_arch_cannot_build_is_one_clear_error(arch, size, message):
    """Where the config cannot see the size (the data's), building the nets says the same."""
    cfg = sized_train(ARCH_SIZES[arch][0], f"arch={arch}")  # params at a size it builds
    with pytest.raises(ConfigError) as err:
        build_models(cfg, 10, 1, size)
    assert str(err.value) == message
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_params(SMOKE, [f"train.arch={arch}", f"ingest.image_size={size}"])


RESNET_WIDTHS = {  # size -> G's multipliers at 4x4 ... S, D's after each block (models docstring)
    32: ([8, 4, 2, 1], [1, 2, 4, 4]),
    64: ([16, 8, 4, 2, 1], [1, 2, 4, 8, 8]),
    128: ([16, 16, 8, 4, 2, 1], [1, 2, 4, 8, 16, 16]),  # BigGAN's 128 px table
    256: ([16, 16, 16, 8, 4, 2, 1], [1, 2, 4, 8, 16, 16, 16]),
}


@pytest.mark.parametrize("size", list(RESNET_WIDTHS))
def test_resnet_widths_follow_the_table(size):
    g_mult, d_mult = RESNET_WIDTHS[size]
    G = ResnetGenerator(8, 0, 3, size, 2)
    D = ResnetDiscriminator(10, 3, size, 3)
    g_widths = [G.project.out_features // 16] + [b.conv2.out_channels for b in G.blocks]
    assert g_widths == [2 * m for m in g_mult] and G.to_image.in_channels == 2
    assert [b.conv2.out_channels for b in D.blocks] == [3 * m for m in d_mult]
    assert len(G.blocks) == len(D.blocks) - 1 == size.bit_length() - 3  # one per doubling
    weights = [m for m in D.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    weights += [D.embed]
    assert all(torch.nn.utils.parametrize.is_parametrized(m) for m in weights)  # SN on all
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())


@pytest.mark.parametrize("spectral_norm", ["d", "both"])
def test_resnet_spec_round_trip(tmp_path, spectral_norm):
    """build, save as train does (generator.json + G_ema.safetensors), load_model_dir: the same
    images; the BN statistics and spectral norm's vectors travel with the weights."""
    cfg = sized_train(32, "arch=resnet", "g_cond=cbn", f"reg.spectral_norm={spectral_norm}", *TINY)
    G, _ = build_models(cfg, 10, 3, 32)
    c = torch.arange(6) % 10
    G(torch.randn(6, cfg.z_dim), c)  # a train-mode batch moves the BN stats (and SN's u)
    G.eval()
    spec = generator_spec(cfg, 10, 3, 32)
    (tmp_path / "generator.json").write_text(json.dumps(spec))
    save_file(G.state_dict(), str(tmp_path / "G_ema.safetensors"))
    loaded, loaded_spec = load_model_dir(tmp_path)
    assert loaded_spec == spec and isinstance(loaded, ResnetGenerator)
    assert not loaded.training
    z = latents(range(6), cfg.z_dim)
    with torch.no_grad():
        assert torch.equal(loaded(z, c), G(z, c))


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
        ("loss=lsgan", "reg.diffaugment=", "reg.ada=true", "reg.r1_gamma=1", "reg.r1_every=2"),
        ("loss=hinge", "reg.diffaugment=", "reg.ada=true", "precision=bf16", "reg.ada_interval=1"),
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


def assert_resume_is_exact(build, cfg, tmp_path, at: int) -> None:
    """`build()` makes a fresh trainer. The run of `cfg` in one go (a checkpoint at step `at`,
    half of it) vs a fresh trainer resumed from that checkpoint for the rest, as after a kill:
    every module, optimiser and the extra state (pools, scaler, batch stream) bit-identical."""
    import shutil

    from components.train.loop import fit

    full = build()
    fit(full, cfg, tmp_path / "a", Callbacks())
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / f"checkpoint-{at:09d}.pt", tmp_path / "b")
    again = build()
    assert fit(again, cfg, tmp_path / "b", Callbacks()).step == 2 * at
    for kind in ("modules", "optimizers"):
        mine, theirs = getattr(full, kind)(), getattr(again, kind)()
        for name in mine:
            assert_same_state(mine[name].state_dict(), theirs[name].state_dict(), name)
    assert_same_state(full.extra_state(), again.extra_state(), "extra")


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


# ADA with p updated every 2 steps and moving fast: the checkpoint at step 3 falls mid-interval
ADA_FAST = ("reg.diffaugment=", "reg.ada=true", "reg.ada_interval=2", "reg.ada_kimg=0.2")


@pytest.mark.parametrize("overrides", [(), ADA_FAST], ids=["diffaugment", "ada"])
def test_checkpoint_resume_is_exact(tmp_path, overrides):
    """Train 6 steps in one go vs 3 + resume 3: bit-identical nets, optimiser states and
    extra state (ADA's p, r_t and its half-counted interval), and the same logged rows."""
    images, labels = _data(64, seed=1)
    base = ("batch_size=16", "log_every=1", "ckpt_every_kimg=0.048", *overrides)
    cfg6, cfg3 = smoke_train(*base, "kimg=0.096"), smoke_train(*base, "kimg=0.048")
    full = fit_gan(cfg6, images, labels, 10, tmp_path / "a", Callbacks())
    fit_gan(cfg3, images, labels, 10, tmp_path / "b", Callbacks())
    resumed = fit_gan(cfg6, images, labels, 10, tmp_path / "b", Callbacks())
    assert resumed.step == full.step == 6
    for kind in ("modules", "optimizers"):
        mine, theirs = getattr(full.family, kind)(), getattr(resumed.family, kind)()
        for name in mine:
            assert_same_state(mine[name].state_dict(), theirs[name].state_dict(), f"{kind}.{name}")
    assert_same_state(full.family.extra_state(), resumed.family.extra_state(), "extra")
    drop_speed = [{k: v for k, v in row.items() if k != "img_per_s"} for row in full.history]
    assert drop_speed == [{k: v for k, v in r.items() if k != "img_per_s"} for r in resumed.history]
    if overrides:
        assert full.family.ada_p > 0, "p never moved: the test would not see a lost p"


def test_shorter_schedule_than_the_checkpoint_is_an_error(tmp_path):
    images, labels = _data(64, seed=1)
    base = ("batch_size=16", "log_every=1", "ckpt_every_kimg=0.048")
    fit_gan(smoke_train(*base, "kimg=0.096"), images, labels, 10, tmp_path, Callbacks())
    with pytest.raises(ConfigError, match="train.kimg: 0.048 is behind the checkpoint"):
        fit_gan(smoke_train(*base, "kimg=0.048"), images, labels, 10, tmp_path, Callbacks())


def test_resnet_trains_through_the_train_stage(project, smoke_params):
    """`train` on digits ingested at 32 px, a few steps of arch resnet: models/ holds a resnet
    generator that load_model_dir rebuilds (what evaluate, register, serve and export use)."""
    from components import ingest, train
    from components.layout import Layout, read_json

    layout = Layout(project)
    digits32 = smoke_params.ingest.model_copy(update={"source": "digits", "image_size": 32})
    ingest.run(digits32, layout)
    steps = ("batch_size=16", "kimg=0.048", "log_every=1", "ckpt_every_kimg=0.048")
    cfg = sized_train(32, "arch=resnet", "g_cond=cbn", *TINY, *steps)
    summary = train.run(cfg, layout)
    assert summary["steps"] == 3 and np.isfinite([summary["d_loss"], summary["g_loss"]]).all()
    assert read_json(layout.models / "generator.json")["arch"] == "resnet"
    G, spec = load_model_dir(layout.models)
    assert isinstance(G, ResnetGenerator) and spec["image_size"] == 32
    with torch.no_grad():
        img = G(latents([0, 1], spec["z_dim"]), torch.tensor([0, 1]))
    assert img.shape == (2, 1, 32, 32) and img.abs().max() <= 1
