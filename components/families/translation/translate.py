"""`ganops translate`, and the image side of the translator pyfunc (components/serve.py).

An input image is decoded as ingest decodes files (PIL; gray modes stay 1 channel, every other
mode becomes RGB), brought to the model's channels, then to its size as ingest does (LANCZOS
on the shorter side, centre crop: `ingest.resize_center_crop`), translated by G in eval mode
and written as PNG at the model's size.

Channels follow ingest's content rule: a gray image (1 channel, or RGB with R = G = B) feeds
a 1-channel model as is and a 3-channel model by repeating it; a colour image (some pixel's
R, G, B differ) fed to a 1-channel model is the "wrong channels" error, not a silent
grayscale conversion: that domain held no colour images.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from components.errors import DataError
from components.families.translation.nets import (
    SPEC_FILE,
    SPEC_KEYS,
    WEIGHTS,
    check_spec,
    load_translator,
)
from components.images import to_uint8

DIRECTIONS = tuple(WEIGHTS)  # a2b, b2a
BATCH = 32  # images per forward pass of G; outputs do not depend on it (G runs in eval mode)


def directions_of(spec: dict) -> tuple[str, ...]:
    """The directions a translator has: pix2pix translates a2b only."""
    return ("a2b",) if spec["arch"] == "pix2pix" else DIRECTIONS


def direction_error(spec: dict, direction) -> str | None:
    """Why `direction` is not one this model translates (None: it is)."""
    if direction not in DIRECTIONS:
        return f"direction {direction!r} is not one of {', '.join(DIRECTIONS)}"
    if direction not in directions_of(spec):
        return f"direction {direction}: a {spec['arch']} model translates a2b only"
    return None


class Translator:
    """The generators of a translator folder (translator.json + G_AB/G_BA.safetensors at any
    depth, as in a downloaded pyfunc), loaded on first use, in eval mode."""

    def __init__(self, model_dir: Path, label: str | None = None):
        spec_path = _find(model_dir, SPEC_FILE)
        if spec_path is None:
            what = "a noise generator" if _find(model_dir, "generator.json") else "no model"
            raise DataError(f"{label or model_dir}: not a translator ({what}; no {SPEC_FILE})")
        try:
            stored = json.loads(spec_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(f"{spec_path}: damaged ({err.__class__.__name__})") from None
        self.spec = {k: stored[k] for k in SPEC_KEYS if k in stored}  # spec keys only
        check_spec(self.spec)
        self.folder = spec_path.parent
        self.size = self.spec.get("image_size")
        self._G: dict[str, torch.nn.Module] = {}

    def channels(self, direction: str) -> tuple[int, int]:
        """(input, output) channels of `direction`."""
        a, b = self.spec["channels_a"], self.spec["channels_b"]
        return (a, b) if direction == "a2b" else (b, a)

    def generator(self, direction: str) -> torch.nn.Module:
        from safetensors import SafetensorError

        if direction not in self._G:
            weights = self.folder / WEIGHTS[direction]
            if not weights.is_file():
                raise DataError(f"{weights}: missing from the model")
            try:
                self._G[direction] = load_translator(weights, self.spec, direction)  # eval mode
            except (SafetensorError, RuntimeError) as err:  # truncated file, other shapes
                raise DataError(f"{weights}: not loadable ({str(err).splitlines()[0]})") from None
        return self._G[direction]

    def __call__(self, images: np.ndarray, direction: str) -> np.ndarray:
        """uint8 (N, C_in, S, S) -> uint8 (N, C_out, S, S), BATCH images per pass."""
        G = self.generator(direction)
        out = []
        with torch.no_grad():
            for start in range(0, len(images), BATCH):
                x = torch.tensor(images[start : start + BATCH], dtype=torch.float32) / 127.5 - 1.0
                out.append(to_uint8(G(x)))  # (B, C_out, S, S)
        return np.concatenate(out)


def _find(model_dir: Path, name: str) -> Path | None:
    return next(iter(sorted(Path(model_dir).rglob(name))), None)


def decode(data: bytes, name: str) -> np.ndarray:
    """Image file bytes -> uint8 (C, H, W), C = 1 for gray modes else 3, as ingest decodes."""
    from components.sources import _decode

    img = _decode(io.BytesIO(data))
    if img is None:
        raise DataError(f"{name}: not a decodable image (PNG, JPEG, BMP, WebP ...)")
    return img


def prepare(img: np.ndarray, channels: int, size: int, name: str) -> np.ndarray:
    """uint8 (C, H, W) -> (channels, size, size): channels by ingest's content rule (see the
    module docstring), then ingest's resize (shorter side LANCZOS, centre crop)."""
    from components.ingest import resize_center_crop
    from components.sources import _is_colour_content

    if img.shape[0] == 3 and channels == 1:
        if _is_colour_content(img):
            raise DataError(
                f"{name}: a colour image, but this model's input is 1-channel (grayscale); "
                "convert it to grayscale first"
            )
        img = img[:1]  # R = G = B
    elif img.shape[0] == 1 and channels == 3:
        img = np.repeat(img, 3, axis=0)  # gray -> RGB, as ingest does
    return resize_center_crop(np.ascontiguousarray(img), size)  # (channels, size, size)


