"""The video family's nets, written from the papers' descriptions (MoCoGAN: Tulyakov et al.
2018; VGAN/TGAN for the plain 3-D generator); no code copied (REFERENCES.md: licences).

- `MoCoGenerator`: a content latent z_c per clip, a motion latent per frame from a GRU cell
  driven by per-frame noise, both (and a label embedding) into one image generator per frame.
- `Conv3dGenerator`: one latent per clip into transposed 3-D convolutions (time and space).
- `ImageDiscriminator`: DCGAN-style D on single frames; `VideoDiscriminator`: 3-D convolutions
  over whole clips. Both project a label embedding onto their features when conditional.

Every G takes (z_content (B, Zc), eps (B, T, Zm), labels (B,) or None) and returns clips
(B, T, C, S, S) in [-1, 1], so sampling, serving and export treat both archs alike.
"""

from __future__ import annotations

import math

import torch
from torch import nn

LABEL_DIM = 16  # width of G's label embedding


def up_levels(size: int) -> int:
    return int(math.log2(size)) - 2  # 4x4 -> size


class ImageGenerator(nn.Module):
    """(B, in_dim) -> (B, C, S, S): a linear 4x4 start, then blocks that double the size by
    bilinear upsampling and a 3x3 convolution. Transposed 4x4 / 2 convolutions drew a
    checkerboard over thin strokes in the first kimg (Odena et al. 2016), nearest upsampling
    dotted strokes at a 2-pixel period after 20 kimg; bilinear drew smooth strokes (docs/video.md,
    trials B and C)."""

    def __init__(self, in_dim: int, channels: int, size: int, width: int):
        super().__init__()
        n = up_levels(size)
        ch = width * 2 ** (n - 1)
        self.start = nn.Sequential(
            nn.Linear(in_dim, ch * 16), nn.BatchNorm1d(ch * 16), nn.ReLU(inplace=True)
        )
        self.ch0 = ch
        blocks = []
        for _ in range(n - 1):
            blocks += [
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(ch, ch // 2, 3, 1, 1, bias=False),
                nn.BatchNorm2d(ch // 2),
                nn.ReLU(inplace=True),
            ]
            ch //= 2
        blocks += [
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(ch, channels, 3, 1, 1),
            nn.Tanh(),
        ]
        self.body = nn.Sequential(*blocks)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.body(self.start(h).view(-1, self.ch0, 4, 4))


class MoCoGenerator(nn.Module):
    def __init__(self, z_content, z_motion, num_classes, channels, size, frames, width):
        super().__init__()
        self.z_content, self.z_motion, self.frames = z_content, z_motion, frames
        self.num_classes = num_classes
        self.gru = nn.GRUCell(z_motion, z_motion)
        self.embed = nn.Embedding(num_classes, LABEL_DIM) if num_classes else None
        in_dim = z_content + z_motion + (LABEL_DIM if num_classes else 0)
        self.image = ImageGenerator(in_dim, channels, size, width)

    def motion(self, eps: torch.Tensor) -> torch.Tensor:
        """(B, T, Zm) per-frame noise -> (B, T, Zm) motion codes (the GRU's hidden states)."""
        h = eps[:, 0]
        out = []
        for t in range(eps.shape[1]):
            h = self.gru(eps[:, t], h)
            out.append(h)
        return torch.stack(out, 1)

    def forward(self, z_content, eps, labels=None):
        T = eps.shape[1]  # sizes as -1 / flatten: traced exports keep a dynamic batch
        parts = [z_content.unsqueeze(1).expand(-1, T, -1), self.motion(eps)]
        if self.embed is not None:
            parts.append(self.embed(labels).unsqueeze(1).expand(-1, T, -1))
        frames = self.image(torch.cat(parts, 2).flatten(0, 1))
        return frames.view(-1, T, *frames.shape[1:])


def fold(x: torch.Tensor) -> torch.Tensor:
    """Reflect positions into [-1, 1] (a wall bounces the track back), differentiable."""
    y = torch.remainder(x + 1.0, 4.0)
    return torch.where(y > 2.0, 4.0 - y, y) - 1.0


def window(size: int, extent: float) -> torch.Tensor:
    """(1, 1, size, size): 1 inside the centred square of side extent * size, falling to 0
    over one pixel outside it."""
    centre = (torch.arange(size, dtype=torch.float32) + 0.5 - size / 2).abs()
    edge = (centre - extent * size / 2).clamp(0, 1)  # 0 inside, 1 a pixel past the edge
    line = 1 - edge
    return (line[:, None] * line[None, :]).view(1, 1, size, size)


class SpriteMoCoGenerator(MoCoGenerator):
    """MoCoGAN's split with a layered renderer (`train.renderer: sprite`): the content latent
    (and label) renders once per clip an object layer, its mask, a background and how far the
    object may travel (`reach`, a share of the frame: a large object has less room); the GRU's
    motion codes give a start, a velocity at the first frame and a change of velocity per frame
    (inertia: a track is smooth unless G learns to turn it), integrated into a track reflected
    at the walls; each frame is the object layer (its mask confined to a centred square of
    `extent` x the frame) shifted along the track (bilinear resampling) over the background,
    which is a 2x2 map upsampled (what has a shape must move), plus a still grain. The object
    keeps its identity over the clip and moves smoothly by construction; what it looks like and
    how it moves are learned from the two Ds."""

    max_speed = 0.25  # most movement per frame, in units of the track (a wall is 1 from centre)
    max_turn = 0.25  # most change per frame of the velocity's pre-tanh value
    # the mask's pre-tanh bias at start: 1.0 -> mask ~0.88, so at first all content moves with
    # the object (with a mask at 0.5 G drew the digit into the still background and the clips
    # froze within 20 kimg; a video D is slow to undo that)
    mask_init = 1.0
    # the background is a bg_cells x bg_cells map upsampled (a colour and its gradients): what
    # has a shape must move. At 8x8 (pooled by 4 on 32 px) G drew held-out shapes as still blobs
    # in it and moved an empty layer over them (docs/video.md)
    bg_cells = 2

    def __init__(self, z_content, z_motion, num_classes, channels, size, frames, width,
                 extent: float = 1.0):  # fmt: skip
        super().__init__(z_content, z_motion, num_classes, channels, size, frames, width)
        self.channels = channels
        # the mask lives in a centred square of `extent` x the frame's side (soft by a pixel):
        # with the whole frame to draw on, G moved the textured background with the object
        # (held-out shapes, docs/video.md); an object is what is small and moves
        self.register_buffer("window", window(size, extent), persistent=False)
        in_dim = z_content + (LABEL_DIM if num_classes else 0)
        self.image = ImageGenerator(in_dim, 2 * channels + 1, size, width)  # object, mask, bg
        with torch.no_grad():  # the mask starts near 1: everything moves with the object layer
            self.image.body[-2].bias[channels].fill_(self.mask_init)
        # grain: a still pixel-level texture per clip, z_content through a fixed random map,
        # at a learnt strength per channel (from 0): real footage has sensor noise or dither
        # the low-pass background cannot draw, and an image D tells frames apart by it alone
        basis = torch.randn(z_content, size * size, generator=torch.Generator().manual_seed(0))
        self.register_buffer("grain_basis", basis / math.sqrt(z_content), persistent=False)
        self.grain = nn.Parameter(torch.zeros(channels))
        self.reach = nn.Linear(in_dim, 1)  # the track spans +-reach half-frames (sigmoid)
        self.start = nn.Linear(z_motion, 2)
        self.velocity = nn.Linear(z_motion, 2)
        self.turn = nn.Linear(z_motion, 2)

    def track(self, h: torch.Tensor) -> torch.Tensor:
        """(B, T, Zm) motion codes -> (B, T, 2) positions (x, y) before the walls' fold."""
        turn = self.max_turn * torch.tanh(self.turn(h[:, 1:]))  # (B, T-1, 2)
        still = torch.zeros(h.shape[0], 1, 2, dtype=h.dtype, device=h.device)  # no turn at t=0
        a = self.velocity(h[:, :1]) + torch.cumsum(torch.cat([still, turn], 1), 1)
        v = self.max_speed * torch.tanh(a)  # (B, T, 2): the step after frame t
        return torch.tanh(self.start(h[:, 0])).unsqueeze(1) + torch.cumsum(v, 1) - v[:, :1]

    def low_pass(self, x: torch.Tensor) -> torch.Tensor:
        S = x.shape[-1]
        small = nn.functional.adaptive_avg_pool2d(x, self.bg_cells)
        return nn.functional.interpolate(small, size=(S, S), mode="bilinear", align_corners=False)

    def forward(self, z_content, eps, labels=None):
        T, C = eps.shape[1], self.channels
        h = self.motion(eps)  # (B, T, Zm)
        content = z_content if self.embed is None else torch.cat([z_content, self.embed(labels)], 1)
        layers = self.image(content)  # (B, 2C + 1, S, S) in [-1, 1]
        # the mask in [0, 1] before resampling: outside the shifted layer it is 0 (background)
        obj, mask = layers[:, :C], self.window * (layers[:, C : C + 1] + 1) / 2
        sprite, background = torch.cat([obj, mask], 1), self.low_pass(layers[:, C + 1 :])
        reach = torch.sigmoid(self.reach(content)).unsqueeze(1)  # (B, 1, 1)
        shift = reach * fold(self.track(h))  # (B, T, 2) as (x, y)
        eye = torch.eye(2, dtype=shift.dtype, device=shift.device).expand(shift.shape[0] * T, 2, 2)
        theta = torch.cat([eye, -shift.reshape(-1, 2, 1)], 2)  # sample at x - shift: moves +shift
        S = layers.shape[-1]
        grid = nn.functional.affine_grid(theta, [theta.shape[0], C + 1, S, S], align_corners=False)
        # zeros outside: "border" would smear the layer's edge rows across the frame
        moved = nn.functional.grid_sample(
            sprite.repeat_interleave(T, 0), grid, padding_mode="zeros", align_corners=False
        )
        mask = moved[:, C:]
        frames = mask * moved[:, :C] + (1 - mask) * background.repeat_interleave(T, 0)
        frames = frames.view(-1, T, *frames.shape[1:])
        grain = (z_content @ self.grain_basis).view(-1, 1, 1, S, S)  # (B, 1, 1, S, S), still
        return (frames + self.grain.view(1, 1, C, 1, 1) * grain).clamp(-1, 1)


class Conv3dGenerator(nn.Module):
    """VGAN/TGAN-style plain generator: z = [z_c, first eps] (+ label) -> a (t0, 4, 4) volume,
    transposed 3-D convs doubling space each block and time while it is below `frames`."""

    def __init__(self, z_content, z_motion, num_classes, channels, size, frames, width):
        super().__init__()
        self.z_content, self.z_motion, self.frames = z_content, z_motion, frames
        self.num_classes = num_classes
        n = up_levels(size)
        t_ups = min(n, int(math.log2(frames)))
        self.t0 = frames // 2**t_ups
        if self.t0 * 2**t_ups != frames:
            raise ValueError(f"conv3d needs frames = t0 * 2^k; got {frames}")
        self.embed = nn.Embedding(num_classes, LABEL_DIM) if num_classes else None
        in_dim = z_content + z_motion + (LABEL_DIM if num_classes else 0)
        ch = width * 2 ** (n - 1)
        self.ch0 = ch
        self.start = nn.Sequential(
            nn.Linear(in_dim, ch * self.t0 * 16), nn.BatchNorm1d(ch * self.t0 * 16), nn.ReLU(True)
        )
        blocks = []
        for i in range(n):
            ts = 2 if i >= n - t_ups else 1  # the last t_ups blocks double time
            out = channels if i == n - 1 else ch // 2
            kernel, pad = (4 if ts == 2 else 3, 4, 4), (1, 1, 1)
            blocks.append(nn.ConvTranspose3d(ch, out, kernel, (ts, 2, 2), pad, bias=i == n - 1))
            if i < n - 1:
                blocks += [nn.BatchNorm3d(out), nn.ReLU(inplace=True)]
            ch = out
        blocks.append(nn.Tanh())
        self.body = nn.Sequential(*blocks)

    def forward(self, z_content, eps, labels=None):
        parts = [z_content, eps[:, 0]]
        if self.embed is not None:
            parts.append(self.embed(labels))
        h = self.start(torch.cat(parts, 1)).view(-1, self.ch0, self.t0, 4, 4)
        return self.body(h).transpose(1, 2)  # (B, C, T, S, S) -> (B, T, C, S, S)


GENERATORS = {
    ("mocogan", "sprite"): SpriteMoCoGenerator,
    ("mocogan", "frames"): MoCoGenerator,
    ("conv3d", "frames"): Conv3dGenerator,
    ("conv3d", "sprite"): Conv3dGenerator,  # one renderer only: the volume is the frames
}


def make_generator(arch, renderer, z_content, z_motion, num_classes, channels, size, frames,
                   width, sprite_extent: float = 1.0) -> nn.Module:  # fmt: skip
    cls = GENERATORS[(arch, renderer)]
    args = (z_content, z_motion, num_classes, channels, size, frames, width)
    return cls(*args, sprite_extent) if cls is SpriteMoCoGenerator else cls(*args)


def build_generator(spec: dict) -> nn.Module:
    return make_generator(
        spec["arch"], spec.get("renderer", "frames"), spec["z_content"], spec["z_motion"],
        spec["num_classes"], spec["channels"], spec["image_size"], spec["frames"],
        spec["g_channels"], spec.get("sprite_extent", 1.0),
    )  # fmt: skip


def sn(layer: nn.Module) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018): both Ds' layers, so neither D runs away
    from G (without it the image and video Ds won within 10 kimg on Moving MNIST)."""
    return nn.utils.parametrizations.spectral_norm(layer)


class _Projection(nn.Module):
    """Logit = linear(the 4x4 map) + <embed(label), the map summed over space> (Miyato & Koyama
    2018; the sum as in SN-GAN's and BigGAN's Ds). The label's term does not depend on where
    the object is: with the map flattened, each class had to be learnt at each of the 16 places
    an object can stand, and G drew the same digit whatever the label (docs/video.md)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.linear = sn(nn.Linear(channels * 16, 1))
        self.embed = sn(nn.Embedding(num_classes, channels)) if num_classes else None

    def forward(self, h, labels=None):  # h: (B, channels, 4, 4)
        out = self.linear(h.flatten(1)).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(labels) * h.sum((2, 3))).sum(1)
        return out


