"""`ganops generate`: a synthetic dataset from a registered model, for data augmentation.

The shared part checks the options, loads the pyfunc, finds its family (the pyfunc metadata's
`family`, else the registered version's tags; generators registered before either are the
noise family's) and lets the family write its files (`components/families/<name>/generate.py`:
an image folder or .npz, captioned images, clips, MIDI). The output is itself a valid
`ingest.source`; a manifest beside it names the model version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.errors import GanopsError
from components.layout import write_json


@dataclass(frozen=True)
class Request:
    """What `ganops generate` asks of a model: its options, checked by the shared part."""

    n: int  # items to make (per caption, for a model drawn from captions)
    label: int | None = None  # make only this class
    balanced: bool = False  # an equal share of every class
    seed: int = 0
    truncation: float = 1.0  # < 1: the truncation trick
    texts: list[str] | None = None  # captions (--prompt / --prompts)

    def unconditional(self) -> None:
        """For a family whose models take no class: --label/--balanced is an error."""
        if self.label is not None or self.balanced:
            raise GanopsError("this generator is unconditional: drop --label/--balanced")


def plan_labels(n: int, num_classes: int, label: int | None, balanced: bool) -> np.ndarray | None:
    """The label of each image to make: one class, an equal share of each, or None if
    the generator is unconditional."""
    if not num_classes:
        if label is not None or balanced:
            raise GanopsError("this generator is unconditional: drop --label/--balanced")
        return None
    if label is not None:
        if not 0 <= label < num_classes:
            raise GanopsError(f"--label {label}: out of range 0..{num_classes - 1}")
        return np.full(n, label, dtype=np.int64)
    if not balanced:
        raise GanopsError("conditional generator: pass --label L or --balanced")
    return np.arange(n, dtype=np.int64) % num_classes


def resolve_version(model_uri: str) -> str | None:
    """'name/version' for a models:/ URI (by alias or by version), else None."""
    from mlflow import MlflowClient

    if not model_uri.startswith("models:/"):
        return None
    ref = model_uri.removeprefix("models:/")
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return f"{name}/{MlflowClient().get_model_version_by_alias(name, alias).version}"
    return ref


def manifest_head(model, model_uri: str) -> dict:
    """The keys every family's manifest starts with: which model made the files."""
    return {
        "model_uri": model_uri,
        "model_version": resolve_version(model_uri),
        "model_run_id": model.metadata.run_id,
    }


def write_manifest(out: Path, manifest: dict) -> None:
    """The manifest beside a folder `out` (out.manifest.json)."""
    write_json(out.parent / f"{out.name}.manifest.json", manifest)


def read_prompts(prompt: list[str] | None, prompts: Path | None) -> list[str] | None:
    """The captions of --prompt (repeatable) and --prompts FILE (one per line, in order; blank
    lines skipped), or None when neither is given."""
    texts = list(prompt or [])
    if prompts is not None:
        try:
            lines = prompts.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise GanopsError(
                f"--prompts {prompts}: cannot be read ({err.__class__.__name__})"
            ) from None
        texts += [line.strip() for line in lines if line.strip()]
        if not texts:
            raise GanopsError(f"--prompts {prompts}: no captions in it")
    if any(not t.strip() for t in texts):
        raise GanopsError("--prompt: an empty caption; give some words")
    return texts or None


def takes_text(model) -> bool:
    """Whether a loaded pyfunc is drawn from captions (its signature has a `text` input)."""
    schema = model.metadata.get_input_schema()
    return schema is not None and "text" in schema.input_names()


def version_tags(model, model_uri: str) -> dict:
    """The tags of the registered version a pyfunc is: the one a models:/ URI names, else the
    one registered from the pyfunc's run; {} when it is none (or the registry cannot say)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        if (ref := resolve_version(model_uri)) is not None:
            name, _, version = ref.partition("/")
            return dict(client.get_model_version(name, version).tags)
        run_id = model.metadata.run_id
        found = client.search_model_versions(f"run_id = '{run_id}'") if run_id else []
    except MlflowException:
        return {}
    return dict(found[0].tags) if found else {}


def family_of(model, model_uri: str):
    """The family of a loaded pyfunc: its metadata's `family`, else its registered version's
    tags (families.of_version_tags: versions from before the tag are the legacy family's)."""
    from components import families

    name = (model.metadata.metadata or {}).get("family")
    name = name or families.of_version_tags(version_tags(model, model_uri))
    if name not in families.FAMILIES:
        raise GanopsError(f"--model {model_uri}: family {name!r} is unknown")
    return families.FAMILIES[name]


def generate(
    model_uri: str,
    n: int,
    out: Path,
    label: int | None = None,
    balanced: bool = False,
    seed: int = 0,
    truncation: float = 1.0,
    texts: list[str] | None = None,
) -> dict:
    """Write `out` from the model at `model_uri` through its family's generate hook; the
    manifest."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if n < 1:
        raise GanopsError(f"-n {n}: make at least one image")
    if not truncation > 0:
        raise GanopsError(f"--truncation {truncation}: must be > 0 (1 = no truncation)")
    if out.suffix != ".npz" and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GanopsError(f"--out {out}: exists and is not an empty folder; choose a new one")
    out = out.resolve()  # `--out .` (an empty folder) names the folder, not ""
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except (MlflowException, OSError) as exc:
        raise GanopsError(f"--model {model_uri}: {getattr(exc, 'message', exc)}") from None
    if takes_text(model) != (texts is not None):
        if texts is None:
            raise GanopsError(
                "this model draws from captions: pass --prompt TEXT or --prompts FILE"
            )
        raise GanopsError("this model takes no captions: drop --prompt/--prompts")
    request = Request(n, label, balanced, seed, truncation, texts)
    return family_of(model, model_uri).generate(model, model_uri, request, out)
