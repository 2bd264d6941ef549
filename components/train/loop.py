"""The schedule every model family shares: kimg, progress, logging, NaN guard, probe, sample
grids, checkpoints, resume and graceful stop. A family (gan.py: noise -> image; translation
families beside it) supplies its nets, optimisers and a `step()` that returns its losses; the
loop never looks inside a step.

Losses accumulate on the device and are read back only every `log_every` steps (no per-step host
sync). Everything here is independent of MLflow: the caller passes callbacks.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from components import signals
from components.config import TrainConfig
from components.errors import ConfigError, TrainingDiverged, TrainingInterrupted
from components.seeds import rank_seed
from components.train.checkpoint import load_checkpoint, save_checkpoint


class Family(Protocol):
    """What the schedule needs from a model family (see gan.GanFamily)."""

    stat_names: tuple[str, ...]  # names of the values step() returns, in order
    device: torch.device

    def modules(self) -> dict[str, torch.nn.Module]:
        """The checkpointed nets by name (plain modules, not DDP/compiled wrappers)."""

    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...

    def extra_state(self) -> dict:
        """Everything else a resume needs (grad scaler, fake pools, ...): tensors and plain data."""

    def load_extra_state(self, state: dict) -> None: ...

    def step(self, step: int) -> torch.Tensor:
        """One training iteration (draws its own batch); (len(stat_names),) detached losses."""

    def probe_module(self) -> torch.nn.Module:
        """What the probe measures and the best checkpoint keeps (G_ema)."""

    def samples(self) -> torch.Tensor:
        """The fixed-input sample grid batch, (N, C, H, W) in [-1, 1]."""

    def real_samples(self) -> torch.Tensor:
        """The grid of reals shown once at the start."""

    grid_rows: int  # rows of the sample grids

    def model_files(self, best_state: dict | None) -> dict[str, dict]:
        """What models/ receives, {file stem: state dict}: the probe's best state where it
        replaces the probe module's, and that module's last state beside it as `<name>_last`."""


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


def autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of `train.precision` on this device; None means plain fp32."""
    if cfg.precision == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg.precision]


def autocast_context(cfg: TrainConfig, device: torch.device):
    dtype = autocast_dtype(cfg, device)
    return torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()


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


def adam(params, lr: float, cfg: TrainConfig, device: torch.device) -> torch.optim.Adam:
    """Adam over `params` with train.beta1/beta2: fused on CUDA, foreach elsewhere."""
    impl = "fused" if device.type == "cuda" else "foreach"
    betas = (cfg.beta1, cfg.beta2)
    return torch.optim.Adam(params, lr=lr, betas=betas, **{impl: True})


class GlobalBatchNorm(torch.nn.BatchNorm2d):
    """BatchNorm2d whose training statistics span every DDP rank's share of the batch, so a DDP
    step normalises exactly as one process holding the whole batch does. torch's SyncBatchNorm
    runs on CUDA only; this one runs on any backend (gloo on CPU), for equal per-rank shares
    (as DDP steps here have): two autograd-aware all-reduces per call (the mean, then the
    centred sum of squares, as a two-pass variance). In eval mode it is BatchNorm2d (running
    statistics). Same parameters and buffers, so its state_dict loads into BatchNorm2d and back."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        import warnings

        import torch.distributed as dist
        from torch.distributed.nn.functional import all_reduce

        # values per channel over all ranks: every rank holds an equal share of the batch
        # (train.batch_size divides evenly, checked at config load), so no count to all-reduce
        n = x.numel() / x.shape[1] * dist.get_world_size()
        with warnings.catch_warnings():  # its suggested successor has no autograd for all_reduce
            warnings.simplefilter("ignore", FutureWarning)
            mean = all_reduce(x.sum(dim=(0, 2, 3))) / n  # (C,)
            centred = x - mean[None, :, None, None]
            var = all_reduce(centred.square().sum(dim=(0, 2, 3))) / n  # (C,) biased, as BN
        y = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1 / self.num_batches_tracked
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), m)
                unbiased = var.detach() * n / max(n - 1, 1)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), m)
        return y


def sync_batchnorm(module: torch.nn.Module, device: torch.device) -> None:
    """Make every BatchNorm2d in `module` normalise over all DDP ranks, in place: torch's
    SyncBatchNorm on CUDA, GlobalBatchNorm elsewhere. The new modules hold the old parameter
    and buffer objects (names unchanged), so optimisers built before keep updating them."""
    for name, child in module.named_children():
        if type(child) is torch.nn.BatchNorm2d:
            if device.type == "cuda":
                new = torch.nn.SyncBatchNorm.convert_sync_batchnorm(child)
            else:
                new = GlobalBatchNorm(
                    child.num_features, child.eps, child.momentum, child.affine,
                    child.track_running_stats, device=device,
                )  # fmt: skip
                # the same Parameter and buffer objects: optimisers already hold them
                for key, value in [*child.named_parameters(), *child.named_buffers()]:
                    setattr(new, key, value)
            setattr(module, name, new)
        else:
            sync_batchnorm(child, device)


def wrap_for_run(module: torch.nn.Module, cfg: TrainConfig, device: torch.device, world: int):
    """The module a step calls: compiled and/or wrapped for DDP; the plain one is checkpointed.
    Under DDP its BatchNorms first become cross-rank ones (in place, same parameter names)."""
    if world > 1:
        sync_batchnorm(module, device)
    run = torch.compile(module) if can_compile(cfg, device) else module
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        run = DDP(run, device_ids=[device.index] if device.type == "cuda" else None)
    return run


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
    """G_ema <- beta * G_ema + (1 - beta) * G for parameters; buffers are copied."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
        p_ema.lerp_(p, 1.0 - beta)
    for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
        b_ema.copy_(b)


