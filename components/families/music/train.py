"""train: the music family's run on the train windows of a scores dataset."""

from __future__ import annotations

import numpy as np

from components.families.base import Built
from components.families.music.options import SPEC_FILE


def make_spec(cfg, manifest: dict) -> dict:
    """What models/ says about G: the grid it draws on, its sizes, the tempo for MIDI."""
    grid = manifest["grid"]
    tracks, steps, pitches = manifest["shape"]
    return {
        "family": "music",
        "arch": cfg.arch,
        "z_dim": cfg.music.z_dim,
        "latent_dim": cfg.music.z_dim * (2 + 2 * tracks),
        "g_channels": cfg.g_channels,
        "unit_steps": cfg.music.unit_steps,
        "tracks": tracks,
        "bars": grid["bars_per_window"],
        "steps_per_bar": grid["steps_per_beat"] * grid["beats_per_bar"],
        "steps_per_beat": grid["steps_per_beat"],
        "window_steps": steps,
        "pitches": pitches,
        "pitch_low": grid["pitch_low"],
        "pitch_high": grid["pitch_high"],
        "tempo": float(manifest.get("tempo_median") or 100.0),
    }


def train_windows(data) -> np.ndarray:
    """Every train window (transposed copies included), as the array (N, tracks, T, P)."""
    rows = np.flatnonzero((data.meta["split"] == "train").to_numpy())
    return np.asarray(data.images[rows])


def build(cfg, layout, data, device, me) -> Built:
    from components.families.music.probe import MusicProbe
    from components.families.music.trainer import MusicTrainer

    spec = make_spec(cfg, data.manifest)
    windows = train_windows(data)
    trainer = MusicTrainer(cfg, windows, spec, device, me.rank, me.world)

    def probe():
        return MusicProbe(windows, spec["latent_dim"], spec, seed=cfg.seed)

    return Built(trainer, probe, {SPEC_FILE: spec}, best_into=SPEC_FILE)
