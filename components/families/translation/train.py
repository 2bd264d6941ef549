"""train: the translation family's trainer, probe and models/ documents for one run."""

from __future__ import annotations

from components.families.base import Built
from components.families.translation import SPEC_FILE, TRAINING_FILE


def build(cfg, layout, data, device, me) -> Built:
    from components.families.translation.probe import TranslationProbe

    if cfg.arch == "pix2pix":
        from components.families.translation.pix2pix import Pix2PixFamily as Trainer
    else:
        from components.families.translation.cyclegan import CycleGanFamily as Trainer
    trainer = Trainer(cfg, data, device, me.rank, me.world)
    about = {"class_names": data.manifest["class_names"], "kind": data.kind, "arch": cfg.arch}
    data_hash = data.manifest["content_hash"]

    def probe():
        return TranslationProbe(data, layout.classifier_cache, data_hash, seed=cfg.seed)

    documents = {SPEC_FILE: trainer.spec, TRAINING_FILE: about}
    return Built(trainer, probe, documents, best_into=TRAINING_FILE)
