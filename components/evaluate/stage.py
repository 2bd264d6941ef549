"""evaluate: score G_ema against the held-out test split, offline, in a domain feature space.

Features come from a small network trained on the real train split (features.py); metrics are
small functions in a registry (metrics.py), each reported with its real-vs-real floor: the same
metric on real train vs real test at the same n, so a value reads as "how far from
indistinguishable". One plain dict goes to reports/metrics.json (DVC), MLflow and Prefect.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from components.config import EvaluateConfig
from components.dataset import Dataset
from components.evaluate import metrics as metrics_module
from components.evaluate.features import (
    BATCH,
    Classifier,
    predict,
    weights_digest,
)
from components.evaluate.metrics import Pair, Side, compute
from components.layout import Layout, atomic_dir, read_json, write_json


@torch.no_grad()
def generate(G, labels: np.ndarray | None, n: int, seed: int, batch: int = BATCH) -> np.ndarray:
    """n uint8 images (N, C, H, W) for the given labels; image i uses latent_seeds(seed, n)[i]."""
    from components.images import to_uint8
    from components.seeds import latent_seeds, latents

    z = latents(latent_seeds(seed, n), G.z_dim)  # (n, z_dim)
    c = torch.as_tensor(labels[:n]) if labels is not None else None
    out = [
        to_uint8(G(z[i : i + batch], c[i : i + batch] if c is not None else None))
        for i in range(0, n, batch)
    ]
    return np.concatenate(out)


def evaluate(
    cfg: EvaluateConfig,
    data: Dataset,
    G,
    net: Classifier,
    batch: int = BATCH,
    floor_cache: Path | None = None,
) -> tuple[dict, dict[str, Side]]:
    """Every metric in `evaluate.metrics` of G against the test split, each with its floor.

    The floors (real train vs real test) depend on the data, the feature net and `cfg`, not on
    G: with `floor_cache` (a folder) they are computed once per dataset and settings, then read
    back (at n = 10k they cost as much as G's own metrics). Returns the metrics and the three
    sample sets (test, generated, train) for the pictures.
    """
    test_x, test_y = data.split("test")
    train_x, train_y = data.split("train")
    n = min(cfg.n_samples, len(test_x), len(train_x))
    rng = np.random.default_rng(cfg.seed)
    test_idx = np.sort(rng.choice(len(test_x), n, replace=False))
    train_idx = np.sort(rng.choice(len(train_x), n, replace=False))
    labelled = data.num_classes > 0
    asked = test_y[test_idx] if labelled else None  # the generator is asked for the test mix

    def side(images: np.ndarray, labels: np.ndarray | None) -> Side:
        feats, pred = predict(net, images, batch)
        return Side(images, feats, labels, pred.numpy() if labelled else None)

    sets = {
        "test": side(np.ascontiguousarray(test_x[test_idx]), asked),
        "generated": side(generate(G, asked, n, cfg.seed, batch), asked),
        "train": side(
            np.ascontiguousarray(train_x[train_idx]), train_y[train_idx] if labelled else None
        ),
    }
    common = {
        "num_classes": data.num_classes,
        "nearest_k": cfg.nearest_k,
        "kid_subset_size": cfg.kid_subset_size,
        "seed": cfg.seed,
        "classifier_epochs": cfg.classifier_epochs,
    }
    metrics: dict = {"n": n, "seed": cfg.seed}
    own = compute(list(cfg.metrics), Pair(sets["test"], sets["generated"], **common))
    metrics.update(own)
    # keyed by everything a floor depends on: the data, the settings, the feature net itself
    # (its weights' digest) and TSTR's cap
    key = "-".join(
        [data.manifest["content_hash"][:16], "floor", f"n{n}", *map(str, common.values())]
        + [f"net{weights_digest(net)}", f"t{metrics_module.TSTR_IMAGES}"]
        + sorted(cfg.metrics)
    )
    path = floor_cache / f"{key}.json" if floor_cache else None
    floor = read_json(path) if path is not None and path.is_file() else None
    if floor is None or set(floor) != set(own):  # none yet, or from a ganops with other keys
        floor = compute(list(cfg.metrics), Pair(sets["test"], sets["train"], **common))
        if path is not None:
            write_json(path, floor)
    metrics.update({f"{k}_floor": v for k, v in floor.items()})
    return metrics, sets


def run(cfg: EvaluateConfig, layout: Layout) -> dict:
    """The evaluate stage: reports/metrics.json and the pictures in reports/evaluation/ (written
    as one folder), the same on the train run in MLflow. The family of the model in models/
    scores it (components/families)."""
    import mlflow

    from components import families, tracking
    from components.evaluate import pictures

    family, _, _ = families.of_model_dir(layout.models)
    with atomic_dir(layout.evaluation) as folder:
        metrics, paths = family.evaluate(cfg, layout, folder)
        if layout.train_log.is_file():
            paths.append(pictures.loss_curves(layout.train_log, folder / "losses.png"))
    paths = [layout.evaluation / path.name for path in paths]
    write_json(layout.metrics, metrics)

    tracking.setup(layout)
    with mlflow.start_run(run_id=tracking.train_run_id(layout)):
        mlflow.log_params({f"evaluate.{k}": v for k, v in cfg.model_dump().items()})
        numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
        mlflow.log_metrics({f"eval/{k}": v for k, v in numbers.items()})
        mlflow.log_artifact(str(layout.metrics))
        for path in paths:
            mlflow.log_artifact(str(path), artifact_path="evaluation")
    return metrics
