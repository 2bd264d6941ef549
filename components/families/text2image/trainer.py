"""The text-to-image family's step, DF-GAN's (Tao et al. 2022) one iteration:

    D step: hinge on real matched pairs (x, s), fakes (G(z, s).detach(), s) and real images
            with a mismatched sentence (x, s'), plus the matching-aware zero-centred gradient
            penalty on the real matched pairs;
    G step: -D(G(z, s), s); then the EMA of G.

The sentence encoder is pretrained first (encoder.py) and frozen: every train caption's
sentence vector is computed once and stays resident on the device, as the images do (uint8).
Batches are drawn by index from one stream seeded alike on every rank (each rank keeps its
slice), so the schedule's resume, DDP and AMP hold as for the other families.
"""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import torch
import torch.nn.functional as F

from components.families.text2image.nets import (
    Discriminator,
    Generator,
    contrastive_loss,
    matching_aware_gp,
    semantic_loss,
)
from components.families.text2image.options import Text2ImageTrainConfig as TrainConfig
from components.seeds import BATCH_STREAM_OFFSET, SAMPLE_GRID_OFFSET
from components.train.loop import (
    EmaGanTrainer,
    adam,
    autocast_context,
    ema_beta,
    grad_scaler,
    seed_everything,
    update_ema,
    use_channels_last,
    wrap_for_run,
)

PANEL_CAPTIONS = 8  # rows of the sample grid: fixed test captions
PANEL_SEEDS = 8  # columns: fixed z per caption


