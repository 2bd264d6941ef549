"""The text-to-image family's keys (torch-free): what its data kind (captioned images) reads at
ingest and validate, its train keys and its register gates. Loading picks these models when
train.arch is text2image."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

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


# a saved Hugging Face tokenizer holds one of these; a saved model config.json and weights
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json",
                   "spiece.model", "sentencepiece.bpe.model")  # fmt: skip
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")  # fmt: skip


def pretrained_folder_fault(value: str) -> str | None:
    """Why `value` is not a local folder holding a saved Hugging Face text model (and its
    tokenizer) that this install can load, or None. Only files are looked at: nothing is
    imported or downloaded."""
    folder = Path(value).expanduser()
    if not folder.is_dir():
        return "not 'scratch' and no such folder (give a local Hugging Face model folder)"
    if not (folder / "config.json").is_file():
        return "the folder holds no config.json: not a saved Hugging Face model"
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        return f"the folder holds no model weights ({' or '.join(WEIGHT_FILES[::2])})"
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        return f"the folder holds no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...)"
    if importlib.util.find_spec("transformers") is None:
        return "a pretrained folder needs transformers: pip install 'ganops[text]'"
    return None


class TextEncoderConfig(_Section):
    """train.text: the sentence encoder. `scratch`: a bi-GRU pretrained contrastively here on
    the train pairs. A local folder: a saved Hugging Face text model, loaded offline and frozen;
    only a linear projection of its mean-pooled token states is trained (the same contrastive
    step), and its tokenizer replaces the word vocabulary for G's condition."""

    encoder: str  # "scratch" or the path of a local Hugging Face model folder
    embed_dim: PosInt  # word embedding width (scratch only)
    sentence_dim: PosInt  # sentence vector width (G's and D's condition)
    pretrain_epochs: PosInt  # contrastive epochs over the train captions before the GAN
    pretrain_lr: PosFloat
    temperature: PosFloat  # InfoNCE temperature

    @field_validator("encoder")
    @classmethod
    def _scratch_or_folder(cls, value: str) -> str:
        if value != "scratch" and (fault := pretrained_folder_fault(value)):
            raise ValueError(fault)
        return value

    @property
    def pretrained(self) -> bool:
        return self.encoder != "scratch"


class Text2ImageTrainConfig(TrainConfig):
    arch: Literal["text2image"]
    z_dim: PosInt
    d_condition: Literal["fusion", "projection"]  # D joins image and sentence (DF-GAN) or projects
    ma_gp_weight: Annotated[float, Field(ge=0)]  # matching-aware zero-centred GP (DF-GAN: 2)
    ma_gp_power: PosFloat  # DF-GAN: 6
    # the penalty on every k-th D step only, weighted k times (StyleGAN2's lazy regularisation):
    # the double backward is ~40 % of a step at 32 px on a CPU. 1 = every step (DF-GAN)
    ma_gp_every: PosInt = 1
    mismatch_weight: Annotated[float, Field(ge=0)]  # weight of D's mismatched-caption loss
    # other images' captions drawn per mismatched pair; D sees the one whose sentence is
    # closest to the true one (a hard negative). 1 = one random other caption (DF-GAN)
    mismatch_candidates: PosInt = 1
    # weight of the semantic loss: D reads the sentence back from a real image (1 - cosine),
    # G is asked to draw images whose sentence D reads back (AC-GAN's auxiliary loss with the
    # sentence as target). 0 = off (DF-GAN)
    semantic_weight: Annotated[float, Field(ge=0)] = 0.0
    # weight of the match loss: G's images, read by the frozen image encoder of the sentence
    # encoder's contrastive step, must pick their own caption among the batch's (CLIP's loss;
    # AttnGAN's DAMSM loss with the sentence vector). 0 = off
    match_weight: Annotated[float, Field(ge=0)] = 0.0
    # D also reads the frozen image encoder of the contrastive step (its 4x4 features beside
    # D's own, before the condition): a vision-aided D (Kumari et al. 2022) with no outside
    # weights. false = D's own features only (DF-GAN)
    d_encoder_features: bool = False
    ema_half_life_kimg: Annotated[float, Field(ge=0)]
    # which G_ema models/ registers: the last, or the one with the lowest probe FID (the probe's
    # FID is unconditional: it cannot see whether G draws what its caption says). The other
    # one is kept beside it (G_ema_best / G_ema_last)
    keep_g_ema: Literal["last", "probe"] = "probe"
    text: TextEncoderConfig


class Text2ImageRegisterConfig(RegisterConfig):
    max_fid_ratio: PosFloat  # gate: fid / fid_floor at most this
    min_r_precision_share: Fraction  # gate: R-precision / the real-image ceiling at least this
    min_diversity_ratio: Annotated[float, Field(ge=0)]  # gate: per-caption spread / real's
