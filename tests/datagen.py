"""Small synthetic datasets in every source format, made by the tests (nothing downloaded)."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def blobs(n: int, label: int, size=(20, 24), rgb=False, seed=0) -> list[np.ndarray]:
    """Distinct, non-blank images: a bright square whose place depends on the label."""
    rng = np.random.default_rng(seed + 1000 * label)
    h, w = size
    out = []
    for _ in range(n):
        img = rng.integers(0, 60, (h, w)).astype(np.uint8)
        y, x = 2 + 4 * label % (h - 8), 2 + rng.integers(0, w - 8)
        img[y : y + 6, x : x + 6] = 230
        out.append(np.stack([img, img // 2, 255 - img], -1) if rgb else img)
    return out


def image_folder(root: Path, classes=("cat", "dog"), n=30, rgb=False, suffix=".png") -> Path:
    """Class sub-folders (or a flat folder when classes is empty) of image files."""
    root.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(classes or [None]):
        folder = root / name if name else root
        folder.mkdir(exist_ok=True)
        for i, img in enumerate(blobs(n, k, rgb=rgb)):
            Image.fromarray(img).save(folder / f"{i:03d}{suffix}")
    return root


def npz(path: Path, n=60, classes=2, labels=True, **arrays) -> Path:
    images = np.stack([b for k in range(classes) for b in blobs(n // classes, k, size=(28, 28))])
    data = {"images": images}
    if labels:
        data["labels"] = np.repeat(np.arange(classes), n // classes)
    data.update(arrays)
    np.savez(path, **data)
    return path


def zip_of(folder: Path, path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(folder.rglob("*")):
            zf.write(f, f.relative_to(folder.parent))
    return path


def tar_of(folder: Path, path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        tf.add(folder, arcname=folder.name)
    return path


def translation_folder(
    root: Path, kind="unpaired", classes=("0", "1"), n=12, rgb_b=False, side=24
) -> Path:
    """An unpaired (trainA/ trainB/ testA/ testB/) or paired (train/ test/ of A|B images, width
    = 2 x height) translation set; class sub-folders when `classes`, else flat folders. Every
    image is distinct (train vs test, A vs B). With rgb_b, B has colour and every file is RGB
    (A's gray content saved as RGB, as many datasets do)."""
    root.mkdir(parents=True, exist_ok=True)
    folders = {"unpaired": ("trainA", "trainB", "testA", "testB"), "paired": ("train", "test")}
    for seed, name in enumerate(folders[kind], start=1):
        for k, cls in enumerate(classes or [None]):
            folder = root / name / cls if cls else root / name
            folder.mkdir(parents=True, exist_ok=True)
            images = blobs(
                n, k, size=(side, side), rgb=rgb_b and name.endswith("B"), seed=10 * seed
            )
            if rgb_b and images[0].ndim == 2:  # gray content in RGB files
                images = [np.repeat(img[..., None], 3, axis=-1) for img in images]
            if kind == "paired":  # B: another style (inverted), to the right of A
                b = blobs(n, k, size=(side, side), rgb=rgb_b, seed=10 * seed + 5)
                images = [
                    np.concatenate([a, 255 - y], axis=1) for a, y in zip(images, b, strict=True)
                ]
            for i, img in enumerate(images):
                Image.fromarray(img).save(folder / f"{i:03d}.png")
    return root
