"""register: the trained model into the MLflow registry as a pyfunc; aliases decided by its
family's quality gates (components/families/<name>/register.py).

A new version becomes `champion` when every gate passes and it beats the current champion's
FID (each family says which FID: a translator's mean over directions; a champion of another
family, or evaluated on another dataset, is not comparable and is kept); otherwise it is the
`challenger`. The decision and its numbers go to the version's tags,
to reports/registration.json and to the run. Aliases only: registry stages are deprecated.
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import contextmanager
from pathlib import Path

from components.config import RegisterConfig
from components.errors import DataError, RegistryError
from components.layout import Layout, read_json, write_json

COMPONENTS_DIR = Path(__file__).resolve().parent
LOCK_DIR = Path.home() / ".cache" / "ganops" / "locks"


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


def pip_requirements() -> list[str]:
    """Exactly what the pyfunc imports, pinned to the versions it was trained with."""
    from importlib.metadata import version

    pins = {name: version(name) for name in ("mlflow-skinny", "numpy", "pandas", "safetensors")}
    torch_version = version("torch").split("+")[0]
    return [f"torch=={torch_version}"] + [f"{k}=={v}" for k, v in pins.items()]


# What the families' register.py modules share (components/families/<name>/register.py).


def require_metrics(metrics: dict, key: str, what: str, subject: str = "model") -> None:
    """read_model: reports/metrics.json must be this family's evaluation (it holds `key`)."""
    if key not in metrics:
        raise DataError(
            f"reports/metrics.json holds no {what}; run `ganops stage evaluate` on this {subject}"
        )


def log_pyfunc(
    layout: Layout,
    name: str,
    *,
    family_dir: Path,
    artifact: str,
    files,
    signature,
    input_example,
    metadata: dict,
    requirements: list[str] | None = None,
):
    """Log a family's pyfunc into the active run and register it as `name`: models from code
    (`family_dir`/pyfunc_model.py, components/ as code_paths, no pickle), the models/ `files`
    as artifacts, pinned requirements (pip_requirements() unless given). The ModelInfo."""
    import mlflow

    return mlflow.pyfunc.log_model(
        name=artifact,
        python_model=str(family_dir / "pyfunc_model.py"),
        artifacts={f: str(layout.models / f) for f in files},
        code_paths=[str(COMPONENTS_DIR)],
        signature=signature,
        input_example=input_example,
        pip_requirements=requirements if requirements is not None else pip_requirements(),
        metadata=metadata,
        registered_model_name=name,
    )


def figure_tags(metrics: dict, keys) -> dict[str, str]:
    """The figures of `keys` that metrics holds as numbers, as version tags."""
    return {k: f"{metrics[k]:.6f}" for k in keys if isinstance(metrics.get(k), int | float)}


def recorded_figure(run, champion, key: str, what: str | None = None) -> tuple[float | None, str]:
    """champion_fid when the champion's recorded figure `key` (a tag) is comparable: it was
    evaluated on the candidate's dataset and has the tag (else (None, why), naming `what`)."""
    v = f"v{champion.version}"
    if champion.tags.get("dataset_hash") != run.data.tags.get("dataset_hash"):
        return None, f"{v} was evaluated on another dataset; not comparable"
    if key not in champion.tags:
        return None, f"{v} has no {what or key}; not comparable"
    return float(champion.tags[key]), f"{v}, same dataset"


def card_head(title: str, alias: str, reason: str, tags: dict, note: str | None = None,
              dvc_md5: bool = False) -> list[str]:  # fmt: skip
    """A model card's first lines: title, decision, (a note,) data and commit."""
    lines = [f"# {title}", f"**Decision:** `@{alias}`: {reason}", ""]
    lines += [note, ""] if note else []
    lines.append(f"- dataset content hash: `{tags['dataset_hash']}`")
    if dvc_md5:
        lines.append(f"- dataset DVC md5: `{tags['dataset_dvc_md5']}`")
    lines.append(f"- git commit: `{tags['git_commit']}`, params hash `{tags['params_hash']}`")
    return lines


