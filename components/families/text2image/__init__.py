"""text -> image: a one-stage GAN in the DF-GAN line conditioned on a sentence vector
(options.py: its keys; encoder.py: the sentence encoder's contrastive step; nets.py: G, D and
the encoders; trainer.py: its step; probe.py; pyfunc.py: serving; and the stage hooks train.py,
evaluate.py, register.py, export.py)."""

from __future__ import annotations

from components.families.base import ModelFamily
from components.families.text2image.options import (
    ARCHS,
    SPEC_FILE,
    Text2ImageIngestConfig,
    Text2ImageRegisterConfig,
    Text2ImageTrainConfig,
    Text2ImageValidateConfig,
)


class Text2ImageFamily(ModelFamily):
    name = "text2image"
    archs = ARCHS
    train_config = Text2ImageTrainConfig
    register_config = Text2ImageRegisterConfig
    ingest_config = Text2ImageIngestConfig
    validate_config = Text2ImageValidateConfig
    spec_file = SPEC_FILE
    trains_on = "images with one or more captions each (data kind captioned)"
    pyfunc_in = "DataFrame(text[, seed])"
    pyfunc_out = "uint8 (N, C, H, W)"
    params_file = "params-text2image.yaml"

    def data_kinds(self, arch: str) -> tuple[str, ...]:
        return ("captioned",)


FAMILY = Text2ImageFamily()
