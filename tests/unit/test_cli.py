"""Code: the command line front door."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, SMOKE

HEAVY = ("torch", "prefect", "mlflow", "dvc", "great_expectations")


def ganops(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "components.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("argv", [["--help"], ["show-params"]], ids=["help", "show-params"])
def test_light_commands_import_no_heavy_library(argv):
    """`ganops --help` and `ganops show-params` (config loading) never import torch & co."""
    code = (
        "import sys\nfrom components.cli import app\n"
        f"try:\n    app({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_help_lists_commands():
    start = time.perf_counter()
    out = ganops("--help")
    elapsed = time.perf_counter() - start
    assert out.returncode == 0
    for command in ("run", "stage"):
        assert command in out.stdout
    print(f"ganops --help: {elapsed:.2f}s including interpreter start")


def test_bad_override_is_one_line_and_exit_2():
    out = ganops("stage", "train", "--params", str(SMOKE), "--set", "train.lr=1")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip() == "error: --set train.lr: unknown key 'lr' in section 'train'"


def test_help_shows_bracketed_defaults():
    """[section.key] in help texts is the default's source, not markup to swallow."""
    out = ganops("compare", "--help")
    assert "[evaluate.seed]" in out.stdout and "[evaluate.nearest_k]" in out.stdout


def test_model_that_is_neither_folder_nor_uri_touches_no_store(tmp_path):
    args = ("--model", "./modles", "--direction", "a2b", "src", "dst")
    out = ganops("translate", *args, cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--model ./modles: no such folder, and not a models:/ or runs:/ URI" in out.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_unknown_stage_is_rejected():
    out = ganops("stage", "deploy")
    assert out.returncode != 0
    assert "unknown stage 'deploy'" in out.stderr
    assert "Traceback" not in out.stderr


def test_show_params_prints_resolved_config():
    out = ganops("show-params", "--params", str(SMOKE), "--set", "train.seed=5")
    assert out.returncode == 0
    assert "seed: 5" in out.stdout


@pytest.mark.slow  # a real GX validation in a subprocess
def test_stage_validate_exits_nonzero_with_one_line_per_failed_check(tmp_path):
    import shutil

    shutil.copy(SMOKE, tmp_path / "params.yaml")
    env_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    import os

    env = {**os.environ, "MLFLOW_TRACKING_URI": env_uri}
    run = [sys.executable, "-m", "components.cli", "stage"]
    assert (
        subprocess.run(
            [*run, "ingest", "--set", "ingest.source=digits"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
        ).returncode
        == 0
    )
    out = subprocess.run(
        [
            *run,
            "validate",
            "--set",
            "ingest.source=digits",
            "--set",
            "validate.min_images=5000",
            "--set",
            "validate.min_class_fraction=0.2",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    failed = [line for line in out.stderr.splitlines() if line.strip().startswith("FAILED")]
    assert len(failed) == 2, out.stderr
    assert "observed 1797" in failed[0]
    # params that describe other data than data/processed holds: one line, nothing validated
    stale = subprocess.run(
        [*run, "validate"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert stale.returncode == 1 and "Traceback" not in stale.stderr
    assert stale.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'data' / 'processed'}: was ingested with ingest.source='digits', "
        "params give 'mnist5k'; pass the ingest's settings (--set ingest.KEY=VALUE) or "
        "re-ingest (`ganops stage ingest`, `dvc repro`)"
    ), stale.stderr


@pytest.mark.slow  # trains both loops
def test_bench_train_prints_one_json_line_per_implementation():
    import json

    args = ("--image-size", "28", "--batch-size", "8", "--steps", "2", "--repeats", "2")
    out = ganops("bench", "train", *args, "--params", str(SMOKE))
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert [r["impl"] for r in rows] == ["ganops", "plain"]
    assert all(r["img_per_s"] > 0 and r["batch_size"] == 8 for r in rows)
    assert all(
        len(r["runs"]) == 2 and min(r["runs"]) <= r["img_per_s"] <= max(r["runs"]) for r in rows
    )
    bad = ganops("bench", "train", "--image-size", "48", "--params", str(SMOKE))
    assert bad.returncode == 2 and bad.stderr.startswith("error: bench train: --arch")


@pytest.mark.slow  # trains both loops
def test_bench_train_resnet_runs_at_32_px_by_default(capfd):
    """resnet builds 32-256 px only: without --image-size the bench picks 32 (SNGAN's)."""
    import json

    from components.cli import main

    args = ("--arch", "resnet", "--batch-size", "2", "--steps", "2", "--repeats", "1")
    with pytest.raises(SystemExit) as done:  # in process; bench/speed.py runs in a child
        main(["bench", "train", *args, "--params", str(SMOKE)])
    out = capfd.readouterr()  # the child writes to this process's file descriptors
    assert done.value.code == 0, out.err
    rows = [json.loads(line) for line in out.out.splitlines() if line.startswith("{")]
    assert [r["impl"] for r in rows] == ["ganops", "plain"]
    for row in rows:
        assert row["arch"] == "resnet" and row["image_size"] == 32 and row["batch_size"] == 2
        assert row["img_per_s"] > 0 and row["runs"] == [row["img_per_s"]]
    bad = ganops("bench", "train", "--arch", "resnet", "--image-size", "28", "--params", str(SMOKE))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == (
        "error: bench train: --arch resnet builds --image-size 32|64|128|256"
    )


def test_bench_without_bench_folder_is_one_line_and_exit_2(monkeypatch, tmp_path, capsys):
    """A non-editable install has no bench/: `ganops bench` says so in one line."""
    from components import cli

    monkeypatch.setattr(cli, "BENCH_SCRIPT", tmp_path / "bench" / "speed.py")
    with pytest.raises(SystemExit) as done:
        cli.main(["bench", "train", "--steps", "1", "--params", str(SMOKE)])
    assert done.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: bench train: no {tmp_path / 'bench' / 'speed.py'}: "
        "the benchmarks run from a source checkout"
    )


def test_library_imports_neither_flows_nor_bench():
    """components/ is the library: flows/ and bench/ import it, never the reverse (`ganops run`
    loads the flow by its entrypoint, `ganops bench` runs bench/speed.py in a child)."""
    import ast

    offenders = []
    for path in sorted((ROOT / "components").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            offenders += [
                f"{path.relative_to(ROOT)}:{node.lineno} {name}"
                for name in names
                if name.split(".")[0] in ("flows", "bench")
            ]
    assert offenders == []


def test_run_loads_the_flow_the_deployments_name():
    """`ganops run` runs the flow at infra/prefect.yaml's entrypoint, loaded as a worker does."""
    import yaml

    from components import cli

    spec = yaml.safe_load((ROOT / "infra" / "prefect.yaml").read_text())
    assert {d["entrypoint"] for d in spec["deployments"]} == {cli.PIPELINE_ENTRYPOINT}
    flow = cli._pipeline_flow()
    assert flow.name == "ganops-pipeline"
    assert flow is cli._pipeline_flow()  # loaded once per process
    assert str(ROOT / "flows") not in sys.path  # the loader's sys.path entries are undone


def test_families_lists_every_family_and_data_kind():
    """`ganops families`: one line per family (its archs, what it trains on, pyfunc in/out,
    params file) and per data kind, from the registry, without importing torch."""
    import subprocess
    import sys

    from components import families

    code = (
        "import sys; from components.cli import main\n"
        "try:\n    main(['families'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "False"
    for family in families.FAMILIES.values():
        row = next(line for line in lines if line.strip().startswith(family.name))
        assert "|".join(family.archs) in row and family.params_file in row
        assert f"{family.pyfunc_in} -> {family.pyfunc_out}" in row
    from components import datakinds

    for kind in datakinds.KINDS.values():
        row = next(line for line in lines if line.strip().startswith(kind.name))
        assert kind.description in row and all(p in row for p in kind.processed_kinds)
