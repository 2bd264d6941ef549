"""Finding a family's files in a model folder: train's models/, or a registered version as MLflow
downloads it (the files nested under artifacts/)."""

from __future__ import annotations

from pathlib import Path

from components.errors import DataError


def find(model_dir: Path, name: str) -> Path | None:
    """The first `name` at any depth of model_dir (None when there is none)."""
    return next(iter(sorted(Path(model_dir).rglob(name))), None)


def require(model_dir: Path, name: str) -> Path:
    path = find(model_dir, name)
    if path is None:
        raise DataError(f"{model_dir}: no {name} in the model")
    return path
