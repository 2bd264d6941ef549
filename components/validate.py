"""validate: a Great Expectations gate over a per-image summary table, before any training.

`summarize` turns the processed images into one row per image (computed with numpy); each data
kind (components/datakinds/<kind>/validate.py) builds its table from it (translation pairs add
domain, split, pairing and train/test-overlap columns) and defines its rules from `validate:`
params; `build_suite` asks the kind that wrote the dataset for them; `check`
runs them with a GX 1.x checkpoint and renders HTML Data Docs. The flow, `ganops stage validate`
and the tests all go through these same functions. GX is imported lazily: it costs seconds to
import. A rule of severity "warning" is reported and recorded but never fails the gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components import datakinds
from components.config import ValidateConfig
from components.dataset import Dataset, load_dataset
from components.errors import ValidationFailed
from components.layout import Layout, atomic_dir, write_json

SUITE_NAME = "ganops-images"


def pixel_std(images: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Each image's pixel std (the largest over its channels, so a flat colour is blank),
    read in chunks: a memory-mapped dataset is never loaded whole."""
    std = np.full(len(images), np.nan)
    path = getattr(images, "filename", None)  # a memory-mapped dataset: map each chunk afresh
    for start in range(0, len(images), chunk):
        source = np.load(path, mmap_mode="r") if path else images
        block = np.asarray(source[start : start + chunk], dtype=np.float32)
        del source  # unmap: read pages leave this process
        per_channel = block.reshape(*block.shape[:2], -1).std(axis=2)  # (n, C)
        std[start : start + len(block)] = per_channel.max(axis=1)
    return std


def summarize(images: np.ndarray, meta: pd.DataFrame, chunk: int = 65536) -> pd.DataFrame:
    """One row per image: shape, raw pixel statistics, label, duplicates, class share.

    Raw min/max/NaN counts come from ingest (taken before the uint8 cast); the std is read from
    the processed images in chunks, so a memory-mapped dataset is never loaded whole.
    Unreadable files get NaN statistics (GX skips them) and fail the `readable` rule instead.
    """
    readable = meta["readable"].to_numpy(dtype=bool)
    std = pixel_std(images, chunk)
    hashes = meta["hash"].where(readable)
    shape = {
        k: np.where(readable, v, np.nan)
        for k, v in zip(("channels", "height", "width"), images.shape[1:], strict=True)
    }
    return pd.DataFrame(
        {
            "file": meta["file"].to_numpy(),
            "readable": readable,
            **shape,
            "pixel_min": meta["raw_min"].to_numpy(),
            "pixel_max": meta["raw_max"].to_numpy(),
            "pixel_std": np.where(readable, std, np.nan),
            "n_nonfinite": meta["n_nonfinite"].to_numpy(),
            "label": meta["label"].to_numpy(),
            "duplicate_count": hashes.map(hashes.value_counts()).to_numpy(dtype=float),
            "class_fraction": meta["label"].map(meta["label"].value_counts(normalize=True)),
        }
    )


def summarize_dataset(data: Dataset) -> pd.DataFrame:
    """The per-row table the suite runs on, by the data kind that wrote the dataset."""
    return datakinds.of_processed(data.manifest).summarize(data)


def build_suite(cfg: ValidateConfig, manifest: dict) -> list[Rule]:
    """The expectations of the data kind that wrote the dataset, from `validate:` thresholds
    and the manifest (components/datakinds/<kind>/validate.py)."""
    return datakinds.of_processed(manifest).suite(cfg, manifest)


@dataclass(frozen=True)
class Rule:
    """One expectation with the words a user reads when it fails."""

    what: str
    expectation: object
    severity: str = "error"  # "warning": reported, recorded, never fails the gate


def _describe(rule: Rule, result, summary: pd.DataFrame) -> dict:
    """A JSON-able line for one expectation: what, pass/fail, observed, an example file."""
    res = result.result or {}
    observed = res.get("observed_value")
    if observed is None and res.get("unexpected_count") is not None:
        observed = (
            f"{res['unexpected_count']} of {res.get('element_count')} rows "
            f"({res.get('unexpected_percent', 0):.2f}%) outside"
        )
    if observed is None and res.get("partial_missing_list"):  # values expected, never seen
        observed = f"none with label(s) {', '.join(map(str, res['partial_missing_list']))}"
    example = None
    idx = res.get("unexpected_index_list") or []
    if idx:
        first = idx[0]["index"] if isinstance(idx[0], dict) else idx[0]
        example = str(summary["file"].iloc[int(first)])
    described = {
        "check": rule.what,
        "expectation": result.expectation_config.type,
        "success": bool(result.success),
        "observed": _plain(observed),
        "example": example,
    }
    if rule.severity != "error":
        described["severity"] = rule.severity
    return described


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


