"""Every derived seed in one place, so no two uses of randomness collide by accident.

Latent seeds: image i of a sample set drawn with seed s uses the latent of seed
s * LATENTS_PER_SEED + offset + i (components.families.noise.nets.latents draws one z per seed).
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