class Text2ImageTrainer(EmaGanTrainer):
    """G, D and G_ema with their optimisers, the frozen sentence vectors of the train captions."""

    stat_names = (
        "d_loss", "g_loss", "D_x", "D_G_z", "D_mismatch", "ma_gp", "sem_real", "sem_fake",
        "match",
    )  # fmt: skip

    def __init__(
        self,
        cfg: TrainConfig,
        images: np.ndarray,
        caption_rows: np.ndarray,
        sentences: torch.Tensor,
        panel: torch.Tensor,
        text_encoder: torch.nn.Module,
        device: torch.device,
        rank: int = 0,
        world: int = 1,
        image_encoder: torch.nn.Module | None = None,
    ):
        self.cfg, self.device, self.rank, self.world = cfg, device, rank, world
        seed_everything(cfg.seed)  # the same initial weights on every rank
        channels, size = images.shape[1], images.shape[2]
        dim = sentences.shape[1]
        self.memory_format = (
            torch.channels_last if use_channels_last(cfg, device) else torch.contiguous_format
        )
        needs_encoder = cfg.match_weight > 0 or cfg.d_encoder_features
        if needs_encoder and image_encoder is None:
            raise ValueError("train.match_weight / d_encoder_features need the image encoder")
        G = Generator(cfg.z_dim, dim, channels, size, cfg.g_channels)
        read = cfg.semantic_weight > 0
        aid = image_encoder if cfg.d_encoder_features else None
        D = Discriminator(dim, channels, size, cfg.d_channels, cfg.d_condition, read, aid)
        self.G = G.to(device, memory_format=self.memory_format)
        self.D = D.to(device, memory_format=self.memory_format)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.text_encoder = text_encoder.to(device)  # frozen; kept for models/ and resume
        # frozen too: the contrastive step's image side, which reads G's images for the match loss
        self.image_encoder = None
        if cfg.match_weight > 0:
            self.image_encoder = image_encoder.to(device).eval().requires_grad_(False)
        # DF-GAN's Adam: betas (0.0, 0.9); ours come from train.beta1/beta2
        self.opt_G = adam(self.G.parameters(), cfg.lr_g, cfg, device)
        trained = [p for p in self.D.parameters() if p.requires_grad]  # not the encoder's
        self.opt_D = adam(trained, cfg.lr_d, cfg, device)
        self.scaler = grad_scaler(cfg, device)
        self.batch_gen = torch.Generator(device).manual_seed(cfg.seed + BATCH_STREAM_OFFSET)
        self.G_run = wrap_for_run(self.G, cfg, device, world)
        self.D_run = wrap_for_run(self.D, cfg, device, world)
        self.autocast = autocast_context(cfg, device)
        self.reals = torch.from_numpy(np.array(images)).to(device)  # uint8, resident, writable
        self.caption_rows = torch.from_numpy(caption_rows).long().to(device)  # caption -> image
        self.next_other = torch.from_numpy(next_other_image(caption_rows)).to(device)
        self.sentences = sentences.to(device)  # (M, dim) frozen sentence vectors
        self.batch = cfg.batch_size // world
        self.ema_beta = ema_beta(cfg.batch_size, cfg.ema_half_life_kimg)
        gen = torch.Generator().manual_seed(cfg.seed + SAMPLE_GRID_OFFSET)
        z = torch.randn(PANEL_SEEDS, cfg.z_dim, generator=gen)  # the same seeds on every row
        rows = len(panel)
        self.fixed_z = z.repeat(rows, 1).to(device)  # (rows * seeds, z_dim)
        self.fixed_s = panel.to(device).repeat_interleave(PANEL_SEEDS, dim=0)
        self.grid_rows = rows

    # -- what the schedule asks for -------------------------------------------------------------
    def modules(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "D": self.D, "G_ema": self.G_ema, "text_encoder": self.text_encoder}

    def model_files(self, best_state: dict | None) -> dict[str, dict]:
        """train.keep_g_ema probe: the probe's best G_ema as G_ema, the last as G_ema_last (as
        every family); last: the last as G_ema, the probe's best beside it as G_ema_best."""
        if self.cfg.keep_g_ema == "probe":
            return super().model_files(best_state)
        files = super().model_files(None)  # every module's last state
        if best_state is not None:
            files["G_ema_best"] = best_state
        return files

    def samples(self) -> torch.Tensor:
        return self.G_ema(self.fixed_z, self.fixed_s)

    def real_samples(self) -> torch.Tensor:
        return self.reals[: len(self.fixed_z)]

    # -- one iteration ----------------------------------------------------------------------------
    def next_batch(self):
        """This rank's real images, their sentences, mismatched sentences and z."""
        m, total, gen = len(self.sentences), self.cfg.batch_size, self.batch_gen
        mine = slice(self.rank * self.batch, (self.rank + 1) * self.batch)
        caps = torch.randint(0, m, (total,), device=self.device, generator=gen)[mine]
        other = self.mismatched(caps, total, mine)
        z = torch.randn(total, self.cfg.z_dim, device=self.device, generator=gen)[mine]
        real_img = self.reals[self.caption_rows[caps]].float().div_(127.5).sub_(1.0)
        real_img = real_img.contiguous(memory_format=self.memory_format)  # (B, C, S, S)
        return real_img, self.sentences[caps], self.sentences[other], z

    def mismatched(self, caps: torch.Tensor, total: int, mine: slice) -> torch.Tensor:
        """A mismatched caption per true one: a caption of another image (where a draw hit
        the true image, the next caption that is another image's). With
        train.mismatch_candidates k > 1, k are drawn and the one whose sentence is closest
        (cosine) to the true one's is kept: a hard negative, so D must read the words that
        tell near captions apart."""
        m, k, gen = len(self.sentences), self.cfg.mismatch_candidates, self.batch_gen
        shape = (total,) if k == 1 else (total, k)
        other = torch.randint(0, m, shape, device=self.device, generator=gen)[mine]
        true_rows = self.caption_rows[caps] if k == 1 else self.caption_rows[caps][:, None]
        other = torch.where(self.caption_rows[other] == true_rows, self.next_other[other], other)
        if k == 1:
            return other
        cand, true = (
            F.normalize(self.sentences[other], dim=-1),
            F.normalize(self.sentences[caps], dim=-1),
        )
        closeness = (cand * true[:, None]).sum(-1)  # (B, k): cosine to the true sentence
        return other.gather(1, closeness.argmax(1, keepdim=True)).squeeze(1)

    def judge(self, img, s, mismatched=None):
        """D's logits (B,) in fp32, the semantic loss of what its head reads from the images
        (0 without the head) and, with `mismatched` sentences, the logits of (img, mismatched)
        from the same image features (else None)."""
        read = self.cfg.semantic_weight > 0
        out = self.D_run(img, s, read=read, mismatched=mismatched)
        out = out if isinstance(out, tuple) else (out,)  # (logit[, read][, mismatched logit])
        sem = semantic_loss(out[1], s) if read else torch.zeros((), device=self.device)
        return out[0].float(), sem, out[-1].float() if mismatched is not None else None

    def d_step(self, real_img, s, s_mis, gen_img, step: int = 0):
        """D: hinge on matched reals (-> +1), fakes and mismatched reals (-> -1), and MA-GP
        (every train.ma_gp_every-th step, weighted as many times)."""
        cfg = self.cfg
        with self.autocast:  # the real images once, with their captions and with others';
            d_real, sem, d_mis = self.judge(real_img, s, s_mis)  # D learns to read captions
            d_fake = self.D_run(gen_img.detach(), s).float()
            d_loss = F.relu(1 - d_real).mean() + 0.5 * (
                F.relu(1 + d_fake).mean() + cfg.mismatch_weight * F.relu(1 + d_mis).mean()
            )
            d_loss = d_loss + cfg.semantic_weight * sem
        ma_gp = torch.zeros((), device=self.device)
        if cfg.ma_gp_weight > 0 and step % cfg.ma_gp_every == 0:  # fp32: double backward
            ma_gp = matching_aware_gp(self.D, real_img, s, cfg.ma_gp_power)
            d_loss = d_loss + cfg.ma_gp_weight * cfg.ma_gp_every * ma_gp
        self.opt_D.zero_grad(set_to_none=True)
        self.scaler.scale(d_loss).backward()
        self.scaler.step(self.opt_D)
        return d_loss, d_real, d_fake, d_mis, ma_gp, sem

    def g_step(self, gen_img, s):
        """G: fool the updated D on matched sentences (D frozen); with train.semantic_weight,
        draw images whose caption D reads back; with train.match_weight, images the frozen
        image encoder matches to their own caption among the batch's."""
        cfg = self.cfg
        self.D.requires_grad_(False)
        no_sync = self.D_run.no_sync() if self.world > 1 else contextlib.nullcontext()
        match = torch.zeros((), device=self.device)
        with no_sync, self.autocast:
            d_gen, sem, _ = self.judge(gen_img, s)
            g_loss = -d_gen.mean() + cfg.semantic_weight * sem
            if self.image_encoder is not None:
                read = self.image_encoder(gen_img).float()
                match = contrastive_loss(read, s, cfg.text.temperature)
                g_loss = g_loss + cfg.match_weight * match
        self.opt_G.zero_grad(set_to_none=True)
        self.scaler.scale(g_loss).backward()
        self.D.requires_grad_(True)  # its copy of the encoder stays frozen (nets.py)
        self.scaler.step(self.opt_G)
        self.scaler.update()
        return g_loss, sem, match

    def step(self, step: int) -> torch.Tensor:
        real_img, s, s_mis, z = self.next_batch()
        with self.autocast:
            gen_img = self.G_run(z, s)  # (B, C, S, S)
        d_loss, d_real, d_fake, d_mis, ma_gp, sem_real = self.d_step(
            real_img, s, s_mis, gen_img, step
        )
        g_loss, sem_fake, match = self.g_step(gen_img, s)
        update_ema(self.G_ema, self.G, self.ema_beta)
        with torch.no_grad():
            stats = [d_loss, g_loss, d_real.mean(), d_fake.mean(), d_mis.mean(), ma_gp]
            stats += [sem_real, sem_fake, match]
            return torch.stack([torch.as_tensor(v, device=self.device).float() for v in stats])


def next_other_image(rows: np.ndarray) -> np.ndarray:
    """For each caption, the next caption (cyclically, in caption order) that belongs to
    another image than its own; rows: the image of each caption. Every caption on one image
    has no such caption: an error (there is nothing to mismatch with)."""
    from components.errors import DataError

    m = len(rows)
    doubled = np.concatenate([rows, rows])
    nxt = np.full(2 * m, -1, np.int64)
    for j in range(2 * m - 2, -1, -1):  # the next index whose image differs from j's
        nxt[j] = j + 1 if doubled[j + 1] != doubled[j] else nxt[j + 1]
    if m and (nxt[:m] < 0).any():
        raise DataError("every train caption is of one image: no mismatched caption to draw")
    return nxt[:m] % max(m, 1)


def probe_inputs(sentences: torch.Tensor, n: int, z_dim: int, seed: int):
    """A fixed (z, s) set for the probe: n train sentences spread over the set, seeded z."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(sentences), generator=gen)[:n]
    return torch.randn(len(idx), z_dim, generator=gen), sentences[idx], idx
