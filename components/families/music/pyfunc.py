"""The music generator as an MLflow pyfunc: DataFrame(seed[, label]) -> DataFrame(seed,
label, midi, roll): one window per row, the same window for the same seed (and class: a
conditional model, trained on a set with class sub-folders, needs `label`, a class name or its
index). `midi` is a type-1 MIDI file (bytes;
base64 in JSON over REST), `roll` the binary piano roll as nested lists (tracks x steps x
pitches, pitch_low upwards).

Logged as MLflow "models from code" (pyfunc_model.py builds the object; the weights are a
safetensors artifact): loading a version never unpickles anything.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

from components.families.music.options import SPEC_FILE


def seeds_of(model_input: pd.DataFrame) -> np.ndarray:
    """The int seeds of the input; ValueError naming the row of one that is not a whole
    number >= 0."""
    if "seed" not in model_input.columns:
        raise ValueError("input needs an integer column 'seed'")
    seeds = []
    for row, value in enumerate(model_input["seed"].tolist()):
        if value is None or not float(value).is_integer() or float(value) < 0:
            raise ValueError(f"row {row}: seed {value!r} is not a whole number >= 0")
        seeds.append(int(value))
    return np.asarray(seeds, dtype=np.int64)


def labels_of(model_input: pd.DataFrame, class_names: list[str]) -> np.ndarray | None:
    """The class index of each row (a class name or its index), None for an unconditional
    model; ValueError naming what is wrong."""
    from components.families.labels import resolve_labels

    given = "label" in model_input.columns and model_input["label"].notna().any()
    if not class_names:
        if given:
            raise ValueError("this generator is unconditional: drop the 'label' column")
        return None
    if "label" not in model_input.columns or model_input["label"].isna().any():
        raise ValueError(
            f"this generator is conditional: give every row a 'label' ({', '.join(class_names)})"
        )
    return resolve_labels(model_input["label"].tolist(), class_names)


class MusicModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from components.families.music.evaluate import load_generator

        self.G, self.spec = load_generator(Path(context.artifacts[SPEC_FILE]).parent)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        from components.datakinds.scores.roll import roll_to_midi
        from components.families.music.evaluate import draw

        seeds = seeds_of(model_input)
        labels = labels_of(model_input, self.spec.get("class_names", []))
        rolls = draw(self.G, seeds, labels)  # (N, tracks, T, P) uint8
        s = self.spec
        midi = [roll_to_midi(r, s["steps_per_beat"], s["pitch_low"], s["tempo"]) for r in rolls]
        out = {"seed": seeds, "midi": midi, "roll": [r.tolist() for r in rolls]}
        if labels is not None:
            out = {"seed": seeds, "label": [s["class_names"][i] for i in labels]} | out
        return pd.DataFrame(out)
