"""One typed config, loaded once from params.yaml (plus `--set section.key=value` overrides).

Every default lives in params.yaml; these models declare types and rules only, so a key missing
from a profile is an error, not a silent fallback. Loading is the only place YAML is read.
"""

from __future__ import annotations

import hashlib
import json
import re
import types
import typing
from collections.abc import Hashable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)

from components.errors import ConfigError

STAGES = ("ingest", "validate", "train", "evaluate", "register")
# the sections a model family may extend with its own keys (components/families/<name>/options.py)
FAMILY_SECTIONS = ("ingest", "validate", "train", "register")
# The registered model commands fall back to when no params file is at hand (params.yaml's
# register.model_name is the default wherever one is).
FALLBACK_MODEL_NAME = "ganops-generator"
# Names the config accepts for the registries that hold their code (checked equal by tests);
# kept here so loading params never imports torch.
METRIC_NAMES = ("fid", "kid", "prdc", "intra_fid", "cond_acc", "modes", "tstr")
SMOOTHED_LOSSES = ("ns", "lsgan")  # losses with a real target that one-sided smoothing lowers
# D's output halfway between its real and fake targets, for the losses that have one: ADA's
# overfitting heuristic r_t = E[sign(D(x_real) - this)] (a WGAN critic can drift by any offset)
ADA_BOUNDARY = {"ns": 0.0, "hinge": 0.0, "lsgan": 0.5}
ADA_LOSSES = tuple(ADA_BOUNDARY)
# A torchrun rendezvous endpoint: host name, IPv4 or [IPv6], then a port.
ENDPOINT_PATTERN = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([1-9][0-9]{0,4})")


def valid_endpoint(value: str) -> bool:
    """HOST:PORT with a port from 1 to 65535 (train.rdzv_endpoint, $GANOPS_RDZV_ENDPOINT)."""
    match = ENDPOINT_PATTERN.fullmatch(value)
    return bool(match) and int(match[2]) < 65536


PosInt = Annotated[int, Field(gt=0)]
PosFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_as_number(cls, value: Any, info) -> Any:
        """true/false only where a key is a switch, numbers only where it is not: lax pydantic
        would read true as 1 and 1 as true."""
        if isinstance(value, int | float):
            admits = _scalar_kinds(cls.model_fields[info.field_name].annotation)
            if isinstance(value, bool) and bool not in admits and admits & {int, float}:
                raise ValueError("expected a number, not a true/false switch")
            if not isinstance(value, bool) and bool in admits and not admits & {int, float}:
                raise ValueError("expected true or false, not a number")
        return value


def _scalar_kinds(annotation: Any) -> set[type]:
    """The scalar types a field takes, looking into Literal[...] and unions: lax pydantic reads
    true as 1 for int, float and Literal[1, 3] alike, so each of them must refuse a bool."""
    if typing.get_origin(annotation) is Literal:
        return {type(a) for a in typing.get_args(annotation)}
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set().union(*(_scalar_kinds(a) for a in typing.get_args(annotation)))
    return {annotation} if isinstance(annotation, type) else set()


class IngestConfig(_Section):
    source: str
    image_size: Literal[28, 32, 64, 128, 256]
    channels: Literal[1, 3, "auto"]
    classes: list[str]
    test_fraction: Annotated[float, Field(gt=0, lt=1)]
    seed: int

    @field_validator("classes", mode="before")
    @classmethod
    def _names(cls, value):
        """Class folders are names: `classes: [0, 1]` in YAML means the folders "0" and "1"."""
        if isinstance(value, list):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value


class ValidateConfig(_Section):
    min_images: PosInt
    max_unreadable_fraction: Fraction
    min_class_fraction: Fraction
    min_classes: Annotated[int, Field(ge=1)]
    max_duplicate_fraction: Fraction
    min_pixel_std: Annotated[float, Field(ge=0)]
    max_blank_fraction: Fraction


