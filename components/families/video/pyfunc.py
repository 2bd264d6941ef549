"""The video generator as an MLflow pyfunc: DataFrame(seed[, label]) -> uint8 clips
(N, T, C, H, W), the same clip for the same (seed, label). Models from code (pyfunc_model.py);
weights are a safetensors artifact, so loading never unpickles anything."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

from components.families.video.options import SPEC_FILE


class VideoModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from components.families.video.nets import load_generator

        self.G, self.spec = load_generator(Path(context.artifacts[SPEC_FILE]).parent)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        from components.families.video.nets import sample_clips

        if "seed" not in model_input.columns:
            raise ValueError("input needs an integer column 'seed' (and 'label' when conditional)")
        seeds = model_input["seed"].astype("int64").to_numpy()
        k = self.spec["num_classes"]
        labels = None
        if k:
            if "label" not in model_input.columns:
                raise ValueError(f"this generator is conditional: give a 'label' in 0..{k - 1}")
            labels = model_input["label"].astype("int64").to_numpy()
            bad = np.flatnonzero((labels < 0) | (labels >= k))
            if len(bad):
                raise ValueError(f"row {bad[0]}: label {labels[bad[0]]} out of range 0..{k - 1}")
        elif "label" in model_input.columns and model_input["label"].notna().any():
            raise ValueError("this generator is unconditional: drop the 'label' column")
        return sample_clips(self.G, self.spec, seeds, labels)
