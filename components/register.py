"""register: G_ema (or a translator's generators) into the MLflow registry as a pyfunc;
aliases decided by quality gates.

A new version becomes `champion` when every gate passes and it beats the current champion's
FID (a translator: every direction passes its gates, compared on the mean FID over directions;
a champion evaluated on another dataset is not comparable and is kept); otherwise it is the
`challenger`. The decision and its numbers go to the version's tags,
to reports/registration.json and to the run. Aliases only: registry stages are deprecated.
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from components.config import RegisterConfig
from components.errors import DataError, RegistryError
from components.layout import Layout, read_json, write_json

COMPONENTS_DIR = Path(__file__).resolve().parent
LOCK_DIR = Path.home() / ".cache" / "ganops" / "locks"


def gate_failures(cfg: RegisterConfig, metrics: dict) -> list[str]:
    """Each failed quality gate as a sentence quoting the value and the threshold."""
    failures = []
    ratio = metrics["fid"] / max(metrics["fid_floor"], 1e-12)
    if ratio > cfg.max_fid_ratio:
        failures.append(f"fid/fid_floor {ratio:.2f} > register.max_fid_ratio {cfg.max_fid_ratio}")
    if "cond_acc" in metrics and metrics["cond_acc"] < cfg.min_cond_acc:
        failures.append(
            f"cond_acc {metrics['cond_acc']:.3f} < register.min_cond_acc {cfg.min_cond_acc}"
        )
    if "modes_covered" in metrics:
        share = metrics["modes_covered"] / max(metrics["modes_covered_floor"], 1)
        if share < cfg.min_modes_covered_fraction:
            failures.append(
                f"modes_covered {metrics['modes_covered']} of {metrics['modes_covered_floor']} "
                f"< register.min_modes_covered_fraction {cfg.min_modes_covered_fraction}"
            )
    if "tstr" in metrics and metrics["tstr"] < cfg.min_tstr:
        failures.append(f"tstr {metrics['tstr']:.3f} < register.min_tstr {cfg.min_tstr}")
    return failures


def decide(cfg: RegisterConfig, metrics: dict, champion_fid: float | None) -> tuple[str, str]:
    """(alias, reason) for a candidate with `metrics` against the champion's FID (None: none).

    The candidate must beat the champion's FID by `register.fid_margin` (relative), so noise
    between two equally good runs does not flip the champion back and forth.
    """
    return compare(cfg, gate_failures(cfg, metrics), metrics["fid"], champion_fid, "fid")


def compare(
    cfg: RegisterConfig, failures: list[str], fid: float, champion_fid: float | None, what: str
) -> tuple[str, str]:
    """(alias, reason): challenger when a gate failed, else champion when there is none or
    `fid` (named `what`) beats the champion's by the margin."""
    if failures:
        return "challenger", "gates failed: " + "; ".join(failures)
    if champion_fid is None:
        return "champion", f"gates passed ({what} {fid:.3f}); no champion yet"
    bar = champion_fid * (1 - cfg.fid_margin)
    if fid < bar:
        return "champion", (
            f"gates passed; {what} {fid:.3f} < champion's {champion_fid:.3f} "
            f"less the {cfg.fid_margin:.0%} margin ({bar:.3f})"
        )
    return "challenger", (
        f"gates passed, but {what} {fid:.3f} does not beat champion's {champion_fid:.3f} "
        f"by the {cfg.fid_margin:.0%} margin ({bar:.3f})"
    )


# ---------------------------------------------------------------------------------------------
# Translators (models/translator.json): gates per direction, compared on the mean FID
# ---------------------------------------------------------------------------------------------

