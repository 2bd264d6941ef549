"""The captioned-image sources: a Hugging Face imagefolder, side-car captions, WebDataset-style
.tar shards, and the bundled `shapes`. Each yields its images as Chunks (decoded as the image
kinds decode them) and holds every image's captions, in the same order.

Layouts (`plan` finds them; train/ and test/ (or val/) of one layout keep their split):

- imagefolder: metadata.jsonl (rows {"file_name": ..., "text": a string or a list of strings})
  or metadata.csv (columns file_name, text) at the folder's top; file_name is relative to it.
  Several rows for one file add captions. Every row names an image that exists; every image
  in the folder has a row.
- sidecar: x.png beside x.txt anywhere below the folder, one caption per line (blank lines
  are not captions); every image has its .txt.
- webdataset: .tar shards at the folder's top whose members are key.png|jpg|... and key.txt
  (key: the member's path up to the first dot of its name), read with tarfile, never
  extracted. A single .tar given as ingest.source is an archive: extracted, its key.png +
  key.txt files are the sidecar layout.

The bundled `shapes` (`Shapes`): 32x32 RGB scenes drawn with PIL ImageDraw at 4x and
box-filtered down (smooth edges), one shape on a plain background, and captions that name it:

- shape: circle, square (half side 0.85 r), triangle (pointing up, bounding box centred);
- colour (RGB, each channel jittered by up to +-15): red (220, 40, 40), green (40, 170, 60),
  blue (40, 90, 230), yellow (230, 200, 40), purple (150, 60, 200);
- size: small (r = 5 px) or large (r = 10 px), r jittered by up to +-10%;
- position: left, right, top or bottom: the shape 2 px in from that edge (+-1.5 px along,
  +-3 px across for small shapes, +-1.5 px for large);
- background: dark (gray 15-55) or light (gray 195-235), each channel tinted by up to +-8.

Held out: red triangle, green circle and blue square appear in test only (each colour and each
shape still appears in train, in other combinations). Train: 500 images of each of the 12 seen
colour x shape pairs (6,000); test: 50 of each seen pair and 200 of each held-out pair (1,200).
Size, position and background are drawn uniformly. Each image has 3-5 captions, from distinct
phrasings of TEMPLATES ("a small red circle on the left", "red circle, small, left side",
"there is a large blue square at the top", ...). The split is the construction's, not
ingest.test_fraction's; ingest.seed draws everything else (the same seed, the same set).
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from components.datakinds.captioned import METADATA_FILES
from components.errors import DataError
from components.sources import (
    CHUNK,
    COLOUR_CHECKS,
    Chunk,
    Source,
    SourceInfo,
    _colour_mode,
    _decode,
    _folders,
    _is_colour_content,
    _is_image_name,
    _name_some,
    _skipped,
    auto_channels,
    scan_images,
)


class CaptionedSource(Source):
    """Images and their captions, in the order chunks() yields the images. captions[i]: image
    i's captions (each non-blank, whitespace collapsed); splits: "train" / "test" per image when
    the data comes split, else None (ingest splits by image). Bundled sets with attributes
    add per-image attribute columns (attributes: name -> a value per image, plus heldout),
    the values each attribute takes (attribute_values) and the held-out value combinations
    (heldout: [{name: value, ...}]); None elsewhere."""

    layout: str  # imagefolder | sidecar | webdataset | bundled
    captions: list[list[str]]
    splits: np.ndarray | None = None
    attributes: dict[str, list] | None = None
    attribute_values: dict[str, list[str]] | None = None
    heldout: list[dict[str, str]] | None = None

    def seeded(self, seed: int) -> CaptionedSource:
        """This source as drawn with ingest.seed: a bundled set draws its scenes with it; files
        are what they are."""
        return self


# --- layouts -------------------------------------------------------------------------------


def own_layout(folder: Path) -> str | None:
    """The layout the folder's top level marks: a metadata file (imagefolder), or .tar shards
    without loose images (webdataset)."""
    files = [p for p in folder.iterdir() if p.is_file() and not _skipped(p.name)]
    names = {p.name.lower() for p in files}
    if names & set(METADATA_FILES):
        return "imagefolder"
    if any(n.endswith(".tar") for n in names) and not any(_is_image_name(p) for p in files):
        return "webdataset"
    return None


def has_sidecars(folder: Path) -> bool:
    """Whether some image below the folder has its caption file beside it (x.png, x.txt)."""
    images, other = scan_images(folder)
    stems = {p.with_suffix("") for p in other if p.suffix.lower() == ".txt"}
    return any(p.with_suffix("") in stems for p in images)


def layout_of(folder: Path) -> str | None:
    return own_layout(folder) or ("sidecar" if has_sidecars(folder) else None)


def plan(root: Path, folders: dict[str, Path]) -> tuple[str, dict[str | None, Path]] | None:
    """(layout, {split: folder}) of a captioned folder, None when it is not one: the root's own
    markers first, then train/ and test/ (or val/) both of one layout (split None: the root,
    split at ingest), then side-car captions anywhere below the root."""
    if layout := own_layout(root):
        return layout, {None: root}
    test = next((folders[n] for n in ("test", "val", "validation") if n in folders), None)
    if "train" in folders and test is not None:
        parts = {"train": folders["train"], "test": test}
        found = {layout_of(f) for f in parts.values()}
        if len(found) == 1 and None not in found:
            return found.pop(), parts
    return ("sidecar", {None: root}) if has_sidecars(root) else None


def open_captioned(root: Path, label: str) -> CaptionedSource:
    """The source of a folder plan() claimed, its parts read in order (train before test)."""
    layout, parts = plan(root, _folders(root))
    read = {"imagefolder": imagefolder_items, "sidecar": sidecar_items}.get(layout, shard_items)
    items, splits = [], []
    for split, folder in parts.items():
        where = label if folder == root else f"{label}/{folder.relative_to(root).as_posix()}"
        found = read(folder, where)
        items += found
        splits += [split] * len(found)
    if not items:
        raise DataError(f"ingest.source: {label}: no captioned images found")
    cls = ShardSource if layout == "webdataset" else FileSource
    return cls(layout, items, root, label, None if None in parts else np.array(splits))


# --- reading captions ----------------------------------------------------------------------


def _utf8(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"ingest.source: {where}: not UTF-8 text (byte {exc.start}: {exc.reason}); "
            "save it as UTF-8"
        ) from None


def _cleaned(texts: Iterable[str], where: str) -> list[str]:
    """The non-blank captions, whitespace collapsed; none at all is an error naming the image."""
    kept = [" ".join(t.split()) for t in texts if t.strip()]
    if not kept:
        raise DataError(
            f"ingest.source: {where}: an image without a caption (only empty ones); "
            "every image needs one"
        )
    return kept


def _row(row, where: str) -> tuple[str, list[str]]:
    """(file_name, captions) of one metadata row."""
    if not isinstance(row, dict):
        raise DataError(f'ingest.source: {where}: expected an object with "file_name" and "text"')
    for key in ("file_name", "text"):
        if key not in row:
            raise DataError(f'ingest.source: {where}: no "{key}" (every row needs file_name, text)')
    name, text = row["file_name"], row["text"]
    if not isinstance(name, str) or not name.strip():
        raise DataError(f'ingest.source: {where}: "file_name" must be a file name, not {name!r}')
    texts = [text] if isinstance(text, str) else text
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise DataError(f'ingest.source: {where}: "text" must be a string or a list of strings')
    return name, texts


def _jsonl_rows(text: str, where: str) -> Iterator[tuple[int, str, list[str]]]:
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"ingest.source: {where}: line {n}: not valid JSON ({exc.msg}, column {exc.colno})"
            ) from None
        yield n, *_row(row, f"{where}: line {n}")


def _csv_rows(text: str, where: str) -> Iterator[tuple[int, str, list[str]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames or []
        for key in ("file_name", "text"):
            if key not in header:
                found = ", ".join(header) or "none"
                raise DataError(f'ingest.source: {where}: no "{key}" column (found: {found})')
        for row in reader:
            n = reader.line_num
            yield n, *_row({k: row[k] for k in ("file_name", "text")}, f"{where}: line {n}")
    except csv.Error as exc:
        raise DataError(f"ingest.source: {where}: line {reader.line_num}: {exc}") from None


def _image_at(folder: Path, name: str, where: str) -> Path:
    """The existing image a metadata row names, inside the folder."""
    rel = PurePosixPath(name.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts:
        raise DataError(f"ingest.source: {where}: {name} is outside the folder; refused")
    path = folder.joinpath(*rel.parts)
    if not path.is_file():
        raise DataError(
            f"ingest.source: {where}: {name} does not exist (no caption without its image)"
        )
    if not _is_image_name(path):
        raise DataError(f"ingest.source: {where}: {name} is not an image file")
    return path


def imagefolder_items(folder: Path, label: str) -> list[tuple[Path, list[str]]]:
    """(image, captions) per image of a metadata file, in its order (rows of one file add
    captions): every row names an image of the folder, every image of the folder has a row."""
    found = [
        p for p in sorted(folder.iterdir()) if p.is_file() and p.name.lower() in METADATA_FILES
    ]
    if len(found) > 1:
        raise DataError(f"ingest.source: {label}: both metadata.jsonl and metadata.csv; keep one")
    where = f"{label}/{found[0].name}"
    text = _utf8(found[0].read_bytes(), where)
    rows = (_jsonl_rows if found[0].suffix.lower() == ".jsonl" else _csv_rows)(text, where)
    captions: dict[Path, list[str]] = {}
    for n, name, texts in rows:
        captions.setdefault(_image_at(folder, name, f"{where}: line {n}"), []).extend(texts)
    missing = [p for p in scan_images(folder)[0] if p not in captions]
    if missing:
        raise DataError(
            f"ingest.source: {label}: {len(missing)} image(s) without a caption (no row in "
            f"{found[0].name}): {_name_some(missing, folder)}"
        )
    return [
        (p, _cleaned(t, f"{label}/{p.relative_to(folder).as_posix()}")) for p, t in captions.items()
    ]


def sidecar_items(folder: Path, label: str) -> list[tuple[Path, list[str]]]:
    """(image, the lines of its .txt) per image below the folder, sorted; other files (a
    README.txt, .json side-cars) are named once as ignored."""
    images, other = scan_images(folder)
    texts = {p.with_suffix(""): p for p in other if p.suffix.lower() == ".txt"}
    missing = [p for p in images if p.with_suffix("") not in texts]
    if missing:
        raise DataError(
            f"ingest.source: {label}: {len(missing)} image(s) without a caption (x.png needs "
            f"x.txt beside it): {_name_some(missing, folder)}"
        )
    used = {texts[p.with_suffix("")] for p in images}
    ignored = [p for p in other if p not in used]
    if ignored:
        print(f"ingest: {label}: ignored {len(ignored)} file(s): {_name_some(ignored, folder)}")
    items = []
    for p in images:
        caption_file = texts[p.with_suffix("")]
        where = f"{label}/{caption_file.relative_to(folder).as_posix()}"
        lines = _utf8(caption_file.read_bytes(), where).split("\n")
        items.append((p, _cleaned(lines, f"{label}/{p.relative_to(folder).as_posix()}")))
    return items


# --- tar shards ----------------------------------------------------------------------------

Member = tuple[Path, tarfile.TarInfo]  # (shard, member)


def _key(name: str) -> tuple[str, str]:
    """(key, extension) of a shard member: `a/0001.png` -> (a/0001, png)."""
    folder, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return f"{folder}/{stem}" if folder else stem, ext.lower()


def _shard_items(shard: Path, where: str) -> list[tuple[Member, list[str]]]:
    """(member, captions) per image of one shard, in member order."""
    images: dict[str, tarfile.TarInfo] = {}
    texts: dict[str, str] = {}
    with tarfile.open(shard) as tf:
        for m in tf.getmembers():
            if m.isdir() or any(_skipped(p) for p in PurePosixPath(m.name).parts):
                continue
            if not m.isfile():
                raise DataError(f"ingest.source: {where}: member {m.name!r} is not a file; refused")
            key, ext = _key(m.name)
            if ext == "txt":
                texts[key] = _utf8(tf.extractfile(m).read(), f"{where}: {m.name}")
            elif _is_image_name(Path(f"x.{ext}")):
                if key in images:
                    raise DataError(f"ingest.source: {where}: two images for key {key!r}")
                images[key] = m
    if missing := [images[k].name for k in images if k not in texts]:
        raise DataError(
            f"ingest.source: {where}: {len(missing)} image(s) without a caption (key.png needs "
            f"key.txt): {', '.join(missing[:3])}"
        )
    if orphans := [f"{k}.txt" for k in texts if k not in images]:
        raise DataError(
            f"ingest.source: {where}: {orphans[0]}: a caption without its image "
            f"({len(orphans)} in all)"
        )
    return [
        ((shard, m), _cleaned(texts[k].split("\n"), f"{where}: {m.name}"))
        for k, m in images.items()
    ]


def shard_items(folder: Path, label: str) -> list[tuple[Member, list[str]]]:
    """(member, captions) per image of the .tar shards at the folder's top, shard by shard."""
    shards = sorted(p for p in folder.iterdir() if p.name.lower().endswith(".tar"))
    items = []
    for shard in shards:
        where = f"{label}/{shard.name}"
        try:
            items += _shard_items(shard, where)
        except (tarfile.TarError, OSError, EOFError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DataError(f"ingest.source: {where}: not a readable tar shard ({first})") from None
    return items


def _each_member(members: list[Member], read: Callable) -> Iterator:
    """read(file object) of each member, in order, each shard opened once."""
    for shard, group in itertools.groupby(members, key=lambda m: m[0]):
        with tarfile.open(shard) as tf:
            for _, info in group:
                yield read(tf.extractfile(info))


def _shard_channels(members: list[Member]) -> int:
    """`ingest.channels: auto` for images in shards, as auto_channels judges files: every
    header is read; up to COLOUR_CHECKS colour-mode images, a seeded sample spread over the
    set, are decoded and count as colour only if their pixels are."""
    colour = [i for i, ok in enumerate(_each_member(members, _colour_mode)) if ok]
    picked = sorted(np.random.default_rng(0).permutation(colour)[:COLOUR_CHECKS].tolist())
    decoded = _each_member([members[i] for i in picked], _decode)
    return 3 if any(img is not None and _is_colour_content(img) for img in decoded) else 1


# --- sources -------------------------------------------------------------------------------


class FileSource(CaptionedSource):
    """Captioned image files (imagefolder, sidecar), decoded as image folders decode them."""

    decodes_files = True

    def __init__(self, layout, items: list[tuple[Path, list[str]]], root: Path, label, splits):
        self.layout, self.root, self.label, self.splits = layout, root, label, splits
        self.files = [p for p, _ in items]
        self.captions = [c for _, c in items]
        channels = functools.partial(auto_channels, self.files)
        self.info = SourceInfo(len(items), channels, [], False, f"{layout}: {label}")

    def chunks(self) -> Iterator[Chunk]:
        for start in range(0, len(self.files), CHUNK):
            block = self.files[start : start + CHUNK]
            files = [f"{self.label}/{f.relative_to(self.root).as_posix()}" for f in block]
            yield Chunk([_decode(f) for f in block], np.full(len(block), -1, np.int64), files)


class ShardSource(CaptionedSource):
    """Captioned images inside .tar shards, decoded member by member (never extracted)."""

    decodes_files = True

    def __init__(self, layout, items: list[tuple[Member, list[str]]], root: Path, label, splits):
        self.layout, self.root, self.label, self.splits = layout, root, label, splits
        self.members = [m for m, _ in items]
        self.captions = [c for _, c in items]
        channels = functools.partial(_shard_channels, self.members)
        self.info = SourceInfo(len(items), channels, [], False, f"{layout}: {label}")

    def chunks(self) -> Iterator[Chunk]:
        names = [
            f"{self.label}/{s.relative_to(self.root).as_posix()}/{m.name}" for s, m in self.members
        ]
        images = _each_member(self.members, _decode)
        for start in range(0, len(names), CHUNK):
            files = names[start : start + CHUNK]
            block = list(itertools.islice(images, len(files)))
            yield Chunk(block, np.full(len(files), -1, np.int64), files)


# --- the bundled shapes --------------------------------------------------------------------

COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 90, 230),
    "yellow": (230, 200, 40),
    "purple": (150, 60, 200),
}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": 5.0, "large": 10.0}  # radius in px of the 32 px canvas
POSITIONS = ("left", "right", "top", "bottom")
BACKGROUNDS = {"dark": (15, 55), "light": (195, 235)}  # gray level range
HELD_OUT = (("red", "triangle"), ("green", "circle"), ("blue", "square"))  # test only
PER_PAIR = {"train": 500, "test": 50}  # images per seen colour x shape pair
PER_HELD_OUT = 200  # test images per held-out pair
CANVAS, SUPERSAMPLE = 32, 4
AT = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
}
TEMPLATES = (
    "a {size} {colour} {shape} {at}",
    "{colour} {shape}, {size}, {position} side",
    "there is a {size} {colour} {shape} {at}",
    "a {colour} {shape} {at} on a {background} background",
    "{size} {colour} {shape} in the {position} half of the picture",
    "the picture shows a {size} {shape} in {colour}, placed {at}",
    "{at}: a {size} {colour} {shape}",
    "a {background} image with a {colour} {shape} {at}",
)
ATTRIBUTES = {
    "shape": list(SHAPES),
    "colour": list(COLOURS),
    "size": list(SIZES),
    "position": list(POSITIONS),
    "background": list(BACKGROUNDS),
}


