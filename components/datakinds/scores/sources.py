"""Score files and their notes: which files a source holds, the bundled Bach chorales, and a
parser per format that turns a file into plain note arrays (part, onset and end in quarter
notes, MIDI pitch) with the time signatures and tempo it declares.

Parsers, chosen by measurement (docs/music.md): MIDI with pretty_midi (18 ms per chorale vs
76 ms with music21, and music21 quantises MIDI on reading, which would hide the onsets our grid
loses); MusicXML and **kern with music21 (pretty_midi reads MIDI only). Parsing runs in a
process pool over the cores, and each parsed file is cached by the sha256 of its bytes
(.cache/scores/), so a re-run parses nothing. A file that fails to parse is kept as a row with
its error: validate names it; it is never skipped silently.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from components.datakinds.scores import SUFFIXES
from components.errors import DataError

PARSER_VERSION = 1  # bump when what a parser returns changes: the cache keys change with it
CACHE = Path(".cache") / "scores"  # under the project root (the working directory)
INLINE_BELOW = 4  # fewer files than this parse in this process (a pool costs ~2 s to start)
BUNDLED_PACKAGE = "music21"


@dataclass
class SourceInfo:
    description: str
    paths: list = field(default_factory=list)  # what ingest.source named (the flow's cache key)


@dataclass
class ScoreSource:
    """The score files of one source, in a stable order, with the names reports use."""

    files: list[Path]
    names: list[str]
    info: SourceInfo
    layout: str = "scores"
    labels: list[str] | None = None  # each file's class (its sub-folder), when the set has them


def is_score(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES and not path.name.startswith(".")


def list_scores(root: Path) -> list[Path]:
    """Every score file under root (any depth), sorted by relative path."""
    found = [p for p in root.rglob("*") if p.is_file() and is_score(p)]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def has_scores(root: Path) -> bool:
    """Whether root holds score files and no images (an image set with .xml annotations stays
    an image set): stops at the first image."""
    from components.sources import IMAGE_SUFFIXES

    found = False
    for _dirpath, _dirs, files in os.walk(root):
        suffixes = {Path(f).suffix.lower() for f in files if not f.startswith(".")}
        if suffixes & IMAGE_SUFFIXES:
            return False
        found = found or bool(suffixes & set(SUFFIXES))
    return found


def class_folders(relative: list[Path]) -> list[str] | None:
    """Each file's class, as for images: the first sub-folder below the folders every file
    shares (an archive's one top folder is not a class). None unless every file sits in a
    sub-folder and there are two classes or more."""
    dirs = [p.parent.parts for p in relative]
    common = 0
    while all(len(d) > common for d in dirs) and len({d[common] for d in dirs}) == 1:
        common += 1
    if not all(len(d) > common for d in dirs):
        return None
    labels = [d[common] for d in dirs]
    return labels if len(set(labels)) >= 2 else None


def open_folder(root: Path, label: str) -> ScoreSource:
    files = list_scores(root)
    if not files:
        raise DataError(f"ingest.source: {label}: no score files ({', '.join(SUFFIXES)})")
    relative = [p.relative_to(root) for p in files]
    names = [f"{label}/{p.as_posix()}" for p in relative]
    return ScoreSource(files, names, SourceInfo(f"score folder {label}"),
                       labels=class_folders(relative))  # fmt: skip


def bach_chorales() -> ScoreSource:
    """The four-part chorales of music21's corpus (chorales.Iterator's 371 titles, 350 files:
    some titles share a file), MusicXML, parsed at ingest. Nothing is downloaded."""
    from music21 import corpus
    from music21.corpus import chorales

    files: dict[str, Path] = {}
    for title in chorales.Iterator(returnType="filename"):
        found = corpus.getWork(title)
        if isinstance(found, list):  # several files match a title: the one named exactly
            stem = title.split("/")[-1]
            exact = sorted((p for p in found if p.stem == stem), key=lambda p: p.suffix != ".mxl")
            found = (exact or found)[0]
        files.setdefault(str(found), Path(found))
    paths = sorted(files.values(), key=lambda p: p.name)
    names = [f"bach_chorales/{p.name}" for p in paths]
    return ScoreSource(paths, names, SourceInfo("bundled bach_chorales (music21 corpus)"))


# --- parsing -------------------------------------------------------------------------------


def _empty(error: str | None = None) -> dict:
    return {
        "error": error,
        "part": np.zeros(0, np.int16),
        "start": np.zeros(0, np.float64),
        "end": np.zeros(0, np.float64),
        "pitch": np.zeros(0, np.int16),
        "n_parts": 0,
        "time_signatures": [],
        "tempo": None,
        "n_drum_notes": 0,
    }


def _notes(rows: list[tuple[int, float, float, int]], piece: dict) -> dict:
    if rows:
        part, start, end, pitch = (np.array(c) for c in zip(*rows, strict=True))
        piece.update(
            part=part.astype(np.int16),
            start=start.astype(np.float64),
            end=end.astype(np.float64),
            pitch=pitch.astype(np.int16),
        )
    return piece


def parse_midi(path: Path) -> dict:
    """pretty_midi: each non-drum instrument is a part; times in quarter notes from ticks (the
    tempo map does not move notes on the grid); drum notes are counted and left out."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    piece = _empty()
    rows = []
    parts = [inst for inst in pm.instruments if not inst.is_drum and inst.notes]
    for i, inst in enumerate(parts):
        for note in inst.notes:
            start = pm.time_to_tick(note.start) / pm.resolution
            end = pm.time_to_tick(note.end) / pm.resolution
            rows.append((i, start, end, note.pitch))
    piece["n_parts"] = len(parts)
    piece["n_drum_notes"] = sum(len(i.notes) for i in pm.instruments if i.is_drum)
    piece["time_signatures"] = [f"{t.numerator}/{t.denominator}" for t in pm.time_signature_changes]
    _, tempi = pm.get_tempo_changes()
    piece["tempo"] = float(tempi[0]) if len(tempi) else None
    return _notes(rows, piece)


