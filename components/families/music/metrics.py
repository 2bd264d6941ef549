"""Musical statistics of binary piano-roll windows (N, tracks, T, P), written fresh after the
MuseGAN paper's definitions (Dong et al. 2018) and checked on constructed rolls
(tests/unit/test_music_metrics.py). Two known defects of the reference implementation are not
copied (salu133445/musegan#141): chroma here folds octaves (pitch mod 12), and the empty-bar
rate counts the empty bars.

Per track (arrays of length tracks):
- empty_bar_rate: share of bars with no note;
- used_pitch_classes: distinct pitch classes per non-empty bar, mean;
- qualified_note_rate: share of notes lasting at least `min_steps` grid steps;
- polyphony_rate: share of the track's sounding steps with >= 2 pitches at once;
- in_key_rate: share of sounding cells whose pitch class is in the window's key (found per
  window with Krumhansl-Kessler profiles; minor admits the natural and harmonic scales);
- range_violation: share of notes outside a given per-track range (the real train range).

Per pair of tracks: tonal_distance, the mean distance between the tracks' tonal centroids
(Harte et al. 2006: r1 = r2 = 1, r3 = 0.5) over bars where both sound. Per set: polyphony
(pitches sounding at once over all tracks, mean over steps where any sounds), and histograms
(pitch class, note duration, inter-onset interval) compared by total variation distance.
"""

from __future__ import annotations

import numpy as np

MAX_STEPS = 16  # duration and IOI histograms: 1..16 steps, then one bin for longer
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MAJOR_SCALE = np.array([0, 2, 4, 5, 7, 9, 11])
MINOR_SCALE = np.array([0, 2, 3, 5, 7, 8, 10, 11])  # natural minor plus the raised seventh


