"""validate: a Great Expectations gate over a per-image summary table, before any training.

`summarize` turns the processed dataset into one row per image (computed with numpy);
`summarize_translation` adds domain, split, pairing and train/test-overlap columns for unpaired
and paired sets. `build_suite` defines the expectations once, from `validate:` params; `check`
runs them with a GX 1.x checkpoint and renders HTML Data Docs. The flow, `ganops stage validate`
and the tests all go through these same functions. GX is imported lazily: it costs seconds to
import. A rule of severity "warning" is reported and recorded but never fails the gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components.config import ValidateConfig
from components.dataset import Dataset, load_dataset
from components.errors import ValidationFailed
from components.layout import Layout, atomic_dir, write_json

SUITE_NAME = "ganops-images"
SAME_DOMAIN_SHARE = 0.5  # warn when more than this share of A-train images is also in B-train


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


def summarize_translation(data: Dataset) -> pd.DataFrame:
    """One row per image of an unpaired or paired set (a paired file gives an A and a B row):
    generate's columns plus domain, split, raw aspect (width / height of the file as it came),
    whether its content hash is in both train and test, and (A-train rows) in B-train."""
    meta = data.meta
    domain = meta["domain"].to_numpy()
    if data.images is not None:
        arrays = [data.images]
    else:  # meta holds A rows, then B rows: the per-domain arrays concatenate in that order
        arrays = [data.domain_images[d] for d in ("A", "B")]
    std = np.concatenate([pixel_std(a) for a in arrays])
    dims = np.concatenate([np.repeat([a.shape[1:]], len(a), axis=0) for a in arrays])  # (N, 3)
    readable = meta["readable"].to_numpy(dtype=bool)
    hashes = meta["hash"].where(readable)
    split = meta["split"].to_numpy()
    in_train, in_test = (
        set(hashes[split == "train"].dropna()),
        set(hashes[split == "test"].dropna()),
    )
    b_train = set(hashes[(split == "train") & (domain == "B")].dropna())
    per_domain = hashes.groupby(domain).transform(lambda h: h.map(h.value_counts()))
    return pd.DataFrame(
        {
            "file": meta["file"].to_numpy(),
            "domain": domain,
            "split": split,
            "readable": readable,
            **{
                k: np.where(readable, dims[:, i], np.nan)
                for i, k in enumerate(("channels", "height", "width"))
            },
            "pixel_min": meta["raw_min"].to_numpy(),
            "pixel_max": meta["raw_max"].to_numpy(),
            "pixel_std": np.where(readable, std, np.nan),
            "n_nonfinite": meta["n_nonfinite"].to_numpy(),
            "label": meta["label"].to_numpy(),
            "duplicate_count": per_domain.to_numpy(dtype=float),
            "raw_aspect": (meta["raw_width"] / meta["raw_height"]).to_numpy(),
            "in_train_and_test": hashes.map(lambda h: h in in_train and h in in_test).to_numpy(),
            "in_B_train": hashes.map(lambda h: h in b_train).to_numpy() & (domain == "A"),
        }
    )


def summarize_dataset(data: Dataset) -> pd.DataFrame:
    """The per-image table the suite runs on, for any kind of dataset."""
    if data.kind == "generate":
        return summarize(data.images, data.meta)
    return summarize_translation(data)


@dataclass(frozen=True)
class Rule:
    """One expectation with the words a user reads when it fails."""

    what: str
    expectation: object
    severity: str = "error"  # "warning": reported, recorded, never fails the gate


def build_suite(cfg: ValidateConfig, manifest: dict) -> list[Rule]:
    """The expectations, from `validate:` thresholds and the manifest's declared shape/classes."""
    import great_expectations as gx

    if manifest.get("kind", "generate") != "generate":
        return translation_suite(cfg, manifest)
    E = gx.expectations
    channels, height, width = manifest["shape"]
    rules = [
        Rule(
            f"dataset size >= validate.min_images ({cfg.min_images})",
            E.ExpectTableRowCountToBeBetween(min_value=cfg.min_images),
        ),
        Rule(
            f"unreadable files <= validate.max_unreadable_fraction ({cfg.max_unreadable_fraction})",
            E.ExpectColumnValuesToBeInSet(
                column="readable", value_set=[True], mostly=1 - cfg.max_unreadable_fraction
            ),
        ),
        Rule(
            f"every image has {channels} channel(s)",
            E.ExpectColumnValuesToBeInSet(column="channels", value_set=[channels]),
        ),
        Rule(
            f"every image is {height} px high",
            E.ExpectColumnValuesToBeInSet(column="height", value_set=[height]),
        ),
        Rule(
            f"every image is {width} px wide",
            E.ExpectColumnValuesToBeInSet(column="width", value_set=[width]),
        ),
        Rule("pixel values >= 0", E.ExpectColumnValuesToBeBetween(column="pixel_min", min_value=0)),
        Rule(
            "pixel values <= 255",
            E.ExpectColumnValuesToBeBetween(column="pixel_max", max_value=255),
        ),
        Rule(
            "no NaN or inf pixels",
            E.ExpectColumnValuesToBeBetween(column="n_nonfinite", min_value=0, max_value=0),
        ),
        Rule(
            f"duplicate images <= validate.max_duplicate_fraction ({cfg.max_duplicate_fraction})",
            E.ExpectColumnValuesToBeBetween(
                column="duplicate_count", max_value=1, mostly=1 - cfg.max_duplicate_fraction
            ),
        ),
        Rule(
            f"blank images (pixel std < {cfg.min_pixel_std}) <= validate.max_blank_fraction "
            f"({cfg.max_blank_fraction})",
            E.ExpectColumnValuesToBeBetween(
                column="pixel_std", min_value=cfg.min_pixel_std, mostly=1 - cfg.max_blank_fraction
            ),
        ),
    ]
    if manifest["conditional"]:
        n_classes = len(manifest["class_names"])
        rules += [
            Rule(
                f"labels in 0..{n_classes - 1} ({', '.join(manifest['class_names'])})",
                E.ExpectColumnValuesToBeInSet(column="label", value_set=list(range(n_classes))),
            ),
            Rule(
                f"every class has images ({', '.join(manifest['class_names'])})",
                E.ExpectColumnDistinctValuesToContainSet(
                    column="label", value_set=list(range(n_classes))
                ),
            ),
            Rule(
                f"at least validate.min_classes ({cfg.min_classes}) classes",
                E.ExpectColumnUniqueValueCountToBeBetween(
                    column="label", min_value=cfg.min_classes
                ),
            ),
            Rule(
                f"each class >= validate.min_class_fraction ({cfg.min_class_fraction}) of the data",
                E.ExpectColumnValuesToBeBetween(
                    column="class_fraction", min_value=cfg.min_class_fraction
                ),
            ),
        ]
    return rules


