"""Evaluation metrics: small functions in a registry keyed by the names `evaluate.metrics` uses.

Each takes a `Pair` (a reference set and a candidate set, both already in feature space) and
returns a dict of named values. The same function gives the real-vs-real floor when called on
(test, train) instead of (test, generated). Hand-written only where no maintained library does it:
FID and KID come from torchmetrics; precision/recall (Kynkäänniemi et al. 2019) and
density/coverage (Naeem et al. 2020) are a few lines of k-NN on torch.cdist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class Side:
    """One sample set: uint8 images, their features, labels (true or asked), classifier guesses."""

    images: np.ndarray | None
    feats: torch.Tensor  # (N, F)
    labels: np.ndarray | None = None  # (N,) or None when unlabeled
    pred: np.ndarray | None = None  # (N,) classifier predictions, None for an autoencoder
    # k -> k-NN radii of `feats`: the test side's are shared by G's PRDC and its floor's
    radii: dict[int, torch.Tensor] = field(default_factory=dict, compare=False, repr=False)

    def knn_radii(self, k: int) -> torch.Tensor:
        """Distance from each point to its k-th nearest neighbour in this set (itself excluded)."""
        if k not in self.radii:
            # float32 (2-4x faster than float64 at 10k), centred first: cdist's |x|^2 + |y|^2
            # - 2xy loses digits when features share a large offset (ReLU features do)
            f = (self.feats.double() - self.feats.double().mean(0)).float()
            d = torch.cdist(f, f)  # (N, N)
            # k+1: the 0 self-distance comes first; topk is ~7x faster than kthvalue at N = 10k
            self.radii[k] = d.topk(k + 1, dim=1, largest=False).values[:, -1]
        return self.radii[k]


@dataclass(frozen=True)
class Pair:
    real: Side  # the reference: the held-out test split
    other: Side  # generated images, or real train images for the floor
    num_classes: int = 0
    nearest_k: int = 3
    kid_subset_size: int = 500
    seed: int = 0
    classifier_epochs: int = 5


# Most candidate images TSTR (and its TRTR floor) trains on: the default n, so a TSTR figure
# means the same at every n; above it a seeded subset, and at n = 10k it costs ~2 s, not ~20 s.
TSTR_IMAGES = 1000


class _Identity(nn.Module):
    """Lets torchmetrics take precomputed features as its 'images'."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def frechet(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (torchmetrics, float64)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=_Identity(real.shape[1]), sync_on_compute=False)
    metric.set_dtype(torch.float64)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return max(float(metric.compute()), 0.0)


def fid(p: Pair) -> dict[str, float]:
    return {"fid": frechet(p.real.feats, p.other.feats)}


def kid(p: Pair) -> dict[str, float]:
    """Kernel inception distance: unbiased polynomial-kernel MMD² (torchmetrics), its mean and
    standard deviation over random subsets. Unbiased, so it can fall below 0 when the two sets
    are close; kid_std says how far from 0 a value must be to mean anything (the kernel grows
    with the cube of the features' scale, so KIDs compare within one feature space only)."""
    import warnings

    from torchmetrics.image.kid import KernelInceptionDistance

    torch.manual_seed(p.seed)
    size = min(p.kid_subset_size, len(p.real.feats), len(p.other.feats))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "will save all extracted features in buffer": intended
        metric = KernelInceptionDistance(
            feature=_Identity(p.real.feats.shape[1]), subset_size=size, sync_on_compute=False
        )
    metric.update(p.real.feats.double(), real=True)
    metric.update(p.other.feats.double(), real=False)
    mean, std = metric.compute()
    return {"kid": float(mean), "kid_std": float(std)}


def prdc(p: Pair) -> dict[str, float]:
    """Improved precision/recall and density/coverage on k-NN manifolds of the feature sets."""
    centre = p.real.feats.double().mean(0)  # float32 distances, centred (see Side.knn_radii)
    real = (p.real.feats.double() - centre).float()
    fake = (p.other.feats.double() - centre).float()
    k = p.nearest_k
    r_real, r_fake = p.real.knn_radii(k), p.other.knn_radii(k)
    d = torch.cdist(real, fake)  # (N_real, N_fake)
    inside_real = d <= r_real[:, None]  # fake j inside real i's ball
    precision = inside_real.any(dim=0).double().mean()
    recall = (d <= r_fake[None, :]).any(dim=1).double().mean()
    density = inside_real.sum(dim=0).double().mean() / k
    coverage = (d.min(dim=1).values <= r_real).double().mean()
    return {
        "precision": float(precision),
        "recall": float(recall),
        "density": float(density),
        "coverage": float(coverage),
    }


def intra_fid(p: Pair) -> dict[str, float]:
    """Mean over classes of the FID between real and candidate images of that class."""
    values = []
    for c in range(p.num_classes):
        real, other = p.real.feats[p.real.labels == c], p.other.feats[p.other.labels == c]
        if len(real) > 1 and len(other) > 1:
            values.append(frechet(real, other))
    return {"intra_fid": float(np.mean(values)) if values else float("nan")}


def cond_acc(p: Pair) -> dict[str, float]:
    """How often the domain classifier agrees with the label the candidate images carry."""
    return {"cond_acc": float((p.other.pred == p.other.labels).mean())}


def modes(p: Pair) -> dict[str, float]:
    """Class histogram of the candidates (by the classifier) against the real class mix:
    KL(real || candidate) and the number of classes holding at least half their real share."""
    k = p.num_classes
    real = np.bincount(p.real.labels, minlength=k)[:k] / len(p.real.labels)
    other = np.bincount(p.other.pred, minlength=k)[:k] / len(p.other.pred)
    eps = 1e-6
    kl = float(np.sum(real * np.log((real + eps) / (other + eps))))
    return {"mode_kl": max(kl, 0.0), "modes_covered": int(np.sum(other >= 0.5 * real))}


def tstr(p: Pair) -> dict[str, float]:
    """Train on the candidate images (synthetic, or real for the floor: TRTR), test on real.
    At most TSTR_IMAGES candidates (a seeded random subset) are trained on, so its time and
    meaning do not change with n; at n <= TSTR_IMAGES (the default 1000) every one is used."""
    from components.evaluate.features import capped_rows, predict, train_classifier

    images, labels = capped_rows(TSTR_IMAGES, p.seed, p.other.images, p.other.labels)
    clf = train_classifier(images, labels, p.num_classes, p.classifier_epochs, seed=p.seed)
    return {"tstr": float((predict(clf, p.real.images)[1].numpy() == p.real.labels).mean())}


METRICS: dict[str, Callable[[Pair], dict[str, float]]] = {
    "fid": fid,
    "kid": kid,
    "prdc": prdc,
    "intra_fid": intra_fid,
    "cond_acc": cond_acc,
    "modes": modes,
    "tstr": tstr,
}
NEEDS_LABELS = {"intra_fid", "cond_acc", "modes", "tstr"}


def compute(names: list[str], pair: Pair, floor: Pair | None = None) -> dict[str, float]:
    """Every named metric on `pair`, and on `floor` as `<key>_floor` when given."""
    out: dict[str, float] = {}
    for name in names:
        if name in NEEDS_LABELS and not pair.num_classes:
            continue
        out.update(METRICS[name](pair))
        if floor is not None:
            out.update({f"{k}_floor": v for k, v in METRICS[name](floor).items()})
    return out
