"""Shape checks where tensors cross into and out of G and D (STYLE 14)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def assert_shape(t: torch.Tensor, shape: tuple) -> None:
    """Check a tensor's shape; None in `shape` matches any size."""
    if t.ndim != len(shape) or any(
        s is not None and s != d for s, d in zip(shape, t.shape, strict=False)
    ):
        raise AssertionError(f"expected shape {shape}, got {tuple(t.shape)}")
