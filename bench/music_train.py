"""Training throughput of the music family (windows per second, G steps x batch) under the
ganops schedule (components/train/loop.py: the trainer's step with its resident uint8 windows,
seeded batch stream, EMA, stats read back every `log_every` steps) against a plain eager loop
of the same nets and the same WGAN-GP iteration (a shuffling DataLoader of float windows,
`loss.item()` every step, as pytorch/examples loops do). Prints one JSON line per mode.
Synthetic windows at the default grid (4 tracks x 64 steps x 48 pitches, one voice per track:
a random pitch every quarter note), the nets as `ganops run` builds them (`make_spec`); run
it alone (and under the shared CPU lock on the project machine):

    python bench/music_train.py --steps 30 --threads 2
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def plain(G, D, windows: torch.Tensor, batch: int, steps: int, warmup: int, d_steps: int,
          gp_weight: float) -> float:  # fmt: skip
    from components.families.music.nets import binarize

    data = torch.utils.data.TensorDataset(windows.float())
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, drop_last=True)
    opt_G = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.9))
    opt_D = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.9))
    it, done, start = iter(loader), 0, None

    def real_batch():
        nonlocal it
        try:
            return next(it)[0]
        except StopIteration:
            it = iter(loader)
            return next(it)[0]

    while done < warmup + steps:
        if done == warmup:
            start = time.perf_counter()
        for _ in range(d_steps):
            real = real_batch()
            fake = binarize(G(torch.randn(batch, G.latent_dim))).detach()
            alpha = torch.rand(batch, 1, 1, 1)
            x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
            gp = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
            d_loss = D(fake).mean() - D(real).mean() + gp_weight * gp
            opt_D.zero_grad()
            d_loss.backward()
            opt_D.step()
            d_loss.item()
        g_loss = -D(binarize(G(torch.randn(batch, G.latent_dim)))).mean()
        opt_G.zero_grad()
        g_loss.backward()
        opt_G.step()
        g_loss.item()
        done += 1
    return steps * batch / (time.perf_counter() - start)


def ganops(cfg, windows: np.ndarray, spec: dict, steps: int, warmup: int) -> float:
    from components.families.music.trainer import MusicTrainer

    trainer = MusicTrainer(cfg, windows, spec, torch.device("cpu"))
    stats = torch.zeros(len(trainer.stat_names))
    for i in range(warmup):
        stats += trainer.step(i)
    start = time.perf_counter()
    for i in range(steps):
        stats += trainer.step(warmup + i)
        if (i + 1) % cfg.log_every == 0:
            stats.tolist()
    return steps * cfg.batch_size / (time.perf_counter() - start)


def main() -> None:
    from components.config import load_params
    from components.families.music.nets import build_discriminator, build_generator
    from components.families.music.train import make_spec

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params-music.yaml")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = load_params(a.params).train
    pitch = np.random.default_rng(0).integers(0, 48, (2000, 4, 16)).repeat(4, axis=2)
    windows = np.eye(48, dtype=np.uint8)[pitch]  # (2000, 4, 64, 48): one voice per track
    grid = {"steps_per_beat": 4, "beats_per_bar": 4, "bars_per_window": 4, "pitch_low": 36,
            "pitch_high": 84}  # fmt: skip
    spec = make_spec(cfg, {"grid": grid, "shape": [4, 64, 48], "tempo_median": 100}, windows)
    m = cfg.music
    common = {"batch": cfg.batch_size, "d_steps": m.d_steps, "threads": a.threads,
              "g_channels": cfg.g_channels, "d_channels": cfg.d_channels}  # fmt: skip
    torch.manual_seed(0)
    G, D = build_generator(spec), build_discriminator(spec, cfg.d_channels, m.chroma_stream)
    rate = plain(G, D, torch.from_numpy(windows), cfg.batch_size, a.steps, a.warmup, m.d_steps,
                 m.gp_weight)  # fmt: skip
    print(json.dumps({"mode": "plain eager loop", "windows_per_s": round(rate, 1), **common}))
    rate = ganops(cfg, windows, spec, a.steps, a.warmup)
    print(json.dumps({"mode": "ganops trainer", "windows_per_s": round(rate, 1), **common}))


if __name__ == "__main__":
    main()
