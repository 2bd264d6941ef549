"""The noise family's evaluation: G_ema's metrics beside their real-vs-real floors
(components/evaluate: FID, KID, PRDC, intra-FID, class accuracy, modes, TSTR) and its pictures."""

from __future__ import annotations

from pathlib import Path

from components.config import EvaluateConfig
from components.dataset import load_dataset
from components.evaluate.features import load_or_train_classifier
from components.evaluate.stage import evaluate
from components.families.noise.nets import load_model_dir
from components.layout import Layout


def score_generator(cfg: EvaluateConfig, layout: Layout, folder: Path) -> tuple[dict, list]:
    """Metrics of G_ema in models/ with their floors, and its pictures written into `folder`."""
    from components.evaluate import pictures

    data = load_dataset(layout)
    net, clf_acc = load_or_train_classifier(cfg, layout, data)
    G, _spec = load_model_dir(layout.models)  # G_ema and its spec
    metrics, sets = evaluate(cfg, data, G, net, floor_cache=layout.classifier_cache)
    if clf_acc is not None:
        metrics["classifier_acc"] = clf_acc
    else:
        print("evaluate: unlabeled data: autoencoder features; class-based metrics skipped")
    if "fid" in metrics:
        metrics["fid_ratio"] = metrics["fid"] / max(metrics["fid_floor"], 1e-12)
    paths = [
        pictures.class_grid(G, data.num_classes, cfg.seed, folder / "eval_samples.png"),
        pictures.interpolation_grid(G, data.num_classes, cfg.seed, folder / "interpolation.png"),
        pictures.nearest_real_grid(sets["generated"], sets["train"], folder / "nearest_real.png"),
    ]
    return metrics, paths


# ---- the stage hooks (components/families/base.py) ----


def evaluate_model(cfg, layout, folder: Path):
    return score_generator(cfg, layout, folder)
