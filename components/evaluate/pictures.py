"""Pictures people would rather look at than read: sample grids, latent interpolations,
nearest real neighbours (a memorisation check) and loss curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from components.evaluate.metrics import Side
from components.images import grid, save_png, to_uint8
from components.seeds import CLASS_GRID_OFFSET, INTERPOLATION_OFFSET, latent_seeds, latents


@torch.no_grad()
def class_grid(G, num_classes: int, seed: int, path: Path, per_class: int = 10) -> Path:
    """One row per class (or 10 rows when unconditional), `per_class` seeds per row."""
    rows = num_classes or 10
    z = latents(latent_seeds(seed, rows * per_class, CLASS_GRID_OFFSET), G.z_dim)
    c = torch.arange(rows).repeat_interleave(per_class) if num_classes else None
    return save_png(grid(to_uint8(G(z, c)), rows), path, scale=2)


@torch.no_grad()
def interpolation_grid(G, num_classes: int, seed: int, path: Path, steps: int = 10) -> Path:
    """Each row walks (spherically) from one latent to another at a fixed class."""
    rows = num_classes or 8
    seeds = latent_seeds(seed, 2 * rows, INTERPOLATION_OFFSET)
    ends = latents(seeds, G.z_dim).view(rows, 2, -1)
    a, b = ends[:, 0], ends[:, 1]  # (rows, z_dim)
    omega = torch.acos(
        (a / a.norm(dim=1, keepdim=True) * b / b.norm(dim=1, keepdim=True)).sum(1).clamp(-1, 1)
    )[:, None]  # (rows, 1)
    t = torch.linspace(0, 1, steps)[None, :, None]  # (1, steps, 1)
    so = torch.sin(omega)[:, None]
    z = (torch.sin((1 - t) * omega[:, None]) / so) * a[:, None] + (
        torch.sin(t * omega[:, None]) / so
    ) * b[:, None]  # (rows, steps, z_dim)
    c = torch.arange(rows).repeat_interleave(steps) if num_classes else None
    return save_png(grid(to_uint8(G(z.reshape(rows * steps, -1), c)), rows), path, scale=2)


def nearest_real_grid(generated: Side, train: Side, path: Path, rows: int = 8, k: int = 6) -> Path:
    """Each row: a generated image, then its k nearest real training images in feature space.
    Near-copies in a row mean the generator memorised its data."""
    rows = min(rows, len(generated.images))
    picks = np.linspace(0, len(generated.images) - 1, rows).round().astype(int)  # across classes
    d = torch.cdist(generated.feats[picks].double(), train.feats.double())  # (rows, N)
    nearest = d.topk(k, largest=False).indices.numpy()  # (rows, k)
    tiles = []
    for r, i in enumerate(picks):
        tiles.append(generated.images[i])
        tiles.extend(train.images[nearest[r]])
    return save_png(grid(np.stack(tiles), rows), path, scale=2)


def loss_curves(train_log: Path, path: Path) -> Path:
    """Losses against kimg from the train stage's log: d_loss and g_loss on the left; on the
    right D(x) and D(G(z)) for a noise -> image model, or a translator's parts (G_AB, G_BA,
    D_A, D_B, cycle, identity, L1: whichever its family logged); a third panel with ADA's p
    and r_t when the run used train.reg.ada."""
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt
    import pandas as pd

    from components.layout import atomic_write_bytes

    log = pd.read_csv(train_log)
    ada = {"ada_p": "p", "ada_r_t": "r_t"} if "ada_p" in log.columns else {}
    fig, axes = plt.subplots(1, 3 if ada else 2, figsize=(15 if ada else 10, 3.5))
    ax_loss, ax_d = axes[:2]
    ax_loss.plot(log["kimg"], log["d_loss"], label="d_loss")
    ax_loss.plot(log["kimg"], log["g_loss"], label="g_loss")
    parts = {"D_x": "D(x)", "D_G_z": "D(G(z))"}
    if not set(parts) <= set(log.columns):
        names = ("G_AB", "G_BA", "D_A", "D_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "L1")
        parts = {name: name for name in names if name in log.columns}
    for column, label in parts.items():
        ax_d.plot(log["kimg"], log[column], label=label)
    right = "discriminator outputs" if "D_x" in parts else "loss terms"
    panels = [(ax_loss, "losses"), (ax_d, right)]
    if ada:
        for column, label in ada.items():
            axes[2].plot(log["kimg"], log[column], label=label)
        panels.append((axes[2], "ADA: augmentation p, overfitting r_t"))
    for ax, title in panels:
        ax.set_xlabel("kimg")
        ax.set_title(title)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path
