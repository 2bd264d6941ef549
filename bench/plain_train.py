"""The baseline of `ganops bench train`: a plain eager fp32 DataLoader loop, as in
pytorch/examples `dcgan/main.py`, over the same G and D that ganops trains.

A TensorDataset of float images behind a shuffling DataLoader; per step: D on a real batch and
on G(z).detach(), then G through D; BCE on logits; default Adam; NCHW; the loss read back every
step (`loss.item()`, as the example prints it). Run alone:

    python bench/plain_train.py --image-size 64 --channels 1 --batch-size 128 --steps 10
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn


def run(
    G: nn.Module,
    D: nn.Module,
    images: torch.Tensor,
    z_dim: int,
    batch_size: int,
    steps: int,
    device: torch.device,
    warmup: int,
) -> float:
    """Train `warmup` steps, then time `steps` more; returns images per second."""
    G, D = G.to(device), D.to(device)
    data = torch.utils.data.TensorDataset(images.float() / 127.5 - 1.0)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=True)
    criterion = nn.BCEWithLogitsLoss()
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_G = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    done, start = 0, None
    while done < warmup + steps:
        for (real,) in loader:
            if done == warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            real = real.to(device)
            ones = torch.ones(len(real), device=device)
            zeros = torch.zeros(len(real), device=device)
            # (1) update D: maximize log D(x) + log(1 - D(G(z)))
            D.zero_grad()
            err_real = criterion(D(real), ones)
            err_real.backward()
            fake = G(torch.randn(len(real), z_dim, device=device))
            err_fake = criterion(D(fake.detach()), zeros)
            err_fake.backward()
            opt_D.step()
            # (2) update G: maximize log D(G(z))
            G.zero_grad()
            err_G = criterion(D(fake), ones)
            err_G.backward()
            opt_G.step()
            _ = (err_real + err_fake).item(), err_G.item()
            done += 1
            if done == warmup + steps:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    from components.families.noise.nets import Discriminator, Generator, init_weights

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    torch.manual_seed(0)
    G = Generator(100, 0, a.channels, a.image_size, 64)
    D = Discriminator(0, a.channels, a.image_size, 64)
    G.apply(init_weights)
    D.apply(init_weights)
    images = torch.randint(
        0, 256, (8 * a.batch_size, a.channels, a.image_size, a.image_size), dtype=torch.uint8
    )
    ips = run(G, D, images, 100, a.batch_size, a.steps, torch.device(a.device), warmup=2)
    print(json.dumps({"impl": "plain", "img_per_s": round(ips, 1)}))


if __name__ == "__main__":
    main()
