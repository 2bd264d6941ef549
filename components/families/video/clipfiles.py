"""Clips as files people look at: an animated GIF (a grid of clips playing together, or one clip)
and a frame-strip PNG (one clip per row, its frames left to right). Written atomically."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from components.layout import atomic_write_bytes

FRAME_MS = 100  # 10 frames per second


def clip_grid_frames(clips: np.ndarray, cols: int, pad: int = 2) -> np.ndarray:
    """uint8 (N, T, C, S, S) -> (T, H, W, C): every frame time of the N clips tiled."""
    from components.images import grid

    n = len(clips)
    rows = -(-n // cols)
    return np.stack([grid(clips[:, t], rows, pad) for t in range(clips.shape[1])])


def gif_bytes(frames: np.ndarray, scale: int = 1) -> bytes:
    """(T, H, W, C) uint8 -> an endlessly looping GIF (gray stays gray, exactly)."""
    from PIL import Image

    pics = []
    for f in frames:
        img = Image.fromarray(f[..., 0] if f.shape[-1] == 1 else f)
        if scale > 1:
            img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
        pics.append(img if img.mode == "L" else img.convert("P", palette=Image.Palette.ADAPTIVE))
    buf = io.BytesIO()
    pics[0].save(
        buf, format="GIF", save_all=True, append_images=pics[1:], duration=FRAME_MS, loop=0,
        optimize=False, disposal=1,
    )  # fmt: skip
    return buf.getvalue()


def save_gif(clips: np.ndarray, path: Path, cols: int | None = None, scale: int = 1) -> Path:
    """A grid of clips (N, T, C, S, S) as one animated GIF (cols: clips per row)."""
    frames = (
        clip_grid_frames(clips, cols or len(clips))
        if len(clips) > 1
        else (clips[0].transpose(0, 2, 3, 1))
    )
    atomic_write_bytes(path, gif_bytes(frames, scale))
    return path


def save_strip(clips: np.ndarray, path: Path, scale: int = 1) -> Path:
    """One clip per row, its frames left to right, as a PNG."""
    from components.images import grid, save_png

    n, T = clips.shape[:2]
    return save_png(grid(clips.reshape(n * T, *clips.shape[2:]), n), path, scale)
