"""The video family's temporal checks on constructed clips, against hand-computed values: a
frozen clip, a constant-velocity clip, the same clip shuffled in time, and the controls."""

from __future__ import annotations

import numpy as np
import pytest

from components.families.video import temporal

T, S = 8, 32


def square_clip(v=(0, 2), start=(10, 4), side=4) -> np.ndarray:
    """uint8 (1, T, 1, S, S): a white square moving by `v` px (y, x) per frame on black."""
    clip = np.zeros((1, T, 1, S, S), dtype=np.uint8)
    for t in range(T):
        y, x = start[0] + v[0] * t, start[1] + v[1] * t
        clip[0, t, 0, y : y + side, x : x + side] = 255
    return clip


def test_constant_velocity_clip_has_its_speed_and_no_acceleration():
    clip = square_clip(v=(1, 2))
    np.testing.assert_allclose(temporal.speeds(clip), np.sqrt(5), atol=1e-9)  # |(1, 2)| per frame
    np.testing.assert_allclose(temporal.accelerations(clip), 0, atol=1e-9)
    # 16 square pixels per frame appear and 16 vanish on their own rows (no overlap when the
    # x step of 2 px is only half the side: 2 columns x 4 rows move out, 2 x 4 in, plus the y
    # step): counted exactly from the pixels, the mean |difference| is 255 * changed / S^2
    changed = np.abs(np.diff(clip[0, :, 0].astype(int), axis=0)).astype(bool).sum(axis=(1, 2))
    assert temporal.frame_motion(clip)[0] == pytest.approx(255 * changed.mean() / S**2)
    assert not temporal.frozen(clip)[0]


def test_frozen_clip_does_not_move():
    clip = temporal.frozen_copy(square_clip())
    assert temporal.frame_motion(clip)[0] == 0.0
    assert temporal.frozen(clip)[0]
    np.testing.assert_array_equal(temporal.speeds(clip), 0.0)
    assert temporal.summary(clip)["speed"][0] == 0.0


def test_shuffled_clip_keeps_its_frames_but_jumps():
    clip = square_clip(v=(0, 3))
    mixed = temporal.shuffled_in_time(clip, seed=0)
    assert sorted(map(bytes, mixed[0])) == sorted(map(bytes, clip[0]))  # the same frames
    order = [int(np.flatnonzero(f[0].any(axis=0))[0] - 4) // 3 for f in mixed[0]]
    assert order != list(range(T))
    # hand-computed from the order: the x centre moves 3 px per step of frame time
    expected = 3.0 * np.abs(np.diff(order))
    np.testing.assert_allclose(temporal.speeds(mixed)[0], expected, atol=1e-9)
    assert temporal.accelerations(mixed).mean() > 0 == temporal.accelerations(clip).mean()


def test_identity_consistency_and_speed_distance():
    pred = np.array([[1, 1, 1, 2], [3, 3, 3, 3]])
    assert temporal.identity_consistency(pred) == pytest.approx((0.75 + 1.0) / 2)
    assert temporal.wasserstein(np.array([0.0, 1.0]), np.array([1.0, 2.0])) == pytest.approx(1.0)
