"""`ganops bench train`: images per second of ganops' trainer vs a plain eager fp32 loop.

Both train the same G and D (train.arch at `image_size`, widths ngf = ndf = 64, z 100,
unconditional, non-saturating loss; dcgan: BatchNorm in D as in DCGAN, sagan: spectral norm in G
and D, resnet: SNGAN's spectrally normalised D) on random uint8 images for `warmup` + `steps`
steps and time the last `steps`. Without an image size, dcgan and sagan run at 64 px (DCGAN's),
resnet at 32 px (SNGAN's CIFAR-10 nets, the smallest it builds; BENCH_IMAGE_SIZE). The ganops
side is `fit_gan` itself, with the speed options of params.yaml's train section (precision,
channels_last, compile), which `--set train.KEY=VALUE` overrides. The plain side is
bench/plain_train.py.

Shared machines drift, so the implementations take turns `repeats` times and each reports the
median of its runs (all runs listed under "runs"). One JSON line per implementation.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
import tempfile
from pathlib import Path

from components.config import TrainConfig
from components.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
Z_DIM, WIDTH = 100, 64
BENCH_IMAGE_SIZE = {"dcgan": 64, "sagan": 64, "resnet": 32}  # px when none is asked for
SPECTRAL_NORM = {"dcgan": "none", "sagan": "both", "resnet": "d"}  # the least each arch takes


def bench_config(base: TrainConfig, arch: str, batch_size: int, steps: int) -> TrainConfig:
    """The benchmark's train config: the arch at DCGAN's widths and loss; speed options from
    `base`."""
    reg = base.reg.model_dump() | {
        "spectral_norm": SPECTRAL_NORM[arch],
        "diffaugment": "",
        "ada": False,
        "gp_weight": 0.0,
        "r1_gamma": 0.0,
        "label_smoothing": 0.0,
    }
    return TrainConfig.model_validate(
        {
            **base.model_dump(),
            "arch": arch,
            "batch_size": batch_size,
            "z_dim": Z_DIM,
            "g_channels": WIDTH,
            "d_channels": WIDTH,
            "loss": "ns",
            "reg": reg,
            "devices": 1,
            "nodes": 1,
            "kimg": 2 * steps * batch_size / 1000,  # warm-up window + timed window
            "log_every": steps,
            "sample_every_kimg": 1e9,
            "eval_every_kimg": 1e9,
            "ckpt_every_kimg": 1e9,
        }
    )


def _plain_module():
    path = REPO / "bench" / "plain_train.py"
    if not path.is_file():
        raise ConfigError(f"{path}: the plain baseline lives in bench/; run from a source checkout")
    spec = importlib.util.spec_from_file_location("ganops_bench_plain", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(
    base: TrainConfig,
    arch: str,
    image_size: int,
    channels: int,
    batch_size: int,
    steps: int,
    device_name: str,
    impls: tuple[str, ...] = ("ganops", "plain"),
    repeats: int = 3,
) -> list[dict]:
    import torch

    from components.train.gan import build_models, fit_gan
    from components.train.loop import Callbacks, can_compile, use_channels_last

    if device_name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is visible")
    device = torch.device(device_name)
    cfg = bench_config(base, arch, batch_size, steps)
    gen = torch.Generator().manual_seed(0)
    shape = (8 * batch_size, channels, image_size, image_size)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)
    plain = _plain_module() if "plain" in impls else None

    def once(impl: str) -> float:
        if impl == "ganops":
            with tempfile.TemporaryDirectory(prefix="ganops-bench-") as tmp:
                state = fit_gan(cfg, images.numpy(), None, 0, Path(tmp), Callbacks(), device=device)
            return state.history[-1]["img_per_s"]  # the second window: after the warm-up
        torch.manual_seed(cfg.seed)
        G, D = build_models(cfg, 0, channels, image_size)
        return plain.run(G, D, images, Z_DIM, batch_size, steps, device, steps)

    runs: dict[str, list[float]] = {impl: [] for impl in impls}
    for r in range(repeats):  # take turns, so drift on the machine hits every impl alike
        for impl in impls:
            runs[impl].append(round(once(impl), 1))
            print(f"bench: {impl} run {r + 1}/{repeats}: {runs[impl][-1]} img/s", file=sys.stderr)
    options = {
        "ganops": {
            "precision": cfg.precision,
            "channels_last": use_channels_last(cfg, device),
            "compile": can_compile(cfg, device),
        },
        "plain": {"precision": "fp32", "channels_last": False, "compile": False},
    }
    rows = []
    for impl in impls:
        rows.append(
            {
                "impl": impl,
                "img_per_s": round(statistics.median(runs[impl]), 1),
                "runs": runs[impl],
                "arch": arch,
                "image_size": image_size,
                "channels": channels,
                "batch_size": batch_size,
                "steps": steps,
                "device": device_name,
                "threads": torch.get_num_threads(),
                **options[impl],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


# ---------------------------------------------------------------------------------------------
# `ganops bench translate`: image -> image
# ---------------------------------------------------------------------------------------------

TRANSLATION_TEST_ROWS = 8  # test images per domain: the families' fixed grid inputs


def translation_bench_config(base: TrainConfig, arch: str, batch_size: int, steps: int):
    """The translation benchmark's train config: widths, blocks, lambdas, pool and speed options
    from `base`; least squares loss (the reference's default), no G_ema (the reference keeps
    none), one device, and no grids, probes or checkpoints inside the timed steps."""
    reg = base.reg.model_dump() | {
        "spectral_norm": "none",
        "diffaugment": "",
        "ada": False,
        "gp_weight": 0.0,
        "r1_gamma": 0.0,
        "label_smoothing": 0.0,
        "ema_half_life_kimg": 0.0,
    }
    return TrainConfig.model_validate(
        {
            **base.model_dump(),
            "arch": arch,
            "batch_size": batch_size,
            "loss": "lsgan",
            "reg": reg,
            "devices": 1,
            "nodes": 1,
            "kimg": 2 * steps * batch_size / 1000,  # warm-up window + timed window
            "log_every": steps,
            "sample_every_kimg": 1e9,
            "eval_every_kimg": 1e9,
            "ckpt_every_kimg": 1e9,
        }
    )


def random_translation_dataset(kind: str, n_train: int, channels: int, image_size: int):
    """A processed translation Dataset held in memory: random uint8 images, n_train train rows
    and TRANSLATION_TEST_ROWS test rows per domain; paired rows share a pair id."""
    import numpy as np
    import pandas as pd

    from components.dataset import Dataset

    n = n_train + TRANSLATION_TEST_ROWS  # rows per domain
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2 * n, channels, image_size, image_size), dtype=np.uint8)
    split = ["train"] * n_train + ["test"] * TRANSLATION_TEST_ROWS
    pair = np.tile(np.arange(n), 2) if kind == "paired" else np.full(2 * n, -1)
    meta = pd.DataFrame(
        {
            "label": -1,
            "split": split * 2,
            "readable": True,
            "domain": ["A"] * n + ["B"] * n,  # A rows first, then B
            "pair": pair,
        }
    )
    manifest = {"kind": kind, "class_names": [], "conditional": False, "image_size": image_size}
    return Dataset(images, meta, manifest)


def _plain_translation_module():
    path = REPO / "bench" / "plain_translation.py"
    if not path.is_file():
        raise ConfigError(f"{path}: the plain baseline lives in bench/; run from a source checkout")
    spec = importlib.util.spec_from_file_location("ganops_bench_plain_translation", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _translation_nets(cfg: TrainConfig, channels: int, image_size: int) -> dict:
    """The family's nets, built as it builds them (same spec, same seed), untrained."""
    import torch

    from components.train.cyclegan import translator_spec
    from components.translators import build_discriminator, build_generator

    spec = translator_spec(cfg, channels, channels, image_size)
    torch.manual_seed(cfg.seed)
    if cfg.arch == "pix2pix":
        return {"G_AB": build_generator(spec, "a2b"), "D_B": build_discriminator(spec, "b")}
    return {
        "G_AB": build_generator(spec, "a2b"),
        "G_BA": build_generator(spec, "b2a"),
        "D_A": build_discriminator(spec, "a"),
        "D_B": build_discriminator(spec, "b"),
    }


