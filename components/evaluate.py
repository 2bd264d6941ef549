"""evaluate: score G_ema against the held-out test split, offline, in a domain feature space.

Inception weights cannot be downloaded here and mean little on digits, so features come from a
small CNN classifier trained on the real train split (cached per dataset hash). Each metric is a
small function of feature sets, in a registry keyed by name; each comes with its real-vs-real
floor (train vs test, same n), so a value reads as "how far from indistinguishable".
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from components.config import EvaluateConfig
from components.ingest import Dataset, load_dataset
from components.layout import Layout, read_json, write_json

BATCH = 500  # images per forward pass; metrics do not depend on it


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
        """uint8 (B, C, H, W) -> (B, num_features)."""
        return self.body(images.float() / 127.5 - 1.0)

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
    clf = Classifier(images.shape[1], num_classes)
    opt = torch.optim.Adam(clf.parameters(), lr=1e-3)
    x, y = torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)
    clf.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            batch = x[idx]
            dx, dy = torch.randint(-2, 3, (2,), generator=gen).tolist()
            batch = torch.roll(batch, shifts=(dy, dx), dims=(2, 3))
            loss = nn.functional.cross_entropy(clf(batch), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return clf.eval().requires_grad_(False)


@torch.no_grad()
def predict(
    clf: Classifier, images: np.ndarray | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, F), predicted labels (N,)) for uint8 images, in fixed-size batches."""
    x = torch.as_tensor(images)
    feats = torch.cat([clf.features(b) for b in x.split(BATCH)])
    if isinstance(clf, AutoEncoder):
        return feats, torch.full((len(feats),), -1)
    return feats, clf.head(feats).argmax(1)


def load_or_train_classifier(
    cfg: EvaluateConfig, layout: Layout, data: Dataset
) -> tuple[Classifier, float | None]:
    """The feature network for this dataset hash, from cache or trained and cached.

    Labelled data: a classifier (returns its test accuracy). Unlabeled: an autoencoder (None).
    """
    from safetensors.torch import load_file, save_file

    kind = "clf" if data.num_classes else "ae"
    key = f"{data.manifest['content_hash'][:16]}-{kind}-e{cfg.classifier_epochs}"
    weights = layout.classifier_cache / f"{key}.safetensors"
    info = layout.classifier_cache / f"{key}.json"
    channels, size = data.images.shape[1], data.images.shape[2]
    net = (
        Classifier(channels, data.num_classes) if data.num_classes else AutoEncoder(channels, size)
    )
    if weights.is_file() and info.is_file():
        net.load_state_dict(load_file(str(weights)))
        return net.eval().requires_grad_(False), read_json(info)["test_acc"]
    train_x, train_y = data.split("train")
    acc = None
    if data.num_classes:
        net = train_classifier(train_x, train_y, data.num_classes, cfg.classifier_epochs, seed=0)
        test_x, test_y = data.split("test")
        acc = float((predict(net, test_x)[1].numpy() == test_y).mean())
    else:
        net = train_autoencoder(train_x, cfg.classifier_epochs, seed=0)
    layout.classifier_cache.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_suffix(".tmp")
    save_file(net.state_dict(), str(tmp))
    tmp.replace(weights)
    write_json(info, {"test_acc": acc, "dataset_hash": data.manifest["content_hash"]})
    return net, acc


# --- metrics on feature sets: registry keyed by name ---------------------------------------


