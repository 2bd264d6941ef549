"""Scale-out for the train stage: `train.devices > 1` runs DDP under torchrun, `train.nodes > 1`
spans machines.

`ganops stage train` (or the Prefect task) with train.devices = N launches
`torchrun --standalone --nproc-per-node N -m components.train.distributed ROOT`; each rank runs
the same train stage with its process group initialised (NCCL on GPUs, gloo on CPU). Global rank
0 writes models/run.json and hands its summary to its launcher; a GanopsError on any rank comes
back as the same error (one line), so a DDP run fails exactly like a single-process one.

Multi-node (train.nodes = K > 1, docs/multi-node.md): every one of the K machines runs
`ganops stage train` with the same params, e.g.

    export GANOPS_RDZV_ENDPOINT=node0.example:29400  # or train.rdzv_endpoint
    export GANOPS_NODE_RANK=0                        # 1..K-1 on the others; optional
    ganops stage train --set train.nodes=K --set train.devices=M

and its launcher runs `torchrun --nnodes K --nproc-per-node M --rdzv-backend c10d --rdzv-endpoint
HOST:PORT --rdzv-id ID` instead of --standalone. The endpoint is a host:port of node 0 that all
nodes reach; node 0's agent hosts the c10d store there (GANOPS_NODE_RANK says which node that is
instead of torch matching host names). The rendezvous id hashes the train config, so a node with
other params never joins. The K x M ranks split train.batch_size. Global rank 0 (on the node whose
host name sorts first: any node) alone tracks the run, checkpoints and writes models/; the other
launchers return a note. Every node needs the same data/processed, and resuming a shared
checkpoints/ folder (checked when training starts); k8s: infra/k8s/jobs/train-multinode.yaml.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from components import errors
from components.config import TrainConfig, train_config, valid_endpoint
from components.layout import Layout, read_json, write_json

CONFIG_ENV = "GANOPS_TRAIN_CONFIG"
ERROR_ENV = "GANOPS_ERROR_FILE"
RESULT_ENV = "GANOPS_RESULT_FILE"  # global rank 0's summary, for the launcher on its node
ENDPOINT_ENV = "GANOPS_RDZV_ENDPOINT"  # the rendezvous endpoint when train.rdzv_endpoint is ""
NODE_RANK_ENV = "GANOPS_NODE_RANK"  # optional: 0 hosts the c10d store, others only connect
PLACEMENT_KEYS = ("rdzv_endpoint",)  # train keys that say where, not what: out of every hash


@dataclass(frozen=True)
class Rank:
    rank: int = 0  # global: 0 is the one process that tracks and writes
    local_rank: int = 0  # on this node: picks the GPU
    world: int = 1
    local_world: int = 1  # processes on this node: share its CPU cores


def current_rank() -> Rank:
    """This process's place in a torchrun launch (rank 0 of 1 outside one)."""
    env = os.environ
    world = int(env.get("WORLD_SIZE", 1))
    return Rank(
        int(env.get("RANK", 0)),
        int(env.get("LOCAL_RANK", 0)),
        world,
        int(env.get("LOCAL_WORLD_SIZE", world)),
    )


def cpu_threads(world: int) -> int:
    """The cores each of `world` CPU processes on this machine may use."""
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
        torch.set_num_threads(cpu_threads(me.local_world))
        dist.init_process_group("gloo")
    return device


def rendezvous_id(cfg: TrainConfig) -> str:
    """The same on every node started with the same train config (wherever the endpoint)."""
    data = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in PLACEMENT_KEYS}
    return "ganops-" + hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


