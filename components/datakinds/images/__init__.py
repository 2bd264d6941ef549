"""Images with optional class labels (the processed kind `generate`): a folder of images or of
class folders, an image set split into train/ and test/ (or val/), a .npz, or a bundled set.
sources.py: its sources; ingest.py: data/processed/; validate.py: its GX rules."""

from __future__ import annotations

from pathlib import Path

from components.datakinds.base import DataKind


class ImagesKind(DataKind):
    name = "images"
    processed_kinds = ("generate",)
    description = "images with optional class labels (class folders, train/ test/, .npz, bundled)"
    layout_folders = frozenset({"train", "test"})

    def open_npz(self, path: Path, classes: list[str]):
        return self._hook("open_npz")(path, classes)


KIND = ImagesKind()
