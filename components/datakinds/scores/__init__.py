"""Symbolic music for the music family (the processed kind `scores`): a folder, .zip, .tar or
.tar.gz of MIDI (.mid, .midi), MusicXML (.mxl, .musicxml, .xml) and **kern (.krn) files, or the
bundled `bach_chorales` (music21's corpus). sources.py: finding and parsing files (a process
pool, a content-hash cache); grid.py: notes -> a quantised multi-track roll -> windows;
roll.py: rolls <-> MIDI, pictures, audio; ingest.py: data/processed/; validate.py: its GX
rules."""

from __future__ import annotations

from components.datakinds.base import DataKind

# file suffix -> the parser that reads it (sources.parse_file)
SUFFIXES = {
    ".mid": "midi",
    ".midi": "midi",
    ".mxl": "musicxml",
    ".musicxml": "musicxml",
    ".xml": "musicxml",
    ".krn": "kern",
}
FILES = {"pieces": "pieces.csv", "preview": "preview.png"}  # beside images.npy and meta.csv


class ScoresKind(DataKind):
    name = "scores"
    processed_kinds = ("scores",)
    description = "scores: MIDI, MusicXML, **kern files (folder or archive), bundled bach_chorales"


KIND = ScoresKind()
