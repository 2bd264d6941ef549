"""The MuseGAN-line nets (Dong et al. 2018, written from the paper's description).

G: four latents per window, each z_dim wide: shared across tracks and time (z_shared), shared
across tracks, one per bar (z_shared_t, from a temporal net), private to a track (z_track),
private to a track, one per bar (z_track_t, a temporal net shared by the tracks). Each bar of
each track is drawn by that track's own bar generator (transposed convolutions) from the four
latents of its (bar, track). Output: note probabilities (B, tracks, bars * steps_per_bar,
pitches) in [0, 1]; `binarize` thresholds at 0.5 with a straight-through gradient
(BinaryMuseGAN's deterministic binary neurons). A monophonic track (one voice: a chorale's
soprano) is drawn as one choice per step among its pitches and a rest: the one-hot of the
softmax's argmax forward, the softmax's gradient backward (straight-through), so it never
sounds two pitches at once; a polyphonic track keeps the independent sigmoids. A conditional
G (the data has class sub-folders) moves its latent by a learned offset per class; its D adds
the projection term <embed(class), features> (Miyato & Koyama 2018).

roll2d, the simpler baseline: a 2-D DCGAN over the stacked roll (RollGenerator,
RollDiscriminator).

D: bar level, each bar of the window by the same convolutions (a per-step chord encoder over
all pitches and all tracks, then strided time convolutions; optionally the bar folded to 12
pitch classes as a second stream); window level, 1-D convolutions across the bars' features,
then one score. No normalisation in D (WGAN-GP)."""

from __future__ import annotations

import copy

import torch
from torch import nn


def latent_width(z_dim: int, tracks: int) -> int:
    """The flat latent of a window: shared, shared-temporal, and per track private and
    private-temporal, each z_dim wide (the roll2d baseline takes the same width)."""
    return z_dim * (2 + 2 * tracks)


def binarize(probs: torch.Tensor) -> torch.Tensor:
    """Hard 0/1 at 0.5 forward, identity gradient backward (straight-through)."""
    hard = (probs > 0.5).to(probs.dtype)
    return hard + (probs - probs.detach())  # exactly hard forward: x - x is 0


def with_class(G: nn.Module, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """A conditional G's latent moved by its class's learned offset (every latent of the window
    hears the class); an unconditional G's unchanged."""
    if G.embed is None:
        return z
    if labels is None:
        raise ValueError(f"this generator is conditional: give labels in 0..{G.n_classes - 1}")
    return z + G.embed(labels)


def class_embedding(n_classes: int, dim: int) -> nn.Embedding | None:
    """A class embedding that starts at zero: the net starts as the unconditional one and
    learns what each class changes (N(0, 1) rows put a class term as large as the score itself
    into D at step 0; the two-style run drifted)."""
    if not n_classes:
        return None
    embed = nn.Embedding(n_classes, dim)
    nn.init.zeros_(embed.weight)
    return embed


def projection(embed: nn.Embedding | None, h: torch.Tensor, labels) -> torch.Tensor:
    """The projection discriminator's class term <embed(label), h> (0 unconditional)."""
    return (embed(labels) * h).sum(1) if embed is not None else h.new_zeros(len(h))


def one_voice(logits: torch.Tensor) -> torch.Tensor:
    """Logits (..., pitches + 1: the last is the rest) -> (..., pitches): the one-hot of the
    argmax forward (all zeros on a rest), the softmax's gradient backward (straight-through)."""
    soft = torch.softmax(logits, dim=-1)
    hard = torch.nn.functional.one_hot(soft.argmax(-1), logits.shape[-1]).to(soft.dtype)
    return (hard + (soft - soft.detach()))[..., :-1]


class Temporal(nn.Module):
    """z (N, z_dim) -> one latent per bar (N, bars, z_dim)."""

    def __init__(self, z_dim: int, bars: int, hidden: int = 128):
        super().__init__()
        self.bars, self.z_dim = bars, z_dim
        self.net = nn.Sequential(
            nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, bars * z_dim)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, self.bars, self.z_dim)


