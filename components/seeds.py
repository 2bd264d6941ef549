"""Every derived seed in one place, so no two uses of randomness collide by accident.

Latent seeds: image i of a sample set drawn with seed s uses the latent of seed
s * LATENTS_PER_SEED + offset + i; `latents` draws one z per seed (every family's G draws from
them).
"""

from __future__ import annotations

import numpy as np

LATENTS_PER_SEED = 1_000_000  # room for a million images per seed before sets overlap
CLASS_GRID_OFFSET = 500_000  # evaluate's per-class picture
INTERPOLATION_OFFSET = 700_000  # evaluate's latent walks
PROBE_LATENT_BASE = 10**9  # the training probe's fixed latents, apart from any evaluation set
SAMPLE_GRID_OFFSET = 1  # the fixed sample-grid noise is drawn from train.seed + this
BATCH_STREAM_OFFSET = 2  # training batches (reals, labels, z) are drawn from train.seed + this
RESUME_STREAM = 1_000_003  # a prime: DDP ranks re-seed as seed + rank + this * step on resume


def latent_seeds(seed: int, n: int, offset: int = 0) -> np.ndarray:
    """The latent seeds of n images of the sample set `seed` (see the module doc)."""
    return seed * LATENTS_PER_SEED + offset + np.arange(n)


def probe_latent_seeds(n: int) -> np.ndarray:
    return PROBE_LATENT_BASE + np.arange(n)


def rank_seed(seed: int, rank: int, resumed_step: int = 0) -> int:
    """Seed of a DDP rank's data, noise and augmentation stream (resumed: a fresh stream)."""
    return seed + rank + RESUME_STREAM * resumed_step


def latents(seeds, z_dim: int, truncation: float = 1.0):
    """One z per seed, drawn on its own generator: the image of a seed never depends on the batch.

    truncation < 1 resamples |z| > truncation (the truncation trick): less variety, cleaner images.
    """
    import torch

    rows = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(int(seed))
        z = torch.randn(1, z_dim, generator=gen)
        if truncation < 1.0:
            while (bad := z.abs() > truncation).any():
                z[bad] = torch.randn(int(bad.sum()), generator=gen)
        rows.append(z)
    return torch.cat(rows)  # (N, z_dim)
