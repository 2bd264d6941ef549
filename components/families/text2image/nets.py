"""Text-to-image nets, sized for a 2-core CPU at 32 px and unchanged at 64-256 px on a GPU.

- TextEncoder: word embeddings -> bidirectional GRU -> sentence vector (mean of the GRU states
  over the caption's words), the AttnGAN/DF-GAN encoder without the word features.
- ImageEncoder: a small CNN -> a vector in the same space, for the contrastive pretraining of
  the TextEncoder (CLIP's loss on the train pairs) and for the evaluation-only R-precision
  encoder (the same nets trained separately, with their own seed).
- Generator: DF-GAN's one-stage G (Tao et al. 2022): [z, s] -> 4x4 features (DF-GAN starts
  from z alone; at CPU scale G then ignored the sentence for tens of kimg), then up-blocks each
  fused with the sentence through learned affine modulation (scale and shift per channel,
  predicted from [z, s]) before and after its convolutions.
- Discriminator: down-blocks to 4x4 features, then the condition: "fusion" (DF-GAN: the
  sentence tiled over the 4x4 map, concatenated, two convolutions to one logit) or
  "projection" (Miyato & Koyama 2018: a linear logit plus <embed(s), pooled features>).

A spec (text2image.json beside the weights) rebuilds every net, so a registered model
describes itself.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from components.shapes import assert_shape

PAD = 0  # token id of padding (vocab.json: tokens[0] = "<pad>", tokens[1] = "<unk>")


class TextEncoder(nn.Module):
    def __init__(self, vocab_size: int, embed_dim: int, sentence_dim: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.gru = nn.GRU(embed_dim, sentence_dim // 2, batch_first=True, bidirectional=True)
        self.sentence_dim = sentence_dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) int64 token ids -> (B, sentence_dim) sentence vectors."""
        mask = (tokens != PAD).unsqueeze(-1).float()  # (B, L, 1)
        lengths = mask.sum((1, 2)).clamp(min=1).long().cpu()
        # packed: the backward direction starts at each caption's last word, not at the padding
        packed = nn.utils.rnn.pack_padded_sequence(
            self.embed(tokens), lengths, batch_first=True, enforce_sorted=False
        )
        h, _ = self.gru(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=tokens.shape[1])
        s = (h * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, sentence_dim)
        assert_shape(s, (None, self.sentence_dim))
        return s