# per-direction metric of reports/metrics.json -> the register key of its lower bound
TRANSLATOR_GATES = {
    "gap_closed": "min_gap_closed",
    "domain_acc": "min_domain_acc",
    "class_preservation": "min_class_preservation",  # absent for unlabelled data: no gate
    "noop_ratio": "min_noop_ratio",
}
# per-direction figures copied to the version's tags (those present)
TRANSLATOR_TAGS = (
    "fid", "fid_floor", "fid_ceiling", "gap_closed", "domain_acc", "class_preservation",
    "class_preservation_copy", "noop_ratio", "cycle_l1", "l1", "l1_copy", "psnr", "psnr_copy",
    "ssim", "ssim_copy",
)  # fmt: skip


def directions(metrics: dict) -> list[str]:
    """The directions a translation evaluation scored (a2b, and b2a for cyclegan)."""
    found = [d for d in ("a2b", "b2a") if f"{d}_fid" in metrics]
    if not found:
        raise DataError(
            "reports/metrics.json holds no translation metrics (a2b_fid ...); "
            "run `ganops stage evaluate` on this translator"
        )
    return found


def mean_fid(metrics: dict) -> float:
    """FID of the translations against the real target domain, mean over directions."""
    return float(np.mean([metrics[f"{d}_fid"] for d in directions(metrics)]))


def translator_gate_failures(cfg: RegisterConfig, metrics: dict) -> list[str]:
    """Each failed gate of each direction, quoting the value and the threshold. NaN fails
    (gap_closed is NaN when the no-translation ceiling is not above the floor: no gap)."""
    failures = []
    for d in directions(metrics):
        for metric, key in TRANSLATOR_GATES.items():
            threshold = getattr(cfg, key)
            value = metrics.get(f"{d}_{metric}")
            if value is None:
                if metric != "class_preservation":
                    failures.append(f"{d}_{metric} missing from reports/metrics.json")
                continue
            if not value >= threshold:  # NaN fails too
                failures.append(f"{d}_{metric} {value:.3f} < register.{key} {threshold}")
    return failures


def decide_translator(
    cfg: RegisterConfig, metrics: dict, champion_fid: float | None
) -> tuple[str, str]:
    """(alias, reason) for a translator: every direction passes the gates, and the mean FID
    over directions beats the champion's by `register.fid_margin`."""
    failures = translator_gate_failures(cfg, metrics)
    return compare(cfg, failures, mean_fid(metrics), champion_fid, "mean fid")


def translator_champion_fid(client, name: str, run) -> tuple[float | None, str]:
    """The champion's recorded mean FID when it is a translator evaluated on the same dataset;
    (None, why) when there is no champion or it is not comparable (it is kept then)."""
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        return None, "no champion"
    v = f"v{champion.version}"
    if champion.tags.get("family") != "translation":
        return None, f"{v} is not a translator; not comparable"
    if champion.tags.get("dataset_hash") != run.data.tags.get("dataset_hash"):
        return None, f"{v} was evaluated on another dataset; not comparable"
    return float(champion.tags["fid"]), f"{v}, same dataset"


def translator_signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    # binary: bytes in Python; over REST a base64 string that MLflow decodes (and encodes back)
    return ModelSignature(
        inputs=Schema([ColSpec("binary", "image"), ColSpec("string", "direction")]),
        outputs=Schema([ColSpec("binary", "image")]),
    )


def translator_example(spec: dict):
    """One mid-gray PNG of the a2b input's size and channels, direction a2b."""
    import pandas as pd

    from components.translate import encode_png

    size, channels = spec["image_size"], spec["channels_a"]
    png = encode_png(np.full((channels, size, size), 128, dtype=np.uint8))
    return pd.DataFrame({"image": [png], "direction": ["a2b"]})


