"""A clip set the video defaults were never tuned on: small coloured shapes (circle, square,
triangle; the class) moving on a textured coloured background, 20 frames of 48x48 px each,
written as GIF files in class folders. Then, by hand (under the shared CPU lock):

    python bench/video_heldout.py --out /tmp/shapes-gifs
    ganops run --params params-video.yaml --set ingest.source=/tmp/shapes-gifs \\
        --set register.model_name=ganops-video-shapes
    ganops generate --model models:/ganops-video-shapes@champion -n 64 --out /tmp/shapes-gen
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SIZE, FRAMES, SPRITE = 48, 20, 12
CLASSES = ("circle", "square", "triangle")


def sprite(kind: str) -> np.ndarray:
    """(SPRITE, SPRITE) bool mask of the shape."""
    yy, xx = np.mgrid[:SPRITE, :SPRITE] + 0.5
    c = SPRITE / 2
    if kind == "circle":
        return (yy - c) ** 2 + (xx - c) ** 2 <= (c - 1) ** 2
    if kind == "square":
        return (yy > 1.5) & (yy < SPRITE - 1.5) & (xx > 1.5) & (xx < SPRITE - 1.5)
    return (yy > 1.5) & (np.abs(xx - c) <= (yy - 1.5) / 2)  # a triangle, apex up


def clip(kind: str, rng: np.random.Generator) -> np.ndarray:
    """uint8 (FRAMES, SIZE, SIZE, 3): one shape bouncing at constant speed."""
    background = np.array(rng.integers(20, 90, 3), dtype=np.float64)
    noise = rng.normal(0, 6, (SIZE, SIZE, 1))
    colour = np.array(rng.integers(150, 256, 3), dtype=np.float64)
    room = SIZE - SPRITE
    pos = rng.uniform(0, room, 2)
    angle = rng.uniform(-np.pi, np.pi)
    vel = rng.uniform(1.5, 3.5) * np.array([np.sin(angle), np.cos(angle)])
    mask = sprite(kind)
    out = np.empty((FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
    for t in range(FRAMES):
        frame = background + noise
        y, x = np.rint(pos).astype(int)
        frame[y : y + SPRITE, x : x + SPRITE][mask] = colour
        out[t] = frame.clip(0, 255).astype(np.uint8)
        pos = pos + vel
        for k in range(2):
            if not 0 <= pos[k] <= room:
                vel[k] = -vel[k]
                pos[k] = np.clip(pos[k], 0, room)
    return out


def main() -> None:
    from PIL import Image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for kind in CLASSES:
        folder = args.out / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(args.per_class):
            frames = [Image.fromarray(f) for f in clip(kind, rng)]
            frames[0].save(folder / f"{kind}-{i:04d}.gif", save_all=True,
                           append_images=frames[1:], duration=80, loop=0)  # fmt: skip
    print(f"wrote {len(CLASSES) * args.per_class} GIFs under {args.out}")


if __name__ == "__main__":
    main()
