"""Where a training step's time goes: the figures behind the README's CPU speed analysis.

On the `ganops bench train` config (canonical DCGAN at 64 px, batch 128, BatchNorm in D), with
`fit_gan` itself doing the steps, it prints one JSON line each for:
  flops        GFLOP per step, counted by torch.utils.flop_counter over whole steps;
  conv_share   the share of operator time spent in convolutions (torch.profiler);
  layout       img/s and achieved GFLOP/s with NCHW and with NHWC activations;
  d_batching   D forward+backward on real and fake as two batches vs one batch of twice the size.

    python bench/train_profile.py [--steps 4] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from speed import bench_config  # bench/speed.py: this script's folder is sys.path[0]

from components.config import load_params
from components.families.noise.nets import Discriminator, init_weights
from components.families.noise.trainer import fit_gan
from components.train.loop import Callbacks

CONV_OPS = ("convolution", "conv2d", "conv_transpose")


def train(cfg, images, steps_done: list[int]) -> float:
    """Run fit_gan (warm-up window + timed window); returns the timed window's img/s."""
    with tempfile.TemporaryDirectory(prefix="ganops-profile-") as tmp:
        state = fit_gan(cfg, images, None, 0, Path(tmp), Callbacks(), device=torch.device("cpu"))
    steps_done.append(state.step)
    return state.history[-1]["img_per_s"]


def d_batching(batch: int, repeats: int = 3) -> dict:
    """Seconds for D (no BatchNorm, so one batch is exactly two) on 2 x batch vs 1 x 2*batch."""
    torch.manual_seed(0)
    D = Discriminator(0, 1, 64, 64, spectral_norm=True).to(memory_format=torch.channels_last)
    D.apply(init_weights)

    def seconds(n: int, calls: int) -> float:
        x = torch.randn(n, 1, 64, 64).contiguous(memory_format=torch.channels_last)
        D(x).sum().backward()  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            for _ in range(calls):
                D(x).sum().backward()
        return (time.perf_counter() - start) / repeats

    two, one = seconds(batch, 2), seconds(2 * batch, 1)
    return {
        "two_batches_s": round(two, 3),
        "one_batch_s": round(one, 3),
        "ratio": round(two / one, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4, help="timed steps per run")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--params", default="params.yaml")
    a = ap.parse_args()
    base = load_params(a.params).train
    cfg = bench_config(base, "dcgan", a.batch_size, a.steps)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (8 * a.batch_size, 1, 64, 64), dtype=torch.uint8, generator=gen)
    images = images.numpy()
    nhwc = cfg.model_copy(update={"channels_last": True})

    from torch.utils.flop_counter import FlopCounterMode

    done: list[int] = []
    with FlopCounterMode(display=False) as counter:
        train(nhwc, images, done)
    gflop = counter.get_total_flops() / done[-1] / 1e9
    print(json.dumps({"flops": {"gflop_per_step": round(gflop, 1)}}), flush=True)

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train(nhwc, images, done)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    conv = sum(e.self_cpu_time_total for e in events if any(k in e.key for k in CONV_OPS))
    print(json.dumps({"conv_share": round(conv / total, 3)}), flush=True)

    layout = {}
    for name, c in (("nchw", cfg.model_copy(update={"channels_last": False})), ("nhwc", nhwc)):
        ips = train(c, images, done)
        layout[name] = {
            "img_per_s": round(ips, 1),
            "gflop_per_s": round(ips / a.batch_size * gflop, 1),
        }
    layout["nhwc_over_nchw"] = round(layout["nhwc"]["img_per_s"] / layout["nchw"]["img_per_s"], 2)
    print(json.dumps({"layout": layout}), flush=True)
    print(json.dumps({"d_batching": d_batching(a.batch_size)}), flush=True)


if __name__ == "__main__":
    main()
