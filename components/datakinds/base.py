"""What a data kind gives ingest and validate (torch-free; numpy, PIL and GX are imported where
they run).

A data kind is a package components/datakinds/<kind>/ whose __init__ defines one DataKind
subclass instance; components/datakinds/__init__.py lists them, in the order their layouts are
tried. Ingest asks the registry which kind a bundled name or a folder is and lets that kind
write data/processed/; validate asks which kind a manifest is and adds that kind's checks to
the one GX suite.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

# hook -> the module of the kind package that holds it (named after the stage that runs it)
HOOK_STAGES = {
    **dict.fromkeys(("bundled", "detect", "open", "open_npz", "open_source", "build"), "ingest"),
    **dict.fromkeys(("summarize", "suite"), "validate"),
}


class DataKind:
    name: ClassVar[str]
    processed_kinds: ClassVar[tuple[str, ...]]  # the manifest "kind" values it writes
    description: ClassVar[str]  # one line for `ganops families`
    # folder names (lower case) that mark this kind's layout at a folder's top level
    layout_folders: ClassVar[frozenset[str]] = frozenset()
    # file names (lower case) that mark this kind's layout at a folder's top level: wrapper
    # folders are looked through down to one that holds such a file, never past it
    layout_files: ClassVar[frozenset[str]] = frozenset()
    # what components/dataset.py reads back: a kind whose processed set holds two domains A and
    # B (Dataset.domain) rather than one array split by meta.csv (Dataset.split) ...
    domains: ClassVar[bool] = False
    # ... the processed kinds among its own whose A and B rows are aligned pairs (Dataset.pairs)
    aligned_kinds: ClassVar[tuple[str, ...]] = ()
    # ... and the files beside images.npy it loads on demand, by key (Dataset.file(key))
    files: ClassVar[dict[str, str]] = {}

    def set_name(self, source) -> str:
        """What a source of this kind is called in messages ("a <set_name> set")."""
        return self.name

    # The hooks are functions of <kind>/ingest.py and <kind>/validate.py, imported on first use:
    # the registry stays light, and each dvc stage depends on its own modules only.
    def _hook(self, name: str):
        module = importlib.import_module(f"{type(self).__module__}.{HOOK_STAGES[name]}")
        return getattr(module, name)

    def bundled(self) -> dict[str, tuple[Callable, str]]:
        """Bundled set name -> (builder(image_size) -> source, the package that ships it)."""
        return self._hook("bundled")()

    def detect(self, root: Path, folders: dict[str, Path]) -> str | None:
        """This kind's layout name for the folder `root` (its sub-folders by lower-case name),
        or None when the folder is not this kind's."""
        return self._hook("detect")(root, folders)

    def open(self, root: Path, layout: str, classes: list[str], label: str):
        """The source object ingest streams, for a folder detect() claimed."""
        return self._hook("open")(root, layout, classes, label)

    def open_source(self, cfg, scratch: Path):
        """The source of `ingest.source` for a family that trains on this kind whatever the
        folder looks like (its ingest config names it: `data_kind`); kinds it can name bring
        `open_source` in their ingest.py."""
        return self._hook("open_source")(cfg, scratch)

    def build(self, cfg, source, out_dir: Path) -> dict:
        """Stream `source` into out_dir (arrays, meta.csv); returns the manifest."""
        return self._hook("build")(cfg, source, out_dir)

    def summarize(self, data):
        """The per-row table (pandas) the GX suite runs on."""
        return self._hook("summarize")(data)

    def suite(self, cfg, manifest: dict) -> list:
        """This kind's GX rules (components/validate.py Rule), from `validate:` and the
        manifest."""
        return self._hook("suite")(cfg, manifest)
