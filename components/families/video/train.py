"""train: the video family's run: clips resident on the device, the step in trainer.py under
the shared schedule; models/ gets G, D_image, D_video, G_ema and video.json."""

from __future__ import annotations

import numpy as np

from components.families.base import Built
from components.families.video.options import SPEC_FILE


def build(cfg, layout, data, device, me) -> Built:
    from components.families.video.probe import VideoProbe
    from components.families.video.trainer import VideoTrainer

    clips, labels = data.split("train")
    conditional = bool(cfg.conditional and data.num_classes)
    _, T, C, S, _ = clips.shape
    spec = {
        "family": "video",
        "arch": cfg.arch,
        "z_content": cfg.z_content,
        "z_motion": cfg.z_motion,
        "renderer": cfg.renderer,
        "sprite_extent": cfg.sprite_extent,
        "num_classes": data.num_classes if conditional else 0,
        "class_names": list(data.manifest["class_names"]) if conditional else [],
        "channels": int(C),
        "image_size": int(S),
        "frames": int(T),
        "g_channels": cfg.g_channels,
        "frame_step": data.manifest.get("frame_step", 1),
    }
    samples_dir = layout.root / "reports" / "samples"
    trainer = VideoTrainer(
        cfg, clips, labels if conditional else None, spec, device, samples_dir, me.rank, me.world
    )
    data_hash = data.manifest["content_hash"]

    def probe():
        return VideoProbe(
            np.asarray(clips), labels, spec, layout.classifier_cache, data_hash, seed=cfg.seed
        )

    return Built(trainer, probe, {SPEC_FILE: spec}, best_into=SPEC_FILE)
