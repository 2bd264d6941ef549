"""The music family's keys (torch-free): what its data kind (scores) reads at ingest and
validate, its train keys and its register gates. Loading picks these models when train.arch is
musegan."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

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

ARCHS = ("musegan", "roll2d")  # roll2d: the simpler baseline, a 2-D DCGAN over the roll
SPEC_FILE = "music.json"  # G's spec (grid, tracks, latents), beside its weights
MIDI_PITCHES = 128


class MusicIngestConfig(IngestConfig):
    steps_per_beat: PosInt  # grid steps per quarter note (4: sixteenth notes)
    beats_per_bar: PosInt  # quarter notes per bar of the grid (4: 4/4)
    bars_per_window: PosInt  # bars per training window
    hop_bars: PosInt  # bars between the starts of consecutive windows of a piece
    pitch_low: Annotated[int, Field(ge=0, lt=MIDI_PITCHES)]  # lowest MIDI pitch of the roll
    pitch_high: Annotated[int, Field(gt=0, le=MIDI_PITCHES)]  # one above the highest
    tracks: PosInt  # parts kept, highest first (extra parts merged, missing ones empty)
    transpose: Annotated[int, Field(ge=0, le=6)]  # train windows also shifted by +-1..this
    max_pieces: Annotated[int, Field(ge=0)]  # 0 = every piece; else the first N files by name

    @model_validator(mode="after")
    def _range(self) -> MusicIngestConfig:
        if self.pitch_high - self.pitch_low < 12:
            raise ValueError(
                f"ingest.pitch_low ({self.pitch_low}) .. pitch_high ({self.pitch_high}) must "
                "span at least an octave"
            )
        if (self.pitch_high - self.pitch_low) % 12:
            raise ValueError(
                "ingest.pitch_high - pitch_low must be whole octaves (a multiple of 12: G draws "
                "each octave's 12 pitches)"
            )
        if (self.steps_per_beat * self.beats_per_bar) % 4:
            raise ValueError(
                "ingest.steps_per_beat x beats_per_bar must be a multiple of 4 (G upsamples)"
            )
        return self


class MusicValidateConfig(ValidateConfig):
    min_pieces: PosInt  # readable pieces needed (split by piece: test gets a share of them)
    max_onset_loss: Fraction  # a piece losing more of its note onsets on the grid is flagged


class MusicNetConfig(_Section):
    """train.music: the MuseGAN-line nets."""

    z_dim: PosInt  # each of the four latents: shared, shared-temporal, private, private-temporal
    gp_weight: Annotated[float, Field(ge=0)]  # WGAN-GP gradient penalty weight (MuseGAN: 10)
    d_steps: PosInt  # D (critic) updates per G update (MuseGAN: 5)
    binarize: Literal["straight_through", "none"]  # how D sees G's output in training
    unit_steps: PosInt  # G draws notes on a grid of this many steps (a note lasts >= it)
    chroma_stream: bool  # D also reads the window folded to 12 pitch classes
    voicing: Literal["auto", "mono", "poly"]  # per track: one voice (pitch or rest) or chords


class MusicTrainConfig(TrainConfig):
    arch: Literal["musegan", "roll2d"]
    ema_half_life_kimg: Annotated[float, Field(ge=0)]
    music: MusicNetConfig


class MusicRegisterConfig(RegisterConfig):
    max_fd_ratio: PosFloat  # gate: Frechet distance / its real floor at most this
    max_c2st_ratio: PosFloat  # gate: two-sample accuracy / its real floor (~0.5) at most this
    max_copy_rate: Fraction  # gate: share of windows that copy a train window
    beat_controls: bool  # gate: fd and c2st below both negative controls' (smoke runs: false)
