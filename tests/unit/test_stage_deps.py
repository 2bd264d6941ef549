"""Code: every stage's deps in dvc.yaml (and the Prefect cache's code digest) cover the code the
stage really runs, so `dvc repro` reruns a stage whenever its code changes. The code is the
static import closure of `components.<stage>` (imports inside functions included: they run),
plus the files a stage ships as model code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from components import orchestrate
from components.config import STAGES
from tests.conftest import ROOT

SHIPPED = {  # model code register logs by path (models from code), not by import
    "register": {
        f"components/families/{name}/{file}"
        for name in ("noise", "translation")
        for file in ("pyfunc.py", "pyfunc_model.py")
    }
}
# stages that load a family's hooks through the registry (importlib, unseen by the import walk):
# they depend on every family package they can load
LOADS_FAMILIES = ("train", "evaluate", "register")
# likewise the stages that load a data kind's hooks (components/datakinds/<kind>/<stage>.py)
LOADS_KINDS = ("ingest", "validate")


def _file(module: str) -> Path | None:
    path = ROOT / Path(*module.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imports(module: str) -> set[str]:
    path = _file(module)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] == "components" and _file(m)}


def stage_code(stage: str) -> set[str]:
    """Repo-relative files of every components module `components.<stage>` can import."""
    from components import families

    seen: set[str] = set()
    todo = [f"components.{stage}"]
    if stage in LOADS_FAMILIES:
        todo += [f"{type(family).__module__}.{stage}" for family in families.FAMILIES.values()]
    if stage in LOADS_KINDS:
        from components import datakinds

        todo += [f"{type(kind).__module__}.{stage}" for kind in datakinds.KINDS.values()]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parents' __init__ run
        todo += _imports(module)
    files = {_file(m).relative_to(ROOT).as_posix() for m in seen}
    return files | SHIPPED.get(stage, set())


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def test_import_closure_sees_function_level_imports():
    """The walk itself: train's probe imports evaluate's features inside a function."""
    assert "components/evaluate/features.py" in stage_code("train")
    assert "components/sources.py" in stage_code("ingest")
    # ingest reads no family's trainer: only the options loading params needs
    assert "components/families/noise/options.py" in stage_code("ingest")
    assert "components/families/noise/trainer.py" not in stage_code("ingest")
    assert "components/families/translation/cyclegan.py" in stage_code("train")
    assert "components/datakinds/pairs/ingest.py" in stage_code("ingest")
    assert "components/datakinds/pairs/validate.py" in stage_code("validate")


@pytest.mark.parametrize("stage", STAGES)
def test_dvc_deps_cover_the_code_the_stage_runs(stage):
    deps = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]["deps"]
    missing = sorted(f for f in stage_code(stage) if not _covered(f, deps))
    assert not missing, f"dvc.yaml stage {stage}: add to deps {missing}"


@pytest.mark.parametrize("stage", orchestrate.CACHED_STAGES)
def test_prefect_cache_key_covers_the_code_the_stage_runs(stage):
    hashed = [f"components/{name}" for name in orchestrate.STAGE_CODE[stage]]
    missing = sorted(f for f in stage_code(stage) if not _covered(f, hashed))
    assert not missing, f"orchestrate.STAGE_CODE[{stage!r}]: add {missing}"
