"""Translation pairs (the processed kinds `unpaired` and `paired`): two image domains A and B,
unpaired (trainA/ trainB/ testA/ testB/) or aligned (train/ test/ of side-by-side A|B images),
or a bundled pair. sources.py: its sources; ingest.py: data/processed/; validate.py: its GX
rules."""

from __future__ import annotations

from components.datakinds.base import DataKind

UNPAIRED_FOLDERS = ("traina", "trainb", "testa", "testb")  # the reference CycleGAN layout


class PairsKind(DataKind):
    name = "pairs"
    processed_kinds = ("unpaired", "paired")
    description = "two image domains: trainA/ trainB/ testA/ testB/ (unpaired) or A|B pairs"
    layout_folders = frozenset({*UNPAIRED_FOLDERS, "train", "test"})
    domains = True  # images of A and of B (Dataset.domain)
    aligned_kinds = ("paired",)  # A|B halves share a pair id (Dataset.pairs)

    def set_name(self, source) -> str:
        return f"{source.kind} translation"  # unpaired / paired


KIND = PairsKind()
