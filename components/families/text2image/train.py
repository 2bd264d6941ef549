"""train: the text-to-image family's run: the sentence encoder's contrastive step first
(encoder.py, its own checkpoint folder), then the GAN under the shared schedule."""

from __future__ import annotations

import numpy as np

from components.families.base import Built
from components.families.text2image.options import SPEC_FILE


def build(cfg, layout, data, device, me) -> Built:
    from components.families.text2image.encoder import (
        VOCAB_FILE,
        encode_sentences,
        encoder_folder,
        train_encoders,
    )
    from components.families.text2image.probe import Text2ImageProbe
    from components.families.text2image.trainer import PANEL_CAPTIONS, Text2ImageTrainer

    data_hash = data.manifest["content_hash"]
    rows, tokens, _ = data.captions("train")
    vocab = data.vocab
    folder = encoder_folder(cfg.text, layout, data_hash, cfg.seed, "text-encoder")
    text, _, history = train_encoders(
        np.asarray(data.images), rows, tokens, len(vocab["tokens"]), cfg.text, cfg.seed, folder
    )
    sentences = encode_sentences(text, tokens)  # (M, dim)
    _, test_tokens, test_texts = data.captions("test")
    pick = np.linspace(0, len(test_tokens) - 1, PANEL_CAPTIONS).round().astype(int)
    panel = encode_sentences(text, test_tokens[pick])
    trainer = Text2ImageTrainer(
        cfg, np.asarray(data.images), rows, sentences, panel, text, device, me.rank, me.world
    )
    train_rows = np.unique(rows)
    spec = {
        "family": "text2image",
        "arch": cfg.arch,
        "z_dim": cfg.z_dim,
        "sentence_dim": cfg.text.sentence_dim,
        "embed_dim": cfg.text.embed_dim,
        "vocab_size": len(vocab["tokens"]),
        "max_words": int(vocab["max_words"]),
        "channels": int(data.images.shape[1]),
        "image_size": int(data.images.shape[2]),
        "g_channels": cfg.g_channels,
        "d_condition": cfg.d_condition,
        "panel": [test_texts[i] for i in pick],
        "text_options": cfg.text.model_dump(),  # evaluate trains its own encoder alike
        "text_encoder_losses": history,
    }

    def probe():
        return Text2ImageProbe(
            np.asarray(data.images[train_rows]), sentences, cfg.z_dim,
            layout.classifier_cache, data_hash, seed=cfg.seed,
        )  # fmt: skip

    return Built(trainer, probe, {SPEC_FILE: spec, VOCAB_FILE: vocab}, best_into=SPEC_FILE)
