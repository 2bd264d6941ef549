"""The video family's step (MoCoGAN's alternation, written from the paper):

    D step: the image D on `image_frames` random frames of each real and generated clip (the
            same frame times on both sides), the video D on the whole clips; the loss of
            train.loss on each, summed; R1 on reals when train.r1_gamma > 0;
    G step: fool both (the Ds frozen); then the EMA of G.

kimg counts clips: a step shows batch_size clips to the video D (and batch_size *
image_frames frames to the image D). Real clips stay resident on the device as uint8; batches,
frame times and latents come from one stream seeded alike on every rank (each rank keeps its
slice), so resume, DDP and AMP hold as for the other families.
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import numpy as np
import torch

from components.families.video.nets import (
    ImageDiscriminator,
    VideoDiscriminator,
    clip_latents,
    make_generator,
)
from components.families.video.options import VideoTrainConfig as TrainConfig
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
from components.train.losses import LOSSES, r1_penalty

SAMPLE_CLIPS = 8  # rows of the sample strips / clips of the sample GIF


class VideoTrainer(EmaGanTrainer):
    stat_names = ("d_loss", "g_loss", "D_img_x", "D_img_G_z", "D_vid_x", "D_vid_G_z", "r1")

    def __init__(
        self,
        cfg: TrainConfig,
        clips: np.ndarray,
        labels: np.ndarray | None,
        spec: dict,
        device: torch.device,
        samples_dir: Path | None = None,
        rank: int = 0,
        world: int = 1,
    ):
        self.cfg, self.device, self.rank, self.world = cfg, device, rank, world
        self.spec, self.samples_dir = spec, samples_dir
        seed_everything(cfg.seed)
        _, T, C, S, _ = clips.shape
        k = spec["num_classes"]
        self.G = make_generator(
            cfg.arch, cfg.renderer, cfg.z_content, cfg.z_motion, k, C, S, T, cfg.g_channels,
            cfg.sprite_extent,
        ).to(device)  # fmt: skip
        self.D_image = ImageDiscriminator(C, S, cfg.d_channels, k, cfg.minibatch_std).to(device)
        self.D_video = VideoDiscriminator(C, S, T, cfg.d_channels, k, cfg.minibatch_std).to(device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt_G = adam(self.G.parameters(), cfg.lr_g, cfg, device)
        d_params = [*self.D_image.parameters(), *self.D_video.parameters()]
        self.opt_D = adam(d_params, cfg.lr_d, cfg, device)
        self.scaler = grad_scaler(cfg, device)
        self.batch_gen = torch.Generator(device).manual_seed(cfg.seed + BATCH_STREAM_OFFSET)
        self.G_run = wrap_for_run(self.G, cfg, device, world)
        self.Di_run = wrap_for_run(self.D_image, cfg, device, world)
        self.Dv_run = wrap_for_run(self.D_video, cfg, device, world)
        self.autocast = autocast_context(cfg, device)
        self.d_loss_fn, self.g_loss_fn = LOSSES[cfg.loss]
        self.reals = torch.from_numpy(np.array(clips)).to(device)  # uint8 (N, T, C, S, S)
        self.labels = torch.from_numpy(np.asarray(labels)).long().to(device) if k else None
        self.batch = cfg.batch_size // world
        self.ema_beta = ema_beta(cfg.batch_size, cfg.ema_half_life_kimg)
        seeds = np.arange(SAMPLE_CLIPS) + cfg.seed * 1000 + SAMPLE_GRID_OFFSET
        zc, eps = clip_latents(seeds, spec)
        self.fixed_zc, self.fixed_eps = zc.to(device), eps.to(device)
        self.fixed_labels = torch.arange(SAMPLE_CLIPS, device=device) % k if k else None
        self.grid_rows = SAMPLE_CLIPS
        self.last_step = 0

    # -- what the schedule asks for -------------------------------------------------------------
    def modules(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "D_image": self.D_image, "D_video": self.D_video, "G_ema": self.G_ema}

    def _flat(self, clips: torch.Tensor) -> torch.Tensor:
        return clips.reshape(-1, *clips.shape[2:])

    def samples(self) -> torch.Tensor:
        """The fixed-noise clips as frame strips (one clip per row); their GIF and strip PNG
        are written to reports/samples/ and logged to MLflow here as well."""
        clips = self.G_ema(self.fixed_zc, self.fixed_eps, self.fixed_labels)
        self._write_clips(clips, f"clips-step-{self.last_step:07d}")
        return self._flat(clips)

    def real_samples(self) -> torch.Tensor:
        clips = self.reals[:SAMPLE_CLIPS].float() / 127.5 - 1.0
        self._write_clips(clips, "clips-real")
        return self._flat(clips)

    def _write_clips(self, clips: torch.Tensor, stem: str) -> None:
        if self.samples_dir is None or self.rank != 0:
            return
        import shutil

        import mlflow

        from components.families.video.clipfiles import save_gif
        from components.images import to_uint8

        B, T = clips.shape[:2]
        arr = to_uint8(self._flat(clips)).reshape(B, T, *clips.shape[2:])
        path = save_gif(arr, self.samples_dir / f"{stem}.gif", cols=4, scale=2)
        shutil.copyfile(path, self.samples_dir / "latest.gif")
        if mlflow.active_run() is not None:
            mlflow.log_artifact(str(path), artifact_path="samples")

    # -- one iteration ----------------------------------------------------------------------------
    def next_batch(self):
        """This rank's real clips, labels, latents and the frame times the image D sees."""
        cfg, gen, total = self.cfg, self.batch_gen, self.cfg.batch_size
        n, T = self.reals.shape[:2]
        mine = slice(self.rank * self.batch, (self.rank + 1) * self.batch)
        idx = torch.randint(0, n, (total,), device=self.device, generator=gen)[mine]
        zc = torch.randn(total, cfg.z_content, device=self.device, generator=gen)[mine]
        eps = torch.randn(total, T, cfg.z_motion, device=self.device, generator=gen)[mine]
        times = torch.randint(0, T, (total, cfg.image_frames), device=self.device, generator=gen)
        real = self.reals[idx].float().div_(127.5).sub_(1.0)  # (B, T, C, S, S)
        labels = self.labels[idx] if self.labels is not None else None
        return real, labels, zc, eps, times[mine]

    def frames(self, clips, times, labels):
        rows = torch.arange(len(clips), device=clips.device).unsqueeze(1)
        picked = clips[rows, times]  # (B, k, C, S, S)
        frame_labels = labels.repeat_interleave(times.shape[1]) if labels is not None else None
        return self._flat(picked), frame_labels

    def step(self, step: int) -> torch.Tensor:
        self.last_step = step + 1
        real, labels, zc, eps, times = self.next_batch()
        with self.autocast:
            fake = self.G_run(zc, eps, labels)
        real_f, f_labels = self.frames(real, times, labels)
        fake_f, _ = self.frames(fake, times, labels)
        # D step
        with self.autocast:
            di_real = self.Di_run(real_f, f_labels).float()
            di_fake = self.Di_run(fake_f.detach(), f_labels).float()
            dv_real = self.Dv_run(real, labels).float()
            dv_fake = self.Dv_run(fake.detach(), labels).float()
            d_loss = self.d_loss_fn(di_real, di_fake) + self.d_loss_fn(dv_real, dv_fake)
        r1 = torch.zeros((), device=self.device)
        if self.cfg.r1_gamma > 0:
            r1 = r1_penalty(self.D_image, real_f, f_labels) + r1_penalty(self.D_video, real, labels)
            d_loss = d_loss + 0.5 * self.cfg.r1_gamma * r1
        self.opt_D.zero_grad(set_to_none=True)
        self.scaler.scale(d_loss).backward()
        self.scaler.step(self.opt_D)
        # G step
        self.D_image.requires_grad_(False)
        self.D_video.requires_grad_(False)
        with contextlib.ExitStack() as stack:
            if self.world > 1:
                stack.enter_context(self.Di_run.no_sync())
                stack.enter_context(self.Dv_run.no_sync())
            with self.autocast:
                g_loss = self.g_loss_fn(self.Di_run(fake_f, f_labels).float()) + self.g_loss_fn(
                    self.Dv_run(fake, labels).float()
                )
        self.opt_G.zero_grad(set_to_none=True)
        self.scaler.scale(g_loss).backward()
        self.D_image.requires_grad_(True)
        self.D_video.requires_grad_(True)
        self.scaler.step(self.opt_G)
        self.scaler.update()
        update_ema(self.G_ema, self.G, self.ema_beta)
        with torch.no_grad():
            stats = [d_loss, g_loss, di_real.mean(), di_fake.mean(), dv_real.mean()]
            stats += [dv_fake.mean(), r1]
            return torch.stack([torch.as_tensor(v, device=self.device).float() for v in stats])
