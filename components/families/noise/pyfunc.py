"""The generator as an MLflow pyfunc: DataFrame(label, seed) -> uint8 (N, C, H, W).

Logged as MLflow "models from code" (pyfunc_model.py beside this builds the model object; weights
are safetensors artifacts), so loading a model version never unpickles anything. Ships with the
model (code_paths) and imports only what the model's pip_requirements declare: torch,
safetensors, numpy, pandas, mlflow.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch

from components.families.noise.nets import GENERATOR_FILES, load_model_dir
from components.images import to_uint8
from components.seeds import latents

ARTIFACTS = GENERATOR_FILES


def resolve_labels(values, class_names: list[str]) -> np.ndarray:
    """Integer labels from integers or class names ("7", "cat"): a string is looked up among
    the class names recorded at ingest first, then read as an index if it is all digits."""
    index = {name: i for i, name in enumerate(class_names)}
    out = []
    for value in values:
        if isinstance(value, str):
            if value in index:
                out.append(index[value])
            elif value.strip().lstrip("-").isdigit():
                out.append(int(value))
            else:
                raise ValueError(
                    f"label {value!r} is not a class of this generator "
                    f"(one of {', '.join(class_names)})"
                )
        else:
            out.append(int(value))
    labels = np.asarray(out, dtype=np.int64)
    bad = (labels < 0) | (labels >= len(class_names))
    if bad.any():
        raise ValueError(
            f"label out of range 0..{len(class_names) - 1}: {labels[bad][:5].tolist()}"
        )
    return labels


class GeneratorModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        self.G, self.spec = load_model_dir(Path(context.artifacts["generator.json"]).parent)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        truncation = float((params or {}).get("truncation", 1.0))
        if "seed" not in model_input.columns:
            raise ValueError("input needs an integer column 'seed'")
        seeds = model_input["seed"].astype("int64").to_numpy()
        labels = None
        if self.spec["num_classes"]:
            if "label" not in model_input.columns:
                raise ValueError("this generator is conditional: input needs a column 'label'")
            names = self.spec.get("class_names") or [
                str(i) for i in range(self.spec["num_classes"])
            ]
            labels = resolve_labels(model_input["label"].tolist(), names)
        z = latents(seeds, self.spec["z_dim"], truncation)
        c = torch.as_tensor(labels) if labels is not None else None
        with torch.no_grad():
            return to_uint8(self.G(z, c))  # (N, C, H, W) uint8
