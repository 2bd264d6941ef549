"""The evaluation feature space of the music family and what is measured in it.

RollNet: a small CNN trained on the real train windows to name each window's key (24 classes:
the Krumhansl-Kessler key metrics.find_keys finds), cached per dataset hash. Its penultimate
layer (64 features) is where the Frechet distance is measured; it is named after this net,
never FID. The classifier two-sample test (C2ST) reads those features and the musical
statistics of metrics.window_features: a logistic regression learns to tell two sets apart
on one half of each and is scored on the other half (both ways, averaged); 0.5 means it cannot
tell them apart.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

NET_SEED = 0
NET_WINDOWS = 8_000  # most train windows the net learns from (a seeded subset above it)
FEATURES = 64


class RollNet(nn.Module):
    def __init__(self, tracks: int, steps: int, pitches: int, classes: int = 24):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(tracks, 32, (4, 4), stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, (4, 4), stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(64, 64, (4, 4), stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(64 * (steps // 8) * (pitches // 8), FEATURES), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(FEATURES, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def key_labels(windows: np.ndarray, pitch_low: int) -> np.ndarray:
    from components.families.music.metrics import find_keys

    tonic, minor = find_keys(windows, pitch_low)
    return (tonic + 12 * minor).astype(np.int64)


def train_rollnet(windows: np.ndarray, pitch_low: int, epochs: int, cache: Path) -> RollNet:
    """The key classifier on real train windows, from `cache` when there (RNG untouched)."""
    from safetensors.torch import load_file, save_file

    net = None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(NET_SEED)
        net = RollNet(*windows.shape[1:])
        if cache.is_file():
            net.load_state_dict(load_file(str(cache)))
            return net.eval().requires_grad_(False)
        if len(windows) > NET_WINDOWS:
            pick = np.random.default_rng(NET_SEED).choice(len(windows), NET_WINDOWS, replace=False)
            windows = windows[np.sort(pick)]
        x = torch.from_numpy(np.ascontiguousarray(windows))
        y = torch.from_numpy(key_labels(windows, pitch_low))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(NET_SEED)
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=gen).split(64):
                loss = nn.functional.cross_entropy(net(x[idx].float()), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".tmp-{os.getpid()}")
    save_file(net.state_dict(), str(tmp))
    tmp.replace(cache)
    return net.eval().requires_grad_(False)


@torch.no_grad()
def features(net: RollNet, windows: np.ndarray, batch: int = 500) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(windows))
    return torch.cat([net.body(b.float()) for b in x.split(batch)]) if len(x) else torch.zeros(0)


@torch.no_grad()
def key_accuracy(net: RollNet, windows: np.ndarray, pitch_low: int) -> float:
    """How often the net names the key the profiles find (its own held-out check)."""
    pred = net.head(features(net, windows)).argmax(1).numpy()
    return float((pred == key_labels(windows, pitch_low)).mean())


def c2st(a: np.ndarray, b: np.ndarray, seed: int) -> float:
    """Held-out accuracy of a logistic regression telling feature sets a and b apart (two
    folds, each half of each set; 0.5 = indistinguishable)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n = min(len(a), len(b))
    rng = np.random.default_rng(seed)
    a, b = a[rng.permutation(len(a))[:n]], b[rng.permutation(len(b))[:n]]
    half = n // 2
    accs = []
    for first in (True, False):
        tr = slice(0, half) if first else slice(half, n)
        te = slice(half, n) if first else slice(0, half)
        x_tr = np.concatenate([a[tr], b[tr]])
        y_tr = np.r_[np.zeros(len(a[tr])), np.ones(len(b[tr]))]
        x_te = np.concatenate([a[te], b[te]])
        y_te = np.r_[np.zeros(len(a[te])), np.ones(len(b[te]))]
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        clf.fit(x_tr, y_tr)
        accs.append(float((clf.predict(x_te) == y_te).mean()))
    return float(np.mean(accs))


def copy_rate(windows: np.ndarray, train: np.ndarray, threshold: float = 0.9,
              chunk: int = 2048) -> float:  # fmt: skip
    """Share of windows whose notes overlap some train window's with intersection over union
    >= threshold (an exact or near copy), by matrix products over the flattened rolls."""
    if not len(windows):
        return float("nan")
    a = torch.from_numpy(np.ascontiguousarray(windows)).flatten(1).float()
    a_n = a.sum(1)
    best = torch.zeros(len(a))
    for s in range(0, len(train), chunk):
        b = torch.from_numpy(np.ascontiguousarray(train[s : s + chunk])).flatten(1).float()
        inter = a @ b.T  # (n, m) shared cells
        union = a_n[:, None] + b.sum(1)[None] - inter
        iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))
        best = torch.maximum(best, iou.max(1).values)
    return float((best >= threshold).float().mean())
