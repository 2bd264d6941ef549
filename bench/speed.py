"""`ganops bench train` and `ganops bench translate`: images per second of ganops' trainers vs
plain eager fp32 loops (plain_train.py, plain_translation.py, next to this file).

bench/ imports the library, never the reverse: `ganops bench ...` checks its options and runs
this file in a child interpreter from the source checkout (bench/ is not installed, so a
non-editable install has no benchmarks), with the same options:

    python bench/speed.py train [--arch dcgan] [--image-size 64] [--channels 1] \
        [--batch-size 128] [--steps 10] [--device cpu] [--impl ganops --impl plain] \
        [--repeats 3] [--params params.yaml] [--set train.KEY=VALUE ...]
    python bench/speed.py translate [--arch cyclegan] [--image-size 32] ...   (same options)

train: both sides train the same G and D (train.arch at `image_size`, widths ngf = ndf = 64, z
100, unconditional, non-saturating loss; dcgan: BatchNorm in D as in DCGAN, sagan: spectral norm
in G and D, resnet: SNGAN's spectrally normalised D) on random uint8 images for `warmup` +
`steps` steps and time the last `steps`. Without an image size, dcgan and sagan run at 64 px
(DCGAN's), resnet at 32 px (SNGAN's CIFAR-10 nets, the smallest it builds; BENCH_IMAGE_SIZE).
The ganops side is `fit_gan` itself, with the speed options of the params file's train section
(precision, channels_last, compile), which `--set train.KEY=VALUE` overrides. The plain side is
plain_train.py.

translate: the CycleGAN / pix2pix family's `fit` vs plain_translation.py (see run_translation).

Shared machines drift, so the implementations take turns `repeats` times and each reports the
median of its runs (all runs listed under "runs"). One JSON line per implementation on stdout,
progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import plain_train  # bench/ is this script's folder: sys.path[0]
import plain_translation
import torch
import typer

from components import signals
from components.config import TrainConfig, load_params
from components.dataset import Dataset
from components.errors import ConfigError, GanopsError
from components.families.noise.trainer import build_models, fit_gan
from components.families.translation.cyclegan import CycleGanFamily, translator_spec
from components.families.translation.nets import build_discriminator, build_generator
from components.families.translation.pix2pix import Pix2PixFamily
from components.train.loop import (
    Callbacks,
    autocast_dtype,
    can_compile,
    fit,
    total_steps,
    use_channels_last,
)

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
    return type(base).model_validate(  # the family's train model: the arch's keys
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
    """Images/s of `fit_gan` vs plain_train.py on the same G, D and random uint8 images
    (`bench_config`). Taking turns, medians, one JSON line per implementation."""
    if device_name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is visible")
    device = torch.device(device_name)
    cfg = bench_config(base, arch, batch_size, steps)
    gen = torch.Generator().manual_seed(0)
    shape = (8 * batch_size, channels, image_size, image_size)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)

    def once(impl: str) -> float:
        if impl == "ganops":
            with tempfile.TemporaryDirectory(prefix="ganops-bench-") as tmp:
                state = fit_gan(cfg, images.numpy(), None, 0, Path(tmp), Callbacks(), device=device)
            return state.history[-1]["img_per_s"]  # the second window: after the warm-up
        torch.manual_seed(cfg.seed)
        G, D = build_models(cfg, 0, channels, image_size)
        return plain_train.run(G, D, images, Z_DIM, batch_size, steps, device, steps)

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
    neutral = {
        "spectral_norm": "none",
        "diffaugment": "",
        "ada": False,
        "gp_weight": 0.0,
        "r1_gamma": 0.0,
        "label_smoothing": 0.0,
        "ema_half_life_kimg": 0.0,
    }
    reg = base.reg.model_dump()
    reg |= {key: value for key, value in neutral.items() if key in reg}  # those it has
    return type(base).model_validate(  # the family's train model: the arch's keys
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


def _translation_nets(cfg: TrainConfig, channels: int, image_size: int) -> dict:
    """The family's nets, built as it builds them (same spec, same seed), untrained."""
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
    """Images/s of `fit` with the CycleGAN / pix2pix family vs plain_translation.py, on the
    same nets and random uint8 data; one image = one a of A and one b of B through a whole step
    (both Gs and both Ds for cyclegan, G and D for pix2pix). Taking turns, medians, one JSON
    line per implementation, as `run`."""
    if device_name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is visible")
    device = torch.device(device_name)
    cfg = translation_bench_config(base, arch, batch_size, steps)
    assert total_steps(cfg) == 2 * steps, "kimg must give exactly warm-up + timed steps"
    kind = "paired" if arch == "pix2pix" else "unpaired"
    data = random_translation_dataset(kind, 8 * batch_size, channels, image_size)
    family_cls = Pix2PixFamily if arch == "pix2pix" else CycleGanFamily
    t = cfg.translation

    def once(impl: str) -> float:
        if impl == "ganops":
            family = family_cls(cfg, data, device)
            with tempfile.TemporaryDirectory(prefix="ganops-bench-") as tmp:
                state = fit(family, cfg, Path(tmp), Callbacks())
            return state.history[-1]["img_per_s"]  # the second window: after the warm-up
        images_a, _ = data.domain("A", "train")
        images_b, _ = data.domain("B", "train")
        return plain_translation.run(
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


# ---------------------------------------------------------------------------------------------
# the command line (what `ganops bench train|translate` runs)
# ---------------------------------------------------------------------------------------------

IMPLS = ("ganops", "plain")


def _at_least_1(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv: list[str] | None = None) -> None:
    """Parse, run, print; a user error prints one line and exits non-zero, as `ganops` does."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = ap.add_subparsers(dest="command", required=True)
    for name, archs, image_size, batch_size in (
        ("train", tuple(BENCH_IMAGE_SIZE), None, 128),
        ("translate", ("cyclegan", "pix2pix"), 32, 8),
    ):
        sub = commands.add_parser(name)
        sub.add_argument("--arch", choices=archs, default=archs[0])
        sub.add_argument("--image-size", type=int, default=image_size)
        sub.add_argument("--channels", type=int, choices=(1, 3), default=1)
        sub.add_argument("--batch-size", type=_at_least_1, default=batch_size)
        sub.add_argument("--steps", type=_at_least_1, default=10)
        sub.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
        sub.add_argument("--impl", action="append", choices=IMPLS, help="repeatable [both]")
        sub.add_argument("--repeats", type=_at_least_1, default=3)
        sub.add_argument("--params", type=Path, default=Path("params.yaml"))
        sub.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    a = ap.parse_args(argv)
    try:
        with signals.handled():  # SIGTERM unwinds like Ctrl-C: temp folders go
            base = load_params(a.params, a.set).train
            bench = run if a.command == "train" else run_translation
            image_size = a.image_size or BENCH_IMAGE_SIZE[a.arch]
            shape = (a.arch, image_size, a.channels, a.batch_size, a.steps, a.device)
            bench(base, *shape, tuple(a.impl or IMPLS), a.repeats)
    except GanopsError as err:
        typer.secho(f"error: {err}", fg="red", err=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)  # `ganops bench` says "interrupted"


if __name__ == "__main__":
    main()
