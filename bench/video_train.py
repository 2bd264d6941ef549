"""Training throughput of the video family's step (components/families/video/trainer.py) against
a plain eager loop over the same nets, in the style of a MoCoGAN-like reference: float clips in
[-1, 1] behind a shuffling DataLoader, default Adam (not foreach), BCEWithLogits against 1 / 0
targets, latents drawn per step with the global RNG, losses read back every step (.item()).

Both run the same nets (MoCoGenerator, ImageDiscriminator, VideoDiscriminator) on the same
clips (the bundled Moving MNIST at the params' size) with the same batch; the figure is clips
per second after a warm-up. Run (under the shared CPU lock on a shared machine):

    python bench/video_train.py --params params-video.yaml --steps 40
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn


def plain_loop(cfg, clips: np.ndarray, labels: np.ndarray, spec: dict, steps: int) -> float:
    from components.families.video.nets import (
        ImageDiscriminator,
        VideoDiscriminator,
        make_generator,
    )

    torch.manual_seed(cfg.seed)
    _, T, C, S, _ = clips.shape
    k = spec["num_classes"]
    G = make_generator(
        cfg.arch, cfg.renderer, cfg.z_content, cfg.z_motion, k, C, S, T, cfg.g_channels,
        cfg.sprite_extent,
    )  # fmt: skip
    Di = ImageDiscriminator(C, S, cfg.d_channels, k, cfg.minibatch_std)
    Dv = VideoDiscriminator(C, S, T, cfg.d_channels, k, cfg.minibatch_std)
    opt_G = torch.optim.Adam(G.parameters(), cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_D = torch.optim.Adam([*Di.parameters(), *Dv.parameters()], cfg.lr_d,
                             betas=(cfg.beta1, cfg.beta2))  # fmt: skip
    data = torch.utils.data.TensorDataset(
        torch.from_numpy(clips.astype(np.float32) / 127.5 - 1.0), torch.from_numpy(labels)
    )
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, shuffle=True,
                                         drop_last=True)  # fmt: skip
    bce = nn.BCEWithLogitsLoss()
    done, start = 0, None
    while done < steps:
        for real, y in loader:
            if done == 2:
                start = time.perf_counter()  # after a warm-up
            B = len(real)
            zc, eps = torch.randn(B, cfg.z_content), torch.randn(B, T, cfg.z_motion)
            fake = G(zc, eps, y)
            t = torch.randint(0, T, (B, cfg.image_frames))
            rows = torch.arange(B).unsqueeze(1)
            rf, ff = real[rows, t].flatten(0, 1), fake[rows, t].flatten(0, 1)
            yf = y.repeat_interleave(cfg.image_frames)
            ones, zeros = torch.ones(B * cfg.image_frames), torch.zeros(B * cfg.image_frames)
            d_loss = bce(Di(rf, yf), ones) + bce(Di(ff.detach(), yf), zeros)
            d_loss = d_loss + bce(Dv(real, y), ones[:B]) + bce(Dv(fake.detach(), y), zeros[:B])
            opt_D.zero_grad()
            d_loss.backward()
            opt_D.step()
            g_loss = bce(Di(ff, yf), ones) + bce(Dv(fake, y), ones[:B])
            opt_G.zero_grad()
            g_loss.backward()
            opt_G.step()
            d_loss.item(), g_loss.item()
            done += 1
            if done >= steps:
                break
    return (steps - 2) * cfg.batch_size / (time.perf_counter() - start)


def ganops_loop(cfg, clips, labels, spec, steps: int) -> float:
    from components.families.video.trainer import VideoTrainer

    trainer = VideoTrainer(cfg, clips, labels, spec, torch.device("cpu"))
    for i in range(2):
        trainer.step(i)
    start = time.perf_counter()
    stats = torch.zeros(len(trainer.stat_names))
    for i in range(2, steps):
        stats += trainer.step(i)
    stats.tolist()  # the loop reads losses back once per log interval
    return (steps - 2) * cfg.batch_size / (time.perf_counter() - start)


def main() -> None:
    from components.config import load_params
    from components.datakinds.clips.ingest import _resize
    from components.datakinds.clips.sources import moving_mnist

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params-video.yaml")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--clips", type=int, default=400)
    args = parser.parse_args()
    params = load_params(args.params)
    cfg = params.train
    src = moving_mnist(args.clips, 0)
    size = params.ingest.image_size
    clips = np.stack([_resize(it.load(), size) for it in src.items])
    labels = np.array([it.label for it in src.items], dtype=np.int64)
    spec = {"z_content": cfg.z_content, "z_motion": cfg.z_motion, "frames": clips.shape[1],
            "num_classes": 10}  # fmt: skip
    torch.set_num_threads(torch.get_num_threads())
    out = {
        "arch": cfg.arch,
        "batch_size": cfg.batch_size,
        "clip": list(clips.shape[1:]),
        "threads": torch.get_num_threads(),
        "plain_clips_per_s": round(plain_loop(cfg, clips, labels, spec, args.steps), 2),
        "ganops_clips_per_s": round(ganops_loop(cfg, clips, labels, spec, args.steps), 2),
    }
    out["speedup"] = round(out["ganops_clips_per_s"] / out["plain_clips_per_s"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
