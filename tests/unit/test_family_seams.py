"""Code: #31's must-show 2 and 3, kept true. Outside components/families/ and
components/datakinds/ (whose registry __init__ files hold the one list of each), no module under
components/ or flows/ names a model family, an arch, a data kind or a spec file to decide what to
do: the shared code asks the registries, so a new family is its folders plus the two registry
import lines.

What counts as naming one (read with `ast`, so comments and docstrings may mention them):
- a string literal that is exactly a family, arch, data kind or manifest kind name (what an
  `== "pix2pix"`, a dict key, a default or a branch needs; a message may still use the word
  inside a sentence), or one that holds a spec file name (translator.json, generator.json, ...)
  or a family's or data kind's package path;
- an import of a family's or a data kind's package (components.families.<name>...,
  components.datakinds.<kind>...): the registries and their shared base modules are fine;
- the old TRANSLATION_ARCHS list.
`__all__` entries are function names, not decisions, and are not read.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from components import datakinds, families
from tests.conftest import ROOT

# names the issues used for the families that came after the registries (whatever their archs
# are called today), beside the ones the registries hold
NAMED_IN_THE_ISSUES = {
    "text2image", "captioned", "mocogan", "conv3d", "musegan", "video", "music", "clips",
    "scores", "dfgan",
}  # fmt: skip
OLD_NAMES = {"TRANSLATION_ARCHS"}


def _packages(registry: dict) -> set[str]:
    """The dotted package of every registered family or data kind (components.families.noise)."""
    return {type(member).__module__ for member in registry.values()}


PACKAGES = _packages(families.FAMILIES) | _packages(datakinds.KINDS)
NAMES = (
    set(families.FAMILIES)
    | set(families.all_archs())
    | set(datakinds.KINDS)
    | set(datakinds.processed_kinds())
    | NAMED_IN_THE_ISSUES
)
SPEC_FILES = {f.spec_file for f in families.FAMILIES.values()} | {
    "translator.json",
    "generator.json",
}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the constant nodes that are docstrings (module, class, function)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _all_entries(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            found.update(id(n) for n in ast.walk(node.value))
    return found


def _names_a_package(text: str) -> str | None:
    for package in PACKAGES:
        for spelling in (package, package.replace(".", "/")):
            if text == spelling or text.startswith((f"{spelling}.", f"{spelling}/")):
                return package
    return None


def offences(source: str) -> list[tuple[int, str]]:
    """(line, what) for each place `source` names a family, arch, data kind or spec file."""
    tree = ast.parse(source)
    skip = _docstrings(tree) | _all_entries(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            text = node.value
            if text in NAMES:
                found.append((node.lineno, f"the literal {text!r}"))
            elif any(spec in text for spec in SPEC_FILES):
                found.append((node.lineno, f"a spec file in {text[:60]!r}"))
            elif (package := _names_a_package(text)) is not None:
                found.append((node.lineno, f"the package {package} in {text[:60]!r}"))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules.append(node.module)
                modules += [f"{node.module}.{a.name}" for a in node.names]
            for module in modules:
                if (package := _names_a_package(module)) is not None:
                    found.append((node.lineno, f"an import of {package}"))
                    break
            found += [(node.lineno, a.name) for a in node.names if a.name in OLD_NAMES]
        elif isinstance(node, ast.Name) and node.id in OLD_NAMES:
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute) and node.attr in OLD_NAMES:
            found.append((node.lineno, node.attr))
    return sorted(set(found))


def shared_modules() -> list[Path]:
    """Every module of components/ and flows/ outside the family and data-kind packages."""
    owned = (ROOT / "components" / "families", ROOT / "components" / "datakinds")
    files = [*(ROOT / "components").rglob("*.py"), *(ROOT / "flows").rglob("*.py")]
    return sorted(f for f in files if not any(f.is_relative_to(o) for o in owned))


def test_the_rule_sees_what_it_forbids():
    """The check itself: each way of naming a family is caught; words in messages, comments,
    docstrings and the registries' shared modules are not."""
    caught = offences(
        '"""The video family: translator.json."""\n'
        "from components.families.video.generate import generate\n"
        "import components.datakinds.captioned\n"
        "from components.families.translation.options import TRANSLATION_ARCHS\n"
        'if spec["arch"] == "pix2pix":  # pix2pix\n'
        '    kind = {"clips": 1}\n'
        'path = model_dir / "translator.json"\n'
        'hook = "components.families.music.generate:generate"\n'
    )
    assert [line for line, _ in caught] == [2, 3, 4, 4, 5, 6, 7, 8], caught
    assert not offences(
        '"""text2image, video and music."""\n'
        "from components import datakinds, families\n"
        "from components.families.base import ModelFamily\n"
        '__all__ = ["generate"]\n'
        'raise ValueError("a video model writes a folder")  # video\n'
    )


@pytest.mark.parametrize("path", shared_modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_shared_code_names_no_family_arch_or_kind(path):
    found = offences(path.read_text(encoding="utf-8"))
    where = path.relative_to(ROOT).as_posix()
    assert not found, f"{where} decides by a family's name: " + "; ".join(
        f"line {line}: {what}" for line, what in found
    )
