"""Code: `ganops bench translate` prints one JSON line per implementation (ganops' translation
trainer and the plain reference-style loop, same config) and rejects bad values in one line."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SMOKE, SMOKE_BY_FAMILY
from tests.unit.test_cli import ganops

TINY = (  # smallest nets: the test checks the plumbing, not the speed
    "--image-size", "32", "--batch-size", "2", "--steps", "2", "--repeats", "1",
    "--params", str(SMOKE_BY_FAMILY["translation"]),
    "--set", "train.g_channels=8", "--set", "train.d_channels=8",
    "--set", "train.translation.n_blocks=1", "--set", "train.translation.pool_size=2",
)  # fmt: skip
SAME = ("arch", "image_size", "channels", "batch_size", "steps", "g_channels", "d_channels")


@pytest.mark.parametrize("arch", ["cyclegan", "pix2pix"])
def test_bench_translate_prints_one_json_line_per_implementation(arch, capfd):
    from components.cli import main

    with pytest.raises(SystemExit) as done:  # in process; bench/speed.py runs in a child
        main(["bench", "translate", "--arch", arch, *TINY])
    out = capfd.readouterr()  # the child writes to this process's file descriptors
    assert done.value.code == 0, out.err
    rows = [json.loads(line) for line in out.out.splitlines() if line.startswith("{")]
    assert [r["impl"] for r in rows] == ["ganops", "plain"]
    assert all(r["img_per_s"] > 0 and len(r["runs"]) == 1 for r in rows)
    ganops_row, plain_row = rows
    assert {k: ganops_row[k] for k in SAME} == {k: plain_row[k] for k in SAME}
    assert ganops_row["arch"] == arch and ganops_row["g_channels"] == 8
    assert plain_row["precision"] == "fp32" and plain_row["data"] == "DataLoader float"


def test_bench_translate_bad_arch_is_one_line_and_exit_2():
    out = ganops("bench", "translate", "--arch", "dcgan", "--params", str(SMOKE))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert out.stderr.startswith("error: bench translate: --arch cyclegan|pix2pix")
