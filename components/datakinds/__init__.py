"""The data kinds, by name: the one place that lists them, in the order their folder layouts
are tried (a kind that claims a folder by its layout comes before the plain image folder).

Each kind is a package beside this file owning its layout detection, its bundled sets, its
ingest into data/processed/ (with the manifest's `kind`) and its GX checks. ingest and
validate ask here (docs/architecture.md).
"""

from __future__ import annotations

from pathlib import Path

from components.datakinds.base import DataKind
from components.datakinds.captioned import KIND as CAPTIONED
from components.datakinds.clips import KIND as CLIPS
from components.datakinds.images import KIND as IMAGES
from components.datakinds.pairs import KIND as PAIRS
from components.datakinds.scores import KIND as SCORES
from components.errors import DataError

KINDS: dict[str, DataKind] = {k.name: k for k in (SCORES, CAPTIONED, CLIPS, PAIRS, IMAGES)}
# the plain image set: the fallback folder layout, what a .npz is, what `ganops compare` reads
PLAIN = IMAGES
# the manifest kind of a processed set written before manifests named it (a plain image set)
LEGACY_PROCESSED = PLAIN.processed_kinds[0]

__all__ = [
    "KINDS",
    "LEGACY_PROCESSED",
    "PLAIN",
    "DataKind",
    "bundled",
    "detect",
    "layout_files",
    "layout_folders",
    "named",
    "of_processed",
    "processed_kinds",
]


def bundled() -> dict[str, tuple[DataKind, str]]:
    """Bundled set name -> (its kind, the package whose version fingerprints it)."""
    return {
        name: (kind, pkg) for kind in KINDS.values() for name, (_, pkg) in kind.bundled().items()
    }


def layout_folders() -> frozenset[str]:
    """Folder names that mark a dataset layout (wrapper folders are looked through to them)."""
    return frozenset().union(*(k.layout_folders for k in KINDS.values()))


def layout_files() -> frozenset[str]:
    """File names that mark a dataset layout (wrapper folders are looked through to them)."""
    return frozenset().union(*(k.layout_files for k in KINDS.values()))


def detect(root: Path, folders: dict[str, Path], label: str) -> tuple[DataKind, str]:
    """(kind, layout) of a folder: the first kind whose detect() claims it. A folder with
    layout folder names that no kind claims is a partial layout: one error naming them."""
    for kind in KINDS.values():
        if (layout := kind.detect(root, folders)) is not None:
            return kind, layout
    names = [p.name for p in folders.values()]
    shown = ", ".join(f"{n}/" for n in names[:12]) + (
        f" (+{len(names) - 12} more)" if len(names) > 12 else ""
    )
    raise DataError(
        f"ingest.source: {label}: not a dataset layout: found folders {shown} "
        "(unpaired needs trainA/ trainB/ testA/ testB/; paired needs train/ test/, "
        "or train/ val/)"
    )


def of_processed(manifest: dict) -> DataKind:
    """The kind that wrote a processed dataset (manifests before the field: images)."""
    value = manifest.get("kind", LEGACY_PROCESSED)
    for kind in KINDS.values():
        if value in kind.processed_kinds:
            return kind
    raise DataError(f"data/processed: kind {value!r} is unknown; re-run `ganops stage ingest`")


def processed_kinds() -> tuple[str, ...]:
    """Every manifest `kind` a data kind writes."""
    return tuple(p for kind in KINDS.values() for p in kind.processed_kinds)


def named(name: str) -> DataKind:
    """The kind a family's ingest config names (`data_kind`)."""
    if name not in KINDS:
        raise DataError(f"data kind {name!r} is unknown (one of {', '.join(KINDS)})")
    return KINDS[name]
