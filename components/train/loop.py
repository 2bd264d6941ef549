"""The adversarial training loop: D step on real and G(z).detach(), then G step, then EMA.

The dataset stays resident on the device as uint8; batches are sampled by index on the device.
Losses accumulate on the device and are read back only every `log_every` steps (no per-step
host sync). Speed: bf16/fp16 autocast on CUDA with fp32 master weights (fp16 with a grad
scaler), channels_last, optional torch.compile, fused (CUDA) or foreach (CPU) Adam.
Scale-out: under torchrun, G and D are wrapped in DistributedDataParallel; every rank samples
its own share of the batch (seed + rank) and only rank 0 logs, probes and checkpoints.
Everything here is independent of MLflow: the caller passes callbacks.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from components.config import TrainConfig
from components.errors import TrainingDiverged
from components.models import Discriminator, Generator, init_weights
from components.train.augment import diff_augment, parse_policy
from components.train.checkpoint import load_checkpoint, save_checkpoint
from components.train.losses import LOSSES, gradient_penalty, r1_penalty

STAT_NAMES = ("d_loss", "g_loss", "D_x", "D_G_z", "d_grad_norm", "g_grad_norm")


def pick_device() -> torch.device:
    """cuda, then mps, then cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_models(cfg: TrainConfig, num_classes: int, channels: int, image_size: int):
    sn = cfg.reg.spectral_norm
    G = Generator(
        cfg.z_dim,
        num_classes,
        channels,
        image_size,
        cfg.g_channels,
        arch=cfg.arch,
        cond=cfg.g_cond,
        spectral_norm=sn in ("g", "both"),
    )
    D = Discriminator(
        num_classes,
        channels,
        image_size,
        cfg.d_channels,
        arch=cfg.arch,
        spectral_norm=sn in ("d", "both"),
    )
    G.apply(init_weights)
    D.apply(init_weights)
    return G, D


def generator_spec(cfg: TrainConfig, num_classes: int, channels: int, image_size: int) -> dict:
    """Everything needed to rebuild G from its weights (written beside the safetensors)."""
    return {
        "arch": cfg.arch,
        "g_cond": cfg.g_cond,
        "g_spectral_norm": cfg.reg.spectral_norm in ("g", "both"),
        "z_dim": cfg.z_dim,
        "num_classes": num_classes,
        "channels": channels,
        "image_size": image_size,
        "g_channels": cfg.g_channels,
    }


def autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of `train.precision` on this device; None means plain fp32."""
    if cfg.precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg.precision]


def use_channels_last(cfg: TrainConfig, device: torch.device) -> bool:
    """train.channels_last; auto = NHWC on CUDA and on CPU (oneDNN's convolutions: 1.23x at 64 px
    by bench/train_profile.py, no slower at 28 px), NCHW elsewhere."""
    if cfg.channels_last == "auto":
        return device.type in ("cuda", "cpu")
    return bool(cfg.channels_last)


def can_compile(cfg: TrainConfig, device: torch.device) -> bool:
    """train.compile, unless inductor has no C++ compiler to build CPU kernels with."""
    import shutil

    if cfg.compile and device.type == "cpu" and not shutil.which(os.environ.get("CXX", "g++")):
        print("train: warning: train.compile needs a C++ compiler (g++ or $CXX); training eagerly")
        return False
    return cfg.compile


def state_digest(*modules: torch.nn.Module) -> str:
    """sha256 over every tensor of the modules' state: equal digests, bit-identical weights."""
    h = hashlib.sha256()
    for module in modules:
        for name, tensor in sorted(module.state_dict().items()):
            h.update(name.encode())
            h.update(
                tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
            )
    return h.hexdigest()


@torch.no_grad()
def update_ema(G_ema: torch.nn.Module, G: torch.nn.Module, beta: float) -> None:
    for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
        p_ema.lerp_(p, 1.0 - beta)
    for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
        b_ema.copy_(b)


@dataclass
class TrainState:
    """What a checkpoint restores: models, optimisers, counters, history."""

    G: torch.nn.Module
    D: torch.nn.Module
    G_ema: torch.nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    config: dict = field(default_factory=dict)  # the resolved train config
    step: int = 0
    history: list[dict] = field(default_factory=list)
    probes: list[dict] = field(default_factory=list)
    best_metric: float = math.inf  # lowest probe FID so far
    best_step: int = -1
    best_G_ema: dict | None = None  # G_ema's state at best_step (CPU tensors)
    replica_digests: list[str] = field(default_factory=list)  # one per DDP rank, at the end

    @property
    def kimg(self) -> float:
        return self.step * self.config["batch_size"] / 1000


@dataclass
class Callbacks:
    log: Callable[[int, dict], None] = lambda step, stats: None
    sample: Callable[[int, torch.Tensor], None] = lambda step, images: None
    checkpoint_saved: Callable[[Path], None] = lambda path: None


