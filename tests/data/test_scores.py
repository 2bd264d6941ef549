"""Data: scores (the `scores` kind) through the real ingest stage and GX gate.

The same two-part phrase written as MIDI, MusicXML (.musicxml and compressed .mxl) and
**kern gives the same roll, from a folder and from .zip / .tar.gz archives; pieces never
straddle the split; transposition touches train only; a re-run parses nothing (the cache); a
file that does not parse fails the gate with its name; score data without the music params is
one error line; a roll written as MIDI reads back to the same roll.
"""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from components import ingest, validate
from components.config import load_params
from components.datakinds.scores import sources
from components.errors import DataError, ValidationFailed
from components.layout import Layout
from tests.conftest import SMOKE, SMOKE_BY_FAMILY

MUSIC = SMOKE_BY_FAMILY["music"]
# C5 D5 E5 F5 as quarter notes over a whole-note C3, then a bar of G4 over G3 (2 bars of 4/4)
TOP = [(72, 0, 1), (74, 1, 2), (76, 2, 3), (77, 3, 4), (67, 4, 8)]
LOW = [(48, 0, 4), (55, 4, 8)]


def params(source, *overrides: str):
    base = ["ingest.bars_per_window=1", "ingest.transpose=0", "ingest.max_pieces=0",
            "validate.min_pieces=1", "validate.min_images=1"]  # fmt: skip
    base.append(f"ingest.source={source}")
    return load_params(MUSIC, base + list(overrides))


def write_midi(path: Path, shift: int = 0) -> None:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=120)  # 0.5 s per quarter note
    for name, notes in (("top", TOP), ("low", LOW)):
        inst = pretty_midi.Instrument(0, name=name)
        for pitch, a, b in notes:
            inst.notes.append(pretty_midi.Note(90, pitch + shift, a * 0.5, b * 0.5))
        pm.instruments.append(inst)
    pm.write(str(path))


def write_music21(path: Path, fmt: str) -> None:
    from music21 import meter, note, stream

    score = stream.Score()
    for notes in (TOP, LOW):
        part = stream.Part()
        part.append(meter.TimeSignature("4/4"))
        for pitch, a, b in notes:
            part.append(note.Note(pitch, quarterLength=b - a))
        score.insert(0, part)
    score.write(fmt, fp=str(path))


KERN = """**kern\t**kern
*M4/4\t*M4/4
1C\t4cc
.\t4dd
.\t4ee
.\t4ff
=\t=
1G\t1g
*-\t*-
"""


def phrase_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    write_midi(root / "a.mid")
    write_music21(root / "b.musicxml", "musicxml")
    write_music21(root / "c.mxl", "mxl")
    (root / "d.krn").write_text(KERN)
    return root


def expected_roll() -> np.ndarray:
    """The phrase on the smoke grid (4 steps a beat, rows from C2 = 36), one bar per window."""
    roll = np.zeros((4, 32, 48), np.uint8)
    for track, notes in ((0, TOP), (3, LOW)):  # two parts: highest on track 0, lowest on 3
        for pitch, a, b in notes:
            roll[track, a * 4 : b * 4, pitch - 36] = 1
    return roll


@pytest.fixture(scope="module")
def phrases(tmp_path_factory):
    return phrase_folder(tmp_path_factory.mktemp("scores") / "phrases")


def archive(folder: Path, kind: str) -> Path:
    if kind == "folder":
        return folder
    out = folder.parent / f"{folder.name}.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(out, "w") as z:
            for f in folder.iterdir():
                z.write(f, f"{folder.name}/{f.name}")
    else:
        with tarfile.open(out, "w:gz") as t:
            t.add(folder, arcname=folder.name)
    return out


