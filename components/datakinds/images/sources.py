"""The image-set sources: the bundled sets (MNIST-5k, scikit-learn digits, photo crops), .npz
files and image sets that come split into train/ and test/ (a plain image folder is the shared
components.sources.FolderSource)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from components.errors import DataError
from components.sources import (
    CHUNK,
    ArraySource,
    Chunk,
    FolderSource,
    Source,
    SourceInfo,
    _class_names,
    _folders,
    mnist5k,
)


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


class SplitFolderSource(Source):
    """An image set that comes split: train/ and test/ (or val/), each an image folder (class
    sub-folders or flat, the same in both). The split is kept as given (`splits`), not redrawn
    from ingest.test_fraction."""

    decodes_files = True

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
