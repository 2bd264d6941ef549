"""Where a translator loses the digit's class, judged outside ganops' metrics.

    python bench/translation_classes.py PROJECT    # where `ganops run` trained a translator

For each direction: an RBF SVM trained on the real target domain's train split (raw pixels)
reads the translated source test images (`class_kept`), and the real target test images
(`judge_floor`); the confusion of source class -> class read shows whether failures are noise or
systematic swaps. For unpaired sets with a 1-channel A and B it also reports `no_gan_a2b`: each
A test image squeezed geometrically into B's layout with no GAN at all (the digit's central
24 px average-pooled to an 8x8 grid, upscaled 3x into the centre of a 32 px frame: how
mnist2digits builds B), read by the same judge, for crops of 0, 2 and 4 px. If even that is read
as another digit, A->B must redraw digits in B's shapes, not only restyle them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _flat(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1).astype(np.float32) / 255


def _judge(images: np.ndarray, labels: np.ndarray, n: int = 2000):
    from sklearn.svm import SVC

    keep = np.random.default_rng(0).permutation(len(images))[:n]  # splits are class-sorted
    return SVC(C=10, gamma="scale").fit(_flat(images[keep]), labels[keep])


def no_gan_a2b(a: np.ndarray, crop: int) -> np.ndarray:
    """A images (N, 1, 32, 32) squeezed into mnist2digits' B layout: 8x8 blocks of 3 px."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(a).float()
    if crop:
        t = t[:, :, crop:-crop, crop:-crop]
    grid = F.adaptive_avg_pool2d(t, 8)
    grid = grid / grid.amax(dim=(2, 3), keepdim=True).clamp_min(1) * 255
    out = torch.zeros(len(t), 1, 32, 32)
    out[:, :, 4:28, 4:28] = F.interpolate(grid, scale_factor=3, mode="nearest")
    return out.round().to(torch.uint8).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project", type=Path)
    args = parser.parse_args()

    from components.dataset import load_dataset
    from components.families.translation.evaluate import DIRECTIONS, load_translators
    from components.layout import Layout

    layout = Layout(args.project.resolve())
    data = load_dataset(layout)
    translators, _ = load_translators(layout.models)
    for direction, G in translators.items():
        src, tgt = DIRECTIONS[direction]
        xs, ys = data.domain(src, "test")
        xt, yt = data.domain(tgt, "train")
        xtt, ytt = data.domain(tgt, "test")
        judge = _judge(xt, yt)
        read = judge.predict(_flat(G(xs)))
        k = int(max(ys.max(), yt.max())) + 1
        confusion = np.zeros((k, k), int)
        np.add.at(confusion, (ys, read), 1)
        out = {
            "direction": direction,
            "class_kept": round(float((read == ys).mean()), 3),
            "judge_floor": round(float((judge.predict(_flat(xtt)) == ytt).mean()), 3),
            "kept_per_class": [
                round(float(r[i] / max(r.sum(), 1)), 2) for i, r in enumerate(confusion)
            ],
            "confusion": confusion.tolist(),
        }
        if direction == "a2b" and data.kind == "unpaired" and xs.shape[1:] == (1, 32, 32):
            out["no_gan_a2b"] = {
                f"crop{c}": round(float((judge.predict(_flat(no_gan_a2b(xs, c))) == ys).mean()), 3)
                for c in (0, 2, 4)
            }
        print(json.dumps(out))


if __name__ == "__main__":
    main()