def rendezvous_args(cfg: TrainConfig) -> list[str]:
    """torchrun's rendezvous flags: --standalone on one node, c10d at node 0's endpoint on more."""
    if cfg.nodes == 1:
        return ["--standalone"]
    endpoint = cfg.rdzv_endpoint or os.environ.get(ENDPOINT_ENV, "")
    if not endpoint:
        raise errors.ConfigError(
            f"train.rdzv_endpoint: train.nodes is {cfg.nodes}, so the nodes need a rendezvous: "
            f"set train.rdzv_endpoint or {ENDPOINT_ENV} to HOST:PORT of node 0"
        )
    if not valid_endpoint(endpoint):
        raise errors.ConfigError(f"{ENDPOINT_ENV}: expected HOST:PORT of node 0 (got {endpoint!r})")
    args = [
        f"--nnodes={cfg.nodes}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={endpoint}",
        f"--rdzv-id={rendezvous_id(cfg)}",
    ]
    node_rank = os.environ.get(NODE_RANK_ENV, "")
    if node_rank:
        if not node_rank.isdigit() or int(node_rank) >= cfg.nodes:
            raise errors.ConfigError(
                f"{NODE_RANK_ENV}: expected 0..{cfg.nodes - 1} (train.nodes - 1), got {node_rank!r}"
            )
        args.append(f"--rdzv-conf=is_host={'true' if int(node_rank) == 0 else 'false'}")
    return args


def launch(cfg: TrainConfig, layout: Layout) -> dict:
    """Run this node's share of the train stage (cfg.devices processes) under torchrun; return
    global rank 0's summary, or a note when rank 0 ran on another node."""
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() < cfg.devices:
        raise errors.ConfigError(
            f"train.devices: {cfg.devices} requested, {torch.cuda.device_count()} GPUs visible"
        )
    rendezvous = rendezvous_args(cfg)
    with tempfile.TemporaryDirectory(prefix="ganops-ddp-") as tmp:
        error_file, result_file = Path(tmp) / "error.json", Path(tmp) / "result.json"
        env = {
            **os.environ,
            CONFIG_ENV: json.dumps(cfg.model_dump(mode="json")),
            ERROR_ENV: str(error_file),
            RESULT_ENV: str(result_file),
            "OMP_NUM_THREADS": str(cpu_threads(cfg.devices)),
        }
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            *rendezvous,
            f"--nproc-per-node={cfg.devices}",
            "-m",
            "components.train.distributed",
            str(layout.root),
        ]
        where = "" if cfg.nodes == 1 else f" on one of {cfg.nodes} nodes ({' '.join(rendezvous)})"
        print(f"train: launching {cfg.devices} DDP processes under torchrun{where}", flush=True)
        proc = subprocess.run(cmd, env=env, check=False)
        if proc.returncode != 0:
            if error_file.is_file():
                failure = read_json(error_file)
                raise getattr(errors, failure["type"], errors.GanopsError)(failure["message"])
            raise errors.GanopsError(
                f"train: torchrun exited with status {proc.returncode}; see the ranks' log above"
            )
        if result_file.is_file():
            return read_json(result_file)
    print("train: global rank 0 ran on another node; it tracked the run and wrote models/ there")
    return {"nodes": cfg.nodes, "devices": cfg.devices, "rank0_here": False}


def check_same_start(data_hash: str, checkpoint: Path | None) -> None:
    """Every rank must start from the same data and the same checkpoint. Only global rank 0
    writes checkpoints/, so on several nodes they share that folder or all start fresh."""
    import torch.distributed as dist

    mine = (data_hash[:12], checkpoint.name if checkpoint else "no checkpoint")
    seen: list[tuple[str, str] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(seen, mine)
    if len(set(seen)) > 1:
        ranks = ", ".join(f"rank {r}: data {d}, {c}" for r, (d, c) in enumerate(seen))
        raise errors.ConfigError(
            f"train.nodes: the ranks start from different data or checkpoints ({ranks}); give "
            "every node the same data/processed and one shared checkpoints/ folder"
        )


def _worker(root: str) -> int:
    """One rank: the train stage with this rank's process group."""
    from components import train

    cfg = train_config(json.loads(os.environ[CONFIG_ENV]))
    me = current_rank()
    try:
        summary = train.run(cfg, Layout(Path(root)))
    except errors.GanopsError as exc:
        payload = {"type": type(exc).__name__, "message": str(exc), "rank": me.rank}
        tmp = Path(os.environ[ERROR_ENV]).with_suffix(f".{me.rank}.tmp")
        tmp.write_text(json.dumps(payload))
        tmp.replace(os.environ[ERROR_ENV])
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if me.rank == 0:
        write_json(Path(os.environ[RESULT_ENV]), summary)
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1]))
