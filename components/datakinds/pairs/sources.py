"""The translation-set sources: unpaired trainA/ trainB/ testA/ testB/, paired train/ test/ of
side-by-side A|B images, and the bundled pairs (mnist2mnistm, mnist2digits, digits-edges)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from components.errors import DataError
from components.sources import (
    ArraySource,
    FolderSource,
    Source,
    SourceInfo,
    _class_names,
    _folders,
    _mnist,
    auto_channels,
    mnist5k,
    scan_images,
)


def _digit_names() -> list[str]:
    return [str(d) for d in range(10)]


def mnist2digits(size: int) -> Translation:
    """Unpaired: A = MNIST-5k (thin pen strokes, 28 px), B = scikit-learn's 1,797 8x8 digits
    upscaled with nearest neighbour (blocky low-resolution scans) and framed as MNIST frames its
    digits (3x3 blocks in the middle 24 px of 32). Labelled both sides;
    ingest splits each domain with ingest.test_fraction / ingest.seed."""
    from PIL import Image
    from sklearn.datasets import load_digits

    bunch = load_digits()
    small = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # (N, 8, 8)
    # framed like MNIST (a 20 px digit in 28 px): whole blocks covering ~5/7 of the image, so
    # the gap between the domains is the style (strokes vs blocks), not the digit's scale
    content = max(8, 8 * round(size * 20 / 28 / 8))
    pad = (size - content) // 2
    nearest = Image.Resampling.NEAREST
    blocks = np.stack(
        [np.asarray(Image.fromarray(im).resize((content, content), nearest)) for im in small]
    )  # (N, content, content)
    big = np.zeros((len(small), size, size), np.uint8)
    big[:, pad : pad + content, pad : pad + content] = blocks
    blocky = ArraySource(  # (N, 1, size, size) uint8
        big[:, None], bunch.target.astype(np.int64), _digit_names(), "sklearn digits", "digits"
    )
    parts = [Part("A", None, mnist5k()), Part("B", None, blocky)]
    about = "mnist2digits: MNIST-5k (A) <-> sklearn 8x8 digits, nearest-upscaled (B)"
    return Translation("unpaired", parts, _digit_names(), about, {"A": 1, "B": 1})


MNISTM_SEED = 0  # the construction's seed: the train/test split, and every patch
MNISTM_PHOTO_SCALE = 1.0  # the photographs are resized by this before patches are cut
MNISTM_PHOTO_GAIN = 0.25  # the photographs' brightness is multiplied by this before blending
MNISTM_TEST_FRACTION = 0.2  # of each class's digits, test in both domains


def mnist2mnistm(size: int) -> Translation:
    """Unpaired: A = MNIST-5k as it is (grey strokes on black, 1 channel), B = the same digits
    written into colour photographs as MNIST-M is (Ganin & Lempitsky 2015): each digit blended
    into a random 28x28 patch of one of scikit-learn's two bundled photographs (dimmed by
    MNISTM_PHOTO_GAIN) as |patch - digit| per channel (3 channels). As in MNIST-M, B is made
    from A's digits; the train/test split is cut once per class (MNISTM_TEST_FRACTION) and
    shared by both domains, so no test digit is seen in either domain's train split, and the
    training loop draws A and B independently (no pairing)."""
    x, y = _mnist()
    train_idx, test_idx = _split(y, np.random.default_rng(MNISTM_SEED))
    digits = x.reshape(-1, 28, 28)
    labels = y.astype(np.int64)
    mnistm = mnistm_blend(digits, np.random.default_rng(MNISTM_SEED + 1))
    parts = []
    for split, idx in (("train", train_idx), ("test", test_idx)):
        grey = ArraySource(digits[idx][:, None], labels[idx], _digit_names(), "MNIST-5k", "mnist")
        colour = ArraySource(mnistm[idx], labels[idx], _digit_names(), "MNIST-M", "mnistm")
        parts += [Part("A", split, grey), Part("B", split, colour)]
    parts.sort(key=lambda p: p.domain)  # A's parts before B's
    about = "mnist2mnistm: MNIST-5k (A) <-> MNIST-M, the digits blended into photo patches (B)"
    return Translation("unpaired", parts, _digit_names(), about, {"A": 1, "B": 3})


def _split(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each class's indices shuffled and cut at MNISTM_TEST_FRACTION: (train's, test's), sorted."""
    train, test = [], []
    for k in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == k))
        n_test = round(len(idx) * MNISTM_TEST_FRACTION)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def mnistm_blend(
    digits: np.ndarray,
    rng: np.random.Generator,
    scale: float = MNISTM_PHOTO_SCALE,
    gain: float = MNISTM_PHOTO_GAIN,
) -> np.ndarray:
    """(N, 28, 28) digits, 0..255 -> (N, 3, 28, 28) uint8: |patch - digit| per channel, each
    patch a random crop (random photograph, position, horizontal flip) of scikit-learn's
    bundled photographs (china.jpg, flower.jpg, 427x640)."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = []
    for p in load_sample_images().images:  # (427, 640, 3) uint8 each
        size = (round(p.shape[1] * scale), round(p.shape[0] * scale))
        photo = np.asarray(Image.fromarray(p).resize(size, Image.Resampling.BOX), np.float32)
        photos.append(photo * gain)
    n, h, w = digits.shape
    out = np.empty((n, 3, h, w), np.uint8)
    which = rng.integers(0, len(photos), n)
    flips = rng.random(n) < 0.5
    for i in range(n):
        photo = photos[which[i]]
        top = rng.integers(0, photo.shape[0] - h + 1)
        left = rng.integers(0, photo.shape[1] - w + 1)
        patch = photo[top : top + h, left : left + w]
        if flips[i]:
            patch = patch[:, ::-1]
        blended = np.abs(patch - np.asarray(digits[i], np.float32)[:, :, None])  # (h, w, 3)
        out[i] = np.round(blended).clip(0, 255).astype(np.uint8).transpose(2, 0, 1)
    return out


def sobel_edges(images: np.ndarray) -> np.ndarray:
    """(N, H, W) float -> (N, H, W) Sobel gradient magnitude, each image scaled to peak 255."""
    p = np.pad(images, ((0, 0), (1, 1), (1, 1)), mode="edge")  # (N, H+2, W+2)
    dx = (p[:, :-2, 2:] + 2 * p[:, 1:-1, 2:] + p[:, 2:, 2:]) - (
        p[:, :-2, :-2] + 2 * p[:, 1:-1, :-2] + p[:, 2:, :-2]
    )
    dy = (p[:, 2:, :-2] + 2 * p[:, 2:, 1:-1] + p[:, 2:, 2:]) - (
        p[:, :-2, :-2] + 2 * p[:, :-2, 1:-1] + p[:, :-2, 2:]
    )
    magnitude = np.hypot(dx, dy)
    peak = magnitude.reshape(len(magnitude), -1).max(axis=1)
    return magnitude * (255.0 / np.maximum(peak, 1e-6))[:, None, None]


def digits_edges(size: int) -> Translation:
    """Paired: each MNIST-5k digit as a 28x56 A|B image, A = its Sobel edge map (outline,
    scaled to peak 255), B = the digit. Ingest splits the halves and resizes them to `size`."""
    x, y = _mnist()
    digit = x.reshape(-1, 28, 28)  # (N, 28, 28) float 0..255
    edges = np.round(sobel_edges(digit)).clip(0, 255)
    side_by_side = np.concatenate([edges, digit], axis=2).astype(np.uint8)[:, None]  # (N,1,28,56)
    source = ArraySource(
        side_by_side, y.astype(np.int64), _digit_names(), "MNIST-5k edges|digit", "digits-edges"
    )
    about = "digits-edges: Sobel edge map of an MNIST-5k digit (A) -> the digit (B)"
    parts = [Part("AB", None, source)]
    return Translation("paired", parts, _digit_names(), about, {"A": 1, "B": 1})


BUNDLED_TRANSLATION = {
    "mnist2mnistm": mnist2mnistm,
    "mnist2digits": mnist2digits,
    "digits-edges": digits_edges,
}


UNPAIRED = ("trainA", "trainB", "testA", "testB")  # the reference CycleGAN layout


@dataclass
class Part:
    """One stream of a translation set. domain: "A", "B", or "AB" (side-by-side A|B images,
    split at the middle by ingest); split: "train", "test", or None (split at ingest with
    ingest.test_fraction / ingest.seed, for bundled sets)."""

    domain: str
    split: str | None
    source: Source


@dataclass
class Translation:
    """A translation set: its parts in order (A before B), one class list shared by A and B."""

    kind: str  # "unpaired" | "paired"
    parts: list[Part]
    class_names: list[str]  # label k means the same class in A and B
    description: str
    # channels per domain ("A", "B") for ingest.channels: auto; None: found from the files
    # (every header read) when first asked
    known_channels: dict[str, int] | None = None
    info: SourceInfo = field(init=False)

    def __post_init__(self):
        n = sum(p.source.info.n_images for p in self.parts)
        self.info = SourceInfo(
            n, lambda: max(self.channels.values()), self.class_names, False, self.description
        )

    @functools.cached_property
    def channels(self) -> dict[str, int]:
        if self.known_channels is not None:
            return self.known_channels
        return {d: _domain_channels(self.parts, d) for d in ("A", "B")}

    def labelled(self, domain: str) -> bool:
        return any(p.source.info.conditional for p in self.parts if domain in p.domain)


def _side_by_side(folder: Path, sample: int = 16) -> bool:
    """Whether the images of `folder` are A|B pairs (width = 2 x height), judged by the
    headers of up to `sample` of them spread over the folder: most must be 2:1."""
    from PIL import Image

    files = scan_images(folder)[0]
    sizes = []
    for i in np.random.default_rng(0).permutation(len(files))[:sample]:
        try:
            with Image.open(files[i]) as img:
                sizes.append(img.size)  # (width, height)
        except (OSError, ValueError, SyntaxError, EOFError):
            continue
    return not sizes or sum(w == 2 * h for w, h in sizes) * 2 > len(sizes)


def _domain_channels(parts: list[Part], domain: str) -> int:
    """`ingest.channels: auto` for one translation domain, by content over all its files (each
    half of a side-by-side A|B file gets its own answer)."""
    mine = [p for p in parts if domain in p.domain]
    files = [f for p in mine for f, _ in p.source.items]
    return auto_channels(files, half=domain if mine[0].domain == "AB" else None)


def translation(root: Path, kind: str, classes: list[str], label: str) -> Translation:
    """The parts of an unpaired or paired folder; class sub-folders anywhere share one index."""
    found = _folders(root)
    if kind == "unpaired":
        plan = [("A", "train", "trainA"), ("A", "test", "testA")]
        plan += [("B", "train", "trainB"), ("B", "test", "testB")]
    else:  # the reference aligned layout: test/, or val/ when there is no test/
        plan = [("AB", "train", "train"), ("AB", "test", "test" if "test" in found else "val")]
    plan = [(d, s, found[f.lower()]) for d, s, f in plan]
    names = list(classes) or sorted({c for *_, folder in plan for c in _class_names(folder)})
    parts = [Part(d, s, FolderSource(f, names, f"{label}/{f.name}")) for d, s, f in plan]
    for domain in ("A", "B", "AB"):
        mine = [(p, f.name) for p, (*_, f) in zip(parts, plan, strict=True) if p.domain == domain]
        if len({p.source.info.conditional for p, _ in mine}) > 1:
            with_classes = next(f for p, f in mine if p.source.info.conditional)
            loose = next(f for p, f in mine if not p.source.info.conditional)
            raise DataError(
                f"ingest.source: {label}: {with_classes}/ has class folders but {loose}/ holds "
                "loose images; use one layout for a domain's train and test"
            )
    labelled = any(p.source.info.conditional for p in parts)
    return Translation(kind, parts, names if labelled else [], f"{kind} {label}")
