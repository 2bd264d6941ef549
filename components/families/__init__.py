"""The model families, by name: the one place that lists them (STYLE 22d).

Each family is a package beside this file owning its options, nets, trainer step, probe,
evaluation, registry gates, model card and pyfunc (docs/adding-a-family.md). The stages ask:
`for_arch(train.arch)` at train time, `of_model_dir(models/)` afterwards (every model spec
names its family), `of_version_tags(tags)` for a registered version. Torch-free to import.
"""

from __future__ import annotations

import json
from pathlib import Path

from components.errors import ConfigError, DataError
from components.families.base import Built, ModelFamily
from components.families.music import FAMILY as MUSIC
from components.families.noise import FAMILY as NOISE
from components.families.text2image import FAMILY as TEXT2IMAGE
from components.families.translation import FAMILY as TRANSLATION
from components.families.video import FAMILY as VIDEO

FAMILIES: dict[str, ModelFamily] = {
    f.name: f for f in (NOISE, TRANSLATION, TEXT2IMAGE, VIDEO, MUSIC)
}
# a generator registered before specs named their family (generator.json without "family")
LEGACY_FAMILY = NOISE.name

__all__ = ["Built", "FAMILIES", "ModelFamily", "all_archs", "for_arch", "of_model_dir"]


def all_archs() -> tuple[str, ...]:
    return tuple(a for f in FAMILIES.values() for a in f.archs)


def for_arch(arch: str) -> ModelFamily:
    """The family that trains `train.arch`; one error line naming the choices otherwise."""
    for family in FAMILIES.values():
        if arch in family.archs:
            return family
    raise ConfigError(f"train.arch: {arch!r} is not a model (one of {', '.join(all_archs())})")


def spec_files() -> tuple[str, ...]:
    return tuple(dict.fromkeys(f.spec_file for f in FAMILIES.values()))


def of_model_dir(model_dir: Path) -> tuple[ModelFamily, Path, dict]:
    """(family, spec path, spec) of a trained model folder: models/, or a registered version as
    downloaded (files nested at any depth). The spec's `family` field decides; a spec file
    without one is the family whose spec file it is (versions registered before the field)."""
    for name in spec_files():
        found = next(iter(sorted(Path(model_dir).rglob(name))), None)
        if found is None:
            continue
        try:
            spec = json.loads(found.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(f"{found}: damaged ({err.__class__.__name__})") from None
        if not isinstance(spec, dict):
            raise DataError(f"{found}: damaged (not a JSON object)")
        owner = next(f for f in FAMILIES.values() if f.spec_file == name)
        family = spec.get("family", owner.name)
        if family not in FAMILIES:
            raise DataError(f"{found}: family {family!r} is unknown (one of {', '.join(FAMILIES)})")
        return FAMILIES[family], found, spec
    raise DataError(f"{model_dir}: no model found (none of {', '.join(spec_files())})")


def of_version_tags(tags: dict) -> str:
    """The family of a registered version, from its tags (older generators have none)."""
    return tags.get("family", LEGACY_FAMILY)


def data_kinds() -> dict[str, list[str]]:
    """Processed data kind -> the archs that train on it."""
    out: dict[str, list[str]] = {}
    for arch in all_archs():
        for kind in for_arch(arch).data_kinds(arch):
            out.setdefault(kind, []).append(arch)
    return out


def describe() -> list[str]:
    """One line per family for `ganops families`."""
    return [f.describe() for f in FAMILIES.values()]