def check(summary: pd.DataFrame, rules: list[Rule], docs_dir: Path | None = None) -> list[dict]:
    """Run the suite with a GX checkpoint; render Data Docs into `docs_dir` when given."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    actions = []
    if docs_dir is not None:
        context.add_data_docs_site(
            site_name="ganops",
            site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
            },
        )
        actions.append(gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["ganops"]))
    batch = (
        context.data_sources.add_pandas("ganops")
        .add_dataframe_asset("image_summary")
        .add_batch_definition_whole_dataframe("all")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=SUITE_NAME))
    for rule in rules:
        suite.add_expectation(rule.expectation)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="image-summary", data=batch, suite=suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="ganops-gate",
            validation_definitions=[definition],
            actions=actions,
            result_format={"result_format": "COMPLETE"},
        )
    )
    outcome = checkpoint.run(batch_parameters={"dataframe": summary})
    (validation,) = outcome.run_results.values()
    by_id = {r.expectation_config.id: r for r in validation.results}
    return [_describe(rule, by_id[rule.expectation.id], summary) for rule in rules]


def _line(word: str, r: dict) -> str:
    return f"{word} {r['check']}: observed {r['observed']}" + (
        f" (e.g. {r['example']})" if r["example"] else ""
    )


def failure_lines(results: list[dict]) -> list[str]:
    """One line per failed check (warnings excluded)."""
    return [_line("FAILED", r) for r in results if not r["success"] and "severity" not in r]


def warning_lines(results: list[dict]) -> list[str]:
    """One line per warning that fired: printed and recorded, never failing the gate."""
    return [_line("WARNING", r) for r in results if not r["success"] and "severity" in r]


def passed(results: list[dict]) -> bool:
    return not failure_lines(results)


def validate_dataset(cfg: ValidateConfig, data: Dataset, layout: Layout) -> list[dict]:
    """Summarise, check, write Data Docs + summary and the verdict json (pass or fail)."""
    out_dir = layout.validation
    summary = summarize_dataset(data)
    with atomic_dir(out_dir) as tmp:
        results = check(summary, build_suite(cfg, data.manifest), tmp / "data_docs")
        summary.to_csv(tmp / "summary.csv", index=False)
        # for the MLflow run (train logs it); kept out of validation.json, which train depends
        # on, so a changed threshold does not retrain an unchanged dataset
        write_json(tmp / "params.json", cfg.model_dump(mode="json"))
    verdict = {
        "success": passed(results),
        "dataset_hash": data.manifest["content_hash"],
        "n_images": len(summary),
        "results": results,
    }
    if data.data_kind is not datakinds.PLAIN:  # plain image sets keep the verdict they had
        verdict["kind"] = data.kind
        verdict["warnings"] = warning_lines(results)
    write_json(layout.validation_result, verdict)
    return results


def log_to_mlflow(layout: Layout, manifest: dict, passed: bool) -> None:
    """Pass or fail, the verdict and the Data Docs go to a `validate` run in the experiment."""
    import mlflow

    from components import tracking

    experiment_id = tracking.setup(layout)
    tags = {
        "ganops.stage": "validate",
        "dataset_hash": manifest["content_hash"],
        "passed": str(passed).lower(),
    }
    with mlflow.start_run(
        experiment_id=experiment_id, tags=tags, run_name=f"validate-{manifest['content_hash'][:8]}"
    ):
        mlflow.log_artifact(str(layout.validation_result))
        mlflow.log_artifacts(str(layout.validation / "data_docs"), artifact_path="data_docs")


def run(cfg: ValidateConfig, layout: Layout) -> dict:
    """The validate stage: raises ValidationFailed (one line per failed check) on a bad dataset."""
    data = load_dataset(layout)
    results = validate_dataset(cfg, data, layout)
    docs = layout.validation / "data_docs" / "index.html"
    print(f"validate: Data Docs at {docs}")
    for line in warning_lines(results):
        print(f"validate: {line}")
    log_to_mlflow(layout, data.manifest, passed=passed(results))
    failed = failure_lines(results)
    if failed:
        raise ValidationFailed(
            f"{len(failed)} of {len(results)} data checks failed (report: {docs})\n  "
            + "\n  ".join(failed)
        )
    return {"passed": len(results), "data_docs": str(docs)}