def encode_png(img: np.ndarray) -> bytes:
    """uint8 (C, H, W) -> PNG bytes (mode L for 1 channel, RGB for 3)."""
    from PIL import Image

    picture = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)  # (H, W) or (H, W, 3)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture)).save(buf, format="PNG")
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# ganops translate
# ---------------------------------------------------------------------------------------------


def collect(src: Path, scratch: Path) -> tuple[Path, list[Path]]:
    """(root, image files relative to it) of SRC: one image, a folder (recursive) or an archive
    (.zip/.tar/.tar.gz, extracted safely into scratch). Files are picked as ingest picks them:
    image suffixes only; hidden files and folders and OS litter (`__MACOSX/`) skipped."""
    from components.sources import ARCHIVE_SUFFIXES, IMAGE_SUFFIXES, extract_archive, scan_images

    if not src.exists():
        raise DataError(f"{src}: no such file or folder")
    if src.is_file() and src.name.lower().endswith(ARCHIVE_SUFFIXES):
        try:
            root = extract_archive(src, scratch)
        except DataError as err:  # its messages name ingest's key; here the file is SRC
            raise DataError(str(err).removeprefix("ingest.source: ")) from None
    elif src.is_file():
        return src.parent, [Path(src.name)]
    else:
        root = src
    files = [p.relative_to(root) for p in scan_images(root)[0]]  # ingest's rule for files
    if not files:
        raise DataError(f"{src}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return root, files


def output_names(files: list[Path]) -> list[Path]:
    """x.jpg -> x.png, mirroring folders; two inputs that would write one PNG are an error."""
    outs = [f.with_suffix(".png") for f in files]
    seen: dict[Path, Path] = {}
    for f, out in zip(files, outs, strict=True):
        if out in seen:
            raise DataError(f"{seen[out]} and {f} would both be written as {out}; rename one")
        seen[out] = f
    return outs


def translate(model: str, direction: str, src: Path, dst: Path) -> int:
    """Translate every image of SRC into PNGs under DST (relative paths mirrored); DST is
    written whole or not at all. Returns the number of images."""
    from components.export import resolve_model_dir
    from components.families.translation.nets import check_direction
    from components.layout import atomic_dir

    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise DataError(f"{dst}: exists and is not an empty folder; choose a new DST")
    if src.is_dir() and dst.resolve().is_relative_to(src.resolve()):
        raise DataError(f"{dst}: inside SRC {src} (a later run would translate the outputs)")
    translator = Translator(resolve_model_dir(model), model)
    check_direction(translator.spec, direction)  # one ConfigError: unknown, or b2a of pix2pix
    c_in, _ = translator.channels(direction)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"{dst}: cannot be created ({err.strerror})") from None
    scratch = Path(tempfile.mkdtemp(prefix=".translate-src-", dir=dst.parent))
    try:
        root, files = collect(src, scratch)
        one = src.is_file() and root == src.parent  # a single image, not an archive
        outs = output_names(files)
        with atomic_dir(dst) as tmp:
            for start, batch in _progress(files, BATCH, f"translate {direction}"):
                images = np.stack(
                    [_read(root / f, src if one else src / f, c_in, translator.size) for f in batch]
                )  # (B, C_in, S, S)
                for out, img in zip(outs[start:], translator(images, direction), strict=False):
                    (tmp / out).parent.mkdir(parents=True, exist_ok=True)
                    (tmp / out).write_bytes(encode_png(img))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return len(files)


def _read(path: Path, name: Path, channels: int, size: int) -> np.ndarray:
    """One input file as uint8 (channels, size, size); errors name it as the user gave it
    (an archive's member as ARCHIVE/member)."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"{name}: cannot be read ({err.strerror})") from None
    return prepare(decode(data, str(name)), channels, size, str(name))


def _progress(files: list[Path], batch: int, label: str):
    """(start, files[start:start+batch]) with a rich progress bar counted in images."""
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=len(files))
        for start in range(0, len(files), batch):
            yield start, files[start : start + batch]
            bar.advance(task, len(files[start : start + batch]))
