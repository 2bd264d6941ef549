"""Does the trained D see each attribute? A linear probe of its own 4x4 features.

For a text-to-image project folder trained on data with attributes (the bundled `shapes`),
this reads D from the run's last checkpoint, computes its body's 4x4 features of real train
images (at most 3,000) and of every real test image, fits a logistic regression per attribute
on the train features and prints its accuracy on the test features as one JSON line. An
attribute the sentence carries (bench/t2i_text_probe.py) but D's features do not cannot be
asked of G by D.

    python bench/t2i_d_probe.py DIR     # DIR: a folder where `ganops run --params
                                        # params-text2image.yaml` trained
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def main(root: Path) -> None:
    import torch
    from sklearn.linear_model import LogisticRegression
    from t2i_text_probe import probe_data  # a sibling: this folder is sys.path[0]

    from components.config import load_params
    from components.families.text2image.nets import Discriminator

    layout, data, captions, attrs = probe_data(root)
    ckpt = sorted(layout.checkpoints.glob("*/checkpoint-*.pt"))
    if not ckpt:
        sys.exit(f"{root}: no training checkpoint under {layout.checkpoints}")
    cfg = load_params(root / "params-text2image.yaml").train
    images = np.asarray(data.images)
    state = torch.load(ckpt[-1], weights_only=True)["modules"]["D"]
    D = Discriminator(cfg.text.sentence_dim, images.shape[1], images.shape[2], cfg.d_channels,
                      cfg.d_condition, "reader.weight" in state)  # fmt: skip
    D.load_state_dict(state)
    D.eval()
    train = np.unique(captions.split("train")[0])[:3000]
    test = np.unique(captions.split("test")[0])

    @torch.no_grad()
    def features(rows: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(images[rows]).float() / 127.5 - 1.0
        return torch.cat([D.body(b).flatten(1) for b in x.split(256)]).numpy()

    a, b = features(train), features(test)
    row = {"checkpoint": ckpt[-1].name}
    for name in (c for c in attrs.columns if c != "heldout"):
        probe = LogisticRegression(max_iter=3000).fit(a, attrs.loc[train, name].to_numpy())
        row[name] = round(probe.score(b, attrs.loc[test, name].to_numpy()), 3)
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