def log_translator(layout: Layout, spec: dict, about: dict, name: str):
    """Log the translator's generators as a pyfunc into the active run and register it."""
    from importlib.metadata import version

    import mlflow

    from components.translate import directions_of
    from components.translators import SPEC_FILE, WEIGHTS

    files = [SPEC_FILE] + [WEIGHTS[d] for d in directions_of(spec)]
    return mlflow.pyfunc.log_model(
        name="translator",
        python_model=str(COMPONENTS_DIR / "pyfunc_translator.py"),  # models from code: no pickle
        artifacts={f: str(layout.models / f) for f in files},
        code_paths=[str(COMPONENTS_DIR)],
        signature=translator_signature(),
        input_example=translator_example(spec),
        pip_requirements=pip_requirements() + [f"pillow=={version('pillow')}"],
        metadata={
            **spec,
            "directions": list(directions_of(spec)),
            "kind": about.get("kind", "unknown"),
            "class_names": about.get("class_names", []),
        },
        registered_model_name=name,
    )


def translator_card(metrics: dict, tags: dict, params: dict, alias: str, reason: str) -> str:
    """The version's description for a translator: per-direction figures beside floor and
    ceiling, paired scores beside copy-input, key params, data and commit, the decision."""
    dirs = directions(metrics)

    def cell(key: str) -> str:
        value = metrics.get(key)
        return "" if value is None else f"{value:.4g}"

    rows = [
        f"| {m} | " + " | ".join(cell(f"{d}_{m}") for d in dirs) + " |"
        for m in TRANSLATOR_TAGS
        if any(f"{d}_{m}" in metrics for d in dirs)
    ]
    keys = [
        k
        for k in sorted(params)
        if k.startswith(("train.translation.", "evaluate."))
        or k in ("train.arch", "train.kimg", "train.batch_size", "train.seed")
    ]
    return "\n".join(
        [
            f"# ganops translator ({tags['arch']}, {tags['kind']}, {tags['directions']})",
            f"**Decision:** `@{alias}`: {reason}",
            "",
            f"- dataset content hash: `{tags['dataset_hash']}`",
            f"- dataset DVC md5: `{tags['dataset_dvc_md5']}`",
            f"- git commit: `{tags['git_commit']}`, params hash `{tags['params_hash']}`",
            f"- mean FID over directions: {tags['fid']} (floor {tags['fid_floor']})",
            "",
            "| metric | " + " | ".join(dirs) + " |",
            "|---|" + "---|" * len(dirs),
            *rows,
            "",
            "| param | value |",
            "|---|---|",
            *[f"| {k} | {params[k]} |" for k in keys],
        ]
    )


def model_signature(spec: dict):
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec
    from mlflow.types.schema import AnyType

    # label: an integer or a class name ("7", "cat"), resolved by the model itself
    cols = [ColSpec(AnyType(), "label")] if spec["num_classes"] else []
    cols.append(ColSpec("long", "seed"))
    shape = (-1, spec["channels"], spec["image_size"], spec["image_size"])
    return ModelSignature(
        inputs=Schema(cols),
        outputs=Schema([TensorSpec(np.dtype(np.uint8), shape)]),
        params=ParamSchema([ParamSpec("truncation", "double", 1.0)]),
    )


def pip_requirements() -> list[str]:
    """Exactly what the pyfunc imports, pinned to the versions it was trained with."""
    from importlib.metadata import version

    pins = {name: version(name) for name in ("mlflow-skinny", "numpy", "pandas", "safetensors")}
    torch_version = version("torch").split("+")[0]
    return [f"torch=={torch_version}"] + [f"{k}=={v}" for k, v in pins.items()]


