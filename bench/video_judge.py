"""An independent judge of generated clips against a real clip set in class folders (the
must-show of the video issue): its own code, its own classifier trained on real frames only,
nothing from ganops' evaluation (no feature net, no temporal module). For the held-out set of
bench/video_heldout.py, after `ganops generate -n 64 --out GEN`:

    python bench/video_judge.py --real /tmp/shapes-gifs --generated GEN --size 32

Reads every GIF (Pillow), resizes frames to --size, and prints one JSON object:

- `content`: share of generated clips whose majority class (a translation-invariant CNN trained
  on half of the real clips' frames) is the asked label, beside the same on the other half of
  the real clips (`content_real`);
- `stable`: mean share of a clip's frames in its majority class (`stable_real`);
- `frozen`: share of clips whose mean |frame difference| is below 0.5 (0-255);
- `speed_w1`: Wasserstein-1 distance between per-clip mean speeds (px per frame, centroid of
  |frame - the clip's median frame|) of the clips judged and the held-half real clips, for the
  generated clips and for two controls made from real clips: `shuffled` (frames in random
  order) and `frozen_control` (the first frame held). Generated must sit below both.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn


def read_gif(path: Path, size: int) -> np.ndarray:
    """(T, size, size, 3) uint8, every frame of the GIF."""
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        frames = [
            f.convert("RGB").resize((size, size), Image.LANCZOS) for f in ImageSequence.Iterator(im)
        ]
    return np.stack([np.asarray(f) for f in frames])


def real_set(root: Path, size: int, frames: int):
    """The real clips, each cut to its first `frames` frames (the generated clips' length)."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    clips, labels = [], []
    for k, name in enumerate(classes):
        for f in sorted((root / name).glob("*.gif")):
            clip = read_gif(f, size)
            if len(clip) >= frames:
                clips.append(clip[:frames])
                labels.append(k)
    return np.stack(clips), np.array(labels), classes


def generated_set(root: Path, size: int):
    clips, labels = [], []
    for line in (root / "metadata.jsonl").read_text().splitlines():
        row = json.loads(line)
        clips.append(read_gif(root / row["file_name"], size))
        labels.append(row["label"])
    return np.stack(clips), labels


def classifier(k: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, 1, 1), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        nn.Linear(64, k),
    )  # fmt: skip


def to_input(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def train_judge(clips, labels, k: int, steps: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = classifier(k)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(steps):
        i = rng.integers(0, len(clips), 128)
        t = rng.integers(0, clips.shape[1], 128)
        loss = nn.functional.cross_entropy(net(to_input(clips[i, t])), torch.from_numpy(labels[i]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def frame_classes(net, clips) -> np.ndarray:
    N, T = clips.shape[:2]
    flat = clips.reshape(N * T, *clips.shape[2:])
    pred = torch.cat(
        [net(to_input(b)).argmax(1) for b in np.array_split(flat, max(1, len(flat) // 256))]
    )
    return pred.numpy().reshape(N, T)


def content(pred: np.ndarray, asked: np.ndarray) -> tuple[float, float]:
    major = np.array([np.bincount(r).argmax() for r in pred])
    stable = np.mean([(r == m).mean() for r, m in zip(pred, major, strict=True)])
    return float((major == asked).mean()), float(stable)


def speeds(clips: np.ndarray) -> np.ndarray:
    """Per clip: mean centroid speed of |frame - the clip's median frame| (px per frame)."""
    x = clips.astype(np.float64).mean(-1)  # (N, T, S, S) grey
    fg = np.abs(x - np.median(x, axis=1, keepdims=True))
    S = x.shape[-1]
    yy, xx = np.mgrid[:S, :S]
    mass = fg.sum((2, 3)) + 1e-9
    cy, cx = (fg * yy).sum((2, 3)) / mass, (fg * xx).sum((2, 3)) / mass
    return np.hypot(np.diff(cy, axis=1), np.diff(cx, axis=1)).mean(1)


def w1(a: np.ndarray, b: np.ndarray) -> float:
    q = np.linspace(0, 1, 201)
    return float(np.abs(np.quantile(a, q) - np.quantile(b, q)).mean())


def frozen_share(clips: np.ndarray) -> float:
    diff = np.abs(np.diff(clips.astype(np.float64), axis=1)).mean((1, 2, 3, 4))
    return float((diff < 0.5).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", type=Path, required=True)
    ap.add_argument("--generated", type=Path, required=True)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(2)
    gen, asked = generated_set(a.generated, a.size)
    real, real_y, classes = real_set(a.real, a.size, gen.shape[1])
    gen_y = np.array([classes.index(x) if isinstance(x, str) else int(x) for x in asked])
    rng = np.random.default_rng(a.seed)
    order = rng.permutation(len(real))
    fit, held = order[: len(real) // 2], order[len(real) // 2 :]
    net = train_judge(real[fit], real_y[fit], len(classes), a.steps, a.seed)
    acc_real, stable_real = content(frame_classes(net, real[held]), real_y[held])
    acc, stable = content(frame_classes(net, gen), gen_y)
    ref, gen_speeds = speeds(real[held]), speeds(gen)
    shuffled = np.stack([c[rng.permutation(len(c))] for c in real[fit]])
    frozen = np.repeat(real[fit][:, :1], real.shape[1], axis=1)
    out = {
        "classes": classes, "n_generated": len(gen), "n_real_held": len(held),
        "content": acc, "content_real": acc_real, "stable": stable, "stable_real": stable_real,
        "frozen": frozen_share(gen), "frozen_real": frozen_share(real[held]),
        "speed_mean": float(gen_speeds.mean()), "speed_mean_real": float(ref.mean()),
        "speed_w1": w1(gen_speeds, ref), "speed_w1_floor": w1(speeds(real[fit]), ref),
        "speed_w1_shuffled": w1(speeds(shuffled), ref),
        "speed_w1_frozen_control": w1(speeds(frozen), ref),
    }  # fmt: skip
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}))


if __name__ == "__main__":
    main()
