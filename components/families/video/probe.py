"""The in-training probe: the Fréchet distance of G_ema's frames to real train frames in a
small frame feature net (the noise family's classifier, or its autoencoder for unlabelled
clips; cached per dataset) times (1 + the share of frozen clips), plus the speed ratio to real
(logged only). For a conditional G the distance is taken class by class (frames asked for a
class against real frames of it) and averaged, the intra-FID of Miyato & Koyama 2018. It picks
the best G_ema; train frames only, so selection never sees the test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from components.families.video import temporal
from components.families.video.nets import clip_latents, sample_clips

PROBE_EPOCHS = 2
PROBE_CLIPS = 64
REF_FRAMES = 4000  # real train frames the distance is measured against
FRAMES_PER_CLIP = 4  # frames per real clip the probe net learns from


def train_frames(clips: np.ndarray, labels, per_clip: int, seed: int):
    """(frames (N*per_clip, C, S, S), their clip labels or None): seeded frame times."""
    rng = np.random.default_rng(seed)
    times = rng.integers(0, clips.shape[1], (len(clips), per_clip))
    frames = np.asarray(clips)[np.arange(len(clips))[:, None], times]
    frames = frames.reshape(-1, *clips.shape[2:])
    return frames, (np.repeat(labels, per_clip) if labels is not None else None)


class VideoProbe:
    def __init__(self, clips, labels, spec: dict, cache: Path, data_hash: str, seed: int = 0):
        from components.evaluate.features import (
            FEATURE_NET_IMAGES,
            capped_rows,
            feature_net,
            predict,
        )
        from components.seeds import probe_latent_seeds

        self.spec = spec
        k = spec["num_classes"]
        frames, flabels = train_frames(clips, labels if k else None, FRAMES_PER_CLIP, seed)
        learn_x, learn_y = capped_rows(FEATURE_NET_IMAGES, seed, frames, flabels)
        key = f"video-probe-{data_hash[:16]}-e{PROBE_EPOCHS}-s{seed}.safetensors"
        self.net = feature_net(learn_x, learn_y, k, PROBE_EPOCHS, seed, cache / key)
        self.ref, _ = predict(self.net, learn_x[:REF_FRAMES])
        self.ref_labels = None if learn_y is None else np.asarray(learn_y[:REF_FRAMES])
        self.ref_speed = float(temporal.summary(np.asarray(clips[:PROBE_CLIPS]))["speed"].mean())
        self.seeds = probe_latent_seeds(PROBE_CLIPS)
        self.labels = np.arange(PROBE_CLIPS) % k if k else None
        self.zc, self.eps = clip_latents(self.seeds, spec)

    @torch.no_grad()
    def __call__(self, G_ema: torch.nn.Module) -> dict[str, float]:
        from components.evaluate.features import predict
        from components.evaluate.metrics import frechet

        clips = sample_clips(G_ema, self.spec, self.seeds, self.labels)
        feats, _ = predict(self.net, clips.reshape(-1, *clips.shape[2:]))
        stats = temporal.summary(clips)
        frame_fd = frechet(self.ref, feats)
        out = {"probe_frame_fd": frame_fd}
        if self.labels is not None:
            # class by class: on held-out shapes the pooled distance picked a G_ema of 15 kimg
            # that drew the asked class 0.40 of the time (probe net) over the last one, 0.60
            # (an independent judge: 0.58 vs 0.73); the per-class distance ranks them 28.2 / 4.1
            asked = np.repeat(self.labels, clips.shape[1])
            present = [k for k in np.unique(self.labels) if (self.ref_labels == k).sum() > 1]
            per_class = [
                frechet(self.ref[self.ref_labels == k], feats[asked == k]) for k in present
            ]
            out["probe_intra_fd"] = frame_fd = float(np.mean(per_class))
        return out | {
            # what picks the best G_ema: the frame distance, raised by the share of still
            # clips, so a generator that stopped moving never wins on sharp frames alone
            "probe_fid": frame_fd * (1.0 + float(stats["frozen"].mean())),
            "probe_frozen_rate": float(stats["frozen"].mean()),
            "probe_speed_ratio": float(stats["speed"].mean() / max(self.ref_speed, 1e-9)),
        }
