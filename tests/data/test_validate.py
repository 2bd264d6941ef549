"""Data: the same GX suite the flow uses, on one passing and several failing datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components import validate
from components.ingest import image_hashes, process_chunk
from components.sources import Chunk

MANIFEST = {"shape": [1, 8, 8], "class_names": ["a", "b", "c"], "conditional": True}


def make_dataset(n=300, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 1, 8, 8)).astype(np.float64)
    labels = np.arange(n) % classes
    return images, labels


def run_suite(params, images, labels, manifest=MANIFEST, docs_dir=None):
    """Through ingest's own chunk processing, so raw stats are taken as in the pipeline."""
    files = [f"img_{i:04d}.png" for i in range(len(labels))]
    block, readable, stats = process_chunk(Chunk(list(images), labels, files), 8, 1, 1.0)
    meta = pd.DataFrame(
        {"label": labels, "file": files, "readable": readable, "hash": image_hashes(block), **stats}
    )
    summary = validate.summarize(block, meta)
    cfg = params.validate_.model_copy(update={"min_images": 100})
    results = validate.check(summary, validate.build_suite(cfg, manifest), docs_dir)
    return {r["check"].split(" (")[0]: r for r in results}, validate.failure_lines(results)


@pytest.fixture(scope="module")
def params():
    from components.config import load_params
    from tests.conftest import SMOKE

    return load_params(SMOKE)


def test_good_dataset_passes_and_renders_data_docs(params, tmp_path):
    images, labels = make_dataset()
    results, failed = run_suite(params, images, labels, docs_dir=tmp_path / "docs")
    assert failed == []
    assert len(results) == 14
    html = (tmp_path / "docs" / "index.html").read_text()
    assert "ganops-images" in html


def _failed(results):
    return {name for name, r in results.items() if not r["success"]}


def test_blank_duplicate_and_nan_images_fail_with_example(params):
    images, labels = make_dataset()
    images[5] = 0.0  # blank
    images[20:26] = images[19]  # 7 identical images: 2.3% > 1%
    images[10, 0, 0, 0] = np.nan  # NaN pixel
    images[11, 0, 1, 1] = 300.0  # out of range
    results, failed = run_suite(params, images, labels)
    assert _failed(results) == {
        "blank images",
        "duplicate images <= validate.max_duplicate_fraction",
        "no NaN or inf pixels",
        "pixel values <= 255",
    }
    nan_line = next(line for line in failed if "NaN" in line)
    assert "img_0010.png" in nan_line and "1 of 300 rows" in nan_line


def test_label_rules(params):
    images, labels = make_dataset()
    labels = labels.copy()
    labels[0] = 7  # not a declared class
    labels[labels == 2] = 1  # class 'c' vanishes -> fine by count, but 7 has 1/300 share
    results, failed = run_suite(params, images, labels)
    assert "labels in 0..2" in _failed(results)
    assert "each class >= validate.min_class_fraction" in _failed(results)


def test_single_class_fails_for_conditional(params):
    images, labels = make_dataset()
    results, _ = run_suite(params, images, np.zeros_like(labels))
    assert "at least validate.min_classes" in _failed(results)


def test_too_few_images_and_wrong_shape(params):
    images, labels = make_dataset(n=60)
    manifest = {**MANIFEST, "shape": [3, 8, 8]}
    results, _ = run_suite(params, images, labels, manifest=manifest)
    assert "dataset size >= validate.min_images" in _failed(results)
    assert "every image has 3 channel(s)" in _failed(results)
