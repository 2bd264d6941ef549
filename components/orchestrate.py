"""What the Prefect flow needs beyond the stages themselves: cross-run cache keys and the check
that a cache hit's outputs are still on disk, flow-run names, the one-pipeline-per-model slot,
and the text of the artifacts. The flow (flows/pipeline.py) only calls these.

Cache keys hash file paths, file contents and params (never tensors):
- ingest: the source's content fingerprint + the `ingest:` section + the stage's code;
- validate: the processed dataset's content hash (manifest) + the `validate:` section + code.
A cached result is only a hit when the outputs that run left behind are still there, unchanged
(a small record under .cache/prefect/ says which key made which outputs); otherwise the flow
runs the stage again and the cache is refreshed.

Prefect and MLflow are imported inside functions: this module is off the CLI start-up path.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from components.config import Params, load_params
from components.layout import Layout, read_json, write_json
from components.tracking import file_md5

COMPONENTS_DIR = Path(__file__).resolve().parent
# The code each cached stage runs; the same files dvc.yaml lists as the stage's deps.
# (a folder stands for every .py file under it: loading params reads each family's options)
_CORE = ("__init__.py", "config.py", "errors.py", "layout.py", "families", "datakinds")
STAGE_CODE = {
    "ingest": (*_CORE, "ingest.py", "sources.py"),
    "validate": (*_CORE, "dataset.py", "tracking.py", "validate.py"),
}
CACHED_STAGES = tuple(STAGE_CODE)


def _sha256(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def source_fingerprint(source: str) -> str:
    """Content fingerprint of `ingest.source`: for a bundled set its name and the version of the
    package that ships it; for a file or folder the relative path, size and md5 of every file.
    A path that does not exist gets a fingerprint too (ingest then fails with a clear error)."""
    from components import datakinds

    bundled = datakinds.bundled()  # name -> (kind, the package whose version fingerprints it)
    if source in bundled:
        from importlib.metadata import version

        package = bundled[source][1]
        return _sha256("bundled", source, package, version(package))
    path = Path(source).expanduser()
    if path.is_file():
        return _sha256("file", path.name, str(path.stat().st_size), file_md5(path))
    if path.is_dir():
        entries = [
            f"{p.relative_to(path).as_posix()}:{p.stat().st_size}:{file_md5(p)}"
            for p in sorted(path.rglob("*"))
            if p.is_file()
        ]
        return _sha256("folder", *entries)
    return _sha256("missing", source)


def code_digest(stage: str) -> str:
    """Hash of the component files a cached stage runs: changed code is a cache miss."""
    files = []
    for name in STAGE_CODE[stage]:
        path = COMPONENTS_DIR / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return _sha256(*(f"{f.relative_to(COMPONENTS_DIR).as_posix()}:{file_md5(f)}" for f in files))


def dataset_hash(layout: Layout) -> str:
    """The processed dataset's content hash (pixels, labels, split), or '' when there is none."""
    if not layout.manifest.is_file():
        return ""
    return str(read_json(layout.manifest).get("content_hash", ""))


def stage_key(stage: str, params: Params, layout: Layout) -> str:
    """The cross-run cache key of a cached stage (ingest or validate)."""
    if stage == "ingest":
        data = source_fingerprint(params.ingest.source)
    elif stage == "validate":
        data = dataset_hash(layout) or "no-dataset"
    else:
        raise ValueError(f"stage {stage!r} is not cached (cached: {', '.join(CACHED_STAGES)})")
    return f"ganops-{stage}-" + _sha256(data, params.digest(stage), code_digest(stage))[:40]


def _outputs(stage: str, layout: Layout) -> list[Path]:
    if stage == "ingest":
        return [layout.manifest, layout.images, layout.meta]
    return [layout.validation_result, layout.validation / "data_docs" / "index.html"]


def outputs_state(stage: str, layout: Layout) -> str | None:
    """A fingerprint of the stage's outputs as they lie on disk (path, size, mtime, and the
    dataset hash they belong to), or None when one of them is missing."""
    files = _outputs(stage, layout)
    if not all(p.is_file() for p in files):
        return None
    stats = [
        f"{p.relative_to(layout.root)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files
    ]
    if stage == "validate":
        verdict = read_json(layout.validation_result)
        if not verdict.get("success") or verdict.get("dataset_hash") != dataset_hash(layout):
            return None
    return _sha256(dataset_hash(layout), *stats)


def _record_path(stage: str, layout: Layout) -> Path:
    return layout.root / ".cache" / "prefect" / f"{stage}.json"


def record_outputs(stage: str, key: str, layout: Layout) -> None:
    """After a stage ran: remember that `key` produced the outputs now on disk."""
    write_json(_record_path(stage, layout), {"key": key, "outputs": outputs_state(stage, layout)})


def outputs_intact(stage: str, key: str, layout: Layout) -> bool:
    """True when the outputs on disk are exactly those the run with cache key `key` wrote, so a
    cache hit may skip the stage. Missing, rewritten (e.g. by `dvc repro`) or foreign outputs
    make it False: the flow then runs the stage and refreshes the cache."""
    record = _record_path(stage, layout)
    if not record.is_file():
        return False
    try:
        saved = read_json(record)
    except (OSError, ValueError):
        return False
    current = outputs_state(stage, layout)
    return current is not None and saved == {"key": key, "outputs": current}


def run_name(params_file: str, overrides: list[str] | None) -> str:
    """`<source>-src<fingerprint>-params<hash>`: what data and which params a flow run used.
    Bad params still get a name (the flow then fails with the ConfigError)."""
    try:
        params = load_params(params_file, overrides or [])
    except Exception:
        return f"invalid-params-{Path(params_file).name}"
    source = params.ingest.source
    from components import datakinds

    label = source if source in datakinds.bundled() else Path(source).name or "source"
    label = "".join(c if c.isalnum() or c in "._-" else "-" for c in label)[:40]
    return f"{label}-src{source_fingerprint(source)[:8]}-params{params.digest()[:8]}"


