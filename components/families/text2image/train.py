"""train: the text-to-image family's run: the sentence encoder's contrastive step first
(encoder.py, its own checkpoint folder), then the GAN under the shared schedule."""

from __future__ import annotations

import numpy as np

from components.families.base import Built
from components.families.text2image.options import SPEC_FILE


def build(cfg, layout, data, device, me) -> Built:
    from components.datakinds.captioned.read import read
    from components.families.text2image.encoder import (
        VOCAB_FILE,
        encode_sentences,
        encoder_folder,
        train_encoders,
    )
    from components.families.text2image.probe import Text2ImageProbe
    from components.families.text2image.trainer import PANEL_CAPTIONS, Text2ImageTrainer

    data_hash = data.manifest["content_hash"]
    captions = read(data)
    rows, tokens, texts = captions.split("train")
    vocab = captions.vocab
    _, test_tokens, test_texts = captions.split("test")
    pick = np.linspace(0, len(test_tokens) - 1, PANEL_CAPTIONS).round().astype(int)
    folders = {}
    if cfg.text.pretrained:  # a frozen local HF model; only a projection is trained
        text, image, sentences, panel, history, text_model = _pretrained(
            cfg, layout, data, rows, texts, [test_texts[i] for i in pick]
        )
        folders[text_model["folder"]] = text_model.pop("writer")
    else:
        folder = encoder_folder(cfg.text, layout, data_hash, cfg.seed, "text-encoder")
        text, image, history = train_encoders(
            np.asarray(data.images), rows, tokens, len(vocab["tokens"]), cfg.text, cfg.seed, folder
        )
        sentences = encode_sentences(text, tokens)  # (M, dim)
        panel = encode_sentences(text, test_tokens[pick])
        text_model = None
    trainer = Text2ImageTrainer(
        cfg,
        np.asarray(data.images),
        rows,
        sentences,
        panel,
        text,
        device,
        me.rank,
        me.world,
        image_encoder=image,
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
        "g_ema_kept": cfg.keep_g_ema,  # last, or the probe's best (best_step)
        "panel": [test_texts[i] for i in pick],
        "text_options": cfg.text.model_dump(),  # evaluate trains its own encoder alike
        "text_encoder_losses": history,
    }
    if text_model is not None:
        spec["text_model"] = text_model  # {folder, hidden, max_tokens, source, fingerprint}

    def probe():
        return Text2ImageProbe(
            np.asarray(data.images[train_rows]), sentences, cfg.z_dim,
            layout.classifier_cache, data_hash, seed=cfg.seed,
        )  # fmt: skip

    documents = {SPEC_FILE: spec, VOCAB_FILE: vocab}
    return Built(trainer, probe, documents, best_into=SPEC_FILE, folders=folders)


def _pretrained(cfg, layout, data, rows, texts, panel_texts):
    """The pretrained text model's run: its tokenizer encodes the captions, its frozen pooled
    states are computed once, and a linear projection to sentence_dim is trained by the
    contrastive step (its own checkpoint folder, keyed by the model folder's fingerprint):
    (projection, its image encoder, train sentences, panel sentences, losses,
    spec["text_model"] + a writer of the model's copy for models/)."""
    import torch

    from components.datakinds.captioned.read import read
    from components.families.text2image import pretrained
    from components.families.text2image.encoder import encoder_folder, train_encoders

    tokenizer, model = pretrained.load(cfg.text.encoder)
    budget = pretrained.max_tokens(int(read(data).vocab["max_words"]), model)
    prompts = pretrained.TokenizerPrompts(tokenizer, budget)
    pooled = pretrained.Pooled(model, prompts.pad_id)
    ids, _ = prompts.encode(texts)
    feats = pretrained.features(pooled, ids)  # (M, hidden) float32, frozen
    hidden = pretrained.hidden_size(model)
    print(
        f"train: text encoder {cfg.text.encoder} (frozen, hidden {hidden}): {len(texts)} "
        f"captions encoded; a projection to {cfg.text.sentence_dim} is trained"
    )
    digest = pretrained.fingerprint(cfg.text.encoder)
    key = f"{data.manifest['content_hash']}-{digest}"
    folder = encoder_folder(cfg.text, layout, key, cfg.seed, "text-projection")
    proj, image, history = train_encoders(
        np.asarray(data.images), rows, feats, 0, cfg.text, cfg.seed, folder,
        label="text projection",
        make_text=lambda: torch.nn.Linear(hidden, cfg.text.sentence_dim),
    )  # fmt: skip
    with torch.no_grad():
        sentences = proj(torch.from_numpy(feats))
        panel = proj(torch.from_numpy(pretrained.features(pooled, prompts.encode(panel_texts)[0])))
    info = {
        "folder": pretrained.MODEL_DIR,
        "hidden": hidden,
        "max_tokens": budget,
        "source": str(cfg.text.encoder),
        "fingerprint": digest,
        "writer": lambda dest: pretrained.save(tokenizer, model, dest),
    }
    return proj, image, sentences, panel, history, info
