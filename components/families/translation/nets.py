"""Image-to-image nets: CycleGAN's ResNet generator, pix2pix's U-Net, the PatchGAN discriminator.

Each net is built from a plain JSON-able spec (translator.json beside the weights), so a
registered model describes itself (STYLE 22c):

    {"family": "translation", "arch": "cyclegan" | "pix2pix",
     "channels_a": 1, "channels_b": 1, "image_size": 32,
     "g_channels": 32,            # ngf: width of G's first layer
     "d_channels": 64,            # ndf: width of D's first layer
     "n_blocks": 6,               # residual blocks of the ResNet G (cyclegan only)
     "d_layers": 1,               # stride-2 layers of the PatchGAN (see receptive_field)
     "norm": "instance",          # instance | batch | none, in G and D
     "upsample": "resize",        # resize (nearest 2x + 3x3 conv) | transpose (ConvTranspose2d)
     "dropout": false}            # dropout 0.5 in G (cyclegan: residual blocks; pix2pix: decoder)

Directions: "a2b" maps domain A (channels_a) to B (channels_b), "b2a" the reverse (cyclegan
only). D of domain "a" or "b" judges images of that domain; pix2pix has one conditional D
("b") that judges concat(A, B) pairs. Reference: Zhu, Park et al.'s pytorch-CycleGAN-and-pix2pix
(networks.py); departures are named where they are made.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from components.errors import ConfigError
from components.families.translation.options import ARCHS, SPEC_FILE  # noqa: F401 (re-exported)
from components.shapes import assert_shape

WEIGHTS = {"a2b": "G_AB.safetensors", "b2a": "G_BA.safetensors"}  # G's weights per direction
NORMS = ("instance", "batch", "none")
UPSAMPLES = ("resize", "transpose")
SPEC_KEYS = {
    "family": str,
    "arch": str,
    "channels_a": int,
    "channels_b": int,
    "image_size": int,
    "g_channels": int,
    "d_channels": int,
    "n_blocks": int,
    "d_layers": int,
    "norm": str,
    "upsample": str,
    "dropout": bool,
}


# ---------------------------------------------------------------------------------------------
# Spec
# ---------------------------------------------------------------------------------------------


def receptive_field(n_layers: int) -> int:
    """Side in pixels of the input patch that one PatchGAN logit sees.

    n_layers stride-2 4x4 convs, then two stride-1 4x4 convs: walking back from one logit,
    r = 4 -> 7 after the stride-1 pair, then r -> 2r + 2 per stride-2 conv, so r = 9 * 2^n - 2.
    """
    if n_layers < 0:
        raise ValueError(f"n_layers must be >= 0, got {n_layers}")
    return 9 * 2**n_layers - 2


def default_d_layers(image_size: int) -> int:
    """The most stride-2 layers (at most the reference's 3) whose patch is smaller than the image.

    | image | d_layers | receptive field | logits map |
    |-------|----------|-----------------|------------|
    |  32   |    1     |  16 px          |  14 x 14   |
    |  64   |    2     |  34 px          |  14 x 14   |
    | 128   |    3     |  70 px          |  14 x 14   |
    | 256   |    3     |  70 px          |  30 x 30   |  (the reference: 70x70 PatchGAN)

    n_layers=2 at 32 px would see 34 px, the whole image (a global D, not a patch D).
    """
    n = 0
    while n < 3 and receptive_field(n + 1) < image_size:
        n += 1
    return n


def make_spec(arch: str, channels_a: int, channels_b: int, image_size: int, **overrides) -> dict:
    """A complete, checked spec with the reference defaults for `arch` (instance norm and no
    dropout for cyclegan; batch norm and dropout for pix2pix, as in its paper)."""
    spec = {
        "family": "translation",
        "arch": arch,
        "channels_a": channels_a,
        "channels_b": channels_b,
        "image_size": image_size,
        "g_channels": 64,
        "d_channels": 64,
        "n_blocks": 9 if image_size >= 256 else 6,  # the reference's resnet_9blocks / 6blocks
        "d_layers": default_d_layers(image_size),
        "norm": "batch" if arch == "pix2pix" else "instance",
        # bench/checkerboard.py (32 px, ngf 32, 6 blocks): at init "transpose" puts 40x the
        # digits' share of power at the period-2/4 px frequencies, "resize" 2.3x; after 120
        # steps both are at the digits' level, and on blank inputs resize's 2x2 phase pattern is
        # 16-30% weaker (0.0057 vs 0.0068 at L1 weight 10; 0.0056 vs 0.0080 at 1). Cost: its
        # upsampling convs run at 2x resolution, +21% G FLOPs (327 vs 271 MFLOP per image).
        "upsample": "resize",
        "dropout": arch == "pix2pix",
    }
    spec.update(overrides)
    check_spec(spec)
    return spec


def check_spec(spec: dict) -> None:
    """Reject unknown or missing keys, wrong types and values, naming the key."""
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    missing = sorted(set(SPEC_KEYS) - set(spec))
    if unknown or missing:
        raise ConfigError(f"translator spec: unknown keys {unknown}, missing keys {missing}")
    for key, kind in SPEC_KEYS.items():
        value = spec[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(f"translator spec: {key} must be {kind.__name__}, got {value!r}")
    choices = {"family": ("translation",), "arch": ARCHS, "norm": NORMS, "upsample": UPSAMPLES}
    for key, allowed in choices.items():
        if spec[key] not in allowed:
            raise ConfigError(f"translator spec: {key} {spec[key]!r} not one of {allowed}")
    size = spec["image_size"]
    if size < 32 or size & (size - 1):
        raise ConfigError(f"translator spec: image_size {size} must be a power of two >= 32")
    for key in ("channels_a", "channels_b"):
        if spec[key] not in (1, 3):
            raise ConfigError(f"translator spec: {key} must be 1 or 3, got {spec[key]}")
    for key in ("g_channels", "d_channels", "n_blocks"):
        if spec[key] < 1:
            raise ConfigError(f"translator spec: {key} must be >= 1, got {spec[key]}")
    if not 0 <= spec["d_layers"] <= int(math.log2(size)) - 2:
        raise ConfigError(f"translator spec: d_layers {spec['d_layers']} too deep for {size} px")


# ---------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------


def norm_layer(norm: str, channels: int) -> nn.Module:
    """Instance norm as in the reference (no affine, no running stats), BatchNorm, or nothing."""
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


def up_layer(cin: int, cout: int, upsample: str, kernel: int, bias: bool) -> nn.Module:
    """Doubles the resolution. "transpose": ConvTranspose2d, stride 2 (the reference; its
    kernel is not a multiple of the stride at k=3, so its outputs overlap unevenly: checkerboard).
    "resize": nearest 2x upsampling then a 3x3 conv (Odena et al. 2016), no uneven overlap."""
    if upsample == "transpose":
        if kernel == 3:  # ResNet G: k3 s2 p1 op1
            return nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1, bias=bias)
        return nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=bias)  # U-Net: k4 s2 p1
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1, bias=bias)
    )


class ResnetBlock(nn.Module):
    """x + [pad, 3x3 conv, norm, ReLU, (dropout), pad, 3x3 conv, norm](x)."""

    def __init__(self, channels: int, norm: str, dropout: bool, bias: bool):
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(norm, channels),
            nn.ReLU(True),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=bias),
            norm_layer(norm, channels),
        ]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)  # (B, C, H, W)


# ---------------------------------------------------------------------------------------------
# Generators
# ---------------------------------------------------------------------------------------------


class ResnetGenerator(nn.Module):
    """CycleGAN's G: 7x7 stem (ngf), two stride-2 downsamplings (2ngf, 4ngf), n_blocks residual
    blocks at 1/4 resolution, two 2x upsamplings back to ngf, 7x7 conv, tanh."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        image_size: int,
        ngf: int = 64,
        n_blocks: int = 6,
        norm: str = "instance",
        upsample: str = "resize",
        dropout: bool = False,
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.image_size = in_channels, out_channels, image_size
        bias = norm != "batch"  # BatchNorm's shift makes a conv bias redundant (as reference)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, bias=bias),  # (B, ngf, S, S)
            norm_layer(norm, ngf),
            nn.ReLU(True),
        ]
        for i in range(2):  # (B, ngf*2, S/2, S/2), then (B, ngf*4, S/4, S/4)
            cin = ngf * 2**i
            layers += [nn.Conv2d(cin, cin * 2, 3, 2, 1, bias=bias), norm_layer(norm, cin * 2)]
            layers.append(nn.ReLU(True))
        layers += [ResnetBlock(ngf * 4, norm, dropout, bias) for _ in range(n_blocks)]
        for i in range(2):  # (B, ngf*2, S/2, S/2), then (B, ngf, S, S)
            cin = ngf * 4 // 2**i
            layers += [up_layer(cin, cin // 2, upsample, 3, bias), norm_layer(norm, cin // 2)]
            layers.append(nn.ReLU(True))
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert_shape(x, (None, self.in_channels, self.image_size, self.image_size))
        y = self.net(x)  # (B, out_channels, S, S) in [-1, 1]
        assert_shape(y, (x.shape[0], self.out_channels, self.image_size, self.image_size))
        return y


class UnetBlock(nn.Module):
    """One U-Net level: down(x) -> inner -> up, output concat(x, up(...)) except outermost.

    Down: [LeakyReLU 0.2], 4x4 stride-2 conv, [norm]. Up: ReLU, 2x upsampling, [norm],
    [dropout]; the outermost ends in tanh instead of norm. As the reference's
    UnetSkipConnectionBlock: no norm on the outermost and innermost down, no ReLU before the
    outermost down.
    """

    def __init__(
        self,
        outer: int,
        inner: int,
        sub: nn.Module | None,
        out_channels: int | None = None,
        norm: str = "batch",
        upsample: str = "resize",
        dropout: bool = False,
        outermost: bool = False,
    ):
        super().__init__()
        self.outermost = outermost
        bias = norm != "batch"
        innermost = sub is None
        down: list[nn.Module] = [] if outermost else [nn.LeakyReLU(0.2, True)]
        down.append(nn.Conv2d(outer, inner, 4, 2, 1, bias=bias))
        if not (outermost or innermost):
            down.append(norm_layer(norm, inner))
        up_in = inner if innermost else inner * 2  # the inner level's skip concat doubles it
        up: list[nn.Module] = [nn.ReLU(True)]
        if outermost:
            up += [up_layer(up_in, out_channels, upsample, 4, True), nn.Tanh()]
        else:
            up += [up_layer(up_in, outer, upsample, 4, bias), norm_layer(norm, outer)]
            if dropout:
                up.append(nn.Dropout(0.5))
        self.down = nn.Sequential(*down)
        self.sub = sub if sub is not None else nn.Identity()
        self.up = nn.Sequential(*up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up(self.sub(self.down(x)))  # (B, outer or out_channels, H, W)
        return y if self.outermost else torch.cat([x, y], dim=1)  # (B, 2*outer, H, W)


class UnetGenerator(nn.Module):
    """pix2pix's G: encoder C64-C128-C256-C512-C512... down to 1x1 (log2(size) levels),
    decoder mirroring it with skip connections, tanh out.

    Dropout 0.5 sits in the three decoder levels nearest the bottleneck, as in the paper's
    CD512-CD1024-CD1024 (the reference puts it in the 512-wide middle levels only, which leaves
    none at 32 px).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        image_size: int,
        ngf: int = 64,
        norm: str = "batch",
        upsample: str = "resize",
        dropout: bool = True,
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.image_size = in_channels, out_channels, image_size
        num_downs = int(math.log2(image_size))  # 5 at 32 px ... 8 at 256 px: down to 1x1
        widths = [ngf * min(2**i, 8) for i in range(num_downs)]  # encoder: 64,128,256,512,512..
        block = None
        for level in range(num_downs - 1, 0, -1):  # innermost (level num_downs-1) outwards
            drop = dropout and level >= num_downs - 3
            block = UnetBlock(widths[level - 1], widths[level], block, None, norm, upsample, drop)
        self.net = UnetBlock(
            in_channels, widths[0], block, out_channels, norm, upsample, outermost=True
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert_shape(x, (None, self.in_channels, self.image_size, self.image_size))
        y = self.net(x)  # (B, out_channels, S, S) in [-1, 1]
        assert_shape(y, (x.shape[0], self.out_channels, self.image_size, self.image_size))
        return y


# ---------------------------------------------------------------------------------------------
# Discriminator
# ---------------------------------------------------------------------------------------------


class PatchDiscriminator(nn.Module):
    """PatchGAN: n_layers 4x4 stride-2 convs (ndf, 2ndf, ... capped at 8ndf), one stride-1 4x4
    conv, a 4x4 conv to one logit per patch of receptive_field(n_layers) pixels. LeakyReLU 0.2,
    no norm on the first layer. For pix2pix, in_channels = channels_a + channels_b (the pair)."""

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
    ):
        super().__init__()
        self.in_channels, self.image_size = in_channels, image_size
        self.out_size = image_size // 2**n_layers - 2  # two stride-1 4x4 convs each take 1 px
        bias = norm != "batch"
        layers: list[nn.Module] = []
        prev = in_channels
        for i in range(n_layers + 1):  # n_layers stride-2 convs, then one stride-1
            ch = ndf * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers.append(nn.Conv2d(prev, ch, 4, stride, 1, bias=bias or i == 0))
            if i > 0:
                layers.append(norm_layer(norm, ch))
            layers.append(nn.LeakyReLU(0.2, True))
            prev = ch
        layers.append(nn.Conv2d(prev, 1, 4, 1, 1))  # (B, 1, S/2^n - 2, S/2^n - 2) logits
        self.net = nn.Sequential(*layers)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        assert_shape(img, (None, self.in_channels, self.image_size, self.image_size))
        logits = self.net(img)  # (B, 1, P, P): one logit per patch
        assert_shape(logits, (img.shape[0], 1, self.out_size, self.out_size))
        return logits


# ---------------------------------------------------------------------------------------------
# Building and loading
# ---------------------------------------------------------------------------------------------


def init_weights(module: nn.Module) -> None:
    """The reference's "normal" init: conv weights N(0, 0.02), biases 0, BN scale N(1, 0.02)."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def check_direction(spec: dict, direction: str) -> None:
    """a2b or b2a; pix2pix models have a2b only."""
    if direction not in WEIGHTS:
        raise ConfigError(f"--direction {direction!r}: one of {tuple(WEIGHTS)}")
    if direction == "b2a" and spec["arch"] == "pix2pix":
        raise ConfigError("--direction b2a: a pix2pix model translates a2b only")


def _channels(spec: dict, direction: str) -> tuple[int, int]:
    check_direction(spec, direction)
    a, b = spec["channels_a"], spec["channels_b"]
    return (a, b) if direction == "a2b" else (b, a)


def build_generator(spec: dict, direction: str = "a2b") -> nn.Module:
    """G for one direction ("a2b": channels_a -> channels_b), initialised N(0, 0.02)."""
    check_spec(spec)
    cin, cout = _channels(spec, direction)
    common = {"norm": spec["norm"], "upsample": spec["upsample"], "dropout": spec["dropout"]}
    if spec["arch"] == "cyclegan":
        G = ResnetGenerator(
            cin, cout, spec["image_size"], spec["g_channels"], spec["n_blocks"], **common
        )
    else:
        G = UnetGenerator(cin, cout, spec["image_size"], spec["g_channels"], **common)
    G.apply(init_weights)
    return G


def build_discriminator(spec: dict, domain: str = "b") -> PatchDiscriminator:
    """D of one domain ("a" | "b"); pix2pix's is conditional on A: domain "b", in = a + b."""
    check_spec(spec)
    if domain not in ("a", "b"):
        raise ConfigError(f"domain {domain!r} must be 'a' or 'b'")
    if spec["arch"] == "pix2pix":
        if domain != "b":
            raise ConfigError("domain a: pix2pix has one conditional D, of domain b")
        in_channels = spec["channels_a"] + spec["channels_b"]  # concat(A, B)
    else:
        in_channels = spec[f"channels_{domain}"]
    D = PatchDiscriminator(
        in_channels, spec["image_size"], spec["d_channels"], spec["d_layers"], spec["norm"]
    )
    D.apply(init_weights)
    return D


def load_translator(weights: str | Path, spec: dict, direction: str = "a2b") -> nn.Module:
    """G of `direction` from a safetensors file and its spec (translator.json), in eval mode."""
    from safetensors.torch import load_file

    G = build_generator(spec, direction)
    G.load_state_dict(load_file(str(weights)))
    return G.eval().requires_grad_(False)