def slot_name(model_name: str) -> str:
    """The global concurrency limit one pipeline per registered model holds."""
    return f"ganops-pipeline-{model_name}"


def ensure_slot(model_name: str) -> str:
    """Create the model's global concurrency limit (1 slot) unless it exists; an existing one is
    left as the operator set it. Returns its name."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    name = slot_name(model_name)
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):  # another pipeline created it meanwhile
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )
    return name


@contextmanager
def pipeline_slot(model_name: str, logger=None) -> Iterator[None]:
    """Hold the model's one pipeline slot for the block: a second pipeline for the same
    registered model waits here until the first ends (or its lease lapses after a crash)."""
    from prefect.concurrency.sync import concurrency

    name = ensure_slot(model_name)
    if logger is not None:
        logger.info(f"waiting for the pipeline slot {name!r} (one pipeline per model)")
    with concurrency(name, occupy=1, strict=True):
        if logger is not None:
            logger.info(f"holding {name!r}")
        yield


@contextmanager
def prefect_api() -> Iterator[None]:
    """The Prefect API for one `ganops run`: PREFECT_API_URL when set; else a temporary local
    server (what Prefect would start itself), but in its own session, so Ctrl-C or `timeout`
    sent to the terminal's process group stops the run, not the server the run reports its end
    to. It is stopped when the block ends."""
    import signal
    import subprocess
    import sys
    import time

    import httpx
    import prefect
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    port = SubprocessASGIServer().find_available_port()
    env = {
        **os.environ,
        **get_current_settings().to_environment_variables(exclude_unset=True),
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(prefect.__module_path__.parent),
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ],  # fmt: skip
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    timeout = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", 90))
    try:
        deadline = time.monotonic() + timeout
        while True:
            with suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the temporary Prefect server on port {port} did not start in {timeout:.0f}s"
                    " (set PREFECT_API_URL to use your own)"
                )
            time.sleep(0.2)
        print(f"Prefect: temporary server on {url} (set PREFECT_API_URL to use yours)")
        with temporary_settings(updates={PREFECT_API_URL: url}):
            try:
                yield
            finally:  # send the run's last logs and events while the server is still up
                from prefect.events.worker import EventsWorker
                from prefect.logging.handlers import APILogWorker

                for worker in (APILogWorker, EventsWorker):
                    with suppress(Exception):
                        worker.drain_all(timeout=5)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def validation_markdown(layout: Layout) -> str | None:
    """The validation summary, one line per expectation; None when there is no verdict for the
    dataset now on disk (a stale one is never shown)."""
    if not layout.validation_result.is_file():
        return None
    verdict = read_json(layout.validation_result)
    if verdict.get("dataset_hash") != dataset_hash(layout):
        return None
    rows = [
        f"| {c['check']} | {'pass' if c['success'] else '**FAIL**'} | {c['observed']} |"
        for c in verdict["results"]
    ]
    head = f"dataset `{verdict['dataset_hash'][:12]}`, {verdict['n_images']} images\n\n"
    return head + "| check | result | observed |\n|---|---|---|\n" + "\n".join(rows)


def metrics_markdown(metrics: dict) -> str:
    """metric | value | real-vs-real floor, one row per metric."""
    lines = ["| metric | value | floor |", "|---|---|---|"]
    for key, value in metrics.items():
        if key.endswith("_floor") or not isinstance(value, int | float):
            continue
        floor = metrics.get(f"{key}_floor")
        shown = "" if floor is None else f"{floor:.4g}"
        lines.append(f"| {key} | {value:.4g} | {shown} |")
    return "\n".join(lines)


def mlflow_ui_base(layout: Layout) -> str:
    """Where a person browses the MLflow store: the tracking server itself when it is one,
    else GANOPS_MLFLOW_UI (default: what `make mlflow-ui` serves)."""
    from components import tracking

    uri = tracking.tracking_uri(layout)
    if uri.startswith(("http://", "https://")):
        return uri.rstrip("/")
    return os.environ.get("GANOPS_MLFLOW_UI", "http://127.0.0.1:5000").rstrip("/")


def registration_links(decision: dict, layout: Layout) -> list[dict]:
    """Link artifacts for the MLflow run and the registered model version of a registration."""
    import mlflow

    from components import tracking

    tracking.setup(layout)
    run_id, name, version = decision["tags"]["run_id"], decision["model_name"], decision["version"]
    experiment_id = mlflow.get_run(run_id).info.experiment_id
    base = mlflow_ui_base(layout)
    return [
        {
            "key": "mlflow-run",
            "link": f"{base}/#/experiments/{experiment_id}/runs/{run_id}",
            "link_text": f"MLflow run {run_id} (runs:/{run_id})",
            "description": "the training run: params, losses, samples, metrics",
        },
        {
            "key": "model-version",
            "link": f"{base}/#/models/{name}/versions/{version}",
            "link_text": f"models:/{name}/{version} -> @{decision['alias']}",
            "description": decision["reason"],
        },
    ]


def failure_markdown(flow_run_name: str, parameters: dict, message: str | None) -> str:
    """What the on_failure hook records: which run, with what, and why it failed."""
    params = json.dumps(parameters, sort_keys=True, default=str)
    return (
        f"**{flow_run_name}** failed.\n\nparameters: `{params}`\n\n"
        f"reason:\n\n```\n{message or 'no message'}\n```\n"
    )