def as_bars(rolls: np.ndarray, steps_per_bar: int) -> np.ndarray:
    """(N, K, T, P) -> (N, K, bars, steps_per_bar, P)."""
    n, k, t, p = rolls.shape
    return rolls.reshape(n, k, t // steps_per_bar, steps_per_bar, p)


def chroma_matrix(pitches: int, pitch_low: int) -> np.ndarray:
    """(P, 12): 1 where roll row p is pitch class (pitch_low + p) mod 12 (octaves folded)."""
    m = np.zeros((pitches, 12))
    m[np.arange(pitches), (pitch_low + np.arange(pitches)) % 12] = 1.0
    return m


def empty_bar_rate(rolls: np.ndarray, steps_per_bar: int) -> np.ndarray:
    sounding = as_bars(rolls, steps_per_bar).any(axis=(3, 4))  # (N, K, bars)
    return 1.0 - sounding.mean(axis=(0, 2))


def used_pitch_classes(rolls: np.ndarray, steps_per_bar: int, pitch_low: int) -> np.ndarray:
    bars = as_bars(rolls, steps_per_bar).any(axis=3).astype(float)  # (N, K, bars, P)
    used = (bars @ chroma_matrix(rolls.shape[-1], pitch_low)) > 0  # (N, K, bars, 12)
    count = used.sum(axis=-1).astype(float)
    sounding = count > 0
    with np.errstate(invalid="ignore"):
        return (count * sounding).sum(axis=(0, 2)) / sounding.sum(axis=(0, 2))


def note_table(rolls: np.ndarray) -> dict[str, np.ndarray]:
    """Every note (run of 1s of one pitch) of every window: window, track, onset, duration."""
    n, k, t, p = rolls.shape
    padded = np.zeros((n, k, t + 2, p), np.int8)
    padded[:, :, 1:-1] = rolls > 0
    edges = np.diff(padded, axis=2)  # (N, K, T + 1, P)
    on = np.argwhere(edges == 1)  # (window, track, step, pitch), sorted
    off = np.argwhere(edges == -1)
    # onsets and offsets of one (window, track, pitch) alternate: sort both by that key
    order_on = np.lexsort((on[:, 2], on[:, 3], on[:, 1], on[:, 0]))
    order_off = np.lexsort((off[:, 2], off[:, 3], off[:, 1], off[:, 0]))
    on, off = on[order_on], off[order_off]
    return {
        "window": on[:, 0],
        "track": on[:, 1],
        "onset": on[:, 2],
        "pitch": on[:, 3],
        "duration": off[:, 2] - on[:, 2],
    }


def qualified_note_rate(rolls: np.ndarray, min_steps: int) -> np.ndarray:
    notes = note_table(rolls)
    k = rolls.shape[1]
    total = np.bincount(notes["track"], minlength=k).astype(float)
    good = np.bincount(notes["track"], weights=notes["duration"] >= min_steps, minlength=k)
    with np.errstate(invalid="ignore"):
        return good / total


def polyphony_rate(rolls: np.ndarray, threshold: int = 2) -> np.ndarray:
    count = rolls.sum(axis=3)  # (N, K, T) pitches at once
    sounding = count > 0
    with np.errstate(invalid="ignore"):
        return (count >= threshold).sum(axis=(0, 2)) / sounding.sum(axis=(0, 2))


def polyphony(rolls: np.ndarray) -> float:
    count = rolls.sum(axis=(1, 3))  # (N, T) over all tracks
    sounding = count > 0
    return float(count[sounding].mean()) if sounding.any() else float("nan")


def tonal_matrix() -> np.ndarray:
    """(6, 12) Harte's tonal-centroid projection: fifths, minor thirds, major thirds."""
    pc = np.arange(12)
    rows = []
    for r, angle in ((1.0, 7 * np.pi / 6), (1.0, 3 * np.pi / 2), (0.5, 2 * np.pi / 3)):
        rows += [r * np.sin(pc * angle), r * np.cos(pc * angle)]
    return np.array(rows)


def tonal_distance(rolls: np.ndarray, steps_per_bar: int, pitch_low: int) -> np.ndarray:
    """(K, K) mean tonal-centroid distance of each pair over bars where both sound (NaN
    where a pair never sounds together; 0 on the diagonal)."""
    bars = as_bars(rolls, steps_per_bar).sum(axis=3).astype(float)  # (N, K, bars, P)
    chroma = bars @ chroma_matrix(rolls.shape[-1], pitch_low)  # (N, K, bars, 12)
    total = chroma.sum(axis=-1, keepdims=True)
    sounding = total[..., 0] > 0
    centroid = (chroma / np.maximum(total, 1e-12)) @ tonal_matrix().T  # (N, K, bars, 6)
    k = rolls.shape[1]
    out = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            both = sounding[:, i] & sounding[:, j]
            d = np.linalg.norm(centroid[:, i] - centroid[:, j], axis=-1)
            out[i, j] = out[j, i] = d[both].mean() if both.any() else np.nan
    return out


def find_keys(rolls: np.ndarray, pitch_low: int) -> tuple[np.ndarray, np.ndarray]:
    """(tonic 0..11, is_minor) per window: the Krumhansl-Kessler profile rotation that
    correlates best with the window's duration-weighted chroma (all tracks)."""
    chroma = rolls.sum(axis=(1, 2)).astype(float) @ chroma_matrix(rolls.shape[-1], pitch_low)
    profiles = np.stack(
        [np.roll(MAJOR, t) for t in range(12)] + [np.roll(MINOR, t) for t in range(12)]
    )  # (24, 12)
    c = chroma - chroma.mean(axis=1, keepdims=True)
    q = profiles - profiles.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(c, axis=1, keepdims=True) * np.linalg.norm(q, axis=1)[None]
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(norm > 0, c @ q.T / norm, 0.0)  # (N, 24)
    best = corr.argmax(axis=1)
    return best % 12, best >= 12


def in_key_rate(rolls: np.ndarray, pitch_low: int) -> np.ndarray:
    """Per track: share of sounding cells in the window's key."""
    tonic, minor = find_keys(rolls, pitch_low)
    n, k, _, p = rolls.shape
    in_scale = np.zeros((n, 12), bool)
    for i in range(n):
        scale = MINOR_SCALE if minor[i] else MAJOR_SCALE
        in_scale[i, (tonic[i] + scale) % 12] = True
    pitch_class = (pitch_low + np.arange(p)) % 12
    ok = in_scale[:, pitch_class]  # (N, P)
    cells = rolls.sum(axis=2).astype(float)  # (N, K, P)
    good = (cells * ok[:, None, :]).sum(axis=(0, 2))
    with np.errstate(invalid="ignore"):
        return good / cells.sum(axis=(0, 2))


def track_ranges(rolls: np.ndarray, q: float = 0.01) -> np.ndarray:
    """(K, 2) the [q, 1 - q] quantiles of each track's note pitches (roll rows)."""
    notes = note_table(rolls)
    out = np.zeros((rolls.shape[1], 2))
    for t in range(rolls.shape[1]):
        pitches = notes["pitch"][notes["track"] == t]
        out[t] = np.quantile(pitches, [q, 1 - q]) if len(pitches) else (0, rolls.shape[-1] - 1)
    return out


def range_violation(rolls: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    notes = note_table(rolls)
    lo, hi = ranges[notes["track"], 0], ranges[notes["track"], 1]
    out = (notes["pitch"] < lo) | (notes["pitch"] > hi)
    k = rolls.shape[1]
    total = np.bincount(notes["track"], minlength=k).astype(float)
    with np.errstate(invalid="ignore"):
        return np.bincount(notes["track"], weights=out, minlength=k) / total


def pitch_class_histogram(rolls: np.ndarray, pitch_low: int) -> np.ndarray:
    """(12,) share of sounding cells per pitch class, all tracks."""
    cells = rolls.sum(axis=(0, 1, 2)).astype(float) @ chroma_matrix(rolls.shape[-1], pitch_low)
    return cells / max(cells.sum(), 1e-12)


def _steps_histogram(values: np.ndarray) -> np.ndarray:
    h = np.bincount(np.clip(values, 1, MAX_STEPS + 1) - 1, minlength=MAX_STEPS + 1)
    return h / max(h.sum(), 1)


def duration_histogram(rolls: np.ndarray) -> np.ndarray:
    """(MAX_STEPS + 1,) share of notes lasting 1, 2, ... steps (the last bin: longer)."""
    return _steps_histogram(note_table(rolls)["duration"])


def ioi_histogram(rolls: np.ndarray) -> np.ndarray:
    """(MAX_STEPS + 1,) inter-onset intervals within a track: steps between its consecutive
    distinct onset steps (chords count once)."""
    notes = note_table(rolls)
    key = (notes["window"] * rolls.shape[1] + notes["track"]) * (rolls.shape[2] + 1)
    onsets = np.unique(key + notes["onset"])  # sorted, one per (window, track, step)
    group = onsets // (rolls.shape[2] + 1)
    gaps = np.diff(onsets)[np.diff(group) == 0]
    return _steps_histogram(gaps)


def tv_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Total variation distance between two histograms (0 equal .. 1 disjoint)."""
    return 0.5 * float(np.abs(np.asarray(a) - np.asarray(b)).sum())


def window_features(rolls: np.ndarray, steps_per_bar: int, pitch_low: int) -> np.ndarray:
    """(N, F) a musical-statistics vector per window (the training probe's feature space):
    per track its density, empty-bar share, mean pitch (0..1), pitch-class histogram; over
    all tracks the pitches sounding at once."""
    n, k, t, p = rolls.shape
    r = rolls.astype(np.float32)
    cells = r.sum(axis=2)  # (N, K, P)
    count = cells.sum(axis=2)  # (N, K)
    density = count / t
    empty = 1.0 - as_bars(rolls, steps_per_bar).any(axis=(3, 4)).mean(axis=2)
    mean_pitch = (cells * np.arange(p)).sum(axis=2) / np.maximum(count, 1) / p
    pcs = (cells @ chroma_matrix(p, pitch_low)) / np.maximum(count, 1)[..., None]
    at_once = r.sum(axis=(1, 3))  # (N, T)
    poly = at_once.sum(axis=1) / np.maximum((at_once > 0).sum(axis=1), 1)
    per_track = np.concatenate(
        [density[..., None], empty[..., None], mean_pitch[..., None], pcs], axis=2
    )
    return np.concatenate([per_track.reshape(n, -1), poly[:, None] / k], axis=1)
