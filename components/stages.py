"""The five stages by name: what `ganops stage`, the Prefect flow and dvc.yaml share."""

from __future__ import annotations

import importlib
from typing import Any

from components.config import STAGES, Params
from components.layout import Layout


def run_stage(name: str, params: Params, layout: Layout | None = None) -> dict[str, Any]:
    """Run one stage's component function with its own config section."""
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r} (one of {', '.join(STAGES)})")
    module = importlib.import_module(f"components.{name}")
    return module.run(params.section(name), layout or Layout.here())
