"""The `ganops` command. Heavy libraries are imported inside commands, never at start-up."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer

from components import families

app = typer.Typer(
    help="ganops: validated data -> adversarial training -> evaluation -> MLflow registry.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts show [section.key] defaults literally
)

ParamsOpt = Annotated[Path, typer.Option("--params", "-p", help="params file")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="override one key: section.key=value (repeatable)"),
]


def _load(params: Path, overrides: list[str] | None):
    from components.config import load_params

    return load_params(params, overrides or [])


# The source tree next to components/ (in a wheel, site-packages: it ships flows/, not bench/).
# The library imports neither flows/ nor bench/: `ganops run` loads the flow by its entrypoint,
# as the deployments in infra/prefect.yaml do, and `ganops bench` runs bench/speed.py.
ROOT = Path(__file__).resolve().parents[1]
PIPELINE_ENTRYPOINT = "flows/pipeline.py:ganops_pipeline"
BENCH_SCRIPT = ROOT / "bench" / "speed.py"


@functools.cache
def _pipeline_flow():
    """The pipeline flow, loaded from PIPELINE_ENTRYPOINT with Prefect's loader (a worker's)."""
    from prefect.flows import load_flow_from_entrypoint

    from components.errors import ConfigError

    path, name = PIPELINE_ENTRYPOINT.split(":")
    if not (ROOT / path).is_file():
        raise ConfigError(f"run: {ROOT / path} is missing (the flow of {PIPELINE_ENTRYPOINT})")
    saved = sys.path[:]
    try:
        return load_flow_from_entrypoint(f"{ROOT / path}:{name}", use_placeholder_flow=False)
    finally:
        sys.path[:] = saved  # the loader puts flows/ and the working directory first: undone


@app.command()
def run(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """Run the whole pipeline as a Prefect flow: ingest, validate, train, evaluate, register."""
    cfg_check = _load(params, set_)  # fail fast on a bad key, before Prefect starts
    del cfg_check
    from components.orchestrate import prefect_api

    ganops_pipeline = _pipeline_flow()
    with prefect_api():
        result = ganops_pipeline(params_file=str(params), overrides=list(set_ or []))
    typer.echo(f"pipeline done: {result}")


@app.command()
def stage(
    name: Annotated[str, typer.Argument(help="ingest | validate | train | evaluate | register")],
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
) -> None:
    """Run one stage (what dvc.yaml calls)."""
    from components.config import STAGES

    if name not in STAGES:
        from components.errors import ConfigError

        raise ConfigError(f"unknown stage {name!r} (one of {', '.join(STAGES)})")
    cfg = _load(params, set_)
    from components.stages import run_stage

    result = run_stage(name, cfg)
    typer.echo(f"{name} done: {result}")


@app.command()
def compare(
    real: Annotated[Path, typer.Argument(help="reference set: .npz or image folder")],
    fake: Annotated[Path, typer.Argument(help="candidate set: .npz or image folder")],
    epochs: Annotated[
        int | None, typer.Option(help="epochs of the feature network [evaluate.classifier_epochs]")
    ] = None,
    nearest_k: Annotated[
        int | None, typer.Option(help="k of the k-NN manifolds [evaluate.nearest_k]")
    ] = None,
    kid_subset_size: Annotated[
        int | None, typer.Option(help="KID subset size [evaluate.kid_subset_size]")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="[evaluate.seed]")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Print every metric between two sample sets as one JSON object (defaults: the
    `evaluate:` section of the params file)."""
    import json

    from components.evaluate.compare import compare as run_compare

    cfg = _load(params, None).evaluate
    result = run_compare(
        real,
        fake,
        epochs if epochs is not None else cfg.classifier_epochs,
        nearest_k if nearest_k is not None else cfg.nearest_k,
        kid_subset_size if kid_subset_size is not None else cfg.kid_subset_size,
        seed if seed is not None else cfg.seed,
    )
    typer.echo(json.dumps(result, sort_keys=True))


