"""Captioned images for text-to-image (the processed kind `captioned`): a Hugging Face
imagefolder (metadata.jsonl or metadata.csv, or train/ and test/ with one each), side-car
captions (x.png beside x.txt), WebDataset-style .tar shards (key.png + key.txt), or the bundled
`shapes`. sources.py: its sources; text.py: words, vocabulary and word ids (shared with the
family); ingest.py: data/processed/; validate.py: its GX rules."""

from __future__ import annotations

from components.datakinds.base import DataKind

METADATA_FILES = ("metadata.jsonl", "metadata.csv")  # an imagefolder's captions, at its top
# what ingest writes beside images.npy and meta.csv (components/dataset.py reads them)
FILES = {
    "tokens": "captions.npy",  # int32 (M, max_words): caption m's word ids, 0-padded
    "captions": "captions.csv",  # image (row of images.npy), split, text, n_words, ...
    "vocab": "vocab.json",  # {"tokens": [...], "max_words": L}
    "attributes": "attributes.csv",  # per-image attributes (bundled sets that have them)
}


def test_oov_fraction(captions) -> float:
    """Share of the test captions' words outside the train vocabulary, from captions.csv's
    table (pandas): the manifest's value, recomputed by validate. 0 without test words."""
    test = captions[captions["split"] == "test"]
    return float(test["n_oov"].sum() / max(1, test["n_words"].sum()))


class CaptionedKind(DataKind):
    name = "captioned"
    processed_kinds = ("captioned",)
    description = (
        "captioned images: metadata.jsonl|csv (imagefolder), x.png + x.txt, .tar shards, bundled"
    )
    layout_folders = frozenset({"train", "test"})
    layout_files = frozenset(METADATA_FILES)
    files = FILES


KIND = CaptionedKind()