def param_table(params: dict, keys) -> list[str]:
    """A model card's table of the run's params `keys`."""
    return ["| param | value |", "|---|---|", *[f"| {k} | {params[k]} |" for k in keys]]


def params_hash(run) -> str:
    blob = json.dumps(dict(sorted(run.data.params.items()))).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


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
    """The register stage: returns the decision (version, alias, reason, metrics). The family of
    the model in models/ (components/families) reads it, logs its pyfunc, tags the version,
    gates it and compares it with the champion; a champion of another family is kept."""
    import mlflow
    from mlflow import MlflowClient

    from components import families, tracking

    if not layout.metrics.is_file():
        raise DataError(f"{layout.metrics}: no metrics; run `ganops stage evaluate` first")
    metrics = read_json(layout.metrics)
    family, _, _ = families.of_model_dir(layout.models)
    spec, about = family.read_model(layout, metrics)
    tracking.setup(layout)
    client = MlflowClient()
    run_id = tracking.train_run_id(layout)
    name = cfg.model_name
    version = registered_from(client, name, run_id)
    if version is None:
        with mlflow.start_run(run_id=run_id):
            mlflow.log_params({f"register.{k}": v for k, v in cfg.model_dump().items()})
            info = family.log_model(layout, spec, about, name)
        version = str(info.registered_model_version)
    elif (decided := client.get_model_version(name, version).tags).get("decision"):
        # a retried or repeated register of the same training run: its version, as decided
        decision = {
            "action": "register",
            "model_name": name,
            "version": version,
            "alias": decided["decision"],
            "reason": f"already registered from run {run_id}: {decided['decision_reason']}",
            "champion_before": _alias_version(client, name, "champion"),
            "champion_fid_before": None,
            "metrics": metrics,
            "tags": {k: v for k, v in decided.items() if not k.startswith("decision")},
            "gates": cfg.model_dump(),
        }
        write_json(layout.registration, decision)
        print(f"register: {name} v{version} already holds this run (@{decided['decision']})")
        return decision
    run = client.get_run(run_id)
    tags = {
        "dataset_hash": run.data.tags.get("dataset_hash", "unknown"),
        "dataset_dvc_md5": run.data.tags.get("dataset_dvc_md5", "unknown"),
        "git_commit": tracking.git_commit(layout.root),
        "params_hash": params_hash(run),
        "run_id": run_id,
        **family.version_tags(metrics, spec, about),
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    wait_until_ready(client, name, version)

    with promotion_lock(tracking.tracking_uri(layout)):
        champion = _alias_version(client, name, "champion")
        champ_fid, basis = champion_figure(client, name, layout, run, family)
        alias, reason = family.decide(cfg, metrics, champ_fid)
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
    card = family.card(metrics, tags, run.data.params, alias, reason)
    client.update_model_version(name, version, description=card)
    client.set_tag(run_id, "registered_version", version)
    write_json(layout.registration, decision)
    client.log_artifact(run_id, str(layout.registration))
    print(f"register: {name} v{version} -> @{alias} ({reason})")
    return decision


def registered_from(client, name: str, run_id: str) -> str | None:
    """The version of `name` already registered from the training run `run_id` (the newest
    ready one), or None: a register that is retried after its pyfunc was logged (the flow's
    retries) or run again on the same models/ must not make a second version. A version not
    yet decided (the retry came between logging and deciding) is decided as a new one."""
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except MlflowException:
        return None
    ready = [int(v.version) for v in found if v.status == "READY"]
    return str(max(ready)) if ready else None


def champion_figure(client, name: str, layout: Layout, run, family) -> tuple[float | None, str]:
    """The champion's figure the candidate must beat, from the candidate's family; (None, why)
    when there is no champion or it is another family's model (not comparable)."""
    from mlflow.exceptions import MlflowException

    from components import families

    try:
        champion = client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        return None, "no champion"
    theirs = families.of_version_tags(champion.tags)
    if theirs != family.name:
        return None, f"v{champion.version} is a {theirs} model; not comparable"
    return family.champion_fid(client, name, layout, run, champion)


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
