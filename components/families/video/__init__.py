"""noise -> video clip: a MoCoGAN-style generator (a content latent per clip, a GRU motion
latent per frame, one image generator for every frame) with an image D on random frames and a
3-D-convolution video D on whole clips; or a plain 3-D-convolution generator (conv3d).
options.py: its keys; nets.py: G and the Ds; trainer.py: its step; probe.py; temporal.py: the
motion statistics; videonet.py: the small 3-D feature net of the video distance; pyfunc.py:
serving; clipfiles.py: GIF / strip writing; the stage hooks train.py, evaluate.py,
register.py, export.py."""

from __future__ import annotations

from components.families.base import ModelFamily
from components.families.video.options import (
    ARCHS,
    SPEC_FILE,
    VideoIngestConfig,
    VideoRegisterConfig,
    VideoTrainConfig,
    VideoValidateConfig,
)


class VideoFamily(ModelFamily):
    name = "video"
    archs = ARCHS
    train_config = VideoTrainConfig
    register_config = VideoRegisterConfig
    ingest_config = VideoIngestConfig
    validate_config = VideoValidateConfig
    spec_file = SPEC_FILE
    trains_on = "video clips (data kind clips)"
    pyfunc_in = "DataFrame(seed[, label])"
    pyfunc_out = "uint8 (N, T, C, H, W)"
    params_file = "params-video.yaml"

    def data_kinds(self, arch: str) -> tuple[str, ...]:
        return ("clips",)

    def check_params(self, params) -> str | None:
        size = params.ingest.image_size
        if params.train.arch == "conv3d" and params.ingest.frames == "auto":
            return "train.arch conv3d needs a fixed ingest.frames (a power of two, e.g. 16)"
        if size not in (32, 64, 128):
            return f"ingest.image_size {size}: the video family builds 32, 64 or 128 px"
        return None


FAMILY = VideoFamily()
