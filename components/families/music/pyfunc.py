"""The music generator as an MLflow pyfunc: DataFrame(seed) -> DataFrame(seed, midi, roll):
one window per row, the same window for the same seed. `midi` is a type-1 MIDI file (bytes;
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


class MusicModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from components.families.music.evaluate import load_generator

        self.G, self.spec = load_generator(Path(context.artifacts[SPEC_FILE]).parent)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        from components.datakinds.scores.roll import roll_to_midi
        from components.families.music.evaluate import draw

        seeds = seeds_of(model_input)
        rolls = draw(self.G, seeds)  # (N, tracks, T, P) uint8
        s = self.spec
        midi = [roll_to_midi(r, s["steps_per_beat"], s["pitch_low"], s["tempo"]) for r in rolls]
        return pd.DataFrame({"seed": seeds, "midi": midi, "roll": [r.tolist() for r in rolls]})
