"""The `ganops-pipeline` flow: ingest -> validate -> train -> evaluate -> register.

Each task is a thin wrapper around the same component function `ganops stage NAME` runs; the
flow passes the typed config and the project layout along, in stage order. What it adds as an
orchestrator (cache keys, output checks, run names, the per-model slot, artifact text) lives in
components/orchestrate.py:

- ingest and validate are cached across runs, keyed by the data's content hash and the stage's
  params (see orchestrate.stage_key); a hit requires the outputs still on disk;
- every task persists its result;
- I/O tasks (ingest reads the source, register talks to the registry) retry with exponential
  backoff on unexpected errors; a GanopsError (bad data, bad config, failed gate) never retries;
- one pipeline per registered model runs at a time (a Prefect global concurrency limit);
- artifacts: validation summary, metrics table, links to the MLflow run and model version, and
  on failure the reason.
"""

from __future__ import annotations

import logging

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run as current_flow_run
from prefect.tasks import exponential_backoff

from components import orchestrate
from components.config import Params, load_params
from components.errors import GanopsError
from components.layout import Layout
from components.stages import run_stage


class _NoTracebackForUserErrors(logging.Filter):
    """A GanopsError is the whole story: Prefect logs its message, not a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], GanopsError):
            record.exc_info, record.exc_text = None, None
        return True


for _name in ("prefect.task_runs", "prefect.flow_runs", "prefect.engine"):
    logging.getLogger(_name).addFilter(_NoTracebackForUserErrors())


def _retry_io_errors(task, task_run, state) -> bool:
    """Retry transient I/O failures only; a user error (bad data, bad config) fails at once."""
    try:
        state.result()
    except GanopsError:
        return False
    except Exception:
        return True
    return False


def _given_key(context, parameters) -> str:
    """The cache key the flow computed with orchestrate.stage_key (passed as `key`)."""
    return parameters["key"]


IO_RETRIES = dict(
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),  # 2, 4, 8 s
    retry_jitter_factor=0.5,
    retry_condition_fn=_retry_io_errors,
)


@task(name="ingest", cache_key_fn=_given_key, persist_result=True, **IO_RETRIES)
def ingest(params: Params, layout: Layout, key: str) -> dict:
    manifest = run_stage("ingest", params, layout)
    orchestrate.record_outputs("ingest", key, layout)
    return manifest


@task(name="validate", cache_key_fn=_given_key, persist_result=True)
def validate(params: Params, layout: Layout, key: str) -> dict:
    result = run_stage("validate", params, layout)
    orchestrate.record_outputs("validate", key, layout)
    return result


@task(name="train", cache_policy=NO_CACHE, persist_result=True)
def train(params: Params, layout: Layout) -> dict:
    return run_stage("train", params, layout)


@task(name="evaluate", cache_policy=NO_CACHE, persist_result=True)
def evaluate(params: Params, layout: Layout) -> dict:
    return run_stage("evaluate", params, layout)


@task(name="register", cache_policy=NO_CACHE, persist_result=True, **IO_RETRIES)
def register(params: Params, layout: Layout) -> dict:
    return run_stage("register", params, layout)


def _cached(stage_task, stage: str, params: Params, layout: Layout):
    """Run a cached stage: a hit only when the outputs its key produced are still on disk."""
    key = orchestrate.stage_key(stage, params, layout)
    fresh = not orchestrate.outputs_intact(stage, key, layout)
    return stage_task.with_options(refresh_cache=fresh)(params, layout, key)


def _run_name() -> str:
    parameters = current_flow_run.parameters
    return orchestrate.run_name(
        parameters.get("params_file", "params.yaml"), parameters.get("overrides")
    )


def _record_failure(flow, flow_run, state) -> None:
    """on_failure hook: the reason goes to a `failure` artifact on the run (Prefect logs the
    failed state itself)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import ArtifactCreate

    markdown = orchestrate.failure_markdown(flow_run.name, flow_run.parameters, state.message)
    with get_client(sync_client=True) as client:
        client.create_artifact(
            ArtifactCreate(
                key="failure",
                type="markdown",
                data=markdown,
                description="why this pipeline run failed",
                flow_run_id=flow_run.id,
            )
        )


@flow(
    name="ganops-pipeline",
    flow_run_name=_run_name,
    persist_result=True,
    on_failure=[_record_failure],
)
def ganops_pipeline(params_file: str = "params.yaml", overrides: list[str] | None = None) -> dict:
    """Run the five stages in order on one params file (plus `section.key=value` overrides)."""
    params = load_params(params_file, overrides or [])
    layout = Layout.here()
    logger = get_run_logger()
    with orchestrate.pipeline_slot(params.register_.model_name, logger):
        _cached(ingest, "ingest", params, layout)
        try:
            _cached(validate, "validate", params, layout)
        finally:
            summary = orchestrate.validation_markdown(layout)
            if summary is not None:
                create_markdown_artifact(
                    key="validation",
                    markdown=summary,
                    description="Great Expectations gate, one line per expectation",
                )
        trained = train(params, layout)
        if trained.get("rank0_here") is False:  # multi-node: this machine was not global rank 0
            logger.info("train: rank 0 ran on another node; evaluate and register run there")
            return {"model_name": params.register_.model_name, "rank0_here": False}
        metrics = evaluate(params, layout)
        create_markdown_artifact(
            key="metrics",
            markdown=orchestrate.metrics_markdown(metrics),
            description="evaluation of G_ema vs the test split",
        )
        decision = register(params, layout)
        for link in orchestrate.registration_links(decision, layout):
            create_link_artifact(**link)
    return {k: decision[k] for k in ("model_name", "version", "alias", "reason")}
