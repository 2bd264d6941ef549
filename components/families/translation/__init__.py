"""image -> image: CycleGAN on unpaired (or paired) domains, pix2pix on aligned pairs
(options.py: its keys; cyclegan.py / pix2pix.py: their steps; nets.py: G and D; probe.py;
evaluate.py; register.py: gates per direction, card, pyfunc; pyfunc.py: serving;
translate.py: `ganops translate`)."""

from __future__ import annotations

from components.families.base import ModelFamily
from components.families.translation.options import (
    ARCHS,
    SPEC_FILE,
    TranslationRegisterConfig,
    TranslationTrainConfig,
)

TRAINING_FILE = "training.json"  # what the run saw (class names, data kind) and its best step
# the processed data kinds each arch trains on: pix2pix needs aligned pairs
DATA_KINDS = {"cyclegan": ("unpaired", "paired"), "pix2pix": ("paired",)}


class TranslationFamily(ModelFamily):
    name = "translation"
    archs = ARCHS
    train_config = TranslationTrainConfig
    register_config = TranslationRegisterConfig
    spec_file = SPEC_FILE
    trains_on = "two image domains A/B (data kind pairs)"
    pyfunc_in = "DataFrame(image bytes, direction a2b|b2a)"
    pyfunc_out = "DataFrame(image PNG bytes)"
    params_file = "params-translate.yaml (cyclegan), params-pix2pix.yaml"

    def data_kinds(self, arch: str) -> tuple[str, ...]:
        return DATA_KINDS[arch]


FAMILY = TranslationFamily()