@pytest.mark.parametrize("kind", ["folder", "zip", "tar.gz"])
def test_every_format_gives_the_same_roll(phrases, kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # the four files hold the same notes: duplicates by design here
    p = params(archive(phrases, kind), "ingest.test_fraction=0.25",
               "validate.max_duplicate_fraction=1.0")  # fmt: skip
    manifest = ingest.run(p.ingest, Layout(tmp_path))
    assert manifest["kind"] == "scores" and manifest["n_pieces"] == 4
    assert manifest["n_unreadable"] == 0 and manifest["time_signatures"] == {"4/4": 4}
    from components.dataset import load_dataset

    data = load_dataset(Layout(tmp_path))
    want = expected_roll()
    for piece in range(4):
        rows = np.flatnonzero(data.meta["piece"].to_numpy() == piece)
        got = np.concatenate(list(data.images[rows]), axis=1)  # the two one-bar windows
        name = data.meta["file"].iloc[rows[0]]
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert (tmp_path / "data" / "processed" / "preview.png").is_file()
    validate.run(p.validate_, Layout(tmp_path))  # passes the gate


def test_split_by_piece_and_transposition_on_train_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(10):
        write_midi(folder / f"p{i:02d}.mid", shift=i)
    p = params(folder, "ingest.transpose=2", "ingest.test_fraction=0.3")
    manifest = ingest.run(p.ingest, Layout(tmp_path))
    from components.dataset import load_dataset

    meta = load_dataset(Layout(tmp_path)).meta
    assert meta.groupby("piece")["split"].nunique().max() == 1  # a piece is in one split
    assert manifest["n_test_pieces"] == 3 and manifest["n_train_pieces"] == 7
    assert set(meta.loc[meta["split"] == "test", "transpose"]) == {0}
    assert set(meta.loc[meta["split"] == "train", "transpose"]) == {-2, -1, 0, 1, 2}


@pytest.mark.parametrize("kind", ["folder", "tar.gz"])
def test_class_sub_folders_are_labels_split_within_each_class(kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "styles"
    for style, n in (("chant", 4), ("dance", 6)):
        (folder / style).mkdir(parents=True)
        for i in range(n):
            write_midi(folder / style / f"{style}{i}.mid", shift=i + (0 if style == "chant" else 7))
    p = params(archive(folder, kind), "ingest.test_fraction=0.5")
    manifest = ingest.run(p.ingest, Layout(tmp_path))
    assert manifest["class_names"] == ["chant", "dance"] and manifest["conditional"]
    from components.dataset import load_dataset

    meta = load_dataset(Layout(tmp_path)).meta
    style = meta["file"].str.extract(r"/(chant|dance)/")[0].map({"chant": 0, "dance": 1})
    assert (meta["label"] == style).all()  # each window carries its piece's class
    pieces = meta.drop_duplicates("piece").groupby(["label", "split"]).size().to_dict()
    assert pieces == {(0, "test"): 2, (0, "train"): 2, (1, "test"): 3, (1, "train"): 3}


def test_a_flat_folder_or_one_sub_folder_has_no_classes():
    assert sources.class_folders([Path("a.mid"), Path("b.mid")]) is None
    assert sources.class_folders([Path("top/a.mid"), Path("top/b.mid")]) is None
    assert sources.class_folders([Path("x/a.mid"), Path("b.mid")]) is None
    assert sources.class_folders([Path("top/x/a.mid"), Path("top/y/b/c.mid")]) == ["x", "y"]


def test_a_rerun_parses_nothing(phrases, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = params(phrases)
    first = ingest.run(p.ingest, Layout(tmp_path))
    assert len(list((tmp_path / ".cache" / "scores").glob("*.npz"))) == 4

    def no_parsing(path):
        raise AssertionError(f"parsed {path} again")

    monkeypatch.setattr(sources, "parse_file", no_parsing)
    again = ingest.run(p.ingest, Layout(tmp_path))
    assert again["content_hash"] == first["content_hash"]


def test_an_unparseable_file_fails_the_gate_by_name(phrases, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "bad"
    shutil.copytree(phrases, folder)
    (folder / "broken.mid").write_bytes(b"MThd not really a midi file")
    (folder / "broken.xml").write_text("<score-partwise><part></score-partwise>")
    p = params(folder, "validate.max_duplicate_fraction=1.0")
    manifest = ingest.run(p.ingest, Layout(tmp_path))
    assert manifest["n_unreadable"] == 2
    with pytest.raises(ValidationFailed) as err:
        validate.run(p.validate_, Layout(tmp_path))
    message = str(err.value)
    assert "FAILED every score file parses" in message and "bad/broken.mid" in message
    lines = [line for line in message.splitlines() if line.strip().startswith("FAILED")]
    assert len(lines) == 1  # one line, the unreadable files; nothing else failed


def test_scores_without_the_music_params_is_one_error_line(phrases, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_params(SMOKE, [f"ingest.source={phrases}"]).ingest
    with pytest.raises(DataError, match=r"ingest\.steps_per_beat: score data needs the music"):
        ingest.run(cfg, Layout(tmp_path))
    assert not (tmp_path / "data" / "processed").exists()


def test_midi_written_from_a_roll_reads_back_to_it():
    from components.datakinds.scores.roll import midi_to_roll, roll_to_midi

    rng = np.random.default_rng(0)
    roll = (rng.random((4, 64, 48)) < 0.05).astype(np.uint8)
    roll[1, 10:20, 5] = 1
    roll[1, 21:30, 5] = 1  # a repeated note after a one-step rest
    data = roll_to_midi(roll, 4, 36, tempo=96.0)
    np.testing.assert_array_equal(midi_to_roll(data, 4, 64, 4, 36, 84), roll)