def _model_name(model_name: str | None, params: Path) -> str:
    """--model-name, else register.model_name of the params file, else (no params file here,
    e.g. generating from the registry elsewhere) the fallback name."""
    if model_name:
        return model_name
    if not params.is_file():
        from components.config import FALLBACK_MODEL_NAME

        return FALLBACK_MODEL_NAME
    return _load(params, None).register_.model_name


def _tracking_for(model: str) -> None:
    """--model: a folder is read as it is; a URI (models:/, runs:/, ...) needs the tracking
    store set up first; anything else is one error, before a store is touched."""
    if Path(model).is_dir():
        return
    if "/" not in model.partition(":")[2] or ":" not in model:
        from components.errors import ConfigError

        raise ConfigError(f"--model {model}: no such folder, and not a models:/ or runs:/ URI")
    from components import tracking
    from components.layout import Layout

    tracking.setup(Layout.here())


@app.command()
def generate(
    model: Annotated[
        str | None, typer.Option(help="model URI [models:/<register.model_name>@champion]")
    ] = None,
    n: Annotated[int, typer.Option("-n", help="number of images")] = 1000,
    out: Annotated[Path, typer.Option(help="output folder, or FILE.npz")] = Path("synthetic"),
    label: Annotated[int | None, typer.Option(help="make only this class")] = None,
    balanced: Annotated[bool, typer.Option(help="equal share of every class")] = False,
    seed: int = 0,
    truncation: Annotated[float, typer.Option(help="< 1: truncation trick")] = 1.0,
    prompt: Annotated[
        list[str] | None,
        typer.Option(help="a caption, for a model that takes text (repeatable): -n per caption"),
    ] = None,
    prompts: Annotated[
        Path | None, typer.Option(help="a file of captions, one per line (as --prompt)")
    ] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Write a synthetic dataset (image folder or .npz) from a registered generator; from a
    text-to-image model, -n images per caption and a metadata.jsonl (an imagefolder dataset)."""
    model = model or f"models:/{_model_name(None, params)}@champion"
    from components.generate import generate as run_generate
    from components.generate import read_prompts

    texts = read_prompts(prompt, prompts)  # checked before any model is loaded
    _tracking_for(model)
    manifest = run_generate(model, n, out, label, balanced, seed, truncation, texts)
    n, unit = manifest["n_images"], manifest.get("unit")  # music: MIDI windows; video: clips
    said = f"wrote {n} {unit} to {out}" if unit else f"wrote {n} images to {out}"
    typer.echo(f"{said} (from {model})")


ModelOpt = Annotated[
    str | None, typer.Option("--model-name", help="registered model [register.model_name]")
]


@app.command()
def promote(
    version: Annotated[str, typer.Argument(help="model version to make @champion")],
    reason: Annotated[str, typer.Option(help="why (recorded on the version)")],
    model_name: ModelOpt = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Make VERSION the champion by hand; the old champion becomes @previous-champion."""
    model_name = _model_name(model_name, params)
    from components.layout import Layout
    from components.register import promote as run_promote

    d = run_promote(Layout.here(), model_name, version, reason)
    typer.echo(f"{model_name} v{d['version']} -> @champion (was v{d['champion_before']})")


@app.command()
def rollback(
    reason: Annotated[str, typer.Option(help="why (recorded on the version)")],
    model_name: ModelOpt = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Put @previous-champion back as @champion."""
    model_name = _model_name(model_name, params)
    from components.layout import Layout
    from components.register import rollback as run_rollback

    d = run_rollback(Layout.here(), model_name, reason)
    typer.echo(f"{model_name} v{d['version']} -> @champion (was v{d['champion_before']})")


bench_app = typer.Typer(
    help="Speed benchmarks (one JSON line per implementation).", rich_markup_mode=None
)
app.add_typer(bench_app, name="bench")


# the options every `ganops bench` command takes (the families' cli.py add the rest)
BenchStepsOpt = Annotated[int, typer.Option(help="timed steps (after as many warm-up steps)")]
BenchDeviceOpt = Annotated[str, typer.Option(help="cpu | cuda")]
BenchImplOpt = Annotated[list[str] | None, typer.Option(help="ganops and/or plain")]
BenchRepeatsOpt = Annotated[int, typer.Option(help="runs per impl, taking turns; median reported")]


def _bench(command: str, params: Path, set_: list[str] | None, impl, **options) -> None:
    """Run `python bench/speed.py COMMAND` with these options in a child interpreter (bench/
    imports the library, never the reverse); its exit status is this command's. The options
    every bench command takes are checked here (device, impl, batch_size, steps, repeats)."""
    import os
    import subprocess

    from components.errors import ConfigError

    if options["device"] not in ("cpu", "cuda") or not set(impl or ()) <= {"ganops", "plain"}:
        raise ConfigError(f"bench {command}: --device cpu|cuda, --impl ganops|plain")
    if min(options["repeats"], options["steps"], options["batch_size"]) < 1:
        raise ConfigError(
            f"bench {command}: --batch-size, --steps and --repeats must be at least 1"
        )
    _load(params, set_)  # fail fast on a bad key, before a second interpreter starts
    if not BENCH_SCRIPT.is_file():
        raise ConfigError(
            f"bench {command}: no {BENCH_SCRIPT}: the benchmarks run from a source checkout"
        )
    argv = [f"--{key.replace('_', '-')}={v}" for key, v in options.items() if v is not None]
    argv += [f"--impl={i}" for i in impl or ()] + [f"--set={item}" for item in set_ or ()]
    pythonpath = os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))
    child = subprocess.Popen(  # the library the child imports is this one
        [sys.executable, str(BENCH_SCRIPT), command, *argv, f"--params={params}"],
        env=os.environ | {"PYTHONPATH": pythonpath},
    )
    try:
        code = child.wait()
    except KeyboardInterrupt:  # Ctrl-C, or a SIGTERM sent to this process alone: pass it on
        child.terminate()
        child.wait()
        raise
    if code:
        raise typer.Exit(code if code > 0 else 128 - code)  # killed by signal N: 128 + N


@app.command("show-params")
def show_params(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """Print the resolved params (a dry run: nothing is trained)."""
    import yaml

    typer.echo(yaml.safe_dump(_load(params, set_).to_dict(), sort_keys=False).rstrip())


@app.command("families")
def list_families() -> None:
    """List the model families and the data kinds they train on, one line each."""
    from components import families

    typer.echo("families (train.arch -> family: trains on; pyfunc in -> out; params file):")
    for line in families.describe():
        typer.echo(f"  {line}")
    from components import datakinds

    trained_by = families.data_kinds()  # processed kind -> the archs that train on it
    typer.echo("data kinds (ingest.source -> data/processed kinds; the archs that train on them):")
    for kind in datakinds.KINDS.values():
        processed = ", ".join(
            f"{p} ({'|'.join(trained_by.get(p, [])) or 'no family yet'})"
            for p in kind.processed_kinds
        )
        typer.echo(f"  {kind.name:<12} {kind.description}; {processed}")


@app.command("export")
def export_model(
    model: Annotated[str, typer.Option(help="models:/NAME@ALIAS, runs:/ID/model, or a folder")],
    out: Annotated[Path, typer.Option(help="file to write (.onnx or .pt)")],
    format_: Annotated[str, typer.Option("--format", help="onnx | torchscript")] = "onnx",
    direction: Annotated[str, typer.Option(help="a2b | b2a (translators only)")] = "a2b",
) -> None:
    """Export a generator or translator; print the max abs difference to PyTorch's output."""
    from components.export import export

    _tracking_for(model)
    diff = export(model, format_, out, direction)
    typer.echo(f"wrote {out} ({format_}); parity: max abs difference to PyTorch {diff:.2e}")


# each family's own commands (components/families/<name>/cli.py: bench train, translate, ...),
# in the registry's order
for _family in families.FAMILIES.values():
    _family.add_commands(app, bench_app)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors print one line and exit non-zero, without a traceback."""
    from components import signals
    from components.errors import GanopsError

    try:
        with signals.handled():  # SIGTERM unwinds like Ctrl-C: runs end FAILED, servers stop
            app(args=argv)  # standalone: click prints usage errors itself and exits 2
    except GanopsError as err:
        typer.secho(f"error: {err}", fg="red", err=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        typer.secho("interrupted", fg="red", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