@dataclass(frozen=True)
class Scene:
    """One image of `shapes`: its attributes, how it is drawn, and its captions."""

    attributes: dict[str, str]  # shape, colour, size, position, background
    split: str
    heldout: bool
    fill: tuple[int, int, int]
    ground: tuple[int, int, int]
    radius: float
    centre: tuple[float, float]  # (x, y) in px of the canvas
    captions: list[str]


def _scene(rng: np.random.Generator, colour: str, shape: str, split: str) -> Scene:
    """One scene of a colour x shape pair: size, position, background and jitter drawn."""
    size, position, background = (
        str(rng.choice(ATTRIBUTES[k])) for k in ("size", "position", "background")
    )
    radius = SIZES[size] * rng.uniform(0.9, 1.1)
    along = CANVAS / 2 - radius - 2 + rng.uniform(-1.5, 1.5)  # from the centre towards that edge
    across = rng.uniform(-1, 1) * (3.0 if size == "small" else 1.5)
    sign = -1 if position in ("left", "top") else 1
    dx, dy = (sign * along, across) if position in ("left", "right") else (across, sign * along)
    fill = np.clip(np.array(COLOURS[colour]) + rng.integers(-15, 16, 3), 0, 255)
    ground = np.clip(rng.integers(*BACKGROUNDS[background]) + rng.integers(-8, 9, 3), 0, 255)
    words = {"shape": shape, "colour": colour, "size": size, "position": position}
    words |= {"background": background, "at": AT[position]}
    phrasings = rng.choice(len(TEMPLATES), int(rng.integers(3, 6)), replace=False)
    return Scene(
        attributes={k: words[k] for k in ATTRIBUTES},
        split=split,
        heldout=(colour, shape) in HELD_OUT,
        fill=tuple(int(v) for v in fill),
        ground=tuple(int(v) for v in ground),
        radius=float(radius),
        centre=(CANVAS / 2 + dx, CANVAS / 2 + dy),
        captions=[TEMPLATES[t].format(**words) for t in phrasings],
    )


