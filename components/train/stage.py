"""train: fit a (conditional) GAN on the processed train split; log everything to one MLflow run.

Outputs (models/): G, G_ema and D as safetensors, the generator spec, and run.json naming the
MLflow run that evaluate and register continue. Full checkpoints go to checkpoints/<config>/ and
a rerun of the same config resumes from the newest one. train.devices > 1 runs DDP under
torchrun (components/train/distributed.py); rank 0 does all the writing.
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

MODEL_FILES = ("G", "G_ema", "D")


def checkpoint_dir(cfg: TrainConfig, layout: Layout, data_hash: str) -> Path:
    """One folder per (train config, dataset): a rerun of the same pair resumes there."""
    key = json.dumps({"train": cfg.model_dump(mode="json"), "data": data_hash}, sort_keys=True)
    return layout.checkpoints / hashlib.sha256(key.encode()).hexdigest()[:12]


def _progress_printer(log_every: int):
    """A rich progress bar: step, kimg, losses and img/s. Without a terminal (CI, logs,
    Prefect workers) it prints a plain line at every tenth of the run instead."""
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
        info = (
            f"kimg {row['kimg']:.1f}  d_loss {row['d_loss']:.3f}  g_loss {row['g_loss']:.3f}"
            f"  D(x) {row['D_x']:.2f}  D(G(z)) {row['D_G_z']:.2f}  {row['img_per_s']:.0f} img/s"
        )
        bar.update(task, completed=step, total=total, info=info)
        tenth = max(total // 10, 1)
        if not bar.console.is_terminal and (
            step // tenth != (step - log_every) // tenth or step == total
        ):
            print(f"train: step {step}/{total}  {info}", flush=True)

    return bar, update


def write_models(layout: Layout, state, spec: dict) -> None:
    """G, G_ema, D as safetensors plus the spec, swapped into models/ as one folder."""
    from safetensors.torch import save_file

    states = {name: getattr(state, name).state_dict() for name in MODEL_FILES}
    states["G_ema_last"] = states["G_ema"]
    if state.best_G_ema is not None:
        states["G_ema"] = state.best_G_ema  # the probe's best: what evaluate and register use
    with atomic_dir(layout.models) as tmp:
        for name, tensors in states.items():
            tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
            save_file(tensors, str(tmp / f"{name}.safetensors"))
        write_json(
            tmp / "generator.json",
            {**spec, "best_step": state.best_step, "best_probe_fid": state.best_metric},
        )


def run(cfg: TrainConfig, layout: Layout) -> dict:
    """The train stage: returns a summary (run id, steps, final losses)."""
    from components.train.distributed import current_rank, init_process_group, launch
    from components.train.loop import pick_device

    me = current_rank()
    if me.world == 1 and cfg.devices > 1:
        return launch(cfg, layout)
    if me.world != cfg.devices:
        raise ConfigError(
            f"train.devices: {cfg.devices}, but torchrun started {me.world} processes"
        )
    if me.world == 1:
        return _train(cfg, layout, pick_device(), me)
    import torch.distributed as dist

    device = init_process_group(me)
    try:
        return _train(cfg, layout, device, me)
    finally:
        dist.destroy_process_group()


def _train(cfg: TrainConfig, layout: Layout, device, me) -> dict:
    """One process's training: rank 0 tracks, probes and writes; other ranks only train."""
    import mlflow

    from components import tracking
    from components.images import grid, save_png, to_uint8
    from components.train.loop import Callbacks, fit, generator_spec

    data = load_dataset(layout)
    images, labels = data.split("train")
    num_classes = data.num_classes
    ckpt_dir = checkpoint_dir(cfg, layout, data.manifest["content_hash"])
    train_labels = labels if num_classes else None
    if me.rank != 0:
        fit(
            cfg,
            images,
            train_labels,
            num_classes,
            ckpt_dir,
            Callbacks(),
            device,
            rank=me.rank,
            world=me.world,
        )
        return {}
    experiment_id = tracking.setup(layout)
    run_file = ckpt_dir / "mlflow_run.json"
    resumed_run = read_json(run_file)["run_id"] if run_file.is_file() else None
    samples_dir = layout.root / "reports" / "samples"
    rows = max(num_classes, 1)

    with mlflow.start_run(run_id=resumed_run, experiment_id=experiment_id) as active:
        run_id = active.info.run_id
        write_json(run_file, {"run_id": run_id})
        if resumed_run is None:
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
                }
            )

        def log(step: int, row: dict) -> None:
            mlflow.log_metrics(
                {k: v for k, v in row.items() if k != "step"}, step=step, synchronous=False
            )

        def sample(step: int, batch) -> None:
            path = save_png(grid(to_uint8(batch), rows), samples_dir / f"step-{step:07d}.png", 3)
            shutil.copyfile(path, samples_dir / "latest.png")
            mlflow.log_artifact(str(path), artifact_path="samples")

        from components.train.probe import Probe

        probe = Probe(
            images,
            labels if num_classes else None,
            num_classes,
            cfg.z_dim,
            layout.classifier_cache,
            data.manifest["content_hash"],
            seed=cfg.seed,
        )
        bar, update = _progress_printer(cfg.log_every)
        with bar:
            state = fit(
                cfg,
                images,
                labels if num_classes else None,
                num_classes,
                ckpt_dir,
                Callbacks(log=log, sample=sample),
                device=device,
                progress=update,
                probe=probe,
                rank=me.rank,
                world=me.world,
            )
        spec = generator_spec(cfg, num_classes, images.shape[1], images.shape[2])
        spec["class_names"] = data.manifest["class_names"]
        write_models(layout, state, spec)
        pd.DataFrame(state.history).to_csv(layout.train_log, index=False)
        pd.DataFrame(state.probes).to_csv(layout.probe_log, index=False)
        mlflow.log_artifacts(str(layout.models), artifact_path="models")
        from components.train.checkpoint import latest_checkpoint

        if (last := latest_checkpoint(ckpt_dir)) is not None:
            mlflow.log_artifact(str(last), artifact_path="checkpoint")  # full state, to resume
        mlflow.log_artifact(str(layout.train_log))
        mlflow.log_artifact(str(layout.probe_log))
        mlflow.set_tags({"best_step": state.best_step, "best_probe_fid": state.best_metric})
        if layout.validation_result.is_file():
            mlflow.log_artifact(str(layout.validation_result))
        summary = {
            "run_id": run_id,
            "steps": state.step,
            "device": str(device),
            "devices": me.world,
            "replica_digests": state.replica_digests,
            "dataset_hash": data.manifest["content_hash"],
            **state.history[-1],
        }
        write_json(layout.train_run, summary)
    return summary