class ImageEncoder(nn.Module):
    def __init__(self, channels: int, image_size: int, out_dim: int, width: int = 32):
        super().__init__()
        layers, c = [], channels
        for i in range(int(math.log2(image_size // 4))):  # down to 4x4
            layers += [nn.Conv2d(c, width * 2**i, 4, 2, 1), nn.LeakyReLU(0.2)]
            c = width * 2**i
        self.body = nn.Sequential(*layers)  # (B, c, 4, 4), after a LeakyReLU
        self.body_channels = c
        self.head = nn.Linear(c * 16, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) in [-1, 1] -> (B, out_dim)."""
        return self.head(self.body(x).flatten(1))


def contrastive_loss(img: torch.Tensor, txt: torch.Tensor, temperature: float) -> torch.Tensor:
    """CLIP's symmetric InfoNCE over a batch of matching (image, sentence) pairs."""
    img, txt = F.normalize(img, dim=1), F.normalize(txt, dim=1)
    logits = img @ txt.t() / temperature  # (B, B)
    target = torch.arange(len(img), device=img.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


class Affine(nn.Module):
    """Per-channel scale and shift predicted from the condition (DF-GAN's affine layer): scale
    starts at 1 and shift at 0, so an untrained block passes its input through."""

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.scale = nn.Sequential(
            nn.Linear(cond_dim, channels), nn.ReLU(), nn.Linear(channels, channels)
        )
        self.shift = nn.Sequential(
            nn.Linear(cond_dim, channels), nn.ReLU(), nn.Linear(channels, channels)
        )
        for head in (self.scale[2], self.shift[2]):
            nn.init.zeros_(head.weight)
        nn.init.ones_(self.scale[2].bias)
        nn.init.zeros_(self.shift[2].bias)

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.scale(cond)[:, :, None, None] * h + self.shift(cond)[:, :, None, None]


class FuseBlock(nn.Module):
    """Upsample x2, then (affine, LeakyReLU) twice around a 3x3 convolution, plus a shortcut."""

    def __init__(self, cin: int, cout: int, cond_dim: int):
        super().__init__()
        self.fuse1, self.fuse2 = Affine(cond_dim, cin), Affine(cond_dim, cout)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        y = self.conv1(F.leaky_relu(self.fuse1(h, cond), 0.2))
        y = self.conv2(F.leaky_relu(self.fuse2(y, cond), 0.2))
        return self.skip(h) + y


def widths(base: int, image_size: int) -> list[int]:
    """Channels at 4x4, 8x8, ... image_size: base*8 halving towards the image, at least base."""
    n = int(math.log2(image_size // 4))
    return [max(base * 8 // 2**i, base) for i in range(n + 1)]


class Generator(nn.Module):
    def __init__(self, z_dim: int, sentence_dim: int, channels: int, image_size: int, ngf: int):
        super().__init__()
        self.z_dim, self.sentence_dim, self.image_size = z_dim, sentence_dim, image_size
        w = widths(ngf, image_size)
        cond = z_dim + sentence_dim
        self.start_channels = w[0]
        self.fc = nn.Linear(cond, w[0] * 16)  # the layout starts from [z, s], not z alone
        self.blocks = nn.ModuleList(
            FuseBlock(a, b, cond) for a, b in zip(w[:-1], w[1:], strict=True)
        )
        self.to_rgb = nn.Sequential(
            nn.LeakyReLU(0.2), nn.Conv2d(w[-1], channels, 3, 1, 1), nn.Tanh()
        )
        self.channels = channels

    def forward(self, z: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """z (B, z_dim), sentence vectors s (B, sentence_dim) -> images (B, C, S, S) in [-1, 1]."""
        assert_shape(z, (None, self.z_dim))
        assert_shape(s, (z.shape[0], self.sentence_dim))
        cond = torch.cat([z, s], dim=1)  # (B, z_dim + sentence_dim)
        h = self.fc(cond).view(-1, self.start_channels, 4, 4)  # (B, w0, 4, 4); traceable batch
        for block in self.blocks:
            h = block(h, cond)  # doubles H and W
        out = self.to_rgb(h)
        assert_shape(out, (z.shape[0], self.channels, self.image_size, self.image_size))
        return out


class Discriminator(nn.Module):
    def __init__(
        self,
        sentence_dim: int,
        channels: int,
        image_size: int,
        ndf: int,
        condition: str,
        read_sentence: bool = False,
        encoder: ImageEncoder | None = None,
    ):
        super().__init__()
        w = list(reversed(widths(ndf, image_size)))  # image size -> 4x4
        layers, c = [nn.Conv2d(channels, w[0], 3, 1, 1)], w[0]
        for cout in w[1:]:
            layers += [nn.LeakyReLU(0.2), nn.Conv2d(c, cout, 4, 2, 1)]
            c = cout
        self.body = nn.Sequential(*layers, nn.LeakyReLU(0.2))  # (B, c, 4, 4)
        # train.d_encoder_features: the frozen contrastive image encoder's 4x4 features beside
        # D's own (a vision-aided D, Kumari et al. 2022, with the encoder trained here)
        self.aid = None
        if encoder is not None:
            self.aid = copy.deepcopy(encoder.body).eval().requires_grad_(False)
            c += encoder.body_channels
        self.condition = condition
        # the semantic head: the sentence read back from the image alone (train.semantic_weight)
        self.reader = nn.Linear(c * 16, sentence_dim) if read_sentence else None
        if condition == "fusion":
            self.joint = nn.Sequential(
                nn.Conv2d(c + sentence_dim, c * 2, 3, 1, 1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(c * 2, 1, 4, 1, 0),
            )
        else:  # projection
            self.linear = nn.Linear(c, 1)
            self.embed = nn.Linear(sentence_dim, c)

    def requires_grad_(self, requires_grad: bool = True) -> Discriminator:
        """As nn.Module's, but the encoder's copy stays frozen whatever D is set to (G's step
        freezes D and thaws it after)."""
        super().requires_grad_(requires_grad)
        if self.aid is not None:
            self.aid.requires_grad_(False)
        return self

    def forward(self, x: torch.Tensor, s: torch.Tensor, read: bool = False, mismatched=None):
        """(image, sentence) -> one logit per pair, (B,). With `read`, also the sentence vector
        the semantic head reads from the image alone, (B, sentence_dim); with `mismatched`
        sentences, also the logits of (image, mismatched), from the same image features (D's
        step judges each real image with its caption and with another's: one pass, not two).
        Extras follow the logit in that order."""
        h = self.body(x)  # (B, c, 4, 4)
        if self.aid is not None:
            h = torch.cat([h, self.aid(x)], dim=1)  # (B, c + encoder channels, 4, 4)
        logit = self._logit(h, s)
        if not read and mismatched is None:
            return logit
        out = (logit, self.reader(h.flatten(1))) if read else (logit,)
        return out + (self._logit(h, mismatched),) if mismatched is not None else out

    def _logit(self, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        if self.condition == "fusion":
            tiled = s[:, :, None, None].expand(-1, -1, 4, 4)  # (B, sentence_dim, 4, 4)
            return self.joint(torch.cat([h, tiled], dim=1)).view(-1)
        pooled = h.sum(dim=(2, 3))  # (B, c)
        return self.linear(pooled).view(-1) + (self.embed(s) * pooled).sum(1)


def semantic_loss(read: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """1 - cosine between the sentence D reads from an image and the image's own sentence,
    averaged: D learns to read real images' captions, G to draw what can be read back as its
    caption (AC-GAN's auxiliary loss with the sentence vector as the target)."""
    return (1 - F.cosine_similarity(read.float(), s.float(), dim=1)).mean()


def matching_aware_gp(D: nn.Module, real_img: torch.Tensor, s: torch.Tensor, power: float):
    """DF-GAN's matching-aware zero-centred gradient penalty on real matched pairs:
    mean(||(dD/dx, dD/ds)||_2 ^ power), the gradient taken jointly over the image and the
    sentence vector (fp32)."""
    x = real_img.detach().float().requires_grad_(True)
    c = s.detach().float().requires_grad_(True)
    out = D(x, c)
    gx, gs = torch.autograd.grad(out.sum(), (x, c), create_graph=True)
    norm = torch.cat([gx.flatten(1), gs.flatten(1)], dim=1).norm(2, dim=1)  # (B,)
    return norm.pow(power).mean()


def build_generator(spec: dict) -> Generator:
    return Generator(
        spec["z_dim"],
        spec["sentence_dim"],
        spec["channels"],
        spec["image_size"],
        spec["g_channels"],
    )


def build_text_encoder(spec: dict) -> TextEncoder:
    return TextEncoder(spec["vocab_size"], spec["embed_dim"], spec["sentence_dim"])