def draw(scene: Scene) -> np.ndarray:
    """(3, 32, 32) uint8: the scene drawn at 4x, then box-filtered down (smooth edges)."""
    from PIL import Image, ImageDraw

    k = SUPERSAMPLE
    img = Image.new("RGB", (CANVAS * k, CANVAS * k), scene.ground)
    pen = ImageDraw.Draw(img)
    (x, y), r = (c * k for c in scene.centre), scene.radius * k
    shape = scene.attributes["shape"]
    if shape == "circle":
        pen.ellipse((x - r, y - r, x + r, y + r), fill=scene.fill)
    elif shape == "square":
        h = 0.85 * r
        pen.rectangle((x - h, y - h, x + h, y + h), fill=scene.fill)
    else:  # pointing up; circumradius 1.15 r, its bounding box centred on (x, y)
        c, y0 = 1.15 * r, y + 0.2875 * r
        pen.polygon(
            [(x, y0 - c), (x - 0.866 * c, y0 + c / 2), (x + 0.866 * c, y0 + c / 2)], fill=scene.fill
        )
    small = img.resize((CANVAS, CANVAS), Image.Resampling.BOX)
    return np.asarray(small).transpose(2, 0, 1)


class Shapes(CaptionedSource):
    """The bundled `shapes` set (see this module's docstring): scenes planned from the seed
    up front (cheap), drawn chunk by chunk."""

    layout = "bundled"
    decodes_files = True  # draws uint8 images: no float range to judge

    def __init__(self, seed: int = 0):
        self.seed = seed
        n = sum(self._count(c, s, split) for c in COLOURS for s in SHAPES for split in PER_PAIR)
        description = "shapes: drawn coloured shapes with captions; held-out pairs in test"
        self.info = SourceInfo(n, 3, [], False, description)
        self.attribute_values = ATTRIBUTES
        self.heldout = [{"colour": c, "shape": s} for c, s in HELD_OUT]

    def seeded(self, seed: int) -> Shapes:
        return Shapes(seed)

    @functools.cached_property
    def scenes(self) -> list[Scene]:
        """Train scenes, then test scenes, each split in a seeded order."""
        rng = np.random.default_rng(self.seed)
        scenes = []
        for split in ("train", "test"):
            part = [
                _scene(rng, colour, shape, split)
                for colour in COLOURS
                for shape in SHAPES
                for _ in range(self._count(colour, shape, split))
            ]
            scenes += [part[i] for i in rng.permutation(len(part))]
        return scenes

    @staticmethod
    def _count(colour: str, shape: str, split: str) -> int:
        if (colour, shape) in HELD_OUT:
            return PER_HELD_OUT if split == "test" else 0
        return PER_PAIR[split]

    @property
    def captions(self) -> list[list[str]]:
        return [s.captions for s in self.scenes]

    @property
    def splits(self) -> np.ndarray:
        return np.array([s.split for s in self.scenes])

    @property
    def attributes(self) -> dict[str, list]:
        columns = {k: [s.attributes[k] for s in self.scenes] for k in ATTRIBUTES}
        return columns | {"heldout": [s.heldout for s in self.scenes]}

    def chunks(self) -> Iterator[Chunk]:
        for start in range(0, len(self.scenes), CHUNK):
            block = self.scenes[start : start + CHUNK]
            files = [f"shapes[{i}]" for i in range(start, start + len(block))]
            yield Chunk([draw(s) for s in block], np.full(len(block), -1, np.int64), files)


BUNDLED = {"shapes": Shapes}
