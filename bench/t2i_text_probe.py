"""Does the text side carry each attribute? A linear probe of the sentence vectors.

For a text-to-image project folder whose data has attributes (the bundled `shapes`), this
pretrains the scratch sentence encoder as `ganops run` does (the same options, seed and
code, for each number of epochs given), encodes every train and test caption, fits a logistic
regression per attribute on the train captions' vectors and prints its accuracy on the test
captions, one JSON line per encoder. An attribute the probe reads near 1.0 is in the sentence
vector G and D are given, so a generator that does not draw it fails on the image side.

    python bench/t2i_text_probe.py DIR 6 24     # DIR: a folder where `ganops run --params
                                                # params-text2image.yaml` ingested (data/)

Encoders are trained into DIR/checkpoints/text-probe-<epochs>/ (a rerun reads them back).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


def probe_data(root: Path):
    """(layout, dataset, captions, attribute table) of a text2image project folder; exits with
    one line when its data has no attributes to probe (t2i_d_probe.py uses it too)."""
    from components.datakinds.captioned.read import read
    from components.dataset import load_dataset
    from components.layout import Layout

    layout = Layout(root)
    data = load_dataset(layout)
    captions = read(data)
    attrs = captions.attributes(None)
    if attrs is None:
        sys.exit(f"{root}: the data has no attributes to probe (the bundled shapes has)")
    return layout, data, captions, attrs


def main(root: Path, epochs: list[int]) -> None:
    from sklearn.linear_model import LogisticRegression

    from components.config import load_params
    from components.families.text2image.encoder import encode_sentences, train_encoders

    layout, data, captions, attrs = probe_data(root)
    rows, tokens, _ = captions.split("train")
    test_rows, test_tokens, _ = captions.split("test")
    cfg = load_params(root / "params-text2image.yaml").train
    for n in epochs:
        opts = cfg.text.model_copy(update={"pretrain_epochs": n})
        began = time.perf_counter()
        text, _, losses = train_encoders(
            np.asarray(data.images), rows, tokens, len(captions.vocab["tokens"]), opts,
            cfg.seed, layout.checkpoints / f"text-probe-{n}",
        )  # fmt: skip
        train_s = encode_sentences(text, tokens).numpy()
        test_s = encode_sentences(text, test_tokens).numpy()
        row = {"epochs": n, "final_loss": round(losses[-1], 3),
               "seconds": round(time.perf_counter() - began, 1)}  # fmt: skip
        for name in (c for c in attrs.columns if c != "heldout"):
            probe = LogisticRegression(max_iter=2000)
            probe.fit(train_s, attrs.loc[rows, name].to_numpy())
            row[name] = round(probe.score(test_s, attrs.loc[test_rows, name].to_numpy()), 3)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), [int(a) for a in sys.argv[2:]] or [6])
