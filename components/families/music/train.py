"""train: the music family's run on the train windows of a scores dataset."""

from __future__ import annotations

import numpy as np

from components.families.base import Built
from components.families.music.options import SPEC_FILE

MONO_BELOW = 0.1  # voicing auto: a track is one voice when under this share of its sounding
# steps hold two pitches or more (chorale voices: 0.01-0.02; a merged or keyboard track: more)
AUTO_SAMPLE = 4000  # windows read to decide


def mono_tracks(voicing: str, windows: np.ndarray) -> list[bool]:
    """Which tracks G draws as one voice: all (mono), none (poly), or by the train windows'
    polyphony (auto)."""
    from components.families.music.metrics import polyphony_rate

    k = windows.shape[1]
    if voicing != "auto":
        return [voicing == "mono"] * k
    pick = np.arange(len(windows))
    if len(pick) > AUTO_SAMPLE:  # a seeded sample of the whole set, not its first pieces
        pick = np.sort(np.random.default_rng(0).choice(len(pick), AUTO_SAMPLE, replace=False))
    rate = polyphony_rate(np.asarray(windows[pick]))
    return [bool(r < MONO_BELOW) for r in np.nan_to_num(rate, nan=0.0)]


def make_spec(cfg, manifest: dict, windows: np.ndarray) -> dict:
    """What models/ says about G: the grid it draws on, its sizes, which tracks are one voice,
    the tempo for MIDI."""
    from components.families.music.nets import latent_width

    grid = manifest["grid"]
    tracks, steps, pitches = manifest["shape"]
    return {
        "family": "music",
        "arch": cfg.arch,
        "z_dim": cfg.music.z_dim,
        "latent_dim": latent_width(cfg.music.z_dim, tracks),
        "g_channels": cfg.g_channels,
        "unit_steps": cfg.music.unit_steps,
        "mono_tracks": mono_tracks(cfg.music.voicing, windows),
        "tracks": tracks,
        "bars": grid["bars_per_window"],
        "steps_per_bar": grid["steps_per_beat"] * grid["beats_per_bar"],
        "steps_per_beat": grid["steps_per_beat"],
        "window_steps": steps,
        "pitches": pitches,
        "pitch_low": grid["pitch_low"],
        "pitch_high": grid["pitch_high"],
        "tempo": float(manifest.get("tempo_median") or 100.0),
        "class_names": list(manifest.get("class_names") or []),  # conditional when any
    }


def train_windows(data) -> tuple[np.ndarray, np.ndarray]:
    """Every train window (transposed copies included), as the array (N, tracks, T, P), and
    its class (-1 without classes)."""
    rows = np.flatnonzero((data.meta["split"] == "train").to_numpy())
    return np.asarray(data.images[rows]), data.meta["label"].to_numpy()[rows].astype(np.int64)


def build(cfg, layout, data, device, me) -> Built:
    from components.families.music.probe import MusicProbe
    from components.families.music.trainer import MusicTrainer

    windows, labels = train_windows(data)
    spec = make_spec(cfg, data.manifest, windows)
    trainer = MusicTrainer(cfg, windows, spec, device, me.rank, me.world, labels)

    def probe():
        return MusicProbe(windows, spec["latent_dim"], spec, seed=cfg.seed)

    return Built(trainer, probe, {SPEC_FILE: spec}, best_into=SPEC_FILE)