class Generator(nn.Module):
    def __init__(self, z_dim: int, tracks: int, bars: int, steps_per_bar: int, pitches: int,
                 channels: int = 32, unit: int = 1, mono: tuple[bool, ...] = (),
                 n_classes: int = 0):  # fmt: skip
        super().__init__()
        self.z_dim, self.tracks, self.bars, self.n_classes = z_dim, tracks, bars, n_classes
        self.embed = class_embedding(n_classes, self.latent_dim)
        self.mono = tuple(mono) or (False,) * tracks  # per track: one voice (a rest or a pitch)
        assert len(self.mono) == tracks, (self.mono, tracks)
        self.steps_per_bar, self.pitches, self.unit = steps_per_bar, pitches, unit
        self.shared_t = Temporal(z_dim, bars)
        self.track_t = Temporal(z_dim, bars)
        c, t0, octaves = channels, steps_per_bar // 4, pitches // 12
        # one private bar generator per track, time and pitch upsampled apart with kernels
        # equal to their strides (no overlap, so no checkerboard of on/off steps): a coarse
        # grid (t/4) doubled in time until it reaches the note unit (t/unit), then each
        # octave's feature -> its 12 pitches; the unit's steps repeat (a note lasts >= unit)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(4 * z_dim, 2 * c, (t0, octaves)),  # (2c, t/4, octaves)
            nn.BatchNorm2d(2 * c),
            nn.ReLU(),
        ]
        t, ch = t0, 2 * c
        while t * 2 <= steps_per_bar // unit:
            layers += [nn.ConvTranspose2d(ch, c, (2, 1), stride=(2, 1)),  # (c, 2t, octaves)
                       nn.BatchNorm2d(c), nn.ReLU()]  # fmt: skip
            t, ch = t * 2, c
        self.bar = nn.ModuleList(nn.Sequential(*[copy.deepcopy(m) for m in layers])
                                 for _ in range(tracks))  # fmt: skip
        # each track's pitch logits (1, t, pitches) and, for a mono track, its rest's (1, t, 1)
        self.pitch = nn.ModuleList(nn.ConvTranspose2d(ch, 1, (1, 12), stride=(1, 12))
                                   for _ in range(tracks))  # fmt: skip
        self.rest = nn.ModuleList(nn.Conv2d(ch, 1, (1, octaves)) if m else nn.Identity()
                                  for m in self.mono)  # fmt: skip
        self.drawn_steps = t  # steps each bar generator draws; repeated up to steps_per_bar

    @property
    def latent_dim(self) -> int:
        """The width of one flat latent vector: the four latents of a window."""
        return latent_width(self.z_dim, self.tracks)

    def split_latent(self, z: torch.Tensor):
        """A flat latent (B, latent_dim) -> shared, shared-temporal, per-track, per-track-
        temporal latents."""
        d, k = self.z_dim, self.tracks
        return z[:, :d], z[:, d : 2 * d], z[:, 2 * d : (2 + k) * d], z[:, (2 + k) * d :]

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, latent_dim) [, labels (B,)] -> note probabilities (B, tracks, bars *
        steps_per_bar, pitches)."""
        z = with_class(self, z, labels)
        b, d, k, n = z.shape[0], self.z_dim, self.tracks, self.bars
        shared, shared_t, track, track_t = self.split_latent(z)
        shared_bars = self.shared_t(shared_t)  # (B, bars, d)
        track_bars = self.track_t(track_t.reshape(b * k, d)).view(b, k, n, d)
        per = torch.cat(
            [
                shared[:, None, None, :].expand(b, n, k, d),
                shared_bars[:, :, None, :].expand(b, n, k, d),
                track.view(b, 1, k, d).expand(b, n, k, d),
                track_bars.permute(0, 2, 1, 3),
            ],
            dim=3,
        )  # (B, bars, tracks, 4d): what each (bar, track) is drawn from
        per = per.reshape(b * n, k, 4 * d, 1, 1)
        tracks = []
        for i in range(k):  # (B * bars, 1, t / unit, p) note probabilities of track i
            h = self.bar[i](per[:, i])
            logits = self.pitch[i](h)
            if self.mono[i]:
                tracks.append(one_voice(torch.cat([logits, self.rest[i](h)], dim=3)))
            else:
                tracks.append(torch.sigmoid(logits))
        x = torch.cat(tracks, dim=1)  # (B * bars, k, t / unit, p)
        if self.drawn_steps < self.steps_per_bar:  # (B * bars, k, t / unit, p) -> (.., t, p)
            x = x.repeat_interleave(self.steps_per_bar // self.drawn_steps, dim=2)
        x = x.view(b, n, k, self.steps_per_bar, self.pitches).permute(0, 2, 1, 3, 4)
        out = x.reshape(b, k, n * self.steps_per_bar, self.pitches)
        assert out.shape[1:] == (k, n * self.steps_per_bar, self.pitches)
        return out


class BarEncoder(nn.Module):
    """(N, in, steps_per_bar, width) -> (N, features): a per-step encoder over all of `width`
    (pitches or pitch classes) and the tracks, then strided convolutions in time."""

    def __init__(self, inputs: int, width: int, steps_per_bar: int, c: int, features: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(inputs, c, (1, width)), nn.LeakyReLU(0.2)]
        t, ch = steps_per_bar, c
        while t > 2:
            layers += [nn.Conv2d(ch, 2 * c, (3, 1), stride=(2, 1), padding=(1, 0)),
                       nn.LeakyReLU(0.2)]  # fmt: skip
            t, ch = (t + 1) // 2, 2 * c
        self.convs = nn.Sequential(*layers)
        self.out = nn.Linear(ch * t, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.convs(x).flatten(1))


class Discriminator(nn.Module):
    def __init__(self, tracks: int, bars: int, steps_per_bar: int, pitches: int,
                 channels: int = 32, chroma: bool = True, features: int = 128,
                 n_classes: int = 0):  # fmt: skip
        super().__init__()
        self.tracks, self.bars, self.steps_per_bar, self.pitches = (
            tracks,
            bars,
            steps_per_bar,
            pitches,
        )
        self.chroma = chroma
        self.piano = BarEncoder(tracks, pitches, steps_per_bar, channels, features)
        if chroma:
            self.pc = BarEncoder(tracks, 12, steps_per_bar, channels // 2, features)
            fold = torch.zeros(pitches, 12)
            fold[torch.arange(pitches), torch.arange(pitches) % 12] = 1.0  # pitch -> class
            self.register_buffer("fold", fold, persistent=False)
        f = features * (2 if chroma else 1)
        self.window = nn.Sequential(
            nn.Conv1d(f, f, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv1d(f, f, 3, padding=1), nn.LeakyReLU(0.2),
        )  # fmt: skip
        self.score = nn.Linear(f * bars, 1)
        self.embed = class_embedding(n_classes, f * bars)

    def forward(self, x: torch.Tensor, c=None) -> torch.Tensor:
        """x (B, tracks, bars * steps_per_bar, pitches) in [0, 1] [, labels c (B,)] -> scores
        (B,)."""
        b, k, n = x.shape[0], self.tracks, self.bars
        assert x.shape[1:] == (k, n * self.steps_per_bar, self.pitches)
        bars = x.view(b, k, n, self.steps_per_bar, self.pitches).transpose(1, 2)
        bars = bars.reshape(b * n, k, self.steps_per_bar, self.pitches)  # (B * bars, k, t, p)
        feats = [self.piano(bars)]
        if self.chroma:
            feats.append(self.pc(bars @ self.fold))  # (B * bars, k, t, 12)
        h = torch.cat(feats, dim=1).view(b, n, -1).transpose(1, 2)  # (B, f, bars)
        h = self.window(h).flatten(1)
        return self.score(h).squeeze(1) + projection(self.embed, h, c)


class RollGenerator(nn.Module):
    """The simpler baseline (train.arch roll2d): a 2-D DCGAN over the stacked roll, tracks as
    channels. One latent -> (4c, T/16, P/16), four nearest-upsample + 3x3 convolution blocks
    to (tracks, T, P), sigmoid. No bars, no per-track generators, no voices. The same latent
    width as the MuseGAN G, so a seed draws a window of the same shape."""

    def __init__(self, z_dim: int, tracks: int, bars: int, steps_per_bar: int, pitches: int,
                 channels: int = 32, n_classes: int = 0):  # fmt: skip
        super().__init__()
        self.z_dim, self.tracks, self.bars, self.n_classes = z_dim, tracks, bars, n_classes
        self.embed = class_embedding(n_classes, self.latent_dim)
        self.steps_per_bar, self.pitches = steps_per_bar, pitches
        t, c = bars * steps_per_bar, channels
        self.sizes = [(-(-t // 2**i), -(-pitches // 2**i)) for i in range(4, -1, -1)]
        self.fc = nn.Linear(self.latent_dim, 4 * c * self.sizes[0][0] * self.sizes[0][1])
        self.stem = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU())
        widths = [4 * c, 4 * c, 2 * c, c, c]
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(widths[i], widths[i + 1], 3, padding=1),
                nn.BatchNorm2d(widths[i + 1]),
                nn.ReLU(),
            )  # fmt: skip
            for i in range(4)
        )
        self.out = nn.Conv2d(c, tracks, 3, padding=1)

    @property
    def latent_dim(self) -> int:
        return latent_width(self.z_dim, self.tracks)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        z = with_class(self, z, labels)
        x = self.stem(self.fc(z).view(len(z), -1, *self.sizes[0]))
        for size, block in zip(self.sizes[1:], self.blocks, strict=True):
            x = block(nn.functional.interpolate(x, size=size, mode="nearest"))
        return torch.sigmoid(self.out(x))


class RollDiscriminator(nn.Module):
    """The baseline's D: four stride-2 4x4 convolutions over the stacked roll, one score."""

    def __init__(self, tracks: int, window_steps: int, pitches: int, channels: int = 16,
                 n_classes: int = 0):  # fmt: skip
        super().__init__()
        layers: list[nn.Module] = []
        ch = tracks
        for i in range(4):
            layers += [nn.Conv2d(ch, channels * 2**i, 4, 2, 1), nn.LeakyReLU(0.2)]
            ch = channels * 2**i
        self.convs = nn.Sequential(*layers)
        with torch.no_grad():
            n = self.convs(torch.zeros(1, tracks, window_steps, pitches)).numel()
        self.score = nn.Linear(n, 1)
        self.embed = class_embedding(n_classes, n)

    def forward(self, x: torch.Tensor, c=None) -> torch.Tensor:
        h = self.convs(x).flatten(1)
        return self.score(h).squeeze(1) + projection(self.embed, h, c)


def build_discriminator(spec: dict, channels: int, chroma: bool) -> nn.Module:
    k, p, classes = spec["tracks"], spec["pitches"], len(spec.get("class_names", []))
    if spec.get("arch") == "roll2d":
        return RollDiscriminator(k, spec["bars"] * spec["steps_per_bar"], p, channels, classes)
    return Discriminator(k, spec["bars"], spec["steps_per_bar"], p, channels, chroma,
                         n_classes=classes)  # fmt: skip


def build_generator(spec: dict) -> nn.Module:
    classes = len(spec.get("class_names", []))
    if spec.get("arch") == "roll2d":
        return RollGenerator(spec["z_dim"], spec["tracks"], spec["bars"], spec["steps_per_bar"],
                             spec["pitches"], spec["g_channels"], classes)  # fmt: skip
    return Generator(spec["z_dim"], spec["tracks"], spec["bars"], spec["steps_per_bar"],
                     spec["pitches"], spec["g_channels"], spec.get("unit_steps", 1),
                     tuple(spec.get("mono_tracks", ())), classes)  # fmt: skip
