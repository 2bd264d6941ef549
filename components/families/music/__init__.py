"""symbolic music: a multi-track GAN in the MuseGAN line over quantised piano-roll windows
(options.py: its keys; nets.py: G (shared and private latents, bar by bar) and D (bar- and
window-level convolutions); trainer.py: its WGAN-GP step; metrics.py: the MuseGAN metrics,
written fresh; features.py: the evaluation net, Frechet distance and two-sample test;
probe.py; pyfunc.py: serving; generate.py: MIDI, pictures and audio for `ganops generate`; and
the stage hooks train.py, evaluate.py, register.py, export.py)."""

from __future__ import annotations

from components.families.base import ModelFamily
from components.families.music.options import (
    ARCHS,
    SPEC_FILE,
    MusicIngestConfig,
    MusicRegisterConfig,
    MusicTrainConfig,
    MusicValidateConfig,
)


class MusicFamily(ModelFamily):
    name = "music"
    archs = ARCHS
    train_config = MusicTrainConfig
    register_config = MusicRegisterConfig
    ingest_config = MusicIngestConfig
    validate_config = MusicValidateConfig
    spec_file = SPEC_FILE
    trains_on = "multi-track scores: MIDI, MusicXML, **kern (data kind scores)"
    pyfunc_in = "DataFrame(seed)"
    pyfunc_out = "DataFrame(seed, midi bytes, roll)"
    params_file = "params-music.yaml"

    def data_kinds(self, arch: str) -> tuple[str, ...]:
        return ("scores",)


FAMILY = MusicFamily()
