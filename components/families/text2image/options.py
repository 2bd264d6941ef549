"""The text-to-image family's keys (torch-free): what its data kind (captioned images) reads at
ingest and validate, its train keys and its register gates. Loading picks these models when
train.arch is text2image."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from components.config import (
    Fraction,
    IngestConfig,
    PosFloat,
    PosInt,
    RegisterConfig,
    TrainConfig,
    ValidateConfig,
    _Section,
)

ARCHS = ("text2image",)
SPEC_FILE = "text2image.json"  # G's and the text encoder's spec, beside their weights


class Text2ImageIngestConfig(IngestConfig):
    max_caption_words: PosInt  # longer captions keep their first words; truncation is counted


class Text2ImageValidateConfig(ValidateConfig):
    min_caption_words: PosInt  # a caption with fewer words (after lower-casing) fails
    max_caption_words: PosInt  # a caption with more words fails (ingest truncates far sooner)
    max_test_oov_fraction: Fraction  # share of test-caption words not in the train vocabulary


class TextEncoderConfig(_Section):
    """train.text: the sentence encoder, pretrained contrastively on the train pairs first."""

    # "scratch": a bi-GRU trained here (a local pretrained Hugging Face folder is not built yet:
    # the type refuses it rather than training from scratch behind the user's back)
    encoder: Literal["scratch"]
    embed_dim: PosInt  # word embedding width
    sentence_dim: PosInt  # sentence vector width (G's and D's condition)
    pretrain_epochs: PosInt  # contrastive epochs over the train captions before the GAN
    pretrain_lr: PosFloat
    temperature: PosFloat  # InfoNCE temperature


class Text2ImageTrainConfig(TrainConfig):
    arch: Literal["text2image"]
    z_dim: PosInt
    d_condition: Literal["fusion", "projection"]  # D joins image and sentence (DF-GAN) or projects
    ma_gp_weight: Annotated[float, Field(ge=0)]  # matching-aware zero-centred GP (DF-GAN: 2)
    ma_gp_power: PosFloat  # DF-GAN: 6
    mismatch_weight: Annotated[float, Field(ge=0)]  # weight of D's mismatched-caption loss
    ema_half_life_kimg: Annotated[float, Field(ge=0)]
    text: TextEncoderConfig


class Text2ImageRegisterConfig(RegisterConfig):
    max_fid_ratio: PosFloat  # gate: fid / fid_floor at most this
    min_r_precision_share: Fraction  # gate: R-precision / the real-image ceiling at least this
    min_diversity_ratio: Annotated[float, Field(ge=0)]  # gate: per-caption spread / real's
