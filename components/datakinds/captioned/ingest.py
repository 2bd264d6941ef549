"""ingest of captioned images: images.npy and meta.csv as an image set writes them, the
captions as word ids (captions.npy) with their table (captions.csv), the train vocabulary
(vocab.json), per-image attributes when the source has them (attributes.csv), and the
manifest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from components.config import IngestConfig
from components.datakinds.captioned import FILES, test_oov_fraction, text
from components.datakinds.captioned.sources import CaptionedSource
from components.errors import DataError
from components.ingest import (
    META_COLUMNS,
    split_indices,
    write_images,
)
from components.layout import write_json


def build(cfg: IngestConfig, source: CaptionedSource, out_dir: Path) -> dict:
    """Images first (streamed, resized and cropped as an image set's), then the split (as the
    source gives it, else by image: all captions of an image in one split), then the captions
    encoded with the vocabulary of the train captions."""
    max_words = _max_words(cfg)
    source = source.seeded(cfg.seed)
    meta, channels, digest = write_images(cfg, source, out_dir, "ingest captioned")
    given = source.splits
    is_test = given == "test" if given is not None else _split(len(meta), cfg)
    meta["split"] = np.where(is_test, "test", "train")
    meta = meta[META_COLUMNS]
    meta.to_csv(out_dir / "meta.csv", index_label="index")
    table, tokens, vocab = encode_captions(source.captions, meta, max_words)
    np.save(out_dir / FILES["tokens"], tokens)
    table.to_csv(out_dir / FILES["captions"], index=False)
    write_json(out_dir / FILES["vocab"], {"tokens": vocab, "max_words": max_words})
    digest.update(repr((len(meta), channels, cfg.image_size, max_words)).encode())
    digest.update(meta[["label", "split"]].to_csv(index=False).encode())
    digest.update(table[["image", "split", "text"]].to_csv(index=False).encode())
    digest.update(tokens.tobytes())
    manifest = _manifest(cfg, source, meta, table, channels, vocab, max_words)
    if source.attributes is not None:
        attributes = pd.DataFrame(source.attributes)
        attributes.to_csv(out_dir / FILES["attributes"], index_label="index")
        digest.update(attributes.to_csv(index=False).encode())
        manifest["attributes"] = source.attribute_values  # name -> its values
        manifest["heldout"] = source.heldout  # value combinations seen in test only
    return manifest | {"content_hash": digest.hexdigest()}


def _max_words(cfg: IngestConfig) -> int:
    """ingest.max_caption_words, a key of the text-to-image params only; captioned data has no
    classes, so ingest.classes must be empty."""
    max_words = getattr(cfg, "max_caption_words", None)
    if max_words is None:
        raise DataError(
            f"ingest.source: {cfg.source}: captioned data needs the text-to-image params "
            "(params-text2image.yaml, with ingest.max_caption_words)"
        )
    if cfg.classes:
        raise DataError(
            f"ingest.classes: {', '.join(cfg.classes)}: captioned data has no classes; "
            "set ingest.classes: []"
        )
    return int(max_words)


def _split(n: int, cfg: IngestConfig) -> np.ndarray:
    """True for the images held out for testing: ingest.test_fraction of them, by image."""
    return split_indices(np.full(n, -1), cfg.test_fraction, cfg.seed)


def encode_captions(captions: list[list[str]], meta: pd.DataFrame, max_words: int):
    """(captions.csv's table, int32 word ids (M, max_words), the vocabulary's tokens): one row
    per caption, image by image; the vocabulary from the captions of readable train images."""
    image = np.repeat(np.arange(len(captions)), [len(c) for c in captions])
    texts = [t for c in captions for t in c]
    split = meta["split"].to_numpy()[image]
    train = (split == "train") & meta["readable"].to_numpy(dtype=bool)[image]
    vocab = text.build_vocab(t for t, keep in zip(texts, train, strict=True) if keep)
    index = text.lookup(vocab)
    encoded = [text.encode(t, index, max_words) for t in texts]
    tokens = np.array([ids for ids, _, _ in encoded], dtype=np.int32).reshape(-1, max_words)
    table = pd.DataFrame(
        {
            "image": image,
            "split": split,
            "text": texts,
            "n_words": [len(text.words(t)) for t in texts],
            "truncated": [cut for _, _, cut in encoded],
            "n_oov": [len(oov) for _, oov, _ in encoded],
        }
    )
    return table, tokens, vocab


def _manifest(cfg, source, meta, table, channels, vocab, max_words) -> dict:
    is_test = (meta["split"] == "test").to_numpy()
    size = cfg.image_size
    return {
        "kind": "captioned",
        "source": cfg.source,
        "source_kind": source.info.description,
        "layout": source.layout,
        "n_images": len(meta),
        "n_unreadable": int((~meta["readable"]).sum()),
        "n_captions": len(table),
        "shape": [channels, size, size],
        "image_size": size,
        "class_names": [],
        "conditional": False,
        "n_train": int((~is_test).sum()),
        "n_test": int(is_test.sum()),
        "storage": "images.npy",
        "vocab_size": len(vocab),
        "max_words": max_words,
        "n_truncated": int(table["truncated"].sum()),
        "test_oov_fraction": test_oov_fraction(table),
    }


# the ingest hooks (components/datakinds/base.py)


def bundled() -> dict:
    from components.datakinds.captioned.sources import BUNDLED

    # drawn at 32 px (ingest resizes); ingest.seed draws the scenes (build reseeds the source)
    return {name: (_sized(builder), "pillow") for name, builder in BUNDLED.items()}


def _sized(builder):
    return lambda size: builder()


def detect(root: Path, folders: dict[str, Path]) -> str | None:
    from components.datakinds.captioned.sources import plan

    found = plan(root, folders)
    return None if found is None else found[0]


def open(root: Path, layout: str, classes: list[str], label: str):  # noqa: A001
    from components.datakinds.captioned.sources import open_captioned

    return open_captioned(root, label)