class TrainConfig(_Section):
    """train: the keys every family reads. Each family's own keys (and its arch names) are in
    its options model (components/families/<name>/options.py), a subclass of this one; loading
    picks it by train.arch."""

    arch: str
    kimg: PosFloat
    batch_size: PosInt
    g_channels: PosInt
    d_channels: PosInt
    lr_g: PosFloat
    lr_d: PosFloat
    beta1: Annotated[float, Field(ge=0, lt=1)]
    beta2: Annotated[float, Field(ge=0, lt=1)]
    loss: Literal["ns", "hinge", "wgan", "lsgan"]
    precision: Literal["auto", "fp32", "bf16", "fp16"]
    channels_last: Literal["auto", True, False]
    compile: bool
    seed: int
    devices: PosInt
    nodes: PosInt
    rdzv_endpoint: str
    log_every: PosInt
    sample_every_kimg: PosFloat
    eval_every_kimg: PosFloat
    ckpt_every_kimg: PosFloat

    @model_validator(mode="after")
    def _divides(self) -> TrainConfig:
        processes = self.nodes * self.devices  # the global batch is split over all of them
        if self.batch_size % processes:
            over = f"train.devices ({self.devices})"
            if self.nodes > 1:
                over = f"train.nodes x train.devices ({self.nodes} x {self.devices} processes)"
            raise ValueError(f"train.batch_size ({self.batch_size}) must divide evenly over {over}")
        return self

    @field_validator("rdzv_endpoint")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if value and not valid_endpoint(value):
            raise ValueError('expected HOST:PORT of node 0, or "" for $GANOPS_RDZV_ENDPOINT')
        return value


class EvaluateConfig(_Section):
    n_samples: Annotated[int, Field(ge=10)]
    seed: int
    classifier_epochs: PosInt
    kid_subset_size: Annotated[int, Field(ge=2)]
    nearest_k: PosInt
    metrics: list[str]

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in METRIC_NAMES]
        if unknown:
            raise ValueError(f"unknown metric {unknown[0]!r} (one of {', '.join(METRIC_NAMES)})")
        return value

    @model_validator(mode="after")
    def _subset_fits(self) -> EvaluateConfig:
        if self.kid_subset_size > self.n_samples:
            raise ValueError(
                f"kid_subset_size ({self.kid_subset_size}) must be <= n_samples ({self.n_samples})"
            )
        return self


class RegisterConfig(_Section):
    """register: the keys every family reads. Each family's quality gates are in its own
    subclass (components/families/<name>/options.py), picked by train.arch."""

    model_name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    fid_margin: Annotated[float, Field(ge=0, lt=1)]


class Params(_Section):
    ingest: SerializeAsAny[IngestConfig]  # a family may add keys its data kind reads
    validate_: SerializeAsAny[ValidateConfig] = Field(alias="validate")
    # train and register hold the family's subclass (components/families/<name>/options.py),
    # picked by train.arch in load_params
    train: SerializeAsAny[TrainConfig]
    evaluate: EvaluateConfig
    register_: SerializeAsAny[RegisterConfig] = Field(alias="register")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def section(self, name: str) -> _Section:
        """The config of one stage, by its stage name."""
        fields = {(f.alias or n): n for n, f in type(self).model_fields.items()}
        if name not in fields:
            raise KeyError(f"unknown section {name!r} (one of {', '.join(STAGES)})")
        return getattr(self, fields[name])

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def digest(self, *sections: str) -> str:
        """Short stable hash of the given sections (all when none given)."""
        data = self.to_dict()
        chosen = {k: data[k] for k in (sections or STAGES)}
        blob = json.dumps(chosen, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def flat(self) -> dict[str, Any]:
        """`section.key` (`section.group.key` for nested groups) -> value, for MLflow params."""
        return flatten(self.to_dict())


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"reg": {"r1_gamma": 1}}} -> {"train.reg.r1_gamma": 1}."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml's safe loader, refusing a key given twice in one mapping (yaml keeps the last one
    silently, so a second `train:` section would replace the first)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):  # yaml's own check names it
                break
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice", mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def _apply_override(data: dict[str, Any], item: str) -> None:
    """`section.key=value` or `section.group.key=value` (e.g. train.reg.r1_gamma=1)."""
    key, sep, raw = item.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) < 2 or not all(parts):
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    if parts[0] not in data or not isinstance(data[parts[0]], dict):
        raise ConfigError(f"--set {key}: unknown section {parts[0]!r} (one of {', '.join(STAGES)})")
    node = data[parts[0]]
    for depth, name in enumerate(parts[1:], start=1):
        where = f"section {parts[0]!r}" if depth == 1 else repr(".".join(parts[:depth]))
        if not isinstance(node, dict) or name not in node:
            raise ConfigError(f"--set {key}: unknown key {name!r} in {where}")
        if depth == len(parts) - 1:
            if isinstance(node[name], dict):
                raise ConfigError(f"--set {key}: {key!r} is a group; set one of its keys")
            try:
                node[name] = yaml.safe_load(raw) if raw.strip() else ""
            except yaml.YAMLError:
                raise ConfigError(f"--set {key}: {raw!r} is not a valid YAML value") from None
        else:
            node = node[name]


