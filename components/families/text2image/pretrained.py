"""`train.text.encoder: <folder>`: a local, saved Hugging Face text model as G's sentence
encoder (the optional `text` extra: transformers).

- Loaded with `AutoTokenizer/AutoModel.from_pretrained(folder, local_files_only=True)`: nothing
  is downloaded, ever; a folder that does not load is one ConfigError naming the key.
- The model is frozen. Its sentence vector is the mean of its last hidden states over the
  caption's tokens (padding left out), and only a linear projection of that to
  `train.text.sentence_dim` is trained, by the same contrastive step as the scratch encoder
  (encoder.py: logged, checkpointed per epoch, resumed). A frozen model keeps what it learnt
  from far more text than a captioned image set holds; training all of it on a few thousand
  captions would spend most of the step on the text and forget it.
- Its tokenizer replaces the ingest word vocabulary for G's condition (the vocabulary still
  serves the evaluation-only encoder of R-precision). Captions longer than `max_tokens` keep
  their first tokens, counted in the warning; a word the tokenizer reads as its unknown token
  is named in a warning.
- The tokenizer and the model are saved (save_pretrained, safetensors) into `text_model/` of
  models/, beside the projection (text_encoder.safetensors), and registered with the pyfunc:
  serving and generate load them from the model's own files, never from the source folder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from components.errors import ConfigError

MODEL_DIR = "text_model"  # the saved model and tokenizer, in models/ and in the pyfunc
FEATURE_BATCH = 256


def load(folder: str | Path, what: str = "train.text.encoder"):
    """(tokenizer, frozen model in eval mode) of a local folder; ConfigError naming `what`."""
    try:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError:
        raise ConfigError(
            f"{what}: a pretrained folder needs transformers: pip install 'ganops[text]'"
        ) from None
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = AutoModel.from_pretrained(str(folder), local_files_only=True)
    except Exception as err:  # transformers raises OSError, ValueError, KeyError ...
        line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(
            f"{what}: {str(folder)!r} does not load as a Hugging Face text model ({line})"
        ) from None
    if tokenizer.pad_token_id is None:
        raise ConfigError(f"{what}: {str(folder)!r}: its tokenizer has no padding token")
    return tokenizer, model.eval().requires_grad_(False)


def fingerprint(folder: str | Path) -> str:
    """A digest of the folder's files (names and bytes): the contrastive step's checkpoint
    folder changes when the model in it does."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).expanduser().rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(Path(folder).expanduser())).encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def max_tokens(max_words: int, model) -> int:
    """Token budget of a caption: two sub-word tokens a word and the special tokens, within the
    model's positions."""
    limit = getattr(model.config, "max_position_embeddings", None) or 512
    return int(min(2 * max_words + 2, limit))


def hidden_size(model) -> int:
    config = model.config
    for key in ("hidden_size", "d_model", "dim", "n_embd"):
        if isinstance(getattr(config, key, None), int):
            return int(getattr(config, key))
    raise ConfigError("train.text.encoder: the model's config names no hidden size")


class Pooled(nn.Module):
    """The frozen model's token states, mean-pooled over the non-padding tokens: (B, L) int64
    token ids -> (B, hidden). The attention mask is the ids' non-padding positions, so token
    ids alone drive it (export and the pyfunc pass ids only)."""

    def __init__(self, model, pad_id: int):
        super().__init__()
        self.model, self.pad_id = model, int(pad_id)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != self.pad_id).long()  # (B, L)
        h = self.model(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, L, hidden)
        m = mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp(min=1.0)


class PretrainedText(nn.Module):
    """G's sentence encoder from a pretrained model: Pooled, then the trained projection.
    (B, L) token ids -> (B, sentence_dim), like the scratch TextEncoder."""

    def __init__(self, pooled: Pooled, proj: nn.Linear):
        super().__init__()
        self.pooled, self.proj = pooled, proj
        self.sentence_dim = proj.out_features

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.proj(self.pooled(ids))


@torch.no_grad()
def features(pooled: Pooled, ids: np.ndarray) -> np.ndarray:
    """float32 (M, hidden) pooled states of (M, L) token ids, in batches."""
    t = torch.from_numpy(np.ascontiguousarray(ids)).long()
    out = [pooled(b).float() for b in t.split(FEATURE_BATCH)]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


class TokenizerPrompts:
    """Captions -> (token ids (N, max_tokens), warning lines) with the model's tokenizer; the
    same checks as the word vocabulary's (encoder.WordPrompts): ValueError naming the row of
    an empty caption."""

    def __init__(self, tokenizer, max_tokens: int):
        self.tokenizer, self.max_tokens = tokenizer, int(max_tokens)
        self.pad_id = int(tokenizer.pad_token_id)
        self.vocab_size = len(tokenizer)

    def words(self, text: str) -> list[str]:
        """The caption's pieces as the tokenizer splits words (its normaliser and
        pre-tokeniser, for a fast tokenizer; else on white space)."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is None or backend.pre_tokenizer is None:
            return text.split()
        if backend.normalizer is not None:
            text = backend.normalizer.normalize_str(text)
        return [w for w, _ in backend.pre_tokenizer.pre_tokenize_str(text)]

    def encode(self, texts: list) -> tuple[np.ndarray, list[str]]:
        tok, notes = self.tokenizer, []
        for row, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"row {row}: empty caption; give some words")
        batch = tok(list(texts), padding="max_length", truncation=True,
                    max_length=self.max_tokens, return_tensors="np")  # fmt: skip
        ids = np.asarray(batch["input_ids"], dtype=np.int64)
        unk = tok.unk_token_id
        for row, text in enumerate(texts):
            if unk is not None and (ids[row] == unk).any():
                unknown = [w for w in self.words(text)
                           if unk in tok(w, add_special_tokens=False)["input_ids"]]  # fmt: skip
                notes.append(
                    f"row {row}: words the tokenizer does not know (read as {tok.unk_token}): "
                    + ", ".join(repr(w) for w in dict.fromkeys(unknown))
                )
            if len(tok(text)["input_ids"]) > self.max_tokens:
                notes.append(f"row {row}: caption cut at {self.max_tokens} tokens")
        return ids, notes


def save(tokenizer, model, dest: Path) -> None:
    """The tokenizer and the model's weights and config (safetensors) into dest."""
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(dest), safe_serialization=True)
    tokenizer.save_pretrained(str(dest))


def load_text(models: Path, spec: dict, proj_state: dict):
    """(PretrainedText, TokenizerPrompts) of the text_model/ folder beside the spec in `models`
    (models/ or a registered version's artifacts; never the folder it was trained from)."""
    info = spec["text_model"]
    folder = models / info["folder"]
    if not folder.is_dir():
        from components.errors import DataError

        raise DataError(f"{models}: no {info['folder']}/ (the pretrained text model) in the model")
    tokenizer, model = load(folder, what=str(folder))
    proj = nn.Linear(int(info["hidden"]), int(spec["sentence_dim"]))
    proj.load_state_dict(proj_state)
    text = PretrainedText(Pooled(model, tokenizer.pad_token_id), proj)
    return text.eval().requires_grad_(False), TokenizerPrompts(tokenizer, info["max_tokens"])