def translation_suite(cfg: ValidateConfig, manifest: dict) -> list[Rule]:
    """Unpaired / paired sets: image rules over all rows (the example file names its domain and
    split), size and channels per domain, no train/test overlap, 2:1 paired files, and a
    same-domain warning. Labels are for evaluation only: their set is checked, not their shares."""
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    E = gx.expectations
    size = manifest["image_size"]
    a_train = (Column("domain") == "A") & (Column("split") == "train")
    rules = [
        Rule(
            f"unreadable files <= validate.max_unreadable_fraction ({cfg.max_unreadable_fraction})",
            E.ExpectColumnValuesToBeInSet(
                column="readable", value_set=[True], mostly=1 - cfg.max_unreadable_fraction
            ),
        ),
        Rule(
            f"every image is {size} px high",
            E.ExpectColumnValuesToBeInSet(column="height", value_set=[size]),
        ),
        Rule(
            f"every image is {size} px wide",
            E.ExpectColumnValuesToBeInSet(column="width", value_set=[size]),
        ),
        Rule("pixel values >= 0", E.ExpectColumnValuesToBeBetween(column="pixel_min", min_value=0)),
        Rule(
            "pixel values <= 255",
            E.ExpectColumnValuesToBeBetween(column="pixel_max", max_value=255),
        ),
        Rule(
            "no NaN or inf pixels",
            E.ExpectColumnValuesToBeBetween(column="n_nonfinite", min_value=0, max_value=0),
        ),
        Rule(
            f"duplicate images within a domain <= validate.max_duplicate_fraction "
            f"({cfg.max_duplicate_fraction})",
            E.ExpectColumnValuesToBeBetween(
                column="duplicate_count", max_value=1, mostly=1 - cfg.max_duplicate_fraction
            ),
        ),
        Rule(
            f"blank images (pixel std < {cfg.min_pixel_std}) <= validate.max_blank_fraction "
            f"({cfg.max_blank_fraction})",
            E.ExpectColumnValuesToBeBetween(
                column="pixel_std", min_value=cfg.min_pixel_std, mostly=1 - cfg.max_blank_fraction
            ),
        ),
        Rule(
            "no image in both train and test (content hash)",
            E.ExpectColumnValuesToBeInSet(column="in_train_and_test", value_set=[False]),
        ),
    ]
    for name, domain in manifest["domains"].items():
        where = {"row_condition": Column("domain") == name}
        train = (Column("domain") == name) & (Column("split") == "train")
        train = train & (Column("readable") == True)  # noqa: E712 - a GX condition, not a test
        rules += [
            Rule(
                f"domain {name}: readable train images >= validate.min_images ({cfg.min_images})",
                E.ExpectTableRowCountToBeBetween(min_value=cfg.min_images, row_condition=train),
            ),
            Rule(
                f"domain {name}: every image has {domain['channels']} channel(s)",
                E.ExpectColumnValuesToBeInSet(
                    column="channels", value_set=[domain["channels"]], **where
                ),
            ),
        ]
        if domain["class_names"]:
            names = domain["class_names"]
            rules.append(
                Rule(
                    f"domain {name}: labels in 0..{len(names) - 1} ({', '.join(names)})",
                    E.ExpectColumnValuesToBeInSet(
                        column="label", value_set=list(range(len(names))), **where
                    ),
                )
            )
    if manifest["kind"] == "paired":
        rules.append(
            Rule(
                "every paired image is 2:1 (width = 2 x height: A left, B right)",
                E.ExpectColumnValuesToBeBetween(
                    column="raw_aspect",
                    min_value=2,
                    max_value=2,
                    row_condition=Column("domain") == "A",  # one row per file
                ),
            )
        )
    rules.append(
        Rule(
            f"A and B are different domains: <= {SAME_DOMAIN_SHARE:.0%} of A-train images "
            "also in B-train",
            E.ExpectColumnValuesToBeInSet(
                column="in_B_train",
                value_set=[False],
                mostly=1 - SAME_DOMAIN_SHARE,
                row_condition=a_train,
                severity="warning",
            ),
            severity="warning",
        )
    )
    return rules


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
    if data.kind != "generate":
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