def fixed_inputs(cfg: TrainConfig, num_classes: int, device: torch.device, per_class: int = 8):
    """The fixed noise batch for sample grids: one row per class, `per_class` seeds per row."""
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    rows = max(num_classes, 1)
    z = torch.randn(per_class, cfg.z_dim, generator=gen).repeat(rows, 1)  # (rows*k, z_dim)
    c = torch.arange(rows).repeat_interleave(per_class) if num_classes else None
    return z.to(device), (c.to(device) if c is not None else None)


def check_probe(state: TrainState, probe, callbacks: Callbacks) -> None:
    """Probe G_ema; keep it when it is the best so far; warn when classes go missing."""
    result = probe(state.G_ema)
    if result["probe_fid"] < state.best_metric:
        state.best_metric, state.best_step = result["probe_fid"], state.step
        state.best_G_ema = {
            k: v.detach().cpu().clone() for k, v in state.G_ema.state_dict().items()
        }
    covered = [h["probe_modes_covered"] for h in state.probes if "probe_modes_covered" in h]
    if "probe_modes_covered" in result and covered and result["probe_modes_covered"] < max(covered):
        print(
            f"train: warning: mode coverage fell to {result['probe_modes_covered']} classes "
            f"at step {state.step} (was {max(covered)}): possible mode collapse"
        )
    result["best_probe_fid"] = state.best_metric
    state.probes.append({"step": state.step, **result})
    callbacks.log(state.step, result)


