"""Scale-out for the train stage: `train.devices > 1` runs DDP under torchrun.

`ganops stage train` (or the Prefect task) with train.devices = N launches
`torchrun --standalone --nproc-per-node N -m components.train.distributed ROOT`; each rank runs
the same train stage with its process group initialised (NCCL on GPUs, gloo on CPU). Rank 0
writes models/run.json, which the launcher returns; a GanopsError on any rank comes back as the
same error (one line), so a DDP run fails exactly like a single-process one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from components import errors
from components.config import TrainConfig
from components.layout import Layout, read_json

CONFIG_ENV = "GANOPS_TRAIN_CONFIG"
ERROR_ENV = "GANOPS_ERROR_FILE"


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    local_rank: int = 0
    world: int = 1


def current_rank() -> Rank:
    """This process's place in a torchrun launch (rank 0 of 1 outside one)."""
    env = os.environ
    return Rank(
        int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1))
    )


def cpu_threads(world: int) -> int:
    """The cores each of `world` CPU processes may use."""
    return max(1, len(os.sched_getaffinity(0)) // world)


def init_process_group(me: Rank):
    """Initialise torch.distributed for this rank; returns the rank's device."""
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available():
        device = torch.device("cuda", me.local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        device = torch.device("cpu")
        torch.set_num_threads(cpu_threads(me.world))
        dist.init_process_group("gloo")
    return device


def launch(cfg: TrainConfig, layout: Layout) -> dict:
    """Run the train stage on cfg.devices processes under torchrun; return rank 0's summary."""
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() < cfg.devices:
        raise errors.ConfigError(
            f"train.devices: {cfg.devices} requested, {torch.cuda.device_count()} GPUs visible"
        )
    with tempfile.TemporaryDirectory(prefix="ganops-ddp-") as tmp:
        error_file = Path(tmp) / "error.json"
        env = {
            **os.environ,
            CONFIG_ENV: json.dumps(cfg.model_dump(mode="json")),
            ERROR_ENV: str(error_file),
            "OMP_NUM_THREADS": str(cpu_threads(cfg.devices)),
        }
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={cfg.devices}",
            "-m",
            "components.train.distributed",
            str(layout.root),
        ]
        print(f"train: launching {cfg.devices} DDP processes under torchrun", flush=True)
        proc = subprocess.run(cmd, env=env, check=False)
        if proc.returncode != 0:
            if error_file.is_file():
                failure = read_json(error_file)
                raise getattr(errors, failure["type"], errors.GanopsError)(failure["message"])
            raise errors.GanopsError(
                f"train: torchrun exited with status {proc.returncode}; see the ranks' log above"
            )
    return read_json(layout.train_run)


def _worker(root: str) -> int:
    """One rank: the train stage with this rank's process group."""
    from components import train

    cfg = TrainConfig.model_validate_json(os.environ[CONFIG_ENV])
    me = current_rank()
    try:
        train.run(cfg, Layout(Path(root)))
    except errors.GanopsError as exc:
        payload = {"type": type(exc).__name__, "message": str(exc), "rank": me.rank}
        tmp = Path(os.environ[ERROR_ENV]).with_suffix(f".{me.rank}.tmp")
        tmp.write_text(json.dumps(payload))
        tmp.replace(os.environ[ERROR_ENV])
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1]))
