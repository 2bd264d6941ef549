"""Captions as word ids: the tokeniser, the vocabulary and the encoding that ingest writes into
data/processed/ (captions.npy, vocab.json) and the text-to-image family reads back, so both
turn a caption into the same ids. Standard library only.

Words are lower-cased runs of letters and digits (any script); an apostrophe inside a word
keeps it whole ("don't"), any other character separates words. The vocabulary comes from the
TRAIN captions only, so test captions measure how far the model's words reach: id 0 is the
padding, id 1 stands for every word outside it, then the words by falling frequency (ties
alphabetically), so the same captions give the same ids on every machine.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

PAD, UNK = "<pad>", "<unk>"  # ids 0 and 1
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # letters/digits, apostrophes inside a word


def words(text: str) -> list[str]:
    """The caption's lower-cased words: "A small, red circle!" -> [a, small, red, circle]."""
    return _WORD.findall(text.lower())


def build_vocab(texts: Iterable[str]) -> list[str]:
    """The vocabulary's tokens by id: <pad>, <unk>, then every word of `texts` (the train
    captions) by falling count, ties in alphabetical order."""
    counts = Counter(w for text in texts for w in words(text))
    return [PAD, UNK, *sorted(counts, key=lambda w: (-counts[w], w))]


def lookup(tokens: Sequence[str]) -> dict[str, int]:
    """{word: id} of a vocabulary's token list (vocab.json's "tokens")."""
    return {token: i for i, token in enumerate(tokens)}


def encode(
    text: str, vocab: Mapping | Sequence[str], max_words: int
) -> tuple[list[int], list[str], bool]:
    """(ids, oov words, truncated) of one caption. ids: its first `max_words` words (always the
    first: truncation is never random), <unk> (1) for a word outside the vocabulary, padded
    with <pad> (0) to max_words. oov: the caption's words outside the vocabulary, over all its
    words (before truncation). vocab: vocab.json's dict, its token list, or the lookup() of
    either (for many captions)."""
    if isinstance(vocab, Mapping) and isinstance(vocab.get("tokens"), list):
        vocab = vocab["tokens"]  # vocab.json's {"tokens": [...], "max_words": L}
    index = vocab if isinstance(vocab, Mapping) else lookup(vocab)
    found = words(text)
    unk = index[UNK]
    ids = [index.get(w, unk) for w in found[:max_words]]
    oov = [w for w in found if w not in index]  # words() never yields <pad> or <unk>
    return ids + [index[PAD]] * (max_words - len(ids)), oov, len(found) > max_words


def decode(ids: Iterable[int], tokens: Sequence[str]) -> str:
    """The words of encoded ids, padding left out (<unk> stays): for captions under images."""
    return " ".join(tokens[i] for i in ids if i != 0)
