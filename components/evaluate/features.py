"""Feature networks for evaluation: a domain classifier (labelled data) or an autoencoder
(unlabeled data), trained on the real train split and cached per dataset hash. Their penultimate
layer is the space every feature metric is measured in: Inception weights cannot be downloaded
here, and mean little on digits anyway.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from components.config import EvaluateConfig
from components.dataset import Dataset
from components.layout import Layout, read_json, write_json

BATCH = 500  # images per forward pass; no metric depends on it (tested)
# Input side of the feature nets: larger images (128, 256 px) are area-downsampled to it first.
# Two 2x poolings then leave 16x16 maps, so the 3x3 convs still see strokes and textures at a
# useful scale, and scoring 10k images at 256 px costs what 64 px does. RGB keeps its channels.
INPUT_SIZE = 64
EVAL_NET_SEED = 0  # the evaluation feature network's seed: every run is measured alike
# Most real train images the evaluation feature net learns from: as many as the default data set
# has (MNIST-5k's train split), so no data set's net sees more than the default one's; above it
# a seeded subset, and a first evaluation of a large data set trains it in ~8 s on 2 CPU cores.
FEATURE_NET_IMAGES = 4_000


def seeded_subset(keep: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """`keep` (sorted indices) when it holds at most `cap` of them, else a seeded random `cap`
    of them, sorted: how every evaluation net bounds its training set."""
    if len(keep) <= cap:
        return keep
    return np.sort(np.random.default_rng(seed).choice(keep, cap, replace=False))


def capped_rows(cap: int, seed: int, *arrays):
    """The same seeded `cap` rows of each array (None passes through), or the arrays themselves,
    uncopied, when they hold at most `cap` rows: how a training set is bounded."""
    n = len(next(a for a in arrays if a is not None))
    if n <= cap:
        return arrays
    keep = seeded_subset(np.arange(n), cap, seed)
    return tuple(None if a is None else a[keep] for a in arrays)


def weights_digest(net: nn.Module) -> str:
    """A short hash of a network's weights and buffers: names the net a cached result came from."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in net.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class Classifier(nn.Module):
    """Small CNN; `features` (the penultimate layer) is the space FID and KID are measured in."""

    num_features = 128

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(7),
            nn.Flatten(),  # (B, 64 * 7 * 7)
            nn.Linear(64 * 49, self.num_features),
            nn.ReLU(inplace=True),
            nn.Dropout(0.3),
        )
        self.head = nn.Linear(self.num_features, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> (B, num_features); sides above INPUT_SIZE are downsampled."""
        x = images.float() / 127.5 - 1.0
        if x.shape[-1] > INPUT_SIZE:
            x = nn.functional.interpolate(x, size=INPUT_SIZE, mode="area")
        return self.body(x)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


class AutoEncoder(Classifier):
    """For unlabeled data: the same encoder, trained to reconstruct instead of to classify."""

    def __init__(self, channels: int, image_size: int):
        super().__init__(channels, 1)
        self.image_size = image_size
        self.head = nn.Sequential(
            nn.Linear(self.num_features, 64 * 49),
            nn.ReLU(inplace=True),
            nn.Unflatten(1, (64, 7, 7)),
            nn.ConvTranspose2d(64, 32, 4, 2, 1),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(32, channels, 4, 2, 1),
            nn.Tanh(),  # (B, C, 28, 28)
        )

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        out = self.head(self.features(images))
        if out.shape[-1] != self.image_size:
            out = nn.functional.interpolate(out, size=self.image_size, mode="bilinear")
        return out


def train_autoencoder(images: np.ndarray, epochs: int, seed: int) -> AutoEncoder:
    """Fit the label-free feature extractor on real uint8 images (MSE reconstruction)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = AutoEncoder(images.shape[1], images.shape[2])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.from_numpy(np.ascontiguousarray(images))
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            target = x[idx].float() / 127.5 - 1.0
            loss = nn.functional.mse_loss(net.reconstruct(x[idx]), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval().requires_grad_(False)


def train_classifier(
    images: np.ndarray, labels: np.ndarray, num_classes: int, epochs: int, seed: int
) -> Classifier:
    """Fit the domain classifier on real uint8 images (light shift augmentation)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    # NHWC: oneDNN's convolutions train this net ~25% faster on CPU (bench/evaluate.py)
    clf = Classifier(images.shape[1], num_classes).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(clf.parameters(), lr=1e-3)
    x, y = torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)
    clf.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            batch = x[idx]
            dx, dy = torch.randint(-2, 3, (2,), generator=gen).tolist()
            batch = torch.roll(batch, shifts=(dy, dx), dims=(2, 3))
            batch = batch.contiguous(memory_format=torch.channels_last)
            loss = nn.functional.cross_entropy(clf(batch), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    clf = clf.to(memory_format=torch.contiguous_format)  # safetensors stores contiguous weights
    return clf.eval().requires_grad_(False)


@torch.no_grad()
def predict(
    clf: Classifier, images: np.ndarray | torch.Tensor, batch: int = BATCH
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, F), predicted labels (N,)) for uint8 images, in fixed-size batches."""
    from torch.fx.experimental.optimization import fuse

    x = torch.as_tensor(images)
    # A copy with each BatchNorm folded into its conv (1.88 -> 1.40 s for 10k features, measured
    # once; features equal to ~1e-6),
    # run NHWC: oneDNN runs it ~3x faster on CPU than NCHW
    net = copy.deepcopy(clf)
    net.body = fuse(net.body.eval())
    net = net.to(memory_format=torch.channels_last)
    feats = torch.cat(
        [net.features(b.contiguous(memory_format=torch.channels_last)) for b in x.split(batch)]
    )
    if isinstance(clf, AutoEncoder):
        return feats, torch.full((len(feats),), -1)
    return feats, clf.head(feats).argmax(1)


def feature_net(
    images: np.ndarray,
    labels: np.ndarray | None,
    num_classes: int,
    epochs: int,
    seed: int,
    cache: Path | None = None,
) -> Classifier:
    """The feature network of a sample set: a classifier when it is labelled (num_classes > 0),
    else an autoencoder. With `cache` (a .safetensors path naming data, epochs and seed) it is
    read from there when present, else trained and stored there atomically. Either way the
    caller's torch RNG stream is untouched (building a net draws its initial weights from it),
    so a training run is the same whether its probe net was cached or not."""
    with torch.random.fork_rng(devices=[]):
        return _feature_net(images, labels, num_classes, epochs, seed, cache)


def _feature_net(images, labels, num_classes, epochs, seed, cache) -> Classifier:
    channels, size = images.shape[1], images.shape[2]
    if cache is not None and cache.is_file():
        from safetensors.torch import load_file

        net = Classifier(channels, num_classes) if num_classes else AutoEncoder(channels, size)
        net.load_state_dict(load_file(str(cache)))
        return net.eval().requires_grad_(False)
    if num_classes:
        net = train_classifier(images, labels, num_classes, epochs, seed)
    else:
        net = train_autoencoder(images, epochs, seed)
    if cache is not None:
        from safetensors.torch import save_file

        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".tmp-{os.getpid()}")
        save_file(net.state_dict(), str(tmp))
        tmp.replace(cache)
    return net


def load_or_train_classifier(
    cfg: EvaluateConfig, layout: Layout, data: Dataset
) -> tuple[Classifier, float | None]:
    """The evaluation feature network for this dataset (cached per dataset hash and epochs),
    trained on at most FEATURE_NET_IMAGES of its real train images.

    Labelled data: a classifier (returns its test accuracy). Unlabeled: an autoencoder (None).
    """
    kind = "clf" if data.num_classes else "ae"
    key = "-".join(
        [data.manifest["content_hash"][:16], kind, f"m{FEATURE_NET_IMAGES}"]
        + [f"e{cfg.classifier_epochs}", f"s{EVAL_NET_SEED}"]
    )
    weights = layout.classifier_cache / f"{key}.safetensors"
    info = layout.classifier_cache / f"{key}.json"
    train_x, train_y = data.split("train")
    train_x, train_y = capped_rows(FEATURE_NET_IMAGES, EVAL_NET_SEED, train_x, train_y)
    if not info.is_file():
        weights.unlink(missing_ok=True)  # a net without its accuracy record is retrained
    net = feature_net(
        train_x, train_y, data.num_classes, cfg.classifier_epochs, EVAL_NET_SEED, weights
    )
    if info.is_file():
        return net, read_json(info)["test_acc"]
    acc = None
    if data.num_classes:
        test_x, test_y = data.split("test")
        acc = float((predict(net, test_x)[1].numpy() == test_y).mean())
    write_json(info, {"test_acc": acc, "dataset_hash": data.manifest["content_hash"]})
    return net, acc
