"""The baseline of `ganops bench translate`: a plain eager fp32 loop in the style of Zhu, Park et
al.'s pytorch-CycleGAN-and-pix2pix (`models/cycle_gan_model.py`, `models/pix2pix_model.py`,
`util/image_pool.py`), over the same nets that ganops trains (components/translators.py).

Float images in [-1, 1] behind a shuffling DataLoader (unpaired: A[i] with a random B, as the
reference's unaligned dataset; paired: the same row of A and B); default Adam; NCHW; least
squares GAN loss (nn.MSELoss against 1 / 0 targets, the reference's `lsgan`); no autocast, no
compile; losses are not read back (the reference reads them every print_freq steps).

CycleGAN step (`optimize_parameters`): forward both cycles; G step with both Ds frozen
(adversarial + lambda_cycle * cycle + lambda_idt * identity); D_A and D_B step on real vs a fake
from each D's history pool. pix2pix step: forward G(a); D step on (a, b) vs (a, G(a).detach());
G step with D frozen (adversarial + lambda_l1 * L1). Run alone:

    python bench/plain_translation.py --arch cyclegan --image-size 32 --batch-size 8 --steps 10
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import time

import torch
from torch import nn


class ImagePool:
    """The reference's history of fakes: fill up to pool_size, then with p = 0.5 swap each new
    image with a random stored one and return the stored one."""

    def __init__(self, pool_size: int):
        self.pool_size, self.images = pool_size, []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.pool_size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)  # (1, C, H, W)
            if len(self.images) < self.pool_size:
                self.images.append(image)
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                j = random.randint(0, self.pool_size - 1)
                out.append(self.images[j].clone())
                self.images[j] = image
            else:
                out.append(image)
        return torch.cat(out, 0)  # (B, C, H, W)


class Unaligned(torch.utils.data.Dataset):
    """A[i] with a random B (the reference's unaligned dataset, serial_batches off)."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor):
        self.a, self.b = a, b

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, i: int):
        return self.a[i], self.b[random.randrange(len(self.b))]


