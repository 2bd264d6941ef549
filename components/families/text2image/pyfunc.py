"""The text-to-image generator as an MLflow pyfunc: DataFrame(text[, seed]) -> uint8
(N, C, H, W), one image per row, the same image for the same (text, seed).

Logged as MLflow "models from code" (pyfunc_model.py beside this builds the model object;
weights are safetensors artifacts), so loading a version never unpickles anything. Captions
are encoded with the ingest vocabulary shipped with the model: an empty caption is one error
naming its row; words the vocabulary lacks are named in a warning (they map to <unk>), never
dropped silently.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch

from components.families.text2image.options import SPEC_FILE


def encode_prompts(texts: list, vocab: dict) -> tuple[np.ndarray, list[str]]:
    """(token ids (N, max_words), a warning line per caption with unknown words); ValueError
    naming the row of an empty caption."""
    from components.datakinds.captioned.text import encode

    ids, notes = [], []
    for row, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"row {row}: empty caption; give some words")
        tokens, oov, truncated = encode(text, vocab, int(vocab["max_words"]))
        if not any(t > 1 for t in tokens):
            raise ValueError(f"row {row}: no word of {text!r} is in the vocabulary")
        if oov:
            notes.append(
                f"row {row}: words not in the vocabulary (read as <unk>): {', '.join(oov)}"
            )
        if truncated:
            notes.append(f"row {row}: caption cut at {vocab['max_words']} words")
        ids.append(tokens)
    return np.asarray(ids, dtype=np.int64), notes


class Text2ImageModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from components.families.text2image.evaluate import load_generator

        self.G, self.text, self.spec, self.vocab = load_generator(
            Path(context.artifacts[SPEC_FILE]).parent
        )

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        from components.images import to_uint8
        from components.seeds import latents

        if "text" not in model_input.columns:
            raise ValueError("input needs a string column 'text' (and optionally 'seed')")
        texts = model_input["text"].tolist()
        seeds = (
            model_input["seed"].fillna(0).astype("int64").to_numpy()
            if "seed" in model_input.columns
            else np.arange(len(texts))
        )
        tokens, notes = encode_prompts(texts, self.vocab)
        for note in notes:
            warnings.warn(note, stacklevel=2)
        truncation = float((params or {}).get("truncation", 1.0))
        with torch.no_grad():
            s = self.text(torch.from_numpy(tokens))  # (N, sentence_dim)
            return to_uint8(self.G(latents(seeds, self.spec["z_dim"], truncation), s))