def ema_beta(batch_size: int, half_life_kimg: float) -> float:
    """Per-step EMA decay for a half-life in kimg: after half_life_kimg*1000 images, weight 0.5."""
    return 0.5 ** (batch_size / max(half_life_kimg * 1000, 1e-8))


def grad_scaler(cfg: TrainConfig, device: torch.device) -> torch.amp.GradScaler:
    """The loss scaler fp16 autocast needs (disabled, a pass-through, otherwise)."""
    return torch.amp.GradScaler(device.type, enabled=autocast_dtype(cfg, device) == torch.float16)


class EmaGanTrainer:
    """The Family methods the one-G families share (noise, text2image, video, music): the G and
    D optimisers, the scaler and the batch stream in the checkpoint, G_ema probed, and models/
    with every module, the probe's best G_ema as G_ema and its last state as G_ema_last. A
    subclass sets G_ema, opt_G, opt_D, scaler, batch_gen and defines modules() and step()."""

    G_ema: torch.nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    batch_gen: torch.Generator

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_G, "D": self.opt_D}

    def extra_state(self) -> dict:
        return {"scaler": self.scaler.state_dict(), "batch_rng": self.batch_gen.get_state()}

    def load_extra_state(self, state: dict) -> None:
        self.scaler.load_state_dict(state["scaler"])
        self.batch_gen.set_state(state["batch_rng"])

    def probe_module(self) -> torch.nn.Module:
        return self.G_ema

    def model_files(self, best_state: dict | None) -> dict[str, dict]:
        """Every module's state; the probe's best G_ema as G_ema, its last as G_ema_last."""
        files = {name: m.state_dict() for name, m in self.modules().items()}
        if best_state is not None:
            files["G_ema_last"], files["G_ema"] = files["G_ema"], best_state
        return files


@dataclass
class TrainState:
    """What a checkpoint restores: the family's nets, optimisers and extra state, counters,
    history and the best probe result."""

    family: Family
    config: dict = field(default_factory=dict)  # the resolved train config
    step: int = 0
    history: list[dict] = field(default_factory=list)
    probes: list[dict] = field(default_factory=list)
    best_metric: float = math.inf  # lowest probe FID so far
    best_step: int = -1
    best_state: dict | None = None  # the probe module's state at best_step (CPU tensors)
    replica_digests: list[str] = field(default_factory=list)  # one per DDP rank, at the end

    @property
    def kimg(self) -> float:
        return self.step * self.config["batch_size"] / 1000

    def module(self, name: str) -> torch.nn.Module:
        return self.family.modules()[name]


@dataclass
class Callbacks:
    log: Callable[[int, dict], None] = lambda step, stats: None
    sample: Callable[[int, torch.Tensor], None] = lambda step, images: None
    checkpoint_saved: Callable[[Path], None] = lambda path: None


def total_steps(cfg: TrainConfig) -> int:
    return math.ceil(cfg.kimg * 1000 / cfg.batch_size)


def check_probe(state: TrainState, probe, callbacks: Callbacks) -> None:
    """Probe the family's probe module; keep it when it is the best so far; warn when classes go
    missing."""
    net = state.family.probe_module()
    result = probe(net)
    if result["probe_fid"] < state.best_metric:
        state.best_metric, state.best_step = result["probe_fid"], state.step
        state.best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    covered = [h["probe_modes_covered"] for h in state.probes if "probe_modes_covered" in h]
    if "probe_modes_covered" in result and covered and result["probe_modes_covered"] < max(covered):
        print(
            f"train: warning: mode coverage fell to {result['probe_modes_covered']} classes "
            f"at step {state.step} (was {max(covered)}): possible mode collapse"
        )
    result["best_probe_fid"] = state.best_metric
    state.probes.append({"step": state.step, **result})
    callbacks.log(state.step, result)