def params_hash(run) -> str:
    blob = json.dumps(dict(sorted(run.data.params.items()))).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def champion_fid(client, name: str, layout: Layout, run) -> tuple[float | None, str]:
    """The champion's FID under the candidate's protocol: its recorded FID when it was evaluated
    on the same dataset, else re-evaluated now on the current test split. (None, why) when there
    is no champion or it cannot be compared (another image shape or class set)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        return None, "no champion"
    if champion.tags.get("family") == "translation":
        return None, f"v{champion.version} is a translator; not comparable"
    data_hash = run.data.tags.get("dataset_hash")
    if champion.tags.get("dataset_hash") == data_hash and "fid" in champion.tags:
        return float(champion.tags["fid"]), f"v{champion.version}, same dataset"

    from components.config import EvaluateConfig
    from components.dataset import load_dataset
    from components.evaluate import evaluate
    from components.evaluate.features import load_or_train_classifier
    from components.models import load_model_dir

    model_dir = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{champion.version}"))
    G, spec = load_model_dir(model_dir)
    data = load_dataset(layout)
    shape = [spec["channels"], spec["image_size"], spec["image_size"]]
    if shape != list(data.manifest["shape"]) or spec["num_classes"] != data.num_classes:
        return None, f"v{champion.version} was trained on another kind of data; not comparable"
    # the candidate's protocol, as evaluate logged it on this run (FID only)
    protocol = {
        k.split(".", 1)[1]: v
        for k, v in run.data.params.items()
        if k.startswith("evaluate.") and k != "evaluate.metrics"
    }
    cfg = EvaluateConfig.model_validate({**protocol, "metrics": ["fid"]})
    net, _ = load_or_train_classifier(cfg, layout, data)
    fid = evaluate(cfg, data, G, net)[0]["fid"]
    return fid, f"v{champion.version} re-evaluated on this dataset's test split"


def log_generator(layout: Layout, spec: dict, name: str):
    """Log G_ema as a pyfunc into the active run and register it; returns the ModelInfo."""
    import mlflow
    import pandas as pd

    from components.models import GENERATOR_FILES

    example = (
        pd.DataFrame({"label": [0, 1], "seed": [0, 1]})
        if spec["num_classes"]
        else pd.DataFrame({"seed": [0, 1]})
    )
    return mlflow.pyfunc.log_model(
        name="generator",
        python_model=str(COMPONENTS_DIR / "pyfunc_generator.py"),  # models from code: no pickle
        artifacts={a: str(layout.models / a) for a in GENERATOR_FILES},
        code_paths=[str(COMPONENTS_DIR)],
        signature=model_signature(spec),
        input_example=example,
        pip_requirements=pip_requirements(),
        metadata={
            k: spec[k] for k in ("num_classes", "class_names", "channels", "image_size", "z_dim")
        },
        registered_model_name=name,
    )


def model_card(metrics: dict, tags: dict, params: dict, alias: str, reason: str) -> str:
    """The version's description: data, metrics with floors, key params, commit, decision."""
    rows = [
        f"| {k} | {metrics[k]:.4g} | {metrics.get(k + '_floor', float('nan')):.4g} |"
        for k in sorted(metrics)
        if not k.endswith("_floor") and k + "_floor" in metrics
    ]
    keys = (
        "train.arch",
        "train.g_cond",
        "train.loss",
        "train.kimg",
        "train.batch_size",
        "train.z_dim",
        "train.lr_g",
        "train.lr_d",
        "train.reg.spectral_norm",
        "train.seed",
        "evaluate.n_samples",
    )
    return "\n".join(
        [
            "# ganops generator (G_ema)",
            f"**Decision:** `@{alias}`: {reason}",
            "",
            f"- dataset content hash: `{tags['dataset_hash']}`",
            f"- dataset DVC md5: `{tags['dataset_dvc_md5']}`",
            f"- git commit: `{tags['git_commit']}`, params hash `{tags['params_hash']}`",
            "",
            "| metric | value | real-vs-real floor |",
            "|---|---|---|",
            *rows,
            "",
            "| param | value |",
            "|---|---|",
            *[f"| {k} | {params[k]} |" for k in keys if k in params],
        ]
    )


@contextmanager
def promotion_lock(uri: str, timeout: float = 600):
    """One alias decision at a time per registry: the read-decide-write of aliases is atomic for
    every process that promotes into it. A Postgres store or an MLflow server next to a Prefect
    server gets a lock that holds across machines; the embedded default keeps a file lock
    (components/locks.py)."""
    from components.locks import promotion_lock as registry_lock

    with registry_lock(uri, timeout):
        yield


