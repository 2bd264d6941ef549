"""Data: the bundled sources, the split, hashes, and atomic output."""

from __future__ import annotations

import numpy as np
import pytest

from components import ingest
from components.dataset import load_dataset
from components.errors import DataError
from components.layout import Layout


def test_mnist5k_ingest_writes_dataset(project, smoke_params):
    layout = Layout(project)
    manifest = ingest.run(smoke_params.ingest, layout)
    data = load_dataset(layout)
    assert data.images.shape == (5000, 1, 28, 28) and data.images.dtype == np.uint8
    assert manifest["n_train"] == 4000 and manifest["n_test"] == 1000
    assert set(data.meta.columns) >= {"label", "split", "hash"}
    # stratified: every class holds 20% of its images out
    per_class = data.meta.groupby("label")["split"].apply(lambda s: (s == "test").mean())
    assert np.allclose(per_class.to_numpy(), 0.2)
    assert len(manifest["content_hash"]) == 64
    # no temp folders left beside the output
    assert [p.name for p in layout.processed.parent.iterdir()] == ["processed"]


def _ingest(cfg, root):
    layout = Layout(root)
    manifest = ingest.run(cfg, layout)
    return load_dataset(layout), manifest


def test_ingest_is_deterministic_and_seed_changes_split(smoke_params, tmp_path):
    cfg = smoke_params.ingest.model_copy(update={"source": "digits"})
    a, man_a = _ingest(cfg, tmp_path / "a")
    _, man_b = _ingest(cfg, tmp_path / "b")
    assert man_a["content_hash"] == man_b["content_hash"]
    c, man_c = _ingest(cfg.model_copy(update={"seed": 1}), tmp_path / "c")
    assert man_c["content_hash"] != man_a["content_hash"]
    assert (a.meta["split"] != c.meta["split"]).any()


def test_digits_are_resized_to_image_size(smoke_params, tmp_path):
    cfg = smoke_params.ingest.model_copy(update={"source": "digits"})
    data, manifest = _ingest(cfg, tmp_path)
    assert data.images.shape == (1797, 1, 28, 28)
    assert data.images.max() > 200  # 0..16 rescaled to 0..255
    assert manifest["conditional"] and sorted(data.meta["label"].unique()) == list(range(10))


def test_image_hashes_find_duplicates():
    images = np.zeros((3, 1, 4, 4), dtype=np.uint8)
    images[2, 0, 0, 0] = 1
    hashes = ingest.image_hashes(images)
    assert hashes[0] == hashes[1] != hashes[2]


def test_unknown_source_is_a_clear_error(smoke_params, tmp_path):
    cfg = smoke_params.ingest.model_copy(update={"source": "cifar"})
    with pytest.raises(DataError, match="ingest.source: 'cifar' is neither a bundled set"):
        _ingest(cfg, tmp_path)
