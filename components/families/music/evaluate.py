"""evaluate, symbolic music: G_ema's windows against held-out real windows (the test pieces),
beside the real floor (train windows of other pieces vs the same test windows) and two
negative controls that must score worse than the generator: `random` (cells drawn at each
track's real note density) and `shuffled` (the test windows with their pitch rows permuted).

Every figure is written for `generated` (no suffix) and with the suffixes `_floor`, `_random`,
`_shuffled`; the per-track musical statistics also for the test windows themselves (`_real`):

- MuseGAN's statistics per track (`_t<i>`) and averaged: empty_bar_rate, used_pitch_classes,
  qualified_note_rate, polyphony_rate, in_key_rate, range_violation (outside the real train
  range of the track); tonal_distance averaged over track pairs; polyphony over all tracks;
- histogram distances to the test windows (total variation): pc_hist_tv, duration_hist_tv,
  ioi_hist_tv; `stats_gap`: the mean of the absolute gaps to the test windows' statistics;
- `fd`: the Frechet distance to the test windows in RollNet's feature space
  (features.py) and `fd_ratio` = fd / fd_floor; `c2st`: the two-sample accuracy (0.5 =
  indistinguishable) and `c2st_ratio` = c2st / c2st_floor;
- `copy_rate`: share of windows that (nearly) copy a train window (IoU >= 0.9); its floor is
  the test windows' own rate (pieces can share a melody);
- a conditional G is asked for the classes of the test windows it is compared with, and
  `fd_by_class` (windows drawn for a class vs the real test windows of that class, averaged)
  sits beside `fd_by_class_swapped` (the same windows vs the other classes' real ones).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from components.config import EvaluateConfig
from components.layout import Layout, read_json

SETS = ("generated", "floor", "random", "shuffled")
SUFFIX = {"generated": "", "floor": "_floor", "random": "_random", "shuffled": "_shuffled",
          "real": "_real"}  # fmt: skip
PER_TRACK = ("empty_bar_rate", "used_pitch_classes", "qualified_note_rate", "polyphony_rate",
             "in_key_rate", "range_violation")  # fmt: skip
GAP_STATS = (*PER_TRACK, "tonal_distance", "polyphony")
G_BATCH = 250
PICTURE_WINDOWS = 8
CLASS_MIN = 20  # test windows a class needs for its own Frechet distance


def load_generator(models: Path):
    """(G_ema in eval mode, spec) from models/ or a downloaded version."""
    from safetensors.torch import load_file

    from components.families.model_files import require
    from components.families.music.nets import build_generator
    from components.families.music.options import SPEC_FILE

    spec = read_json(require(models, SPEC_FILE))
    G = build_generator(spec)
    G.load_state_dict(load_file(str(require(models, "G_ema.safetensors"))))
    return G.eval().requires_grad_(False), spec


@torch.no_grad()
def draw(G, seeds, labels=None) -> np.ndarray:
    """uint8 windows (N, tracks, T, P), one per latent seed and class (the same seed and class,
    the same window); labels only for a conditional G."""
    from components.seeds import latents

    seeds = np.asarray(seeds)
    z = latents(seeds, G.latent_dim)
    if labels is None:
        parts = [(b, None) for b in z.split(G_BATCH)]
    else:
        classes = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        parts = list(zip(z.split(G_BATCH), classes.split(G_BATCH), strict=True))
    out = [(G(b, c) > 0.5).to(torch.uint8).numpy() for b, c in parts]
    shape = (0, G.tracks, G.bars * G.steps_per_bar, G.pitches)
    return np.concatenate(out) if out else np.zeros(shape, np.uint8)


def random_control(real: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cells on at random, at each track's note density in `real`."""
    density = real.mean(axis=(0, 2, 3))  # (tracks,)
    return (rng.random(real.shape) < density[None, :, None, None]).astype(np.uint8)


