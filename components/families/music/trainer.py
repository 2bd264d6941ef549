"""The music family's step, MuseGAN's iteration under the shared schedule:

    D step (train.music.d_steps times): the critic on real windows and binarised
            G(z).detach(), WGAN-GP's penalty on real/fake interpolates (any train.loss; the
            penalty with train.music.gp_weight > 0);
    G step: fool the updated D with binarised G(z) (straight-through); then the EMA of G.

The train windows stay resident on the device as uint8; batches and z are drawn from one
seeded stream (checkpointed), so resume is bit-identical and DDP ranks draw alike and keep
their slice. Every sample interval, the fixed-z windows of G_ema become a piano-roll picture
(the schedule's sample grid) and MIDI files (MLflow artifacts `samples/midi/`).
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
from pathlib import Path

import numpy as np
import torch

from components.families.music.nets import binarize, build_discriminator, build_generator
from components.families.music.options import MusicTrainConfig as TrainConfig
from components.seeds import BATCH_STREAM_OFFSET, SAMPLE_GRID_OFFSET
from components.train.loop import (
    EmaGanTrainer,
    adam,
    autocast_context,
    ema_beta,
    grad_scaler,
    seed_everything,
    update_ema,
    wrap_for_run,
)
from components.train.losses import LOSSES

GRID_WINDOWS = 8  # fixed-z windows in each sample picture (2 rows)
MIDI_SAMPLES = 4  # of them also written as MIDI files


def render(rolls: np.ndarray, steps_per_bar: int) -> torch.Tensor:
    """Rolls (n, tracks, T, P) -> one coloured picture each, (n, 3, P, T) in [-1, 1]: what the
    schedule's sample grid tiles."""
    from components.datakinds.scores.roll import render_rolls

    pics = [render_rolls(r[None], steps_per_bar, cols=1, scale=1, gap=0) for r in rolls]
    return torch.from_numpy(np.stack(pics)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


class MusicTrainer(EmaGanTrainer):
    stat_names = ("d_loss", "g_loss", "D_x", "D_G_z", "gp", "density")
    grid_rows = 2

    def __init__(self, cfg: TrainConfig, windows: np.ndarray, spec: dict, device: torch.device,
                 rank: int = 0, world: int = 1, labels: np.ndarray | None = None):  # fmt: skip
        self.cfg, self.spec, self.device, self.rank, self.world = cfg, spec, device, rank, world
        seed_everything(cfg.seed)  # the same initial weights on every rank
        self.G = build_generator(spec).to(device)
        self.D = build_discriminator(spec, cfg.d_channels, cfg.music.chroma_stream).to(device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt_G = adam(self.G.parameters(), cfg.lr_g, cfg, device)
        self.opt_D = adam(self.D.parameters(), cfg.lr_d, cfg, device)
        self.scaler = grad_scaler(cfg, device)
        self.d_loss_fn, self.g_loss_fn = LOSSES[cfg.loss]
        self.batch_gen = torch.Generator(device).manual_seed(cfg.seed + BATCH_STREAM_OFFSET)
        self.G_run = wrap_for_run(self.G, cfg, device, world)
        self.D_run = wrap_for_run(self.D, cfg, device, world)
        self.autocast = autocast_context(cfg, device)
        self.reals = torch.from_numpy(np.array(windows)).to(device)  # uint8 (N, k, T, P)
        self.n_classes = len(spec.get("class_names", []))
        if labels is None:
            labels = np.full(len(windows), -1, np.int64)
        self.labels = torch.from_numpy(np.asarray(labels, np.int64)).to(device)  # (N,), -1: none
        self.batch = cfg.batch_size // world
        self.ema_beta = ema_beta(cfg.batch_size, cfg.ema_half_life_kimg)
        gen = torch.Generator().manual_seed(cfg.seed + SAMPLE_GRID_OFFSET)
        self.fixed_z = torch.randn(GRID_WINDOWS, self.G.latent_dim, generator=gen).to(device)
        self.fixed_labels = self.class_or_none(torch.arange(GRID_WINDOWS, device=device))
        self.steps_done = 0

    # -- what the schedule asks for ---------------------------------------------------------
    def modules(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "D": self.D, "G_ema": self.G_ema}

    def class_or_none(self, i: torch.Tensor) -> torch.Tensor | None:
        """Labels cycling through the classes (None for an unconditional G)."""
        return i % self.n_classes if self.n_classes else None

    def samples(self) -> torch.Tensor:
        probs = self.G_ema(self.fixed_z, self.fixed_labels)
        rolls = (probs > 0.5).to(torch.uint8).cpu().numpy()
        self._log_midi(rolls[:MIDI_SAMPLES])
        return render(rolls, self.spec["steps_per_bar"])

    def real_samples(self) -> torch.Tensor:
        pick = np.linspace(0, len(self.reals) - 1, GRID_WINDOWS).round().astype(int)
        return render(self.reals[pick].cpu().numpy(), self.spec["steps_per_bar"])

    def _log_midi(self, rolls: np.ndarray) -> None:
        """The sample windows as MIDI files, to the active MLflow run (none outside a run)."""
        import mlflow

        from components.datakinds.scores.roll import roll_to_midi

        if mlflow.active_run() is None:
            return
        s = self.spec
        with tempfile.TemporaryDirectory() as tmp:
            for i, roll in enumerate(rolls):
                data = roll_to_midi(roll, s["steps_per_beat"], s["pitch_low"], s["tempo"])
                (Path(tmp) / f"step-{self.steps_done:07d}-{i}.mid").write_bytes(data)
            mlflow.log_artifacts(tmp, artifact_path="samples/midi")

    # -- one iteration ----------------------------------------------------------------------
    def next_batch(self):
        """This rank's real windows (float 0/1), their classes (None unconditional) and z,
        from the shared seeded stream; G is asked for the real windows' classes."""
        total, gen = self.cfg.batch_size, self.batch_gen
        mine = slice(self.rank * self.batch, (self.rank + 1) * self.batch)
        idx = torch.randint(0, len(self.reals), (total,), device=self.device, generator=gen)
        z = torch.randn(total, self.G.latent_dim, device=self.device, generator=gen)
        labels = self.labels[idx[mine]] if self.n_classes else None
        return self.reals[idx[mine]].float(), labels, z[mine]  # (B, k, T, P), (B,), (B, latent)

    def fake(self, z: torch.Tensor, labels) -> torch.Tensor:
        probs = self.G_run(z, labels)
        return binarize(probs) if self.cfg.music.binarize == "straight_through" else probs

    def penalty(self, real: torch.Tensor, fake: torch.Tensor, labels) -> torch.Tensor:
        """WGAN-GP: (||grad D(x_hat)|| - 1)^2 at real/fake interpolates (alpha from the
        stream)."""
        alpha = torch.rand(len(real), 1, 1, 1, device=self.device, generator=self.batch_gen)
        x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.D(x_hat, labels).sum(), x_hat, create_graph=True)
        return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()

    def d_step(self):
        real, labels, z = self.next_batch()
        with torch.no_grad(), self.autocast:
            fake = self.fake(z, labels).float()
        with self.autocast:
            d_real = self.D_run(real, labels).float()
            d_fake = self.D_run(fake, labels).float()
            d_loss = self.d_loss_fn(d_real, d_fake)
        gp = torch.zeros((), device=self.device)
        if self.cfg.music.gp_weight > 0:  # fp32: double backward is not autocast's business
            gp = self.penalty(real, fake, labels)
            d_loss = d_loss + self.cfg.music.gp_weight * gp
        self.opt_D.zero_grad(set_to_none=True)
        self.scaler.scale(d_loss).backward()
        self.scaler.step(self.opt_D)
        self.scaler.update()
        return d_loss, d_real, d_fake, gp

    def g_step(self):
        _, labels, z = self.next_batch()
        self.D.requires_grad_(False)
        no_sync = self.D_run.no_sync() if self.world > 1 else contextlib.nullcontext()
        with no_sync, self.autocast:
            fake = self.fake(z, labels)
            g_loss = self.g_loss_fn(self.D_run(fake, labels).float())
        self.opt_G.zero_grad(set_to_none=True)
        self.scaler.scale(g_loss).backward()
        self.D.requires_grad_(True)
        self.scaler.step(self.opt_G)
        self.scaler.update()
        return g_loss, fake.detach()

    def step(self, step: int) -> torch.Tensor:
        for _ in range(self.cfg.music.d_steps):
            d_loss, d_real, d_fake, gp = self.d_step()
        g_loss, fake = self.g_step()
        update_ema(self.G_ema, self.G, self.ema_beta)
        self.steps_done = step + 1
        with torch.no_grad():
            stats = [d_loss, g_loss, d_real.mean(), d_fake.mean(), gp, fake.mean()]
            return torch.stack([torch.as_tensor(v, device=self.device).float() for v in stats])
