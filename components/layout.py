"""Where each stage reads and writes, relative to the project root (the same paths as dvc.yaml)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Layout:
    root: Path

    @classmethod
    def here(cls) -> Layout:
        return cls(Path.cwd())

    # ingest
    @property
    def processed(self) -> Path:
        return self.root / "data" / "processed"

    @property
    def images(self) -> Path:
        return self.processed / "images.npy"

    def domain_images(self, name: str) -> Path:
        """uint8 images of one translation domain ("A" | "B"), when A and B differ in channels."""
        return self.processed / f"images_{name}.npy"

    @property
    def meta(self) -> Path:
        return self.processed / "meta.csv"

    @property
    def manifest(self) -> Path:
        return self.processed / "manifest.json"

    # validate
    @property
    def validation(self) -> Path:
        """Data Docs and the summary table (written on pass and on fail)."""
        return self.root / "reports" / "validation"

    @property
    def validation_result(self) -> Path:
        """The verdict, one line per expectation; deterministic, so train can depend on it."""
        return self.root / "reports" / "validation.json"

    # train
    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def train_run(self) -> Path:
        return self.models / "run.json"

    @property
    def train_log(self) -> Path:
        return self.root / "reports" / "train_log.csv"

    @property
    def probe_log(self) -> Path:
        return self.root / "reports" / "probe_log.csv"

    # evaluate
    @property
    def metrics(self) -> Path:
        return self.root / "reports" / "metrics.json"

    @property
    def evaluation(self) -> Path:
        """The evaluation pictures (sample grids, translations, loss curves): one folder."""
        return self.root / "reports" / "evaluation"

    @property
    def classifier_cache(self) -> Path:
        return self.root / ".cache" / "classifier"

    # register
    @property
    def registration(self) -> Path:
        return self.root / "reports" / "registration.json"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file beside `path`, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temp folder beside `target`; when the block succeeds it replaces `target` whole,
    when it fails it is removed. Readers see the old folder or the new one, never half of one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
