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


def invert(images: np.ndarray) -> np.ndarray:
    """A digit style: white strokes on black -> black on white (its own inverse)."""
    return 255 - images


def thicken(images: np.ndarray) -> np.ndarray:
    """A digit style: strokes dilated by one pixel (3x3 max) over the last two axes."""
    pad = [(0, 0)] * (images.ndim - 2) + [(1, 1), (1, 1)]
    p = np.pad(images, pad)
    h, w = images.shape[-2:]
    shifts = [p[..., y : y + h, x : x + w] for y in range(3) for x in range(3)]
    return np.max(shifts, axis=0)


def tint(images: np.ndarray) -> np.ndarray:
    """A colour digit style: gray (N, 1, H, W) -> red strokes (N, 3, H, W); `untint` undoes it."""
    return np.concatenate([images, images // 4, images // 4], axis=1)


def untint(images: np.ndarray) -> np.ndarray:
    return images[:, :1]


def tint_files(images: np.ndarray) -> np.ndarray:
    """tint for (N, H, W) digits, as (N, H, W, 3) images to save."""
    return tint(images[:, None]).transpose(0, 2, 3, 1)


def digit_styles(root: Path, style, kind="unpaired", side=32, step=1, labelled=True) -> Path:
    """Two styles of scikit-learn's 8x8 digits (every `step`-th, upscaled to `side`), class
    sub-folders "0".."9" (flat folders unless `labelled`): A = the digit, B = style(digit), a
    (N, side, side) or (N, side, side, 3) array. Unpaired: A and B from disjoint halves of the
    digits (the translation of an A image is never a B image); paired: A|B side by side."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = (digits.images[::step] * (255 / 16)).astype(np.uint8)  # (N, 8, 8)
    big = np.stack(
        [np.asarray(Image.fromarray(d).resize((side, side), Image.BILINEAR)) for d in small]
    )
    labels = digits.target[::step]
    test = np.arange(len(small)) % 5 == 0  # every 5th image is test
    if kind == "unpaired":
        half = np.arange(len(small)) % 2  # even rows -> A, odd rows -> B
        parts = {
            f"{s}{d}": (half == h) & (test == t)
            for d, h in (("A", 0), ("B", 1))
            for s, t in (("train", False), ("test", True))
        }
        images = {"A": big, "B": style(big)}
        for name, rows in parts.items():
            _save_classes(root / name, images[name[-1]][rows], labels[rows], labelled)
    else:
        pairs = np.concatenate([big, style(big)], axis=2)  # (N, side, 2 * side)
        for name, rows in (("train", ~test), ("test", test)):
            _save_classes(root / name, pairs[rows], labels[rows], labelled)
    return root


def _save_classes(folder: Path, images: np.ndarray, labels: np.ndarray, labelled: bool) -> None:
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        where = folder / str(label) if labelled else folder
        where.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(where / f"{i:04d}.png")


def ingest_to(cfg, tmp_path: Path):
    """Run the real ingest stage with IngestConfig `cfg` into tmp_path/proj:
    (layout, manifest, dataset)."""
    from components import ingest
    from components.dataset import load_dataset
    from components.layout import Layout

    layout = Layout(tmp_path / "proj")
    manifest = ingest.run(cfg, layout)
    return layout, manifest, load_dataset(layout)
