"""train: fit the model family of `train.arch` on the processed train split; log everything to
one MLflow run.

Outputs (models/): the family's nets as safetensors (G, G_ema, D for noise -> image), the
generator spec, and run.json naming the MLflow run that evaluate and register continue. Full
checkpoints go to checkpoints/<trajectory key>/: a rerun with the same trajectory (arch, losses,
optimiser, seed, data; not kimg or logging cadence) resumes from the newest one, so a longer
train.kimg continues a finished run. train.devices > 1 runs DDP under torchrun, train.nodes > 1
over several machines (components/train/distributed.py); global rank 0 does all the writing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd

from components.config import TrainConfig, flatten
from components.dataset import load_dataset
from components.errors import ConfigError
from components.layout import Layout, atomic_dir, read_json, write_json

# train keys that change how long or how often, not what is learnt: left out of the checkpoint key
SCHEDULE_KEYS = ("kimg", "log_every", "sample_every_kimg", "eval_every_kimg", "ckpt_every_kimg")


def checkpoint_dir(cfg: TrainConfig, layout: Layout, data_hash: str) -> Path:
    """One folder per training trajectory: the train config less SCHEDULE_KEYS and where the
    rendezvous is (PLACEMENT_KEYS), and the data."""
    from components.train.distributed import PLACEMENT_KEYS

    left_out = SCHEDULE_KEYS + PLACEMENT_KEYS
    trajectory = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in left_out}
    key = json.dumps({"train": trajectory, "data": data_hash}, sort_keys=True)
    return layout.checkpoints / hashlib.sha256(key.encode()).hexdigest()[:12]


def _progress_printer(log_every: int, stat_names: tuple[str, ...]):
    """A rich progress bar: step, kimg, the family's first losses and img/s. Without a terminal
    (CI, logs, Prefect workers) it prints a plain line at every tenth of the run instead."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("[bold]train[/]"),
        BarColumn(),
        TextColumn("step {task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        disable=not Console().is_terminal,
    )
    task = bar.add_task("train", total=None, info="")

    def update(step: int, total: int, row: dict) -> None:
        losses = "  ".join(f"{name} {row[name]:.3f}" for name in stat_names[:4])
        info = f"kimg {row['kimg']:.1f}  {losses}  {row['img_per_s']:.0f} img/s"
        bar.update(task, completed=step, total=total, info=info)
        tenth = max(total // 10, 1)
        if not bar.console.is_terminal and (
            step // tenth != (step - log_every) // tenth or step == total
        ):
            print(f"train: step {step}/{total}  {info}", flush=True)

    return bar, update


def write_models(layout: Layout, state, documents: dict[str, dict], folders=None) -> None:
    """The family's model files (safetensors), JSON documents (specs) and folders (Built.
    folders: name -> writer), swapped into models/ as one folder. The probe's best state is
    what evaluate and register use."""
    from safetensors.torch import save_file

    with atomic_dir(layout.models) as tmp:
        for name, tensors in state.family.model_files(state.best_state).items():
            tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
            save_file(tensors, str(tmp / f"{name}.safetensors"))
        for name, document in documents.items():
            write_json(tmp / name, document)
        for name, writer in (folders or {}).items():
            writer(tmp / name)


def build_family(cfg: TrainConfig, layout: Layout, data, device, me):
    """The family of train.arch (components/families), built for this run on `data` once the
    data's kind is one the arch trains on."""
    from components import families

    family = families.for_arch(cfg.arch)
    needs = family.data_kinds(cfg.arch)
    if data.kind not in needs:
        others = [
            a for a in families.all_archs() if data.kind in families.for_arch(a).data_kinds(a)
        ]
        hint = f" (use {' or '.join(others)})" if others else ""
        raise ConfigError(
            f"train.arch: {cfg.arch} needs a {' or '.join(needs)} dataset, but ingest.source "
            f"{data.manifest['source']!r} is {data.kind}{hint}"
        )
    return family.build(cfg, layout, data, device, me)


def run(cfg: TrainConfig, layout: Layout) -> dict:
    """The train stage: returns a summary (run id, steps, final losses)."""
    from components.train.distributed import current_rank, init_process_group, launch
    from components.train.loop import pick_device

    me = current_rank()
    processes = cfg.nodes * cfg.devices
    if me.world == 1 and processes > 1:
        return launch(cfg, layout)
    if me.world != processes:
        raise ConfigError(
            f"train.devices: {cfg.devices} on each of train.nodes: {cfg.nodes}, but torchrun "
            f"started {me.world} processes"
        )
    if me.world == 1:
        return _train(cfg, layout, pick_device(), me)
    import torch.distributed as dist

    device = init_process_group(me)
    try:
        return _train(cfg, layout, device, me)
    finally:
        dist.destroy_process_group()


def _tracked_run(run_file: Path, uri: str) -> tuple[str | None, dict]:
    """The MLflow run a checkpoint folder continues: its recorded run when that run is in the
    current store, else None (a new run) with tags saying where the checkpoint came from (the
    store was deleted, or the same config moved to another store)."""
    if not run_file.is_file():
        return None, {}
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    recorded = read_json(run_file)
    try:
        run = MlflowClient().get_run(recorded["run_id"])
        if run.info.lifecycle_stage == "active":
            return recorded["run_id"], {}
    except MlflowException:
        pass
    return None, {
        "resumed_from_run": recorded["run_id"],
        "resumed_from_tracking_uri": recorded.get("tracking_uri", "unknown"),
        "resumed_from_checkpoint": str(run_file.parent),
    }


def _log_run_inputs(layout: Layout, cfg: TrainConfig, data, device, me, extra_tags: dict) -> None:
    """Params of every stage so far and the tags that tie the run to its data and code."""
    import mlflow

    from components import tracking

    upstream = {"ingest": data.manifest.get("params", {})}
    if (layout.validation / "params.json").is_file():
        upstream["validate"] = read_json(layout.validation / "params.json")
    upstream["train"] = cfg.model_dump(mode="json")
    mlflow.log_params(flatten(upstream))
    mlflow.set_tags(
        {
            "dataset_hash": data.manifest["content_hash"],
            "dataset_dvc_md5": tracking.dvc_md5(layout.processed),
            "dataset_source": data.manifest["source"],
            "device": str(device),
            "devices": me.world,
            "git_commit": tracking.git_commit(layout.root),
            **extra_tags,
        }
    )


def _train(cfg: TrainConfig, layout: Layout, device, me) -> dict:
    """One process's training: rank 0 tracks, probes and writes; other ranks only train."""
    import mlflow

    from components import tracking
    from components.images import grid, save_png, to_uint8
    from components.train.loop import Callbacks, fit

    data = load_dataset(layout)
    ckpt_dir = checkpoint_dir(cfg, layout, data.manifest["content_hash"])
    if me.world > 1:
        from components.train.checkpoint import latest_checkpoint
        from components.train.distributed import check_same_start

        check_same_start(data.manifest["content_hash"], latest_checkpoint(ckpt_dir))
    built = build_family(cfg, layout, data, device, me)
    family, documents = built.trainer, built.documents
    if me.rank != 0:
        fit(family, cfg, ckpt_dir, Callbacks(), rank=me.rank, world=me.world)
        return {}
    experiment_id = tracking.setup(layout)
    uri = tracking.tracking_uri(layout)
    run_file = ckpt_dir / "mlflow_run.json"
    resumed_run, origin = _tracked_run(run_file, uri)
    if origin:
        print(
            f"train: checkpoint {ckpt_dir} was tracked in run {origin['resumed_from_run']}, "
            "which this store does not have: new MLflow run, tagged with where it came from"
        )
    samples_dir = layout.root / "reports" / "samples"

    with mlflow.start_run(run_id=resumed_run, experiment_id=experiment_id) as active:
        run_id = active.info.run_id
        write_json(run_file, {"run_id": run_id, "tracking_uri": uri})
        if resumed_run is None:
            _log_run_inputs(layout, cfg, data, device, me, origin)

        def log(step: int, row: dict) -> None:
            mlflow.log_metrics(
                {k: v for k, v in row.items() if k != "step"}, step=step, synchronous=False
            )

        def sample(step: int, batch) -> None:
            image = grid(to_uint8(batch), family.grid_rows)
            path = save_png(image, samples_dir / f"step-{step:07d}.png", 3)
            shutil.copyfile(path, samples_dir / "latest.png")
            mlflow.log_artifact(str(path), artifact_path="samples")

        bar, update = _progress_printer(cfg.log_every, family.stat_names)
        try:
            probe = built.make_probe()
            with bar:
                callbacks = Callbacks(log=log, sample=sample)
                state = fit(family, cfg, ckpt_dir, callbacks, update, probe, me.rank, me.world)
        except BaseException as err:  # the run ends FAILED; say why on it
            mlflow.set_tag("failure_reason", str(err) or type(err).__name__)
            raise
        best = {"best_step": state.best_step, "best_probe_fid": state.best_metric}
        documents[built.best_into].update(best)
        write_models(layout, state, documents, built.folders)
        summary = _log_outputs(layout, state, ckpt_dir)
        summary.update(
            run_id=run_id,
            device=str(device),
            devices=me.world,
            dataset_hash=data.manifest["content_hash"],
        )
        write_json(layout.train_run, summary)
    return summary


def _log_outputs(layout: Layout, state, ckpt_dir: Path) -> dict:
    """models/, the last full checkpoint, the loss and probe logs to the active run."""
    import mlflow

    from components.train.checkpoint import latest_checkpoint

    pd.DataFrame(state.history).to_csv(layout.train_log, index=False)
    pd.DataFrame(state.probes).to_csv(layout.probe_log, index=False)
    mlflow.log_artifacts(str(layout.models), artifact_path="models")
    if (last := latest_checkpoint(ckpt_dir)) is not None:
        mlflow.log_artifact(str(last), artifact_path="checkpoint")  # full state, to resume
    mlflow.log_artifact(str(layout.train_log))
    mlflow.log_artifact(str(layout.probe_log))
    mlflow.set_tags({"best_step": state.best_step, "best_probe_fid": state.best_metric})
    if layout.validation_result.is_file():
        mlflow.log_artifact(str(layout.validation_result))
    return {
        "steps": state.step,
        "replica_digests": state.replica_digests,
        **state.history[-1],
    }
