"""The text-to-image generator as an MLflow pyfunc: DataFrame(text[, seed]) -> uint8
(N, C, H, W), one image per row, the same image for the same (text, seed).

Logged as MLflow "models from code" (pyfunc_model.py beside this builds the model object;
weights are safetensors artifacts), so loading a version never unpickles anything. Captions
are encoded with the ingest vocabulary shipped with the model (or, for a pretrained text
encoder, its tokenizer, shipped in text_model/): an empty caption is one error naming its row;
words the vocabulary lacks are named in a warning (they map to <unk>), never dropped
silently.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch

from components.families.text2image.encoder import encode_prompts
from components.families.text2image.options import SPEC_FILE

__all__ = ["Text2ImageModel", "encode_prompts"]


class Text2ImageModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from components.families.text2image.evaluate import load_generator

        self.G, self.text, self.spec, self.prompts = load_generator(
            Path(context.artifacts[SPEC_FILE]).parent
        )

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        from mlflow.exceptions import INVALID_PARAMETER_VALUE, MlflowException

        from components.images import to_uint8
        from components.seeds import latents

        if "text" not in model_input.columns:
            raise MlflowException(
                "input needs a string column 'text' (and optionally 'seed')",
                error_code=INVALID_PARAMETER_VALUE,
            )
        texts = model_input["text"].tolist()
        seeds = (
            model_input["seed"].fillna(0).astype("int64").to_numpy()
            if "seed" in model_input.columns
            else np.arange(len(texts))
        )
        try:  # a bad caption is the caller's fault: HTTP 400 over REST, with this message
            tokens, notes = self.prompts.encode(texts)
        except ValueError as err:
            raise MlflowException(str(err), error_code=INVALID_PARAMETER_VALUE) from None
        for note in notes:
            warnings.warn(note, stacklevel=2)
        truncation = float((params or {}).get("truncation", 1.0))
        with torch.no_grad():
            s = self.text(torch.from_numpy(tokens))  # (N, sentence_dim)
            return to_uint8(self.G(latents(seeds, self.spec["z_dim"], truncation), s))
