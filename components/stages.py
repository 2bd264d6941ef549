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
    layout = layout or Layout.here()
    if name != "ingest":
        check_ingested_as(params, layout)
    module = importlib.import_module(f"components.{name}")
    return module.run(params.section(name), layout)


def check_ingested_as(params: Params, layout: Layout) -> None:
    """The data on disk is what params' ingest section describes: after an ingest that failed
    or ran with other settings, a later stage would otherwise use the older data set silently."""
    from components.errors import DataError
    from components.layout import read_json

    if not layout.manifest.is_file():
        return  # the stage itself says there is no processed data set
    ingested = read_json(layout.manifest).get("params")
    if ingested is None:  # written before the manifest kept its ingest settings
        return
    wanted = params.ingest.model_dump(mode="json")
    differ = [k for k in wanted if not _same_setting(k, ingested.get(k, _MISSING), wanted[k])]
    if differ:
        key = differ[0]
        more = f" (and {len(differ) - 1} more ingest key(s))" if len(differ) > 1 else ""
        found = ingested.get(key, _MISSING)
        was = (
            f"its manifest does not record ingest.{key} (ingested by an older ganops)"
            if found is _MISSING
            else f"was ingested with ingest.{key}={found!r}"
        )
        raise DataError(
            f"{layout.processed}: {was}, params give {wanted[key]!r}{more}; pass the ingest's "
            "settings (--set ingest.KEY=VALUE) or re-ingest (`ganops stage ingest`, `dvc repro`)"
        )


_MISSING = object()


def _same_setting(key: str, ingested: Any, wanted: Any) -> bool:
    """Equal settings; a source path counts as the same when it names the same place
    (`data/x.zip`, `./data/x.zip` and its absolute path, `~` expanded)."""
    if ingested == wanted:
        return True
    if key != "source" or not isinstance(ingested, str):
        return False
    from pathlib import Path

    from components import datakinds

    if {ingested, wanted} & set(datakinds.bundled()):
        return False
    return Path(ingested).expanduser().resolve() == Path(wanted).expanduser().resolve()
