"""The noise -> image family's keys (torch-free): train.g_cond, train.z_dim, train.reg and its
register gates. Loading picks these models when train.arch is dcgan, sagan or resnet."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from components.config import (
    ADA_LOSSES,
    SMOOTHED_LOSSES,
    Fraction,
    PosFloat,
    PosInt,
    RegisterConfig,
    TrainConfig,
    _Section,
)

ARCHS = ("dcgan", "sagan", "resnet")
DIFFAUGMENT_OPS = ("translation", "cutout", "color")
# ingest.image_size each arch builds (nets/; checked equal by tests)
ARCH_SIZES = {"dcgan": (28, 32, 64), "sagan": (28, 32, 64), "resnet": (32, 64, 128, 256)}


def arch_size_error(arch: str, image_size: int) -> str | None:
    """The one line that says a noise arch cannot build a size (None when it can)."""
    sizes = ARCH_SIZES.get(arch)
    if sizes is None or image_size in sizes:
        return None
    others = " or ".join(a for a, s in ARCH_SIZES.items() if image_size in s)
    hint = f" ({others} builds {image_size})" if others else ""
    builds = f"{arch} builds {', '.join(map(str, sizes))} px{hint}"
    return f"train.arch {arch} cannot build ingest.image_size {image_size}: {builds}"


class RegConfig(_Section):
    """train.reg: the regularisers (each off at its neutral value)."""

    spectral_norm: Literal["none", "d", "g", "both"]
    gp_weight: Annotated[float, Field(ge=0)]
    r1_gamma: Annotated[float, Field(ge=0)]
    r1_every: PosInt
    label_smoothing: Annotated[float, Field(ge=0, lt=0.5)]
    diffaugment: str
    ada: bool
    ada_target: Annotated[float, Field(gt=0, lt=1)]
    ada_interval: PosInt
    ada_kimg: PosFloat
    ema_half_life_kimg: Annotated[float, Field(ge=0)]

    @field_validator("diffaugment")
    @classmethod
    def _known_policy(cls, value: str) -> str:
        unknown = [
            n for n in (p.strip() for p in value.split(",")) if n and n not in DIFFAUGMENT_OPS
        ]
        if unknown:
            raise ValueError(
                f"unknown augmentation {unknown[0]!r} (one of {', '.join(DIFFAUGMENT_OPS)})"
            )
        return value


class NoiseTrainConfig(TrainConfig):
    arch: Literal["dcgan", "sagan", "resnet"]
    g_cond: Literal["embed", "cbn"]
    z_dim: PosInt
    reg: RegConfig

    @model_validator(mode="after")
    def _consistent(self) -> NoiseTrainConfig:
        if self.arch == "sagan" and self.reg.spectral_norm != "both":
            raise ValueError(
                "train.arch sagan puts spectral norm in G and D: set train.reg.spectral_norm: both"
                f" (got {self.reg.spectral_norm!r})"
            )
        if self.arch == "resnet" and self.reg.spectral_norm not in ("d", "both"):
            raise ValueError(
                "train.arch resnet puts spectral norm in D (SNGAN): set train.reg.spectral_norm:"
                f" d or both (got {self.reg.spectral_norm!r})"
            )
        if self.reg.ada and self.reg.diffaugment:
            raise ValueError(
                f"train.reg.ada and train.reg.diffaugment ({self.reg.diffaugment!r}) both augment "
                'what D sees: choose one (train.reg.diffaugment: "" or train.reg.ada: false)'
            )
        if self.reg.ada and self.reg.gp_weight > 0:
            raise ValueError(
                f"train.reg.ada with train.reg.gp_weight ({self.reg.gp_weight}): the gradient "
                "penalty is taken on un-augmented images D never sees; use train.reg.r1_gamma"
            )
        if self.reg.ada and self.loss not in ADA_LOSSES:
            raise ValueError(
                f"train.reg.ada needs a D with a fixed real/fake boundary ({', '.join(ADA_LOSSES)})"
                f"; train.loss {self.loss}'s critic has none to measure overfitting against"
            )
        if self.reg.label_smoothing > 0 and self.loss not in SMOOTHED_LOSSES:
            raise ValueError(
                f"train.reg.label_smoothing ({self.reg.label_smoothing}) has no meaning for "
                f"train.loss {self.loss} (it lowers the real target of "
                f"{' and '.join(SMOOTHED_LOSSES)}); set it to 0 or use one of those losses"
            )
        return self


class NoiseRegisterConfig(RegisterConfig):
    max_fid_ratio: PosFloat
    min_cond_acc: Fraction
    min_modes_covered_fraction: Fraction
    min_tstr: Fraction
