"""Code: the feature-space metrics behave as their definitions say."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components.evaluate import fid, kid


@pytest.fixture
def feats():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(600, 8, generator=gen, dtype=torch.float64)


def test_identical_sets_give_zero(feats):
    assert fid(feats, feats) == pytest.approx(0.0, abs=1e-6)
    # KID is unbiased over random subsets: identical sets scatter around 0, far below a real gap
    same, shifted = kid(feats, feats, subset_size=200), kid(feats, feats + 1.0, subset_size=200)
    assert abs(same) < 0.02 * shifted


def test_shift_increases_fid_and_kid(feats):
    other = torch.randn(600, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    near, far = fid(feats, other), fid(feats, other + 1.0)
    assert far > near + 5.0  # a mean shift of 1 in 8 dims adds ~8
    assert kid(feats, other + 1.0, subset_size=200) > kid(feats, other, subset_size=200)


def test_fid_matches_closed_form_for_gaussians():
    rng = np.random.default_rng(0)
    n, d = 20000, 4
    a = rng.normal(0, 1, (n, d))
    b = rng.normal(0.5, 2, (n, d))
    # FID(N(0, I), N(0.5, 4I)) = d * 0.25 + tr(I + 4I - 2*2I) = d * (0.25 + 1)
    expected = d * 1.25
    assert fid(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(expected, rel=0.05)