def parse_music21(path: Path) -> dict:
    """music21 (MusicXML, **kern): each part is a part; ties merged; chords give one note per
    pitch; grace notes left out; onsets shifted by the first bar's pickup so bar lines fall on
    multiples of the bar length."""
    from music21 import converter, meter, tempo

    score = converter.parse(str(path), forceSource=True)  # forceSource: no pickle cache
    parts = list(getattr(score, "parts", [])) or [score]
    piece = _empty()
    rows = []
    kept = 0
    for part in parts:
        measures = part.getElementsByClass("Measure")
        pickup = float(measures[0].paddingLeft) if len(measures) else 0.0
        notes = part.stripTies().flatten().notes
        found = False
        for n in notes:
            if n.duration.isGrace or not hasattr(n, "pitches"):
                continue
            start = float(n.offset) + pickup
            end = start + float(n.quarterLength)
            for p in n.pitches:
                rows.append((kept, start, end, int(p.midi)))
                found = True
        kept += found
    piece["n_parts"] = kept
    sigs = score.recurse().getElementsByClass(meter.TimeSignature)
    piece["time_signatures"] = list(dict.fromkeys(ts.ratioString for ts in sigs))
    marks = score.recurse().getElementsByClass(tempo.MetronomeMark)
    bpm = next((m.getQuarterBPM() for m in marks if m.getQuarterBPM()), None)
    piece["tempo"] = float(bpm) if bpm else None
    return _notes(rows, piece)


def parse_file(path: str) -> dict:
    """One file's notes, or its error as one line (never raises: the pool keeps going)."""
    p = Path(path)
    try:
        kind = SUFFIXES[p.suffix.lower()]
        piece = parse_midi(p) if kind == "midi" else parse_music21(p)
    except Exception as err:  # any library's failure on a bad file is that file's error
        message = " ".join(str(err).split())[:160] or type(err).__name__
        return _empty(f"{type(err).__name__}: {message}")
    if not len(piece["pitch"]):
        piece["error"] = "no pitched notes"
    return piece


# --- the cache ----------------------------------------------------------------------------


def _versions() -> str:
    from importlib.metadata import version

    return f"p{PARSER_VERSION}-m21-{version('music21')}-pm-{version('pretty_midi')}"


def content_key(path: Path) -> str:
    """sha256 of the file's bytes, its suffix (it picks the parser) and the parser versions."""
    h = hashlib.sha256(path.read_bytes())
    h.update(path.suffix.lower().encode())
    h.update(_versions().encode())
    return h.hexdigest()


def _save(path: Path, piece: dict) -> None:
    arrays = {k: piece[k] for k in ("part", "start", "end", "pitch")}
    about = {k: v for k, v in piece.items() if k not in arrays}
    arrays["about"] = np.frombuffer(json.dumps(about).encode(), dtype=np.uint8)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(tmp, **arrays)
    tmp.replace(path)


def _load(path: Path) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            piece = json.loads(z["about"].tobytes().decode())
            piece.update({k: z[k] for k in ("part", "start", "end", "pitch")})
        return piece
    except (OSError, ValueError, KeyError):
        return None  # a damaged entry: parse again


def parse_all(files: list[Path], cache: Path = CACHE, workers: int | None = None) -> list[dict]:
    """Every file's piece, in order: from the cache by content hash, the rest parsed over a
    process pool (one worker per core) and cached. Each piece carries `content_key`."""
    keys = [content_key(f) for f in files]
    pieces: list[dict | None] = [_load(cache / f"{k}.npz") for k in keys]
    todo = [i for i, p in enumerate(pieces) if p is None]
    if len(todo) < INLINE_BELOW:
        parsed = [parse_file(str(files[i])) for i in todo]
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        n = min(len(todo), workers or os.cpu_count() or 1)
        with ProcessPoolExecutor(n, mp_context=mp.get_context("spawn")) as pool:
            parsed = list(pool.map(parse_file, [str(files[i]) for i in todo], chunksize=4))
    for i, piece in zip(todo, parsed, strict=True):
        _save(cache / f"{keys[i]}.npz", piece)
        pieces[i] = piece
    for key, piece in zip(keys, pieces, strict=True):
        piece["content_key"] = key
    return pieces  # type: ignore[return-value]