class _Identity(nn.Module):
    """Lets torchmetrics take precomputed features as its 'images'."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def fid(real: torch.Tensor, fake: torch.Tensor, **_) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (torchmetrics)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=_Identity(real.shape[1]))
    metric.set_dtype(torch.float64)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return max(float(metric.compute()), 0.0)


def kid(
    real: torch.Tensor, fake: torch.Tensor, subset_size: int = 500, seed: int = 0, **_
) -> float:
    """Kernel inception distance: unbiased polynomial-kernel MMD² (torchmetrics), subset mean."""
    from torchmetrics.image.kid import KernelInceptionDistance

    torch.manual_seed(seed)
    metric = KernelInceptionDistance(
        feature=_Identity(real.shape[1]), subset_size=min(subset_size, len(real), len(fake))
    )
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    mean, _std = metric.compute()
    return float(mean)


FEATURE_METRICS: dict[str, Callable[..., float]] = {"fid": fid, "kid": kid}


# --- generating from G_ema ------------------------------------------------------------------


def load_g_ema(models_dir: Path):
    """G_ema from models/ (safetensors + spec json)."""
    from components.models import load_generator

    spec = json.loads((models_dir / "generator.json").read_text())
    return load_generator(models_dir / "G_ema.safetensors", spec), spec


@torch.no_grad()
def generate(G, labels: np.ndarray | None, n: int, seed: int) -> np.ndarray:
    """n uint8 images (N, C, H, W) for the given labels; image i uses latent seed `seed*10^6+i`."""
    from components.images import to_uint8
    from components.models import latents

    z = latents(seed * 1_000_000 + np.arange(n), G.z_dim)  # (n, z_dim)
    c = torch.as_tensor(labels[:n]) if labels is not None else None
    out = [
        to_uint8(G(z[i : i + BATCH], c[i : i + BATCH] if c is not None else None))
        for i in range(0, n, BATCH)
    ]
    return np.concatenate(out)


def evaluate(cfg: EvaluateConfig, data: Dataset, G, clf: Classifier) -> dict:
    """All metrics of G against the test split, each with its real-vs-real floor."""
    test_x, test_y = data.split("test")
    train_x, _ = data.split("train")
    n = min(cfg.n_samples, len(test_x), len(train_x))
    rng = np.random.default_rng(cfg.seed)
    test_idx = np.sort(rng.choice(len(test_x), n, replace=False))
    train_idx = np.sort(rng.choice(len(train_x), n, replace=False))
    asked = test_y[test_idx] if data.num_classes else None  # same class mix as the test set
    gen_x = generate(G, asked, n, cfg.seed)

    real_f, _ = predict(clf, test_x[test_idx])
    floor_f, _ = predict(clf, train_x[train_idx])
    fake_f, fake_pred = predict(clf, gen_x)
    kw = {"subset_size": cfg.kid_subset_size, "seed": cfg.seed}
    metrics: dict[str, float] = {"n": n, "seed": cfg.seed}
    for name, fn in FEATURE_METRICS.items():
        metrics[name] = fn(real_f, fake_f, **kw)
        metrics[f"{name}_floor"] = fn(real_f, floor_f, **kw)
    if data.num_classes:
        metrics["cond_acc"] = float((fake_pred.numpy() == asked).mean())
    return metrics


def run(cfg: EvaluateConfig, layout: Layout) -> dict:
    """The evaluate stage: reports/metrics.json, a sample grid, and the same numbers in MLflow."""
    import mlflow

    from components import tracking
    from components.images import grid, save_png

    data = load_dataset(layout)
    clf, clf_acc = load_or_train_classifier(cfg, layout, data)
    G, spec = load_g_ema(layout.models)
    metrics = evaluate(cfg, data, G, clf)
    if clf_acc is not None:
        metrics["classifier_acc"] = clf_acc
    else:
        print("evaluate: unlabeled data: features from an autoencoder; class-based metrics skipped")
    metrics["fid_ratio"] = metrics["fid"] / max(metrics["fid_floor"], 1e-12)
    rows = max(data.num_classes, 1)
    labels = np.repeat(np.arange(rows), 10) if data.num_classes else None
    picture = save_png(
        grid(generate(G, labels, rows * 10, cfg.seed + 1), rows),
        layout.root / "reports" / "eval_samples.png",
        3,
    )
    write_json(layout.metrics, metrics)

    tracking.setup(layout)
    with mlflow.start_run(run_id=tracking.train_run_id(layout)):
        mlflow.log_params({f"evaluate.{k}": v for k, v in cfg.model_dump().items()})
        mlflow.log_metrics({f"eval/{k}": float(v) for k, v in metrics.items()})
        mlflow.log_artifact(str(layout.metrics))
        mlflow.log_artifact(str(picture))
    return metrics
