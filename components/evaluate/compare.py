"""`ganops compare REAL FAKE`: every metric between any two sample sets (npz or image folders).

The feature network is trained on REAL (a classifier when both sides carry labels, else an
autoencoder); FAKE is brought to REAL's size and channels the way ingest does it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from components.errors import DataError


def load_sample_set(path: Path, size: int | None = None, channels: int | None = None):
    """(uint8 images (N, C, S, S), labels or None, class names) from an npz, folder or archive."""
    from components.ingest import float_scale, process_chunk
    from components.sources import open_source

    with tempfile.TemporaryDirectory() as scratch:
        source = open_source(str(path), [], Path(scratch))
        first = next(iter(source.chunks()))
        sample = next((img for img in first.images if img is not None), None)
        if sample is None:
            raise DataError(f"{path}: no readable image")
        size = size or sample.shape[-1]
        channels = channels or source.info.channels
        scale = float_scale(source)
        blocks, labels = [], []
        for chunk in source.chunks():
            block, readable, _ = process_chunk(chunk, size, channels, scale)
            if not readable.all():
                bad = chunk.files[int(np.flatnonzero(~readable)[0])]
                raise DataError(f"{path}: unreadable image {bad}")
            blocks.append(block)
            labels.append(chunk.labels)
    label_arr = np.concatenate(labels)
    return (
        np.concatenate(blocks),
        (label_arr if source.info.conditional else None),
        source.info.class_names,
    )


def compare(
    real_path: Path,
    fake_path: Path,
    epochs: int,
    nearest_k: int,
    kid_subset_size: int,
    seed: int,
) -> dict:
    from components.errors import ConfigError
    from components.evaluate.features import feature_net, predict
    from components.evaluate.metrics import METRICS, Pair, Side, compute

    if epochs < 1 or nearest_k < 1 or kid_subset_size < 2:
        raise ConfigError("compare: --epochs and --nearest-k must be >= 1, --kid-subset-size >= 2")
    real_x, real_y, real_names = load_sample_set(real_path)
    fake_x, fake_y, fake_names = load_sample_set(fake_path, real_x.shape[-1], real_x.shape[1])
    smallest = min(len(real_x), len(fake_x))
    if smallest <= nearest_k:
        raise DataError(
            f"compare: {smallest} images on the smaller side; the k-NN metrics need more than "
            f"--nearest-k ({nearest_k})"
        )
    if kid_subset_size > smallest:
        note = f"compare: --kid-subset-size {kid_subset_size} > {smallest} images: using {smallest}"
        print(note, file=sys.stderr)  # stdout carries the JSON
        kid_subset_size = smallest
    labelled = real_y is not None and fake_y is not None and real_names == fake_names
    k = len(real_names) if labelled else 0
    net = feature_net(real_x, real_y, k, epochs, seed)

    def side(x, y):
        feats, pred = predict(net, x)
        return Side(x, feats, y if labelled else None, pred.numpy() if labelled else None)

    pair = Pair(
        side(real_x, real_y),
        side(fake_x, fake_y),
        num_classes=k,
        nearest_k=nearest_k,
        kid_subset_size=kid_subset_size,
        seed=seed,
        classifier_epochs=epochs,
    )
    out = {"n_real": len(real_x), "n_fake": len(fake_x)}
    out.update(compute(list(METRICS), pair))
    return out