class MinibatchStd(nn.Module):
    """ProGAN's minibatch standard deviation (Karras et al. 2018): one more channel holding how
    much the samples of a group differ, averaged over features, so D sees a batch that lacks
    variety (G drawing one shape whatever z asks) as unlike real data. Groups take every
    (N / group)-th sample: consecutive frames of one clip never share a group. group 0: off."""

    def __init__(self, group: int):
        super().__init__()
        self.group = group

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (N, C, ...) -> (N, C + 1, ...)
        if not self.group:
            return h
        N = h.shape[0]
        g = max(d for d in range(1, min(self.group, N) + 1) if N % d == 0)
        y = h.float().reshape(g, -1, *h.shape[1:])  # (g, N / g, C, ...)
        std = (y.var(0, unbiased=False) + 1e-8).sqrt().mean(list(range(1, y.dim() - 1)))
        std = std.to(h.dtype).repeat(g).view(N, 1, *([1] * (h.dim() - 2)))
        return torch.cat([h, std.expand(N, 1, *h.shape[2:])], 1)


class ImageDiscriminator(nn.Module):
    """(B, C, S, S) -> (B,) logits: strided convs down to 4x4 (+ the minibatch-std channel)."""

    def __init__(self, channels: int, size: int, width: int, num_classes: int, mbstd: int = 0):
        super().__init__()
        layers, ch = [], channels
        for i in range(up_levels(size)):
            out = width * 2**i
            layers += [sn(nn.Conv2d(ch, out, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
            ch = out
        self.body = nn.Sequential(*layers, MinibatchStd(mbstd))  # (B, ch [+ 1], 4, 4)
        self.head = _Projection(ch + (1 if mbstd else 0), num_classes)

    def forward(self, x, labels=None):
        return self.head(self.body(x), labels)


class VideoDiscriminator(nn.Module):
    """(B, T, C, S, S) -> (B,) logits: 3-D convs halving space every block and time while it is
    above 2, averaged over what is left of time."""

    def __init__(
        self, channels: int, size: int, frames: int, width: int, num_classes: int, mbstd: int = 0
    ):
        super().__init__()
        layers, ch, t = [], channels, frames
        for i in range(up_levels(size)):
            out = width * 2**i
            ts = 2 if t > 2 else 1
            layers += [
                sn(nn.Conv3d(ch, out, (3, 4, 4), (ts, 2, 2), (1, 1, 1))),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            ch, t = out, (t - 1) // ts + 1
        self.body = nn.Sequential(*layers)
        self.std = MinibatchStd(mbstd)
        self.head = _Projection(ch + (1 if mbstd else 0), num_classes)

    def forward(self, clips, labels=None):
        h = self.std(self.body(clips.transpose(1, 2)).mean(2))  # (B, ch [+ 1], 4, 4)
        return self.head(h, labels)


def clip_latents(seeds, spec: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(z_content (N, Zc), eps (N, T, Zm)): clip i is drawn from seed i alone, so a seed gives
    the same clip in any batch (evaluate, pyfunc, generate, export)."""
    zc, eps = [], []
    for s in seeds:
        gen = torch.Generator().manual_seed(int(s))
        zc.append(torch.randn(spec["z_content"], generator=gen))
        eps.append(torch.randn(spec["frames"], spec["z_motion"], generator=gen))
    return torch.stack(zc), torch.stack(eps)


def load_generator(model_dir) -> tuple[nn.Module, dict]:
    """G_ema and its spec from a models/ folder (safetensors: no pickle)."""
    from pathlib import Path

    from safetensors.torch import load_file

    from components.families.video.options import SPEC_FILE
    from components.layout import read_json

    model_dir = Path(model_dir)
    spec = read_json(model_dir / SPEC_FILE)
    G = build_generator(spec)
    G.load_state_dict(load_file(str(model_dir / "G_ema.safetensors")))
    return G.eval().requires_grad_(False), spec


@torch.no_grad()
def sample_clips(G, spec: dict, seeds, labels=None, batch: int = 64):
    """uint8 clips (N, T, C, S, S) for the given seeds (and labels when conditional)."""
    import numpy as np

    from components.images import to_uint8

    zc, eps = clip_latents(seeds, spec)
    lab = torch.as_tensor(np.asarray(labels), dtype=torch.long) if labels is not None else None
    out = []
    for i in range(0, len(zc), batch):
        c = lab[i : i + batch] if lab is not None else None
        clips = G(zc[i : i + batch], eps[i : i + batch], c)
        B, T = clips.shape[:2]
        out.append(to_uint8(clips.reshape(B * T, *clips.shape[2:])).reshape(clips.shape))
    return np.concatenate(out) if out else np.zeros((0,), np.uint8)
