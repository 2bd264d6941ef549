"""Image helpers shared by stages: tensor <-> uint8, sample grids as PNG."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from components.layout import atomic_write_bytes


def to_uint8(images) -> np.ndarray:
    """[-1, 1] float tensor/array (N, C, H, W) -> uint8 array (N, C, H, W)."""
    arr = images.detach().float().cpu().numpy() if hasattr(images, "detach") else images
    return ((np.asarray(arr) + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)


def grid(images: np.ndarray, rows: int, pad: int = 2) -> np.ndarray:
    """Tile uint8 (N, C, H, W) into one (rows*H, cols*W, C) picture, row-major."""
    n, c, h, w = images.shape
    cols = -(-n // rows)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, dtype=np.uint8)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + k * (w + pad)
        out[y : y + h, x : x + w] = img.transpose(1, 2, 0)
    return out


def save_png(picture: np.ndarray, path: Path, scale: int = 1) -> Path:
    """Write an (H, W, C) uint8 picture as PNG (nearest-neighbour upscaled), atomically."""
    from PIL import Image

    pic = picture[..., 0] if picture.shape[-1] == 1 else picture
    img = Image.fromarray(pic)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return path


def common_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 (N, C, H, W), C in {1, 3} -> `channels` (gray repeated; RGB to its mean)."""
    if images.shape[1] == channels:
        return images
    if images.shape[1] == 1:
        return np.repeat(images, channels, axis=1)
    return images.mean(axis=1, keepdims=True).round().astype(np.uint8)