def set_requires_grad(nets, flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad = flag


def gan_loss(criterion, pred: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    """The reference's GANLoss: the target tensor expanded to the prediction's shape."""
    target = torch.tensor(1.0 if target_is_real else 0.0, device=pred.device)
    return criterion(pred, target.expand_as(pred))


def cyclegan_step(nets, opts, pools, real_A, real_B, lambda_cycle, lambda_idt, criterion) -> None:
    G_AB, G_BA, D_A, D_B = nets["G_AB"], nets["G_BA"], nets["D_A"], nets["D_B"]
    opt_G, opt_D = opts
    l1 = nn.L1Loss()
    # forward
    fake_B = G_AB(real_A)
    rec_A = G_BA(fake_B)
    fake_A = G_BA(real_B)
    rec_B = G_AB(fake_A)
    # G_AB and G_BA
    set_requires_grad([D_A, D_B], False)
    opt_G.zero_grad()
    loss_idt = 0.0
    if lambda_idt > 0:
        loss_idt = (l1(G_AB(real_B), real_B) + l1(G_BA(real_A), real_A)) * lambda_idt
    loss_G = (
        gan_loss(criterion, D_B(fake_B), True)
        + gan_loss(criterion, D_A(fake_A), True)
        + (l1(rec_A, real_A) + l1(rec_B, real_B)) * lambda_cycle
        + loss_idt
    )
    loss_G.backward()
    opt_G.step()
    # D_A and D_B
    set_requires_grad([D_A, D_B], True)
    opt_D.zero_grad()
    for D, real, fake in (
        (D_B, real_B, pools[1].query(fake_B)),
        (D_A, real_A, pools[0].query(fake_A)),
    ):
        loss_D = gan_loss(criterion, D(real), True) + gan_loss(criterion, D(fake.detach()), False)
        (loss_D * 0.5).backward()  # backward_D_basic: one D at a time
    opt_D.step()


def pix2pix_step(nets, opts, real_A, real_B, lambda_l1, criterion) -> None:
    G, D = nets["G_AB"], nets["D_B"]
    opt_G, opt_D = opts
    fake_B = G(real_A)  # forward
    # D
    set_requires_grad([D], True)
    opt_D.zero_grad()
    fake_AB = torch.cat((real_A, fake_B), 1)  # (B, C_A + C_B, H, W)
    loss_D_fake = gan_loss(criterion, D(fake_AB.detach()), False)
    loss_D_real = gan_loss(criterion, D(torch.cat((real_A, real_B), 1)), True)
    ((loss_D_fake + loss_D_real) * 0.5).backward()
    opt_D.step()
    # G
    set_requires_grad([D], False)
    opt_G.zero_grad()
    loss_G = (
        gan_loss(criterion, D(fake_AB), True) + nn.functional.l1_loss(fake_B, real_B) * lambda_l1
    )
    loss_G.backward()
    opt_G.step()


def run(
    arch: str,
    nets: dict[str, nn.Module],
    images_a: torch.Tensor,
    images_b: torch.Tensor,
    batch_size: int,
    steps: int,
    device: torch.device,
    warmup: int,
    lambda_cycle: float = 10.0,
    lambda_idt: float = 5.0,
    lambda_l1: float = 100.0,
    pool_size: int = 50,
    lr: float = 2e-4,
) -> float:
    """Train `warmup` steps, then time `steps` more; returns images per second (one image = one
    a of A and one b of B). `nets`: G_AB, G_BA, D_A, D_B (cyclegan) or G_AB, D_B (pix2pix);
    uint8 images (N, C, S, S); lambda_idt is the identity weight itself (0.5 * 10 in the
    reference)."""
    nets = {name: net.to(device).train() for name, net in nets.items()}
    a = images_a.float() / 127.5 - 1.0  # (N, C_A, S, S) in [-1, 1]
    b = images_b.float() / 127.5 - 1.0
    data = Unaligned(a, b) if arch == "cyclegan" else torch.utils.data.TensorDataset(a, b)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True, drop_last=True)
    gs = [net for name, net in nets.items() if name.startswith("G")]
    ds = [net for name, net in nets.items() if name.startswith("D")]
    betas = (0.5, 0.999)
    opts = (
        torch.optim.Adam(itertools.chain(*(g.parameters() for g in gs)), lr=lr, betas=betas),
        torch.optim.Adam(itertools.chain(*(d.parameters() for d in ds)), lr=lr, betas=betas),
    )
    pools = (ImagePool(pool_size), ImagePool(pool_size))  # fakes of A (for D_A), of B (for D_B)
    criterion = nn.MSELoss()
    done, start = 0, None
    while done < warmup + steps:
        for real_A, real_B in loader:
            if done == warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            real_A, real_B = real_A.to(device), real_B.to(device)
            if arch == "cyclegan":
                cyclegan_step(
                    nets, opts, pools, real_A, real_B, lambda_cycle, lambda_idt, criterion
                )
            else:
                pix2pix_step(nets, opts, real_A, real_B, lambda_l1, criterion)
            done += 1
            if done == warmup + steps:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    from components.families.translation.nets import build_discriminator, build_generator, make_spec

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="cyclegan", choices=("cyclegan", "pix2pix"))
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    torch.manual_seed(0)
    spec = make_spec(a.arch, a.channels, a.channels, a.image_size)
    if a.arch == "cyclegan":
        nets = {
            "G_AB": build_generator(spec, "a2b"),
            "G_BA": build_generator(spec, "b2a"),
            "D_A": build_discriminator(spec, "a"),
            "D_B": build_discriminator(spec, "b"),
        }
    else:
        nets = {"G_AB": build_generator(spec, "a2b"), "D_B": build_discriminator(spec, "b")}
    shape = (8 * a.batch_size, a.channels, a.image_size, a.image_size)
    images_a = torch.randint(0, 256, shape, dtype=torch.uint8)
    images_b = torch.randint(0, 256, shape, dtype=torch.uint8)
    ips = run(a.arch, nets, images_a, images_b, a.batch_size, a.steps, torch.device(a.device), 2)
    print(json.dumps({"impl": "plain", "arch": a.arch, "img_per_s": round(ips, 1)}))


if __name__ == "__main__":
    main()
