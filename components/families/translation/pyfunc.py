"""The translator as an MLflow pyfunc: DataFrame(image, direction) -> DataFrame(image) of PNGs.

Logged as MLflow "models from code" (pyfunc_model.py beside this builds the model object; weights
are safetensors artifacts), so loading a version never unpickles anything. Ships with the model
(code_paths) and imports only what the model's pip_requirements declare.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

from components.families.translation.nets import SPEC_FILE


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
        from components.families.translation.translate import Translator, directions_of

        self.translator = Translator(Path(context.artifacts[SPEC_FILE]).parent)
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
    from components.families.translation.translate import (
        decode,
        direction_error,
        encode_png,
        prepare,
    )

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
