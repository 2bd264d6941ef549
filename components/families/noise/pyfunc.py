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

from components.families.labels import resolve_labels
from components.families.noise.nets import GENERATOR_FILES, load_model_dir
from components.images import to_uint8
from components.seeds import latents

ARTIFACTS = GENERATOR_FILES


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
