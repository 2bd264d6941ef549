"""The sentence encoder's own step, before the GAN: contrastive pretraining (CLIP's loss) of a
TextEncoder with an ImageEncoder on the real train pairs, then frozen. The reference code
leaves this as a separate, undocumented chore (AttnGAN's DAMSM); here it is part of `train`:
progress printed, checkpointed after every epoch into its own folder, resumed from there, and
skipped when its result is already there.

The same function trains the evaluation-only encoder pair that R-precision uses (another seed,
another folder): it never enters a training loss.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from components.families.text2image.nets import ImageEncoder, TextEncoder, contrastive_loss

BATCH = 128  # pairs per contrastive step (the negatives of each pair are the batch's others)

VOCAB_FILE = "vocab.json"  # the ingest vocabulary, shipped with the model (prompts encode with it)


def encoder_folder(text_opts, layout, data_hash: str, seed: int, what: str):
    """One folder per (data, encoder options, seed): a rerun reuses or resumes it."""
    key = json.dumps({"text": text_opts.model_dump(), "data": data_hash, "seed": seed, "w": what})
    return layout.checkpoints / f"{what}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _save(path: Path, state: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # DDP ranks each write their own
    torch.save(state, tmp)
    os.replace(tmp, path)


def train_encoders(
    images: np.ndarray,
    caption_rows: np.ndarray,
    tokens: np.ndarray,
    vocab_size: int,
    opts,
    seed: int,
    folder: Path,
    label: str = "text encoder",
    make_text=None,
) -> tuple[torch.nn.Module, ImageEncoder, list[float]]:
    """(text encoder, image encoder, loss per epoch) trained for `opts.pretrain_epochs` on the
    pairs (images[caption_rows[i]], tokens[i]); one random caption per image each epoch.
    `folder` holds the per-epoch checkpoint (torch.save, read back weights_only).
    `make_text`: () -> the text side (default the scratch TextEncoder over int token ids); a
    pretrained model's projection takes float features as `tokens` (pretrained.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    ckpt = folder / "encoders.pt"
    channels, size = images.shape[1], images.shape[2]
    with torch.random.fork_rng(devices=[]):  # the caller's RNG stream is untouched
        torch.manual_seed(seed)
        if make_text is None:
            text = TextEncoder(vocab_size, opts.embed_dim, opts.sentence_dim)
        else:
            text = make_text()
        image = ImageEncoder(channels, size, opts.sentence_dim)
    params = list(text.parameters()) + list(image.parameters())
    opt = torch.optim.Adam(params, lr=opts.pretrain_lr)
    start, history = 0, []
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=True)
        text.load_state_dict(state["text"])
        image.load_state_dict(state["image"])
        opt.load_state_dict(state["opt"])
        start, history = int(state["epoch"]), [float(v) for v in state["history"]]
    by_image = _captions_by_image(caption_rows)
    rows = np.array(sorted(by_image))
    for epoch in range(start, opts.pretrain_epochs):
        gen = np.random.default_rng([seed, epoch])  # the epoch's order: the same after a resume
        order = gen.permutation(len(rows))
        picks = np.array([gen.choice(by_image[r]) for r in rows[order]])  # a caption per image
        losses = []
        text.train(), image.train()
        for start_i in range(0, len(order) - 1, BATCH):
            sel = slice(start_i, start_i + BATCH)
            x = torch.from_numpy(images[rows[order[sel]]]).float() / 127.5 - 1.0  # (B, C, S, S)
            t = torch.from_numpy(tokens[picks[sel]])  # (B, L) ids, or (B, hidden) features
            t = t.float() if t.is_floating_point() else t.long()
            loss = contrastive_loss(image(x), text(t), opts.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        history.append(float(np.mean(losses)))
        print(f"train: {label} epoch {epoch + 1}/{opts.pretrain_epochs}  loss {history[-1]:.3f}")
        state = {"text": text.state_dict(), "image": image.state_dict(), "opt": opt.state_dict()}
        _save(ckpt, {**state, "epoch": epoch + 1, "history": torch.tensor(history)})
    return text.eval().requires_grad_(False), image.eval().requires_grad_(False), history


def _captions_by_image(caption_rows: np.ndarray) -> dict[int, np.ndarray]:
    """image row -> the indices of its captions."""
    order = np.argsort(caption_rows, kind="stable")
    rows, starts = np.unique(caption_rows[order], return_index=True)
    return {int(r): part for r, part in zip(rows, np.split(order, starts[1:]), strict=True)}


def encode_prompts(texts: list, vocab: dict) -> tuple[np.ndarray, list[str]]:
    """(token ids (N, max_words), a warning line per caption with unknown words); ValueError
    naming the row of an empty caption."""
    from components.datakinds.captioned.text import encode

    ids, notes = [], []
    for row, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"row {row}: empty caption; give some words")
        tokens, oov, truncated = encode(text, vocab, int(vocab["max_words"]))
        if not any(t > 1 for t in tokens):
            raise ValueError(f"row {row}: no word of {text!r} is in the vocabulary")
        if oov:
            notes.append(
                f"row {row}: words not in the vocabulary (read as <unk>): {', '.join(oov)}"
            )
        if truncated:
            notes.append(f"row {row}: caption cut at {vocab['max_words']} words")
        ids.append(tokens)
    return np.asarray(ids, dtype=np.int64), notes


class WordPrompts:
    """Captions -> (token ids, warning lines) with the ingest word vocabulary (scratch)."""

    pad_id = 0

    def __init__(self, vocab: dict):
        self.vocab = vocab
        self.vocab_size = len(vocab["tokens"])

    def encode(self, texts: list) -> tuple[np.ndarray, list[str]]:
        return encode_prompts(texts, self.vocab)


@torch.no_grad()
def encode_sentences(text: TextEncoder, tokens: np.ndarray, batch: int = 1024) -> torch.Tensor:
    """(M, L) token ids -> (M, sentence_dim) sentence vectors, in eval mode."""
    t = torch.from_numpy(np.ascontiguousarray(tokens)).long()
    return (
        torch.cat([text(b) for b in t.split(batch)])
        if len(t)
        else torch.zeros(0, text.sentence_dim)
    )
