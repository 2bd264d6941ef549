"""train: the noise family's trainer, probe and models/ documents for one run."""

from __future__ import annotations

from components.families.base import Built
from components.families.noise import SPEC_FILE


def build(cfg, layout, data, device, me) -> Built:
    from components.families.noise.probe import Probe
    from components.families.noise.trainer import GanFamily, generator_spec

    images, labels = data.split("train")
    labels = labels if data.num_classes else None
    trainer = GanFamily(cfg, images, labels, data.num_classes, device, me.rank, me.world)
    spec = generator_spec(cfg, data.num_classes, images.shape[1], images.shape[2])
    spec["class_names"] = data.manifest["class_names"]
    data_hash = data.manifest["content_hash"]

    def probe():
        return Probe(
            images, labels, data.num_classes, cfg.z_dim, layout.classifier_cache,
            data_hash, seed=cfg.seed,
        )  # fmt: skip

    return Built(trainer, probe, {SPEC_FILE: spec}, best_into=SPEC_FILE)
