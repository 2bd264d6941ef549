"""Registered models as MLflow pyfuncs: the generator, DataFrame(label, seed) -> uint8
(N, C, H, W), and the translator, DataFrame(image, direction) -> DataFrame(image) of PNGs.

Logged as MLflow "models from code" (components/pyfunc_generator.py and pyfunc_translator.py
build the model object; weights are safetensors artifacts), so loading a model version never
unpickles anything. This module ships with the model (code_paths) and imports only what the
model's pip_requirements declare: torch, safetensors, numpy, pandas, mlflow (and pillow for the
translator, imported inside its functions).
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch

from components.images import to_uint8
from components.models import GENERATOR_FILES, latents, load_model_dir

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


class TranslatorModel(mlflow.pyfunc.PythonModel):
    """A registered translator: DataFrame(image, direction) -> DataFrame(image).

    `image`: PNG/JPEG/... file bytes, or the same as a base64 string (JSON has no bytes: over
    REST the binary column arrives base64 and MLflow decodes it). `direction`: a2b | b2a. Each
    output is a PNG at the model's size, given back as the input came: bytes for bytes, a base64
    string for a string (over REST MLflow base64-encodes the bytes). Inputs of another size are
    resized as ingest does, channels follow ingest's content rule (components/translate.py).
    A bad row (undecodable image, unknown direction, b2a of pix2pix, a colour image for a
    grayscale model) fails the whole request with one message naming the row.
    """

    def load_context(self, context) -> None:
        from components.translate import Translator, directions_of

        self.translator = Translator(Path(context.artifacts["translator.json"]).parent)
        for direction in directions_of(self.translator.spec):
            self.translator.generator(direction)  # load now: the first request is not slower

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        from mlflow.exceptions import INVALID_PARAMETER_VALUE, MlflowException

        from components.errors import GanopsError

        try:
            return translate_frame(self.translator, model_input)
        except GanopsError as err:
            raise MlflowException(str(err), error_code=INVALID_PARAMETER_VALUE) from None


def _image_bytes(value, row: int) -> bytes:
    import base64
    import binascii

    from components.errors import DataError

    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=False)
        except (binascii.Error, ValueError):
            raise DataError(f"row {row}: image is a string but not base64") from None
    raise DataError(f"row {row}: image must be file bytes or a base64 string, got {value!r:.40}")


def translate_frame(translator, frame: pd.DataFrame) -> pd.DataFrame:
    """Every row's image through G of its direction, batched per direction."""
    import base64

    from components.errors import ConfigError
    from components.translate import decode, direction_error, encode_png, prepare

    missing = [c for c in ("image", "direction") if c not in frame.columns]
    if missing:
        raise ConfigError(f"input needs the columns image and direction; missing {missing}")
    values, directions = frame["image"].tolist(), frame["direction"].tolist()
    for row, direction in enumerate(directions):
        if (why := direction_error(translator.spec, direction)) is not None:
            raise ConfigError(f"row {row}: {why}")
    out: list = [None] * len(values)
    for direction in dict.fromkeys(directions):
        rows = [i for i, d in enumerate(directions) if d == direction]
        c_in, _ = translator.channels(direction)
        images = np.stack(
            [
                prepare(
                    decode(_image_bytes(values[i], i), f"row {i}"),
                    c_in,
                    translator.size,
                    f"row {i}",
                )
                for i in rows
            ]
        )  # (n, C_in, S, S)
        for i, img in zip(rows, translator(images, direction), strict=True):
            png = encode_png(img)
            out[i] = base64.b64encode(png).decode("ascii") if isinstance(values[i], str) else png
    return pd.DataFrame({"image": out})
