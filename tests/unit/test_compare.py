"""Code: `ganops compare REAL FAKE` on two folders and on two npz files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests import datagen

pytestmark = pytest.mark.slow  # each trains a feature network in a subprocess

KEYS = {"fid", "kid", "precision", "recall", "density", "coverage"}


def compare(a, b):
    out = subprocess.run(
        [sys.executable, "-m", "components.cli", "compare", str(a), str(b), "--epochs", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_compare_two_npz_files(tmp_path):
    real = datagen.npz(tmp_path / "real.npz", n=200)
    same = compare(real, real)
    assert set(same) >= KEYS and same["fid"] < 1e-6 and same["precision"] == 1.0
    noise = tmp_path / "noise.npz"
    rng = np.random.default_rng(0)
    np.savez(
        noise,
        images=rng.integers(0, 256, (200, 28, 28), dtype=np.uint8),
        labels=np.repeat([0, 1], 100),
    )
    far = compare(real, noise)
    assert far["fid"] > 1.0 and far["precision"] < 0.5
    assert "cond_acc" in far and "tstr" in far  # both sides labelled: class metrics too


def test_compare_two_image_folders(tmp_path):
    a = datagen.image_folder(tmp_path / "a", classes=(), n=60, rgb=True)
    b = datagen.image_folder(tmp_path / "b", classes=(), n=60, rgb=True)
    result = compare(a, b)
    assert set(result) >= KEYS
    assert "cond_acc" not in result  # unlabeled: class-based metrics are skipped


def test_too_few_images_or_bad_options_are_one_line(tmp_path):
    from components.errors import ConfigError, DataError
    from components.evaluate.compare import compare as run_compare

    tiny = datagen.npz(tmp_path / "tiny.npz", n=3)
    with pytest.raises(DataError, match=r"\d images on the smaller side; .* --nearest-k \(3\)"):
        run_compare(tiny, tiny, epochs=1, nearest_k=3, kid_subset_size=2, seed=0)
    with pytest.raises(ConfigError, match="--epochs and --nearest-k must be >= 1"):
        run_compare(tiny, tiny, epochs=0, nearest_k=3, kid_subset_size=2, seed=0)
