"""Full training checkpoints: a family's nets, optimisers and extra state (grad scaler, fake
pools, ...), RNG states, step/kimg, the best probe result, history and the resolved train config.

Saved with torch.save of plain containers and tensors only, loaded with weights_only=True, so
loading never unpickles arbitrary objects. Written to a temp file and renamed into place.
"""

from __future__ import annotations

import io
import random
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from components.layout import atomic_write_bytes

if TYPE_CHECKING:
    from components.train.loop import TrainState

KEEP = 2  # checkpoints kept on disk (the newest)
_NAME = re.compile(r"^checkpoint-(\d{9})\.pt$")


def _rng_state() -> dict:
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_version, "internal": list(py_internal), "gauss": py_gauss},
    }


def _set_rng_state(rng: dict) -> None:
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    n = rng["numpy"]
    np.random.set_state(
        (
            "MT19937",
            n["keys"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    p = rng["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss"]))


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    found = sorted(p for p in ckpt_dir.glob("checkpoint-*.pt") if _NAME.match(p.name))
    return found[-1] if found else None


def save_checkpoint(ckpt_dir: Path, state: TrainState) -> Path:
    """The whole state of the run (see the module doc), written atomically; keeps KEEP."""
    family = state.family
    payload = {
        "modules": {name: m.state_dict() for name, m in family.modules().items()},
        "optimizers": {name: o.state_dict() for name, o in family.optimizers().items()},
        "extra": family.extra_state(),
        "config": state.config,
        "step": state.step,
        "kimg": state.kimg,
        "history": state.history,
        "probes": state.probes,
        "best": {
            "metric": state.best_metric,
            "step": state.best_step,
            "state": state.best_state or {},
        },
        "rng": _rng_state(),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    path = ckpt_dir / f"checkpoint-{state.step:09d}.pt"
    atomic_write_bytes(path, buf.getvalue())
    for old in sorted(ckpt_dir.glob("checkpoint-*.pt"))[:-KEEP]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(ckpt_dir: Path, state: TrainState) -> Path | None:
    """Restore `state` in place from the newest checkpoint in `ckpt_dir`; None if there is none."""
    path = latest_checkpoint(ckpt_dir)
    if path is None:
        return None
    payload = torch.load(path, map_location="cpu", weights_only=True)
    family = state.family
    for kind, objects in (("modules", family.modules()), ("optimizers", family.optimizers())):
        for name, obj in objects.items():
            obj.load_state_dict(payload[kind][name])
    family.load_extra_state(payload["extra"])
    state.step = int(payload["step"])
    state.history = list(payload["history"])
    state.probes = list(payload["probes"])
    best = payload["best"]
    state.best_metric, state.best_step = float(best["metric"]), int(best["step"])
    state.best_state = dict(best["state"]) or None
    _set_rng_state(payload["rng"])
    return path