def _format_error(
    source: str, err: ValidationError, prefix: tuple = (), skip: set = frozenset()
) -> str:
    lines = []
    for e in err.errors():
        if e["loc"] and e["loc"][0] in skip:
            continue
        loc = (*prefix, *e["loc"])
        key = ".".join(str(p) for p in loc) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"{source}: {key}: unknown key")
        elif e["type"] == "missing":
            lines.append(f"{source}: {key}: missing key")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            got = e.get("input")
            if not loc or (prefix and not e["loc"]):  # a rule across keys names them itself
                lines.append(f"{source}: {msg}")
                continue
            lines.append(
                f"{source}: {key}: {msg}" + ("" if isinstance(got, dict) else f" (got {got!r})")
            )
    return "; ".join(lines)


def load_params(
    path: str | Path = "params.yaml", overrides: list[str] | tuple[str, ...] = ()
) -> Params:
    """Read, override and check the params file; raise ConfigError naming the key on any fault."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: a folder, not a params file")
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text (UTF-8) file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = getattr(exc, "problem", None) or exc.__class__.__name__
        raise ConfigError(f"{path}: not valid YAML{where} ({what})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections ({', '.join(STAGES)})")
    for item in overrides:
        _apply_override(data, item)
    family = _family_of(str(path), data)
    if family is not None and (message := _foreign_keys(data, family)):
        raise ConfigError(f"{path}: {message}")
    errors, failed = [], set()
    for section in FAMILY_SECTIONS:  # the family's own model validates its sections
        if family is not None and isinstance(data.get(section), dict):
            try:
                data[section] = _model_of(family, section).model_validate(data[section])
            except ValidationError as err:
                errors.append(_format_error(str(path), err, (section,)))
                failed.add(section)
    try:
        params = Params.model_validate(data)
    except ValidationError as err:  # the other sections' faults (not those said above)
        errors.append(_format_error(str(path), err, skip=failed))
    if errors := [e for e in errors if e]:
        raise ConfigError("; ".join(errors))
    if family is not None and (message := family.check_params(params)):
        raise ConfigError(f"{path}: {message}")
    return params


def train_config(data: dict) -> TrainConfig:
    """A train section given as a dict (e.g. sent to torchrun workers as JSON) as the model of
    its family, picked by its arch."""
    from components import families

    return families.for_arch(data["arch"]).train_config.model_validate(data)


def _family_of(source: str, data: dict):
    """The model family of train.arch (components/families), or None when train has no arch
    (Params then names the missing key)."""
    train = data.get("train")
    if not isinstance(train, dict) or "arch" not in train:
        return None
    from components import families

    arch = train["arch"]
    if not isinstance(arch, str) or arch not in families.all_archs():
        choices = ", ".join(families.all_archs())
        raise ConfigError(f"{source}: train.arch: {arch!r} is not a model (one of {choices})")
    return families.for_arch(arch)


def _foreign_keys(data: dict, family) -> str | None:
    """One line when train:/register: carry keys of another family (a params file of one
    family with train.arch set to another's)."""
    found = [
        (f"{section}.{key}", owner)
        for section in FAMILY_SECTIONS
        if isinstance(data.get(section), dict)
        for key in data[section]
        if key not in _model_of(family, section).model_fields
        and (owner := _foreign_owner(section, key, family))
    ]
    if not found:
        return None
    (key, owner), more = found[0], len(found) - 1
    also = f" and {more} more of its keys" if more else ""
    return (
        f"train.arch {data['train']['arch']} is the {family.name} family, but {key}{also} "
        f"belong to the {owner} family: start from {family.params_file.split(',')[0]} "
        "(`ganops families` lists each family's params file)"
    )


def _model_of(family, section: str):
    """The family's model of a section: its own subclass, or the common one."""
    return getattr(family, f"{section}_config")


def _foreign_owner(section: str, key: str, family) -> str | None:
    """The other family whose section `key` belongs to (a key of another family's params)."""
    from components import families

    for other in families.FAMILIES.values():
        if other is not family and key in _model_of(other, section).model_fields:
            return f"{other.name} ({'|'.join(other.archs)})"
    return None
