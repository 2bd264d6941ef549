"""ADA's augmentations on CPU: ganops' hand-written batched ops vs kornia's containers.

Both pipelines do what `train.reg.ada` asks of every image D sees, each op per image with
probability p: x-flip, 90-degree rotations, translation up to 1/8 of the size, brightness,
contrast, saturation (RGB only), cutout of half the side. kornia's colour ops work on [0, 1]
(the batch is mapped there and back) and it moves pixels by warp_affine, bilinear; ganops' ops
gather whole pixels. Timed: forward + backward of one batch (the gradient G gets through them),
median ms over `--repeats` after a warm-up, the two taking turns (shared machines drift).
DiffAugment's fixed policy (translation, cutout, color) is timed beside them for scale.
One JSON line per shape and implementation.

    OMP_NUM_THREADS=1 python bench/ada_ops.py [--p 0.5] [--repeats 30]

kornia is not a ganops dependency: `pip install kornia` into the venv (or a --target folder on
PYTHONPATH) to time it; without it only ganops' ops are timed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time

import torch

from components.families.noise.augment import ada_augment, diff_augment

SHAPES = ((64, 1, 32, 32), (64, 3, 64, 64))  # (B, C, H, W)


def kornia_pipeline(channels: int, p: float):
    """kornia's AugmentationSequential with the same ops and strengths as ada_augment."""
    import kornia.augmentation as K

    ops = [
        K.RandomHorizontalFlip(p=p),
        K.RandomRotation90(times=(0, 3), p=p),
        K.RandomTranslate(translate_x=(-0.125, 0.125), translate_y=(-0.125, 0.125), p=p),
        K.RandomBrightness(brightness=(0.9, 1.1), p=p),  # kornia: an additive shift of 0.1
        K.RandomContrast(contrast=(0.7, 1.4), p=p),
    ]
    if channels == 3:
        ops.append(K.RandomSaturation(saturation=(0.5, 2.0), p=p))
    ops.append(K.RandomErasing(scale=(0.25, 0.25), ratio=(1.0, 1.0), value=0.0, p=p))
    pipe = K.AugmentationSequential(*ops)
    return lambda x: pipe((x + 1) / 2) * 2 - 1  # [-1, 1] -> kornia's [0, 1] -> back


def time_ms(augment, shape: tuple[int, ...]) -> float:
    """One forward + backward through `augment` on a fresh (B, C, H, W) batch, in ms."""
    x = torch.rand(shape).mul_(2).sub_(1).requires_grad_(True)
    start = time.perf_counter()
    augment(x).square().mean().backward()
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--p", type=float, default=0.5, help="augmentation probability")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.manual_seed(0)
    p = torch.tensor(args.p)
    for shape in SHAPES:
        impls = {
            "ganops": lambda x: ada_augment(x, p),
            "diffaugment": lambda x: diff_augment(x, ["translation", "cutout", "color"]),
        }
        with contextlib.suppress(ImportError):  # kornia is optional here
            impls["kornia"] = kornia_pipeline(shape[1], args.p)
        runs: dict[str, list[float]] = {name: [] for name in impls}
        for augment in impls.values():  # warm-up
            for _ in range(3):
                time_ms(augment, shape)
        for _ in range(args.repeats):
            for name, augment in impls.items():
                runs[name].append(time_ms(augment, shape))
        for name, times in runs.items():
            row = {
                "impl": name,
                "shape": list(shape),
                "p": args.p,
                "ms_per_batch": round(statistics.median(times), 2),
                "threads": torch.get_num_threads(),
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
