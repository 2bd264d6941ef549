"""A candidate generator registered from its own process (for the concurrency tests).

python -m tests.registry_worker ROOT FID TRACKING_URI
"""

from __future__ import annotations

import sys
from pathlib import Path


def make_candidate(root: Path, fid: float) -> None:
    """A real (untrained) G with an MLflow run and the metrics a registration reads."""
    import mlflow
    import torch
    from safetensors.torch import save_file

    from components import tracking
    from components.layout import Layout, write_json
    from components.models import Generator

    layout = Layout(root)
    layout.models.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(int(fid * 1000))
    spec = {
        "z_dim": 8,
        "num_classes": 10,
        "channels": 1,
        "image_size": 28,
        "width": 16,
        "class_names": [str(i) for i in range(10)],
    }
    save_file(Generator(8, 10, 1, 28, 16).state_dict(), str(layout.models / "G_ema.safetensors"))
    write_json(layout.models / "generator.json", spec)
    write_json(
        layout.metrics,
        {
            "fid": fid,
            "fid_floor": 1.0,
            "cond_acc": 0.95,
            "tstr": 0.9,
            "modes_covered": 10,
            "modes_covered_floor": 10,
        },
    )
    experiment = tracking.setup(layout)
    with mlflow.start_run(experiment_id=experiment, tags={"dataset_hash": "test"}) as run:
        mlflow.log_param("train.kimg", 1)
    write_json(layout.train_run, {"run_id": run.info.run_id})


def register(root: Path, fid: float, cfg=None) -> dict:
    from components import register as reg
    from components.config import load_params
    from components.layout import Layout

    make_candidate(root, fid)
    if cfg is None:
        cfg = load_params(Path(__file__).parent / "params-smoke.yaml").register_
    return reg.run(cfg, Layout(root))


if __name__ == "__main__":
    import os

    root, fid, uri = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    os.environ["MLFLOW_TRACKING_URI"] = uri
    decision = register(root, fid)
    print(f"v{decision['version']} @{decision['alias']}")
