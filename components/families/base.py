"""What a model family gives the stages (torch-free: heavy imports live inside the methods).

A family is a package components/families/<name>/ whose __init__ defines one ModelFamily
subclass instance; components/families/__init__.py lists them. The stages never name a family:
train asks `for_arch(train.arch)`, evaluate/register/export ask `of_model_dir(models/)`, which
reads the `family` field every spec carries.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from components.config import IngestConfig, RegisterConfig, TrainConfig, ValidateConfig

# stage hook -> the module of the family package that holds it
HOOK_STAGES = {
    "build": "train",
    "evaluate": "evaluate",
    **dict.fromkeys(
        ("read_model", "log_model", "version_tags", "champion_fid", "decide", "card"), "register"
    ),
    "export_module": "export",
    "generate": "generate",
    "add_commands": "cli",
}


@dataclass
class Built:
    """What train needs from a family for one run."""

    trainer: Any  # the step protocol of components/train/loop.py (Family)
    make_probe: Any  # () -> the in-training probe (built on rank 0 only)
    documents: dict[str, dict]  # JSON files written into models/ beside the weights
    best_into: str  # which of them records best_step / best_probe_fid
    # folders written into models/ beside them: name -> a writer of the folder at that path
    # (e.g. a pretrained text model's own copy, text2image)
    folders: dict[str, Callable[[Path], None]] = field(default_factory=dict)


class ModelFamily:
    name: ClassVar[str]
    archs: ClassVar[tuple[str, ...]]  # the train.arch values it trains
    train_config: ClassVar[type[TrainConfig]]  # train: keys (common + its own), torch-free
    register_config: ClassVar[type[RegisterConfig]]  # register: keys (common + its gates)
    # ingest: / validate: keys, when its data kind reads more than the common ones
    ingest_config: ClassVar[type[IngestConfig]] = IngestConfig
    validate_config: ClassVar[type[ValidateConfig]] = ValidateConfig
    spec_file: ClassVar[str]  # the spec train writes into models/ (it names the family)
    # for `ganops families`: one line each
    trains_on: ClassVar[str]
    pyfunc_in: ClassVar[str]
    pyfunc_out: ClassVar[str]
    params_file: ClassVar[str]

    def data_kinds(self, arch: str) -> tuple[str, ...]:
        """The processed data kinds (components/datakinds) `arch` trains on."""
        raise NotImplementedError

    def check_params(self, params) -> str | None:
        """A rule across sections (e.g. the arch builds ingest.image_size): the error line."""
        return None

    # The stage hooks: functions of the family package's module named after the stage that
    # calls them (<name>/train.py, evaluate.py, register.py, export.py, generate.py, cli.py),
    # imported on first use: the registry stays torch-free, and a stage depends on its own
    # modules only (dvc.yaml).
    def _hook(self, name: str):
        stage = HOOK_STAGES[name]
        module = importlib.import_module(f"{type(self).__module__}.{stage}")
        return getattr(module, "evaluate_model" if name == "evaluate" else name)

    def build(self, cfg: TrainConfig, layout, data, device, me) -> Built:
        """train: the family's trainer (step protocol), probe and models/ documents."""
        return self._hook("build")(cfg, layout, data, device, me)

    def evaluate(self, cfg, layout, folder: Path) -> tuple[dict, list[Path]]:
        """Metrics of the model in models/ with their floors; pictures written into folder."""
        return self._hook("evaluate")(cfg, layout, folder)

    def read_model(self, layout, metrics: dict) -> tuple[dict, dict]:
        """register: (spec, about) of the model in models/; checks metrics.json is this
        family's."""
        return self._hook("read_model")(layout, metrics)

    def log_model(self, layout, spec: dict, about: dict, name: str):
        """Log the pyfunc into the active run and register it; the ModelInfo."""
        return self._hook("log_model")(layout, spec, about, name)

    def version_tags(self, metrics: dict, spec: dict, about: dict) -> dict[str, str]:
        """The version's tags (its `family` among them) and figures."""
        return self._hook("version_tags")(metrics, spec, about)

    def champion_fid(self, client, name: str, layout, run, champion) -> tuple[float | None, str]:
        """The same-family champion's figure under the candidate's protocol, or (None, why)."""
        return self._hook("champion_fid")(client, name, layout, run, champion)

    def decide(self, cfg: RegisterConfig, metrics: dict, champion_fid) -> tuple[str, str]:
        """(alias, reason): the gates, then the champion comparison."""
        return self._hook("decide")(cfg, metrics, champion_fid)

    def card(self, metrics: dict, tags: dict, params: dict, alias: str, reason: str) -> str:
        """The version's description (model card)."""
        return self._hook("card")(metrics, tags, params, alias, reason)

    def export_module(self, model_dir: Path, spec: dict, direction: str):
        """export: (G in eval mode, inputs(batch, seed) -> a tuple of G's inputs); G's
        `input_names` attribute names those inputs in the ONNX graph."""
        return self._hook("export_module")(model_dir, spec, direction)

    def generate(self, model, model_uri: str, request, out: Path) -> dict:
        """`ganops generate`: write `out` (a dataset ingest reads back) from a loaded pyfunc of
        this family, for a components.generate.Request; the manifest. A family without a
        generate module makes no synthetic datasets: one error line."""
        from components.errors import GanopsError

        module = f"{type(self).__module__}.generate"
        if importlib.util.find_spec(module) is None:
            raise GanopsError(f"--model {model_uri}: a {self.name} model makes no synthetic data")
        return self._hook("generate")(model, model_uri, request, out)

    def add_commands(self, app, bench_app) -> None:
        """The `ganops` commands of this family (its cli.py: add_commands(app, bench_app)), if
        it has any: `ganops translate`, `ganops bench train`, ..."""
        if importlib.util.find_spec(f"{type(self).__module__}.cli") is not None:
            self._hook("add_commands")(app, bench_app)

    def describe(self) -> str:
        archs = "|".join(self.archs)
        return (
            f"{self.name:<12} train.arch {archs}: trains on {self.trains_on}; "
            f"pyfunc {self.pyfunc_in} -> {self.pyfunc_out}; {self.params_file}"
        )
