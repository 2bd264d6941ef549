"""Temporal checks on uint8 clips (N, T, C, S, S), numpy only: an object track from the
intensity centroid of each frame's foreground (its difference from the clip's per-pixel median
over time, the static background), and from it speed (px per frame at the clip's resolution)
and acceleration; frozen clips by their mean |frame difference|; identity consistency from a
frame classifier's guesses. Each is compared with real clips' values by evaluate."""

from __future__ import annotations

import numpy as np

FROZEN_MOTION = 0.5  # a clip whose mean |frame difference| (0-255) is below this does not move


def gray(clips: np.ndarray) -> np.ndarray:
    """(N, T, C, S, S) uint8 -> (N, T, S, S) float32 luminance."""
    x = np.asarray(clips, dtype=np.float32)
    return x[:, :, 0] if x.shape[2] == 1 else x.mean(axis=2)


def frame_motion(clips: np.ndarray) -> np.ndarray:
    """Each clip's mean |difference| between consecutive frames (0-255 scale), (N,)."""
    g = gray(clips)
    return np.abs(np.diff(g, axis=1)).mean(axis=(1, 2, 3)) if g.shape[1] > 1 else np.zeros(len(g))


def frozen(clips: np.ndarray) -> np.ndarray:
    """True where a clip does not move."""
    return frame_motion(clips) < FROZEN_MOTION


def centroids(clips: np.ndarray) -> np.ndarray:
    """(N, T, 2) (y, x) intensity centroid of each frame's foreground; a frame without
    foreground keeps the clip's previous centroid (the frame centre at first)."""
    g = gray(clips)
    fg = np.abs(g - np.median(g, axis=1, keepdims=True))  # (N, T, S, S)
    S = g.shape[-1]
    ys, xs = np.arange(g.shape[-2], dtype=np.float64), np.arange(S, dtype=np.float64)
    mass = fg.sum(axis=(2, 3))  # (N, T)
    with np.errstate(invalid="ignore", divide="ignore"):
        cy = (fg.sum(axis=3) * ys).sum(axis=2) / mass
        cx = (fg.sum(axis=2) * xs).sum(axis=2) / mass
    track = np.stack([cy, cx], axis=2)
    centre = np.array([(g.shape[-2] - 1) / 2, (S - 1) / 2])
    for t in range(track.shape[1]):
        empty = ~(mass[:, t] > 1e-6)
        track[empty, t] = track[empty, t - 1] if t else centre
    return track


def speeds(clips: np.ndarray) -> np.ndarray:
    """(N, T-1) px per frame of the centroid track."""
    return np.linalg.norm(np.diff(centroids(clips), axis=1), axis=2)


def accelerations(clips: np.ndarray) -> np.ndarray:
    """(N, T-2) |second difference| of the centroid track (0 for constant velocity)."""
    return np.linalg.norm(np.diff(centroids(clips), n=2, axis=1), axis=2)


def identity_consistency(pred: np.ndarray) -> float:
    """pred (N, T) frame classes: mean share of each clip's frames in its majority class."""
    shares = [np.bincount(row).max() / len(row) for row in np.asarray(pred)]
    return float(np.mean(shares)) if shares else float("nan")


def wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(np.ravel(a), np.ravel(b)))


def summary(clips: np.ndarray) -> dict[str, np.ndarray]:
    """Per-clip statistics: mean speed, mean acceleration, motion, frozen."""
    track = centroids(clips)
    v = np.linalg.norm(np.diff(track, axis=1), axis=2)
    a = np.linalg.norm(np.diff(track, n=2, axis=1), axis=2)
    return {
        "speed": v.mean(axis=1),
        "accel": a.mean(axis=1) if a.size else np.zeros(len(clips)),
        "motion": frame_motion(clips),
        "frozen": frozen(clips),
    }


def shuffled_in_time(clips: np.ndarray, seed: int) -> np.ndarray:
    """Negative control: each clip's frames in a random order (its own permutation)."""
    rng = np.random.default_rng(seed)
    order = np.stack([rng.permutation(clips.shape[1]) for _ in range(len(clips))])
    return np.take_along_axis(clips, order[:, :, None, None, None], axis=1)


def frozen_copy(clips: np.ndarray) -> np.ndarray:
    """Negative control: each clip's first frame repeated for its length."""
    return np.repeat(clips[:, :1], clips.shape[1], axis=1)