def _alias_version(client, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def wait_until_ready(client, name: str, version: str, timeout: float = 300) -> None:
    """An alias never points at a half-registered version."""
    deadline = time.monotonic() + timeout
    while (status := client.get_model_version(name, version).status) != "READY":
        if status == "FAILED_REGISTRATION" or time.monotonic() > deadline:
            raise RegistryError(f"{name} v{version}: registration ended {status}")
        time.sleep(0.5)


def record(client, name: str, version: str, decision: dict) -> None:
    """Tags on the version and a JSON artifact on its run: the numbers behind the decision."""
    client.set_model_version_tag(name, version, "decision", decision["alias"])
    client.set_model_version_tag(name, version, "decision_reason", decision["reason"])
    client.set_model_version_tag(name, version, "decision_action", decision["action"])
    run_id = client.get_model_version(name, version).run_id
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    client.log_dict(run_id, decision, f"decisions/{stamp}-v{version}-{decision['action']}.json")


def set_champion(client, name: str, version: str) -> str | None:
    """`version` becomes champion; the one it replaces becomes previous-champion."""
    old = _alias_version(client, name, "champion")
    if old is not None and old != version:
        client.set_registered_model_alias(name, "previous-champion", old)
    client.set_registered_model_alias(name, "champion", version)
    return old


def run(cfg: RegisterConfig, layout: Layout) -> dict:
    """The register stage: returns the decision (version, alias, reason, metrics). A translator
    (models/translator.json) is gated per direction and compared on its mean FID; a generator
    (models/generator.json) as before."""
    import mlflow
    from mlflow import MlflowClient

    from components import tracking

    if not layout.metrics.is_file():
        raise DataError(f"{layout.metrics}: no metrics; run `ganops stage evaluate` first")
    metrics = read_json(layout.metrics)
    translator = (layout.models / "translator.json").is_file()
    if translator:
        spec, about = translator_files(layout)
        directions(metrics)  # a translator's evaluation, or one clear error
    else:
        spec = read_json(layout.models / "generator.json")
    tracking.setup(layout)
    client = MlflowClient()
    run_id = tracking.train_run_id(layout)
    name = cfg.model_name
    with mlflow.start_run(run_id=run_id):
        mlflow.log_params({f"register.{k}": v for k, v in cfg.model_dump().items()})
        if translator:
            info = log_translator(layout, spec, about, name)
        else:
            info = log_generator(layout, spec, name)
    version = str(info.registered_model_version)
    run = client.get_run(run_id)
    tags = {
        "dataset_hash": run.data.tags.get("dataset_hash", "unknown"),
        "dataset_dvc_md5": run.data.tags.get("dataset_dvc_md5", "unknown"),
        "git_commit": tracking.git_commit(layout.root),
        "params_hash": params_hash(run),
        "run_id": run_id,
    }
    if translator:
        tags.update(translator_tags(metrics, spec, about))
    else:
        tags.update(
            fid=f"{metrics['fid']:.6f}",
            fid_floor=f"{metrics['fid_floor']:.6f}",
            cond_acc=f"{metrics.get('cond_acc', float('nan')):.6f}",
        )
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    wait_until_ready(client, name, version)

    with promotion_lock(tracking.tracking_uri(layout)):
        champion = _alias_version(client, name, "champion")
        if translator:
            champ_fid, basis = translator_champion_fid(client, name, run)
            alias, reason = decide_translator(cfg, metrics, champ_fid)
        else:
            champ_fid, basis = champion_fid(client, name, layout, run)
            alias, reason = decide(cfg, metrics, champ_fid)
        if champion is not None and champ_fid is None:
            failed = f"; {reason}" if reason.startswith("gates failed") else ""
            alias, reason = "challenger", f"champion kept: {basis}{failed}"
        reason += f" [{basis}]" if champ_fid is not None else ""
        if alias == "champion":
            set_champion(client, name, version)
        else:
            client.set_registered_model_alias(name, "challenger", version)
        decision = {
            "action": "register",
            "model_name": name,
            "version": version,
            "alias": alias,
            "reason": reason,
            "champion_before": champion,
            "champion_fid_before": champ_fid,
            "metrics": metrics,
            "tags": tags,
            "gates": cfg.model_dump(),
        }
        record(client, name, version, decision)
    card = translator_card if translator else model_card
    client.update_model_version(
        name, version, description=card(metrics, tags, run.data.params, alias, reason)
    )
    client.set_tag(run_id, "registered_version", version)
    write_json(layout.registration, decision)
    client.log_artifact(run_id, str(layout.registration))
    print(f"register: {name} v{version} -> @{alias} ({reason})")
    return decision


def translator_files(layout: Layout) -> tuple[dict, dict]:
    """(spec, training.json) of the translator in models/; training.json may be absent."""
    from components.translators import SPEC_KEYS, check_spec

    stored = read_json(layout.models / "translator.json")
    spec = {k: stored[k] for k in SPEC_KEYS if k in stored}
    check_spec(spec)
    training = layout.models / "training.json"
    return spec, read_json(training) if training.is_file() else {}


def translator_tags(metrics: dict, spec: dict, about: dict) -> dict[str, str]:
    """family, kind, arch, directions, mean fid (what champions are compared on) and the
    per-direction figures."""
    dirs = directions(metrics)
    tags = {
        "family": "translation",
        "kind": str(metrics.get("kind") or about.get("kind", "unknown")),
        "arch": spec["arch"],
        "directions": ",".join(dirs),
        "fid": f"{mean_fid(metrics):.6f}",
        "fid_floor": f"{np.mean([metrics[f'{d}_fid_floor'] for d in dirs]):.6f}",
    }
    for d in dirs:
        for m in TRANSLATOR_TAGS:
            if isinstance(metrics.get(f"{d}_{m}"), int | float):
                tags[f"{d}_{m}"] = f"{metrics[f'{d}_{m}']:.6f}"
    for key in ("gap_closed", "domain_acc", "class_preservation", "fid_ratio"):
        if isinstance(metrics.get(key), int | float):
            tags[key] = f"{metrics[key]:.6f}"
    return tags


def _crown(layout: Layout, name: str, action: str, reason: str, pick) -> dict:
    """Under the promotion lock: `pick(client)` names the version to make champion; the old
    champion becomes previous-champion; the decision is recorded on the version."""
    if not reason.strip():
        raise RegistryError(f"{action} --reason is empty: say why (it is recorded on the version)")
    from mlflow import MlflowClient

    from components import tracking

    tracking.setup(layout)
    client = MlflowClient()
    with promotion_lock(tracking.tracking_uri(layout)):
        version = pick(client)
        old = set_champion(client, name, version)
        decision = {
            "action": action,
            "model_name": name,
            "version": version,
            "alias": "champion",
            "reason": reason,
            "champion_before": old,
        }
        record(client, name, version, decision)
    return decision


def promote(layout: Layout, name: str, version: str, reason: str) -> dict:
    """By hand: `version` becomes champion, the old champion previous-champion."""

    def pick(client) -> str:
        _require_version(client, name, version)
        return version

    return _crown(layout, name, "promote", reason, pick)


def rollback(layout: Layout, name: str, reason: str) -> dict:
    """Back to `previous-champion`; the demoted champion becomes previous-champion in turn."""

    def pick(client) -> str:
        previous = _alias_version(client, name, "previous-champion")
        if previous is None:
            raise RegistryError(f"{name}: no @previous-champion to roll back to")
        return previous

    return _crown(layout, name, "rollback", reason, pick)


def _require_version(client, name: str, version: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(name, version)
    except MlflowException:
        raise RegistryError(f"{name} v{version}: no such model version") from None
