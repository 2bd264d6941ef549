"""The registered generator as an MLflow pyfunc: DataFrame(label, seed) -> uint8 (N, C, H, W).

This module is shipped with the model (code_paths) and imports only what the model's
pip_requirements declare: torch, safetensors, numpy, pandas, mlflow.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch

from components.images import to_uint8
from components.models import latents, load_generator

ARTIFACTS = ("G_ema.safetensors", "generator.json")


class GeneratorModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        spec = json.loads(Path(context.artifacts["generator.json"]).read_text())
        self.spec = spec
        self.G = load_generator(Path(context.artifacts["G_ema.safetensors"]), spec)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        truncation = float((params or {}).get("truncation", 1.0))
        if "seed" not in model_input.columns:
            raise ValueError("input needs an integer column 'seed'")
        seeds = model_input["seed"].astype("int64").to_numpy()
        labels = None
        if self.spec["num_classes"]:
            if "label" not in model_input.columns:
                raise ValueError("this generator is conditional: input needs a column 'label'")
            labels = model_input["label"].astype("int64").to_numpy()
            bad = (labels < 0) | (labels >= self.spec["num_classes"])
            if bad.any():
                raise ValueError(
                    f"label out of range 0..{self.spec['num_classes'] - 1}: "
                    f"{labels[bad][:5].tolist()}"
                )
        z = latents(seeds, self.spec["z_dim"], truncation)
        c = torch.as_tensor(np.array(labels)) if labels is not None else None
        with torch.no_grad():
            return to_uint8(self.G(z, c))  # (N, C, H, W) uint8
