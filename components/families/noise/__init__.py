"""noise -> image: DCGAN, SAGAN and SNGAN/BigGAN-style ResNet generators, optionally
class-conditional (options.py: its keys; trainer.py: its step; nets/: G and D; probe.py,
evaluate in components/evaluate; register.py: gates, card, pyfunc; pyfunc.py: serving)."""

from __future__ import annotations

from components.families.base import ModelFamily
from components.families.noise.options import (
    ARCHS,
    NoiseRegisterConfig,
    NoiseTrainConfig,
    arch_size_error,
)

SPEC_FILE = "generator.json"  # G's spec beside G_ema.safetensors (nets/build.py reads it)


class NoiseFamily(ModelFamily):
    name = "noise"
    archs = ARCHS
    train_config = NoiseTrainConfig
    register_config = NoiseRegisterConfig
    spec_file = SPEC_FILE
    trains_on = "images, optionally with class labels (data kind images)"
    pyfunc_in = "DataFrame(seed[, label])"
    pyfunc_out = "uint8 (N, C, H, W)"
    params_file = "params.yaml, params-photos.yaml"

    def data_kinds(self, arch: str) -> tuple[str, ...]:
        return ("generate",)

    def check_params(self, params) -> str | None:
        return arch_size_error(params.train.arch, params.ingest.image_size)


FAMILY = NoiseFamily()