def shuffled_control(real: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each window with its pitch rows permuted (the same permutation for all its tracks):
    rhythm and density kept, pitch content destroyed."""
    out = np.empty_like(real)
    for i, w in enumerate(real):
        out[i] = w[..., rng.permutation(w.shape[-1])]
    return out


def musical_stats(rolls: np.ndarray, spec: dict, ranges: np.ndarray) -> dict[str, np.ndarray]:
    """The per-track statistics (arrays over tracks) and the set-level ones (floats)."""
    from components.families.music import metrics as mm

    spb, low = spec["steps_per_bar"], spec["pitch_low"]
    td = mm.tonal_distance(rolls, spb, low)
    pairs = td[np.triu_indices(len(td), 1)]
    return {
        "empty_bar_rate": mm.empty_bar_rate(rolls, spb),
        "used_pitch_classes": mm.used_pitch_classes(rolls, spb, low),
        "qualified_note_rate": mm.qualified_note_rate(rolls, qualified_steps(spec)),
        "polyphony_rate": mm.polyphony_rate(rolls),
        "in_key_rate": mm.in_key_rate(rolls, low),
        "range_violation": mm.range_violation(rolls, ranges),
        "tonal_distance": float(np.nanmean(pairs)) if np.isfinite(pairs).any() else np.nan,
        "polyphony": mm.polyphony(rolls),
    }


def qualified_steps(spec: dict) -> int:
    """A qualified note lasts at least an eighth note (MuseGAN: 3 of 96 steps per bar, a
    32nd-note triplet, on its finer grid)."""
    return max(1, spec["steps_per_beat"] // 2)


def histograms(rolls: np.ndarray, spec: dict) -> dict[str, np.ndarray]:
    from components.families.music import metrics as mm

    return {
        "pc_hist": mm.pitch_class_histogram(rolls, spec["pitch_low"]),
        "duration_hist": mm.duration_histogram(rolls),
        "ioi_hist": mm.ioi_histogram(rolls),
    }


def _mean(v) -> float:
    v = np.asarray(v, dtype=float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def stat_metrics(sets: dict[str, np.ndarray], test: np.ndarray, spec: dict,
                 ranges: np.ndarray) -> dict:  # fmt: skip
    from components.families.music.metrics import tv_distance

    m: dict = {}
    real = musical_stats(test, spec, ranges)
    real_h = histograms(test, spec)
    for name, rolls in {"real": test, **sets}.items():
        stats = real if name == "real" else musical_stats(rolls, spec, ranges)
        sfx = SUFFIX[name]
        for key, value in stats.items():
            m[f"{key}{sfx}"] = _mean(value)
            if np.ndim(value):
                m.update({f"{key}_t{i}{sfx}": float(v) for i, v in enumerate(value)})
        if name == "real":
            continue
        h = histograms(rolls, spec)
        for key in real_h:
            m[f"{key}_tv{sfx}"] = tv_distance(h[key], real_h[key])
        gaps = [abs(_mean(stats[k]) - _mean(real[k])) for k in GAP_STATS]
        m[f"stats_gap{sfx}"] = float(np.nanmean(gaps))
    return m


def evaluate_model(cfg: EvaluateConfig, layout: Layout, folder: Path):
    from components.dataset import load_dataset
    from components.families.music.metrics import track_ranges

    data = load_dataset(layout)
    G, spec = load_generator(layout.models)
    split = data.meta["split"].to_numpy()
    plain = (data.meta["transpose"] == 0).to_numpy()
    train_all = np.asarray(data.images[np.flatnonzero(split == "train")])
    train_plain = np.asarray(data.images[np.flatnonzero((split == "train") & plain)])
    test_rows = np.flatnonzero(split == "test")
    test_all = np.asarray(data.images[test_rows])
    rng = np.random.default_rng(cfg.seed)
    n = min(cfg.n_samples, len(test_all), len(train_plain))
    pick = np.sort(rng.choice(len(test_all), n, replace=False))
    test = test_all[pick]
    from components.seeds import latent_seeds

    # a conditional G is asked for the classes of the test windows it is compared with
    labels = data.meta["label"].to_numpy()[test_rows][pick] if spec.get("class_names") else None
    sets = {
        "generated": draw(G, latent_seeds(cfg.seed, n), labels),
        "floor": train_plain[np.sort(rng.choice(len(train_plain), n, replace=False))],
        "random": random_control(test, rng),
        "shuffled": shuffled_control(test, rng),
    }
    m: dict = {"n": int(n), "seed": cfg.seed, "n_test_pieces": data.manifest["n_test_pieces"]}
    m.update(stat_metrics(sets, test, spec, track_ranges(train_plain)))
    m.update(feature_metrics(cfg, layout, data, spec, sets, test, train_all, train_plain, labels))
    return m, pictures(sets, test, spec, folder)


def feature_metrics(cfg, layout, data, spec, sets, test, train_all, train_plain,
                    labels=None) -> dict:  # fmt: skip
    from components.evaluate.metrics import frechet
    from components.families.music.features import (
        c2st,
        copy_rate,
        features,
        key_accuracy,
        train_rollnet,
    )
    from components.families.music.metrics import window_features

    key = f"{data.manifest['content_hash'][:16]}-rollnet-e{cfg.classifier_epochs}.safetensors"
    net = train_rollnet(
        train_all, spec["pitch_low"], cfg.classifier_epochs, layout.classifier_cache / key
    )
    m = {"rollnet_key_accuracy": key_accuracy(net, test, spec["pitch_low"])}

    def both(rolls):
        feats = features(net, rolls)
        stats = window_features(rolls, spec["steps_per_bar"], spec["pitch_low"])
        return feats, np.concatenate([feats.numpy(), stats], axis=1)

    ref_feats, ref_c2st = both(test)
    for name, rolls in sets.items():
        feats, joint = both(rolls)
        sfx = SUFFIX[name]
        m[f"fd{sfx}"] = frechet(ref_feats, feats)
        m[f"c2st{sfx}"] = c2st(ref_c2st, joint, cfg.seed)
        if name != "floor":
            m[f"copy_rate{sfx}"] = copy_rate(rolls, train_all)
    m["copy_rate_floor"] = copy_rate(test, train_all)
    m["fd_ratio"] = m["fd"] / max(m["fd_floor"], 1e-12)
    m["c2st_ratio"] = m["c2st"] / max(m["c2st_floor"], 1e-12)
    if labels is not None:
        m.update(class_fd(features(net, sets["generated"]), ref_feats, labels))
    return m


def class_fd(gen: torch.Tensor, real: torch.Tensor, labels: np.ndarray) -> dict:
    """Conditioning, measured: per class, the Frechet distance between the windows drawn for
    it and the real test windows of that class (`fd_by_class`), beside the same against the
    real windows of the other classes (`fd_by_class_swapped`); a G that heard its class scores
    lower on the first. Classes with fewer than CLASS_MIN test windows are left out."""
    from components.evaluate.metrics import frechet

    same, other = [], []
    for c in np.unique(labels):
        mine = labels == c
        if mine.sum() >= CLASS_MIN and (~mine).sum() >= CLASS_MIN:
            same.append(frechet(real[mine], gen[mine]))
            other.append(frechet(real[~mine], gen[mine]))
    if not same:
        return {}
    return {"fd_by_class": float(np.mean(same)), "fd_by_class_swapped": float(np.mean(other))}


def pictures(sets: dict, test: np.ndarray, spec: dict, folder: Path) -> list[Path]:
    """Piano rolls (one colour per track) of generated, real test and control windows."""
    from components.datakinds.scores.roll import png_bytes, render_rolls
    from components.layout import atomic_write_bytes

    paths = []
    shown = {"generated": sets["generated"], "real": test, "random": sets["random"],
             "shuffled": sets["shuffled"]}  # fmt: skip
    for name, rolls in shown.items():
        path = folder / f"{name}.png"
        image = render_rolls(rolls[:PICTURE_WINDOWS], spec["steps_per_bar"])
        atomic_write_bytes(path, png_bytes(image))
        paths.append(path)
    return paths