def fit(
    cfg: TrainConfig,
    real_images: np.ndarray,
    labels: np.ndarray | None,
    num_classes: int,
    ckpt_dir: Path,
    callbacks: Callbacks,
    device: torch.device | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
    probe: Callable[[torch.nn.Module], dict] | None = None,
    rank: int = 0,
    world: int = 1,
) -> TrainState:
    """Train G and D on uint8 images (N, C, H, W); resume from `ckpt_dir` when it holds a state.

    With world > 1 (torchrun, process group initialised) this is one DDP rank; only rank 0
    should be given callbacks, progress and probe.
    """
    device = device or pick_device()
    seed_everything(cfg.seed)  # the same initial weights on every rank
    n, channels, image_size = len(real_images), real_images.shape[1], real_images.shape[2]
    G, D = build_models(cfg, num_classes, channels, image_size)
    memory_format = (
        torch.channels_last if use_channels_last(cfg, device) else torch.contiguous_format
    )
    G, D = G.to(device, memory_format=memory_format), D.to(device, memory_format=memory_format)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_kw = {"betas": (cfg.beta1, cfg.beta2)}
    opt_kw["fused" if device.type == "cuda" else "foreach"] = True
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.lr_g, **opt_kw)
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, **opt_kw)
    amp_dtype = autocast_dtype(cfg, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    state = TrainState(G, D, G_ema, opt_G, opt_D, scaler, cfg.model_dump(mode="json"))
    seed_everything(cfg.seed + rank)  # data, noise and augmentation differ per rank
    resumed = load_checkpoint(ckpt_dir, state)
    if resumed is not None:
        if world > 1:  # the checkpoint holds rank 0's RNG; give every rank its own stream again
            seed_everything(cfg.seed + rank + 1_000_003 * state.step)
        if rank == 0:
            print(f"train: resuming from {resumed} (step {state.step})", flush=True)

    # The modules the steps call: compiled and/or wrapped for DDP; `G`/`D` stay the plain ones.
    G_run, D_run = (torch.compile(G), torch.compile(D)) if can_compile(cfg, device) else (G, D)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        G_run, D_run = DDP(G_run, device_ids=ids), DDP(D_run, device_ids=ids)
    autocast = (
        torch.autocast(device.type, dtype=amp_dtype)
        if amp_dtype is not None
        else contextlib.nullcontext()
    )

    d_loss_fn, g_loss_fn = LOSSES[cfg.loss]
    reg = cfg.reg
    policy = parse_policy(reg.diffaugment)

    def aug(x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, policy) if policy else x

    reals = torch.from_numpy(real_images).to(device)  # (N, C, H, W) uint8, resident
    conds = torch.from_numpy(labels).to(device) if num_classes else None
    fixed_z, fixed_c = fixed_inputs(cfg, num_classes, device)
    batch = cfg.batch_size // world  # this rank's share of the step's images
    total_steps = math.ceil(cfg.kimg * 1000 / cfg.batch_size)
    steps_per = {
        k: max(1, round(getattr(cfg, f"{k}_every_kimg") * 1000 / cfg.batch_size))
        for k in ("sample", "ckpt", "eval")
    }
    ema_beta = 0.5 ** (cfg.batch_size / max(reg.ema_half_life_kimg * 1000, 1e-8))
    stats = torch.zeros(len(STAT_NAMES), device=device)
    window_start, window_steps = time.perf_counter(), 0

    if state.step == 0:
        callbacks.sample(0, reals[: len(fixed_z)])
    G.train()
    D.train()
    while state.step < total_steps:
        # Sample this rank's batch of reals by index on the device.
        idx = torch.randint(0, n, (batch,), device=device)
        real_img = reals[idx].float().div_(127.5).sub_(1.0)  # (B, C, H, W) in [-1, 1]
        real_img = real_img.contiguous(memory_format=memory_format)
        c = conds[idx] if conds is not None else None
        gen_c = conds[torch.randint(0, n, (batch,), device=device)] if conds is not None else None
        z = torch.randn(batch, cfg.z_dim, device=device)

        # D step: real vs G(z).detach()
        with autocast:
            gen_img = G_run(z, gen_c)
            d_real = D_run(aug(real_img), c).float()
            d_fake = D_run(aug(gen_img.detach()), gen_c).float()
            d_loss = d_loss_fn(d_real, d_fake, smoothing=reg.label_smoothing)
        if reg.gp_weight > 0:  # penalties in fp32: double backward is not autocast's business
            d_loss = d_loss + reg.gp_weight * gradient_penalty(
                D, real_img, gen_img.detach().float(), c
            )
        if reg.r1_gamma > 0 and state.step % reg.r1_every == 0:  # lazy: scaled by the interval
            d_loss = d_loss + (reg.r1_gamma / 2) * reg.r1_every * r1_penalty(D, aug(real_img), c)
        opt_D.zero_grad(set_to_none=True)
        scaler.scale(d_loss).backward()
        scaler.unscale_(opt_D)
        d_grad = torch.nn.utils.clip_grad_norm_(D.parameters(), math.inf)  # norm only, on device
        scaler.step(opt_D)

        # G step: fool the updated D (D's weights frozen; its gradients are not needed)
        D.requires_grad_(False)
        with D_run.no_sync() if world > 1 else contextlib.nullcontext(), autocast:
            g_loss = g_loss_fn(D_run(aug(gen_img), gen_c).float())
        opt_G.zero_grad(set_to_none=True)
        scaler.scale(g_loss).backward()
        D.requires_grad_(True)
        scaler.unscale_(opt_G)
        g_grad = torch.nn.utils.clip_grad_norm_(G.parameters(), math.inf)
        scaler.step(opt_G)
        scaler.update()

        update_ema(G_ema, G, ema_beta)
        state.step += 1
        window_steps += 1
        with torch.no_grad():
            stats += torch.stack(
                [
                    d_loss,
                    g_loss,
                    torch.sigmoid(d_real).mean(),
                    torch.sigmoid(d_fake).mean(),
                    d_grad,
                    g_grad,
                ]
            ).detach()

        done = state.step == total_steps
        if state.step % cfg.log_every == 0 or done:
            values = (stats / window_steps).tolist()  # the one host sync per log interval
            row = dict(zip(STAT_NAMES, values, strict=True))
            for name in STAT_NAMES:
                if not math.isfinite(row[name]):
                    raise TrainingDiverged(
                        f"train: {name} became {row[name]} by step {state.step}; "
                        "lower train.lr_g/lr_d or check the data"
                    )
            elapsed = time.perf_counter() - window_start
            row.update(
                step=state.step,
                kimg=state.kimg,
                img_per_s=window_steps * cfg.batch_size / max(elapsed, 1e-9),
            )
            state.history.append(row)
            callbacks.log(state.step, row)
            if progress:
                progress(state.step, total_steps, row)
            stats.zero_()
            window_start, window_steps = time.perf_counter(), 0
        if probe is not None and (state.step % steps_per["eval"] == 0 or done):
            check_probe(state, probe, callbacks)
        if state.step % steps_per["sample"] == 0 or done:
            with torch.no_grad():
                callbacks.sample(state.step, G_ema(fixed_z, fixed_c))
        if rank == 0 and (state.step % steps_per["ckpt"] == 0 or done):
            callbacks.checkpoint_saved(save_checkpoint(ckpt_dir, state))
    if world > 1:
        check_replicas(state)
    return state


def check_replicas(state: TrainState) -> None:
    """End of a DDP run: take rank 0's BatchNorm statistics everywhere (each rank's last forward
    updated them on its own batch), then compare every rank's weights by digest."""
    import torch.distributed as dist

    for module in (state.G, state.D, state.G_ema):
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)
    digests: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(digests, state_digest(state.G, state.D, state.G_ema))
    state.replica_digests = [str(d) for d in digests]
    if len(set(digests)) != 1:
        raise TrainingDiverged(f"train: DDP ranks ended with different weights: {digests}")