def run_translation(
    base: TrainConfig,
    arch: str,
    image_size: int,
    channels: int,
    batch_size: int,
    steps: int,
    device_name: str,
    impls: tuple[str, ...] = ("ganops", "plain"),
    repeats: int = 3,
) -> list[dict]:
    """Images/s of `fit` with the CycleGAN / pix2pix family vs bench/plain_translation.py, on the
    same nets and random uint8 data; one image = one a of A and one b of B through a whole step
    (both Gs and both Ds for cyclegan, G and D for pix2pix). Taking turns, medians, one JSON
    line per implementation, as `run`."""
    import torch

    from components.train.cyclegan import CycleGanFamily
    from components.train.loop import Callbacks, autocast_dtype, can_compile, fit, total_steps
    from components.train.pix2pix import Pix2PixFamily

    if device_name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is visible")
    device = torch.device(device_name)
    cfg = translation_bench_config(base, arch, batch_size, steps)
    assert total_steps(cfg) == 2 * steps, "kimg must give exactly warm-up + timed steps"
    kind = "paired" if arch == "pix2pix" else "unpaired"
    data = random_translation_dataset(kind, 8 * batch_size, channels, image_size)
    family_cls = Pix2PixFamily if arch == "pix2pix" else CycleGanFamily
    plain = _plain_translation_module() if "plain" in impls else None
    t = cfg.translation

    def once(impl: str) -> float:
        if impl == "ganops":
            family = family_cls(cfg, data, device)
            with tempfile.TemporaryDirectory(prefix="ganops-bench-") as tmp:
                state = fit(family, cfg, Path(tmp), Callbacks())
            return state.history[-1]["img_per_s"]  # the second window: after the warm-up
        images_a, _ = data.domain("A", "train")
        images_b, _ = data.domain("B", "train")
        return plain.run(
            arch,
            _translation_nets(cfg, channels, image_size),
            torch.from_numpy(images_a),
            torch.from_numpy(images_b),
            batch_size,
            steps,
            device,
            warmup=steps,
            lambda_cycle=t.lambda_cycle,
            lambda_idt=t.lambda_identity * t.lambda_cycle,  # same channels both ways
            lambda_l1=t.lambda_l1,
            pool_size=t.pool_size,
            lr=cfg.lr_g,
        )

    runs: dict[str, list[float]] = {impl: [] for impl in impls}
    for r in range(repeats):  # take turns, so drift on the machine hits every impl alike
        for impl in impls:
            runs[impl].append(round(once(impl), 1))
            print(f"bench: {impl} run {r + 1}/{repeats}: {runs[impl][-1]} img/s", file=sys.stderr)
    dtype = autocast_dtype(cfg, device)
    options = {
        "ganops": {
            "precision": str(dtype).removeprefix("torch.") if dtype else "fp32",
            "compile": can_compile(cfg, device),
            "adam": "fused" if device.type == "cuda" else "foreach",
            "data": "resident uint8",
        },
        "plain": {
            "precision": "fp32",
            "compile": False,
            "adam": "default",
            "data": "DataLoader float",
        },
    }
    rows = []
    for impl in impls:
        rows.append(
            {
                "impl": impl,
                "img_per_s": round(statistics.median(runs[impl]), 1),
                "runs": runs[impl],
                "arch": arch,
                "image_size": image_size,
                "channels": channels,
                "batch_size": batch_size,
                "steps": steps,
                "g_channels": cfg.g_channels,
                "d_channels": cfg.d_channels,
                "n_blocks": t.n_blocks if arch == "cyclegan" else None,
                "device": device_name,
                "threads": torch.get_num_threads(),
                **options[impl],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows
