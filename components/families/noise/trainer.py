"""The noise -> image family: a (conditional) GAN trained as in the DCGAN paper, one iteration =
D step on real and G(z).detach(), then G step, then the EMA of G.

The dataset stays resident on the device as uint8; batches are sampled by index on the device.
Speed: bf16/fp16 autocast on CUDA with fp32 master weights (fp16 with a grad scaler),
channels_last, optional torch.compile, fused (CUDA) or foreach (CPU) Adam. Under torchrun G and
D are wrapped in DistributedDataParallel. Every rank draws the whole step's batch (indices,
labels, z) from one stream seeded alike on all ranks and keeps its own slice, and BatchNorm
normalises over all ranks (loop.sync_batchnorm): without augmentation a DDP run at a global batch
equals the single-process run at that batch, up to float rounding (tested). Augmentation draws
stay per rank (seed + rank).
With train.reg.ada every image D sees goes through augment.ada_augment at probability p, which
`adjust_ada` moves every ada_interval steps from D's signs on reals, pooled over the ranks.
"""

from __future__ import annotations

import contextlib
import copy
import math
from pathlib import Path

import numpy as np
import torch

from components.errors import ConfigError
from components.families.noise.augment import ada_adjust, ada_augment, diff_augment, parse_policy
from components.families.noise.nets import build_discriminator, build_generator, init_weights
from components.families.noise.options import NoiseTrainConfig as TrainConfig
from components.families.noise.options import arch_size_error
from components.seeds import BATCH_STREAM_OFFSET, SAMPLE_GRID_OFFSET, rank_seed
from components.train.loop import (
    Callbacks,
    EmaGanTrainer,
    TrainState,
    adam,
    autocast_context,
    ema_beta,
    fit,
    grad_scaler,
    pick_device,
    seed_everything,
    update_ema,
    use_channels_last,
    wrap_for_run,
)
from components.train.losses import DECISION_BOUNDARY, LOSSES, gradient_penalty, r1_penalty


def build_models(cfg: TrainConfig, num_classes: int, channels: int, image_size: int):
    """G (from the spec train writes, so what is saved is what loads) and D, initialised; a
    ConfigError when train.arch cannot build the data's size."""
    if message := arch_size_error(cfg.arch, image_size):
        raise ConfigError(message)
    G = build_generator(generator_spec(cfg, num_classes, channels, image_size))
    D = build_discriminator(
        cfg.arch,
        num_classes,
        channels,
        image_size,
        cfg.d_channels,
        spectral_norm=cfg.reg.spectral_norm in ("d", "both"),
    )
    G.apply(init_weights)
    D.apply(init_weights)
    return G, D


def generator_spec(cfg: TrainConfig, num_classes: int, channels: int, image_size: int) -> dict:
    """Everything needed to rebuild G from its weights (written beside the safetensors)."""
    return {
        "family": "noise",  # how evaluate, register and export find the family (families/)
        "arch": cfg.arch,
        "g_cond": cfg.g_cond,
        "g_spectral_norm": cfg.reg.spectral_norm in ("g", "both"),
        "z_dim": cfg.z_dim,
        "num_classes": num_classes,
        "channels": channels,
        "image_size": image_size,
        "g_channels": cfg.g_channels,
    }


def fixed_inputs(cfg: TrainConfig, num_classes: int, device: torch.device, per_class: int = 8):
    """The fixed noise batch for sample grids: one row per class, `per_class` seeds per row."""
    gen = torch.Generator().manual_seed(cfg.seed + SAMPLE_GRID_OFFSET)
    rows = max(num_classes, 1)
    z = torch.randn(per_class, cfg.z_dim, generator=gen).repeat(rows, 1)  # (rows*k, z_dim)
    c = torch.arange(rows).repeat_interleave(per_class) if num_classes else None
    return z.to(device), (c.to(device) if c is not None else None)


class GanFamily(EmaGanTrainer):
    """G, D and G_ema with their optimisers; `step()` is one iteration of the paper's loop."""

    stat_names = ("d_loss", "g_loss", "D_x", "D_G_z", "d_grad_norm", "g_grad_norm")

    def __init__(
        self,
        cfg: TrainConfig,
        real_images: np.ndarray,
        labels: np.ndarray | None,
        num_classes: int,
        device: torch.device,
        rank: int = 0,
        world: int = 1,
    ):
        self.cfg, self.device, self.rank, self.world = cfg, device, rank, world
        seed_everything(cfg.seed)  # the same initial weights on every rank
        channels, image_size = real_images.shape[1], real_images.shape[2]
        G, D = build_models(cfg, num_classes, channels, image_size)
        self.memory_format = (
            torch.channels_last if use_channels_last(cfg, device) else torch.contiguous_format
        )
        self.G = G.to(device, memory_format=self.memory_format)
        self.D = D.to(device, memory_format=self.memory_format)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt_G = adam(self.G.parameters(), cfg.lr_g, cfg, device)
        self.opt_D = adam(self.D.parameters(), cfg.lr_d, cfg, device)
        self.scaler = grad_scaler(cfg, device)
        # the batch stream: the same on every rank (each keeps its slice), checkpointed
        self.batch_gen = torch.Generator(device).manual_seed(cfg.seed + BATCH_STREAM_OFFSET)
        seed_everything(rank_seed(cfg.seed, rank))  # augmentation differs per rank
        self.G_run = wrap_for_run(self.G, cfg, device, world)
        self.D_run = wrap_for_run(self.D, cfg, device, world)
        self.autocast = autocast_context(cfg, device)
        self.d_loss_fn, self.g_loss_fn = LOSSES[cfg.loss]
        self.policy = parse_policy(cfg.reg.diffaugment)
        self.reals = torch.from_numpy(real_images).to(device)  # (N, C, H, W) uint8, resident
        self.conds = torch.from_numpy(labels).to(device) if num_classes else None
        self.fixed_z, self.fixed_c = fixed_inputs(cfg, num_classes, device)
        self.batch = cfg.batch_size // world  # this rank's share of the step's images
        self.ema_beta = ema_beta(cfg.batch_size, cfg.reg.ema_half_life_kimg)
        self.grid_rows = max(num_classes, 1)  # one row per class
        self.ada = cfg.reg.ada
        if self.ada:  # p and r_t join the logged stats
            self.stat_names = (*GanFamily.stat_names, "ada_p", "ada_r_t")
        # ADA's state, on the device: p, the last interval's r_t, and the running interval's
        # (sum of sign(D(x_real) - boundary), number of reals)
        self.ada_p = torch.zeros((), device=device)
        self.ada_r_t = torch.zeros((), device=device)
        self.ada_signs = torch.zeros(2, device=device)
        # lsgan's real target is 1 - label_smoothing: its boundary moves with it
        smoothing = cfg.reg.label_smoothing if cfg.loss == "lsgan" else 0.0
        self.ada_boundary = DECISION_BOUNDARY.get(cfg.loss, 0.0) * (1.0 - smoothing)

    # -- what the schedule asks for -------------------------------------------------------------
    def modules(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "D": self.D, "G_ema": self.G_ema}

    def extra_state(self) -> dict:
        state = super().extra_state()
        if self.ada:
            state["ada"] = {"p": self.ada_p, "r_t": self.ada_r_t, "signs": self.ada_signs}
        return state

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        if self.ada:
            ada = {k: v.to(self.device) for k, v in state["ada"].items()}
            self.ada_p, self.ada_r_t, self.ada_signs = ada["p"], ada["r_t"], ada["signs"]
            if self.rank != 0:  # the checkpoint holds rank 0's partial interval sums only:
                self.ada_signs.zero_()  # every rank loading them would count them world times

    def samples(self) -> torch.Tensor:
        return self.G_ema(self.fixed_z, self.fixed_c)

    def real_samples(self) -> torch.Tensor:
        return self.reals[: len(self.fixed_z)]

    # -- one iteration ----------------------------------------------------------------------------
    def aug(self, x: torch.Tensor) -> torch.Tensor:
        """What D sees of an image: ADA's pipeline at p, DiffAugment's policy, or the image."""
        if self.ada:
            return ada_augment(x, self.ada_p)
        return diff_augment(x, self.policy) if self.policy else x

    @torch.no_grad()
    def count_signs(self, d_real: torch.Tensor) -> None:
        """Add this step's sign(D(x_real)) to ADA's interval sums, on the device (no sync)."""
        self.ada_signs[0] += torch.sign(d_real - self.ada_boundary).sum()
        self.ada_signs[1] += d_real.numel()

    def adjust_ada(self, step: int) -> None:
        """After every ada_interval-th step: r_t over the interval (summed over DDP ranks, so
        every rank gets the same p), then p moves one notch towards ada_target."""
        reg = self.cfg.reg
        if not self.ada or (step + 1) % reg.ada_interval:
            return
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(self.ada_signs)
        images = self.cfg.batch_size * reg.ada_interval  # reals D saw over all ranks
        self.ada_p, self.ada_r_t = ada_adjust(
            self.ada_p, self.ada_signs[0], self.ada_signs[1], reg.ada_target, images, reg.ada_kimg
        )
        self.ada_signs.zero_()

    def next_batch(self):
        """This rank's reals by index on the device, their labels, labels to ask G for, and z:
        its slice of the step's whole batch, drawn alike on every rank."""
        n, total, gen = len(self.reals), self.cfg.batch_size, self.batch_gen
        mine = slice(self.rank * self.batch, (self.rank + 1) * self.batch)
        idx = torch.randint(0, n, (total,), device=self.device, generator=gen)[mine]
        gen_idx = torch.randint(0, n, (total,), device=self.device, generator=gen)[mine]
        z = torch.randn(total, self.cfg.z_dim, device=self.device, generator=gen)[mine]  # (B, z)
        real_img = self.reals[idx].float().div_(127.5).sub_(1.0)  # (B, C, H, W) in [-1, 1]
        real_img = real_img.contiguous(memory_format=self.memory_format)
        c = gen_c = None
        if self.conds is not None:
            c, gen_c = self.conds[idx], self.conds[gen_idx]
        return real_img, c, gen_c, z

    def d_step(self, real_img, c, gen_img, gen_c, step: int):
        """D learns real vs G(z).detach(); returns (d_loss, D(x) logits, D(G(z)) logits, |grad|)."""
        reg, aug = self.cfg.reg, self.aug
        with self.autocast:
            d_real = self.D_run(aug(real_img), c).float()
            d_fake = self.D_run(aug(gen_img.detach()), gen_c).float()
            d_loss = self.d_loss_fn(d_real, d_fake, smoothing=reg.label_smoothing)
        if self.ada:
            self.count_signs(d_real)
        if reg.gp_weight > 0:  # penalties in fp32: double backward is not autocast's business
            d_loss = d_loss + reg.gp_weight * gradient_penalty(
                self.D, real_img, gen_img.detach().float(), c
            )
        if reg.r1_gamma > 0 and step % reg.r1_every == 0:  # lazy: scaled by the interval
            r1 = r1_penalty(self.D, aug(real_img), c)
            d_loss = d_loss + (reg.r1_gamma / 2) * reg.r1_every * r1
        self.opt_D.zero_grad(set_to_none=True)
        self.scaler.scale(d_loss).backward()
        self.scaler.unscale_(self.opt_D)
        d_grad = torch.nn.utils.clip_grad_norm_(self.D.parameters(), math.inf)  # norm only
        self.scaler.step(self.opt_D)
        return d_loss, d_real, d_fake, d_grad

    def g_step(self, gen_img, gen_c):
        """G learns to fool the updated D (D's weights frozen); returns (g_loss, |grad|)."""
        self.D.requires_grad_(False)
        no_sync = self.D_run.no_sync() if self.world > 1 else contextlib.nullcontext()
        with no_sync, self.autocast:
            g_loss = self.g_loss_fn(self.D_run(self.aug(gen_img), gen_c).float())
        self.opt_G.zero_grad(set_to_none=True)
        self.scaler.scale(g_loss).backward()
        self.D.requires_grad_(True)
        self.scaler.unscale_(self.opt_G)
        g_grad = torch.nn.utils.clip_grad_norm_(self.G.parameters(), math.inf)
        self.scaler.step(self.opt_G)
        self.scaler.update()
        return g_loss, g_grad

    def step(self, step: int) -> torch.Tensor:
        real_img, c, gen_c, z = self.next_batch()
        with self.autocast:
            gen_img = self.G_run(z, gen_c)  # (B, C, H, W)
        d_loss, d_real, d_fake, d_grad = self.d_step(real_img, c, gen_img, gen_c, step)
        g_loss, g_grad = self.g_step(gen_img, gen_c)
        update_ema(self.G_ema, self.G, self.ema_beta)
        self.adjust_ada(step)
        with torch.no_grad():
            stats = [
                d_loss,
                g_loss,
                torch.sigmoid(d_real).mean(),
                torch.sigmoid(d_fake).mean(),
                d_grad,
                g_grad,
            ]
            if self.ada:
                stats += [self.ada_p, self.ada_r_t]
            return torch.stack(stats).detach()


def fit_gan(
    cfg: TrainConfig,
    real_images: np.ndarray,
    labels: np.ndarray | None,
    num_classes: int,
    ckpt_dir: Path,
    callbacks: Callbacks,
    device: torch.device | None = None,
    progress=None,
    probe=None,
    rank: int = 0,
    world: int = 1,
) -> TrainState:
    """Train the noise -> image family on uint8 images (N, C, H, W) under the shared schedule."""
    family = GanFamily(
        cfg, real_images, labels, num_classes, device or pick_device(), rank=rank, world=world
    )
    return fit(family, cfg, ckpt_dir, callbacks, progress, probe, rank, world)
