"""The image -> image family's keys (torch-free): train.translation, train.reg (G_ema only) and
its register gates. Loading picks these models when train.arch is cyclegan or pix2pix."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from components.config import Fraction, PosInt, RegisterConfig, TrainConfig, _Section

ARCHS = ("cyclegan", "pix2pix")
SPEC_FILE = "translator.json"  # the spec, beside the weights (G_AB/G_BA.safetensors)


class TranslationConfig(_Section):
    """train.translation (Zhu et al. 2017; Isola et al. 2017)."""

    n_blocks: PosInt
    upsample: Literal["resize", "transpose"]
    lambda_cycle: Annotated[float, Field(ge=0)]
    cycle_b_factor: Annotated[float, Field(ge=0)]  # B->A->B cycle weight / A->B->A's
    lambda_semantic: Annotated[float, Field(ge=0)]  # CyCADA's semantic consistency (labels)
    semantic_epochs: PosInt  # epochs of each domain's frozen classifier
    # ... or more on a small train split: at least this many batches (of 64)
    semantic_min_steps: Annotated[int, Field(ge=0)] = 300
    lambda_identity: Annotated[float, Field(ge=0)]
    lambda_l1: Annotated[float, Field(ge=0)]
    pool_size: Annotated[int, Field(ge=0)]
    decay_start: Fraction


class TranslationRegConfig(_Section):
    """train.reg of a translator: only the G_ema half-life (the other regularisers are the
    noise family's; CycleGAN and pix2pix normalise with instance/batch norm)."""

    ema_half_life_kimg: Annotated[float, Field(ge=0)]


class TranslationTrainConfig(TrainConfig):
    arch: Literal["cyclegan", "pix2pix"]
    reg: TranslationRegConfig
    translation: TranslationConfig


class TranslationRegisterConfig(RegisterConfig):
    min_gap_closed: Annotated[float, Field(le=1)]
    min_class_preservation: Fraction
    max_class_loss: Fraction  # class kept may fall at most this far below the untranslated copy's
    min_domain_acc: Fraction
    min_noop_ratio: Annotated[float, Field(ge=0)]
