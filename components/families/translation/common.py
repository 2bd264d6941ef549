"""Pieces of image-to-image training that are not the loop: the history pool of fakes, the
cycle / identity / L1 losses, the linear lr decay, and detectors of degenerate solutions.

Images are in [-1, 1], shaped (B, C, H, W).
"""

from __future__ import annotations

import torch

POOL_SIZE = 50  # fakes kept per D (the reference's pool_size; Shrivastava et al. 2017)


class ImagePool:
    """A history of generated images (Shrivastava et al. 2017), so D also sees older fakes.

    Until the pool holds `pool_size` images, each new image is stored and returned. After
    that, each image is with p = 0.5 returned as is, else swapped with a random stored one,
    which is returned instead (the reference's image_pool.py). All randomness comes from
    torch's global CPU generator, so a checkpoint's RNG state makes a resumed run draw the same.
    pool_size 0: pass-through.
    """

    def __init__(self, pool_size: int = POOL_SIZE):
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}")
        self.pool_size = pool_size
        self.num_images = 0
        self.images: torch.Tensor | None = None  # (pool_size, C, H, W) once the first batch came

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """A batch like `images` (detached) mixing them with stored fakes."""
        if self.pool_size == 0:
            return images
        images = images.detach()
        if self.images is None:
            self.images = images.new_empty((self.pool_size, *images.shape[1:]))
        self.images = self.images.to(images.device)
        n = images.shape[0]
        swap = torch.rand(n) < 0.5  # (B,) drawn for every image, so each call draws the same
        slot = torch.randint(self.pool_size, (n,))  # (B,)
        out = images.clone()  # (B, C, H, W)
        for i in range(n):
            if self.num_images < self.pool_size:
                self.images[self.num_images] = images[i]
                self.num_images += 1
            elif swap[i]:
                j = int(slot[i])
                out[i] = self.images[j]
                self.images[j] = images[i]
        return out

    def state_dict(self) -> dict:
        """Tensors and ints only (checkpoints load with weights_only=True)."""
        stored = self.images[: self.num_images] if self.images is not None else torch.empty(0)
        return {"pool_size": self.pool_size, "num_images": self.num_images, "images": stored.cpu()}

    def load_state_dict(self, state: dict) -> None:
        if int(state["pool_size"]) != self.pool_size:
            raise ValueError(f"pool_size {state['pool_size']} in state, {self.pool_size} here")
        self.num_images = int(state["num_images"])
        stored = state["images"]
        if self.num_images == 0:
            self.images = None
            return
        self.images = stored.new_empty((self.pool_size, *stored.shape[1:]))
        self.images[: self.num_images] = stored


def l1_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference: pix2pix's reconstruction term (weight 100 in its paper)."""
    return (x - y).abs().mean()


def cycle_loss(rec: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """||G_BA(G_AB(a)) - a||_1, mean over pixels (CycleGAN's weight lambda = 10)."""
    return l1_loss(rec, real)


def identity_loss(same: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """||G_AB(b) - b||_1, mean over pixels (weight 0.5 * lambda in the reference)."""
    return l1_loss(same, real)


def linear_decay_factor(step: int, total_steps: int, decay_start: float = 0.5) -> float:
    """lr multiplier: 1 until decay_start * total_steps, then linear to 0 at total_steps.

    The reference's n_epochs constant + n_epochs_decay linear schedule, in steps. A pure
    function of the step, so a resumed run is at the same point of the schedule.
    """
    if not 0.0 <= decay_start <= 1.0:
        raise ValueError(f"decay_start must be in [0, 1], got {decay_start}")
    start = decay_start * total_steps
    if step >= total_steps:
        return 0.0
    if step <= start:
        return 1.0
    return 1.0 - (step - start) / (total_steps - start)


def _gray(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=1, keepdim=True)  # (B, 1, H, W)


def noop_distance(inputs: torch.Tensor, outputs: torch.Tensor) -> float:
    """Mean |output - input| in [-1, 1] space: 0 when G copies its input (a "no-op").

    Compare it with the domain gap (the same distance between an A image and a B image):
    a translation much closer to its input than that has not moved to the other domain.
    1 <-> 3 channels: compared on the channel mean.
    """
    if inputs.shape[1] != outputs.shape[1]:
        inputs, outputs = _gray(inputs), _gray(outputs)
    if inputs.shape != outputs.shape:
        raise ValueError(f"shapes differ: {tuple(inputs.shape)} vs {tuple(outputs.shape)}")
    return float((outputs.float() - inputs.float()).abs().mean())


def collapse_score(outputs: torch.Tensor, inputs: torch.Tensor) -> float:
    """How much outputs vary across the batch, relative to their inputs: the mean over pixels
    (and channels) of the per-pixel standard deviation across the batch, outputs over inputs.

    ~0: every input gives (nearly) the same output (collapse); ~1: outputs vary as much as the
    inputs do. Needs at least two images; 0 when inputs and outputs are both constant.
    """
    if outputs.shape[0] < 2 or inputs.shape[0] != outputs.shape[0]:
        raise ValueError("collapse_score needs one input per output and at least two of each")
    spread_out = outputs.float().std(dim=0).mean()  # scalar: mean over (C, H, W)
    spread_in = inputs.float().std(dim=0).mean()
    return float(spread_out / spread_in.clamp_min(1e-8))


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float in [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def set_lr(optimizers, base: dict[str, float], factor: float) -> None:
    """Every param group of optimizers[name] at base[name] * factor (the decay schedule)."""
    for name, opt in optimizers.items():
        for group in opt.param_groups:
            group["lr"] = base[name] * factor


def as_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """(B, C, H, W) with C in {1, 3} -> `channels` (gray repeated, or RGB averaged)."""
    if x.shape[1] == channels:
        return x
    return x.repeat(1, channels, 1, 1) if x.shape[1] == 1 else x.mean(dim=1, keepdim=True)


def sample_rows(*rows: torch.Tensor) -> torch.Tensor:
    """Grid rows of equal length, brought to one channel count: (rows * k, C, H, W)."""
    channels = max(r.shape[1] for r in rows)
    return torch.cat([as_channels(r, channels) for r in rows])
