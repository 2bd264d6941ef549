"""The `ganops-pipeline` flow: ingest -> validate -> train -> evaluate -> register.

Each task is a thin wrapper around the same component function `ganops stage NAME` runs;
the flow only passes the typed config and the project layout along, in stage order.
"""

from __future__ import annotations

import logging

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from components.config import Params, load_params
from components.errors import GanopsError
from components.layout import Layout, read_json
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


def _metrics_table(metrics: dict) -> str:
    """metric | value | real-vs-real floor, one row per metric."""
    lines = ["| metric | value | floor |", "|---|---|---|"]
    for key, value in metrics.items():
        if key.endswith("_floor"):
            continue
        floor = metrics.get(f"{key}_floor")
        shown = "" if floor is None else f"{floor:.4g}"
        lines.append(f"| {key} | {value:.4g} | {shown} |")
    return "\n".join(lines)


@task(
    name="ingest",
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=_retry_io_errors,
    cache_policy=NO_CACHE,
)
def ingest(params: Params, layout: Layout) -> dict:
    return run_stage("ingest", params, layout)


@task(name="validate", cache_policy=NO_CACHE)
def validate(params: Params, layout: Layout) -> dict:
    try:
        return run_stage("validate", params, layout)
    finally:
        result = layout.validation_result
        if result.is_file():
            checks = read_json(result)["results"]
            create_markdown_artifact(
                key="validation",
                description="Great Expectations gate, one line per expectation",
                markdown="| check | result | observed |\n|---|---|---|\n"
                + "\n".join(
                    f"| {c['check']} | {'pass' if c['success'] else '**FAIL**'} | {c['observed']} |"
                    for c in checks
                ),
            )


@task(name="train", cache_policy=NO_CACHE)
def train(params: Params, layout: Layout) -> dict:
    return run_stage("train", params, layout)


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate(params: Params, layout: Layout) -> dict:
    metrics = run_stage("evaluate", params, layout)
    create_markdown_artifact(
        key="metrics",
        markdown=_metrics_table(metrics),
        description="evaluation of G_ema vs the test split",
    )
    return metrics


@task(name="register", cache_policy=NO_CACHE)
def register(params: Params, layout: Layout) -> dict:
    return run_stage("register", params, layout)


@flow(name="ganops-pipeline")
def ganops_pipeline(params_file: str = "params.yaml", overrides: list[str] | None = None) -> dict:
    """Run the five stages in order on one params file (plus `section.key=value` overrides)."""
    params = load_params(params_file, overrides or [])
    layout = Layout.here()
    ingest(params, layout)
    validate(params, layout)
    train(params, layout)
    evaluate(params, layout)
    decision = register(params, layout)
    return {k: decision[k] for k in ("model_name", "version", "alias", "reason")}