def _resume(state: TrainState, cfg: TrainConfig, ckpt_dir: Path, rank: int, world: int) -> None:
    """Restore the newest checkpoint; a longer schedule continues, a shorter one is an error."""
    resumed = load_checkpoint(ckpt_dir, state)
    if resumed is None:
        return
    if state.step > total_steps(cfg):
        raise ConfigError(
            f"train.kimg: {cfg.kimg} is behind the checkpoint {resumed} "
            f"({state.kimg:g} kimg, step {state.step}); raise train.kimg to continue it, "
            f"or remove {ckpt_dir} to start over"
        )
    if world > 1:  # the checkpoint holds rank 0's RNG; give every rank its own stream again
        seed_everything(rank_seed(cfg.seed, rank, resumed_step=state.step))
    if rank == 0:
        print(f"train: resuming from {resumed} (step {state.step})", flush=True)


def _log_row(state: TrainState, stats: torch.Tensor, window_steps: int, elapsed: float) -> dict:
    """Mean stats over the window (the one host sync per log interval); NaN/inf stops the run."""
    names = state.family.stat_names
    row = dict(zip(names, (stats / window_steps).tolist(), strict=True))
    for name in names:
        if not math.isfinite(row[name]):
            raise TrainingDiverged(
                f"train: {name} became {row[name]} by step {state.step}; "
                "lower the learning rates (train.lr_g/lr_d) or check the data"
            )
    row.update(
        step=state.step,
        kimg=state.kimg,
        img_per_s=window_steps * state.config["batch_size"] / max(elapsed, 1e-9),
    )
    return row


def fit(
    family: Family,
    cfg: TrainConfig,
    ckpt_dir: Path,
    callbacks: Callbacks,
    progress: Callable[[int, int, dict], None] | None = None,
    probe: Callable[[torch.nn.Module], dict] | None = None,
    rank: int = 0,
    world: int = 1,
) -> TrainState:
    """Run `family` for train.kimg thousand images, resuming from `ckpt_dir` when it holds a
    state. With world > 1 (torchrun) this is one DDP rank: only rank 0 gets callbacks, progress
    and the probe, and only rank 0 checkpoints. SIGINT/SIGTERM stop it after the current step
    with a checkpoint (TrainingInterrupted)."""
    state = TrainState(family, cfg.model_dump(mode="json"))
    _resume(state, cfg, ckpt_dir, rank, world)
    steps = total_steps(cfg)
    every = {
        k: max(1, round(getattr(cfg, f"{k}_every_kimg") * 1000 / cfg.batch_size))
        for k in ("sample", "ckpt", "eval")
    }
    stats = torch.zeros(len(family.stat_names), device=family.device)
    window_start, window_steps = time.perf_counter(), 0
    if state.step == 0:
        callbacks.sample(0, family.real_samples())
    with signals.deferred(enabled=world == 1) as stop:  # DDP ranks stop through torchrun
        while state.step < steps:
            stats += family.step(state.step)
            state.step += 1
            window_steps += 1
            done = state.step == steps
            if state.step % cfg.log_every == 0 or done:
                row = _log_row(state, stats, window_steps, time.perf_counter() - window_start)
                state.history.append(row)
                callbacks.log(state.step, row)
                if progress:
                    progress(state.step, steps, row)
                stats.zero_()
                window_start, window_steps = time.perf_counter(), 0
            if probe is not None and (state.step % every["eval"] == 0 or done):
                check_probe(state, probe, callbacks)
            if state.step % every["sample"] == 0 or done:
                with torch.no_grad():
                    callbacks.sample(state.step, family.samples())
            stopping = stop.is_set() and not done
            if rank == 0 and (state.step % every["ckpt"] == 0 or done or stopping):
                callbacks.checkpoint_saved(save_checkpoint(ckpt_dir, state))
            if stopping:
                raise TrainingInterrupted(
                    f"train: stopped by {stop.signal_name} at step {state.step} "
                    f"({state.kimg:g} kimg); checkpoint kept in {ckpt_dir}: run again to resume"
                )
    if world > 1:
        check_replicas(state)
    return state


def check_replicas(state: TrainState) -> None:
    """End of a DDP run: take rank 0's BatchNorm statistics everywhere (each rank's last forward
    updated them on its own batch), then compare every rank's weights by digest."""
    import torch.distributed as dist

    modules = list(state.family.modules().values())
    for module in modules:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)
    digests: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(digests, state_digest(*modules))
    state.replica_digests = [str(d) for d in digests]
    if len(set(digests)) != 1:
        raise TrainingDiverged(f"train: DDP ranks ended with different weights: {digests}")
