"""The video family's register gates on constructed metrics: each failure named with its value
and threshold, nothing named when every gate holds."""

from __future__ import annotations

from pathlib import Path

from components.config import load_params
from components.families.video.register import gate_failures

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "video_fd": 10.0, "video_fd_floor": 3.0, "video_fd_ratio": 10.0 / 3.0,
    "video_fd_shuffled": 2000.0, "video_fd_frozen": 300.0, "frozen_rate": 0.0,
    "cond_acc": 0.45, "cond_acc_real": 0.6,
}  # fmt: skip


def test_video_gates_name_each_failure():
    cfg = load_params(ROOT / "params-video.yaml").section("register")
    assert gate_failures(cfg, GOOD) == []
    bad = GOOD | {"video_fd": 400.0, "video_fd_ratio": 400 / 3.0, "frozen_rate": 0.5,
                  "cond_acc": 0.12}  # fmt: skip
    got = gate_failures(cfg, bad)
    assert len(got) == 4, got
    assert got[0].startswith("video_fd/video_fd_floor 133.33 > register.max_video_fd_ratio")
    assert "frozen-real control's 300.000" in got[1]
    assert got[2].startswith("frozen_rate 0.500 > register.max_frozen_rate")
    assert got[3] == ("cond_acc 0.120 is 0.20 of the real clips' 0.600 < "
                      "register.min_cond_acc_share 0.5")  # fmt: skip
    unlabelled = {k: v for k, v in GOOD.items() if not k.startswith("cond_acc")}
    assert gate_failures(cfg, unlabelled) == []  # no classes: no class gate
