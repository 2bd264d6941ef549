"""Ingest + validate throughput and peak memory on synthetic 28x28 datasets.

    python bench/ingest.py [--sizes 10000 100000 1000000]

Each size runs in a fresh process (so peak RSS is that run's own) on an uncompressed .npz
written in chunks. Prints one JSON line per stage and size: images/s and peak RSS in MiB.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from components.config import load_params
from components.layout import Layout
from components import ingest, validate
from components.dataset import load_dataset
root, source, stage = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
params = load_params(sys.argv[4], [f"ingest.source={source}", "validate.min_images=10",
                                   "validate.max_duplicate_fraction=1.0"])
layout = Layout(root)
start = time.perf_counter()
if stage == "ingest":
    n = ingest.run(params.ingest, layout)["n_images"]
else:
    data = load_dataset(layout)
    n = len(data.images)
    validate.validate_dataset(params.validate_, data, layout)
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"stage": stage, "n_images": n, "seconds": round(elapsed, 2),
                  "images_per_s": round(n / elapsed), "peak_rss_mib": round(peak)}))
"""


def synthetic_npz(path: Path, n: int, chunk: int = 50_000) -> Path:
    """Write an .npz of n random 28x28 uint8 'digits' + labels without holding it in memory."""
    rng = np.random.default_rng(0)
    npy = path.with_suffix(".images.npy")
    arr = np.lib.format.open_memmap(npy, mode="w+", dtype=np.uint8, shape=(n, 28, 28))
    for start in range(0, n, chunk):
        k = min(chunk, n - start)
        block = rng.integers(0, 40, (k, 28, 28), dtype=np.uint8)
        ys, xs = rng.integers(4, 18, k), rng.integers(4, 18, k)
        for i in range(k):
            block[i, ys[i] : ys[i] + 8, xs[i] : xs[i] + 8] = 220
        arr[start : start + k] = block
    arr.flush()
    del arr
    labels = path.with_suffix(".labels.npy")
    np.save(labels, np.arange(n) % 10)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.write(npy, "images.npy")
        zf.write(labels, "labels.npy")
    npy.unlink()
    labels.unlink()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            src = synthetic_npz(Path(tmp) / f"synthetic-{n}.npz", n)
            for stage in ("ingest", "validate"):
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, tmp, str(src), stage, args.params],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if out.returncode != 0:
                    sys.exit(f"bench failed at {stage} n={n}:\n{out.stderr[-2000:]}")
                print(out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
