"""The video family's keys (torch-free): what its data kind (clips) reads at ingest and
validate, its train keys and its register gates. Loading picks these models when train.arch is
mocogan or conv3d."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from components.config import (
    Fraction,
    IngestConfig,
    PosFloat,
    PosInt,
    RegisterConfig,
    TrainConfig,
    ValidateConfig,
)

ARCHS = ("mocogan", "conv3d")
SPEC_FILE = "video.json"  # G's spec, beside its weights


class VideoIngestConfig(IngestConfig):
    data_kind: ClassVar[str] = "clips"  # ingest reads ingest.source as clips, whatever its layout
    frames: Literal["auto"] | PosInt  # frames per clip; auto: the clips' median length, capped
    max_frames: PosInt  # the cap of `frames: auto`
    frame_step: PosInt  # keep every k-th frame before windowing
    array_layout: Literal["nthw", "tnhw"]  # .npy/.npz axes: (N, T, H, W[, C]) or (T, N, H, W)
    bundled_clips: PosInt  # clips drawn for the bundled moving_mnist (train + test)


class VideoValidateConfig(ValidateConfig):
    static_motion: Annotated[float, Field(ge=0)]  # mean |frame difference| (0-255) below: static
    max_static_fraction: Fraction  # share of static clips tolerated


class VideoTrainConfig(TrainConfig):
    """kimg counts clips (a step shows batch_size clips to the video D)."""

    arch: Literal["mocogan", "conv3d"]
    z_content: PosInt  # content latent, fixed per clip (MoCoGAN: 50)
    z_motion: PosInt  # motion latent per frame, from a GRU (MoCoGAN: 10)
    # mocogan's renderer: sprite (content -> object layer, mask, background; motion -> a track
    # the object layer moves along) | frames (content + motion -> every frame, as MoCoGAN)
    renderer: Literal["sprite", "frames"]
    sprite_extent: Annotated[float, Field(gt=0, le=1)]  # side of the sprite's mask / the frame's
    conditional: bool  # one class per clip (label embedding in G, projection in both Ds)
    image_frames: PosInt  # frames per clip the image D sees each step
    ema_half_life_kimg: Annotated[float, Field(ge=0)]
    r1_gamma: Annotated[float, Field(ge=0)]  # R1 penalty on real clips and frames (0: off)
    minibatch_std: Annotated[int, Field(ge=0)]  # both Ds' minibatch-std group size (0: off)


class VideoRegisterConfig(RegisterConfig):
    max_video_fd_ratio: PosFloat  # gate: video_fd / its real-vs-real floor at most this
    max_frozen_rate: Fraction  # gate: share of generated clips that do not move
    # gate (labelled data, conditional G): cond_acc at least this share of the real clips'
    min_cond_acc_share: Fraction
