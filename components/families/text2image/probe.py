"""The text-to-image probe: FID of G_ema on a fixed set of train captions against the train
images, in the feature space of a small network trained once on the train images (cached per
dataset hash). It picks the best G_ema; model selection never sees the test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

PROBE_EPOCHS = 3  # a rough ruler; evaluate trains its own
PROBE_N = 500  # generated images per probe


class Text2ImageProbe:
    def __init__(self, images: np.ndarray, sentences: torch.Tensor, z_dim: int, cache: Path,
                 data_hash: str, seed: int = 0):  # fmt: skip
        from components.evaluate.features import (
            FEATURE_NET_IMAGES,
            capped_rows,
            feature_net,
            predict,
        )
        from components.families.text2image.trainer import probe_inputs

        (learn_x,) = capped_rows(FEATURE_NET_IMAGES, seed, images)
        key = (
            f"probe-t2i-{data_hash[:16]}-m{FEATURE_NET_IMAGES}-e{PROBE_EPOCHS}-s{seed}.safetensors"
        )
        self.net = feature_net(learn_x, None, 0, PROBE_EPOCHS, seed, cache / key)
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(len(images), min(PROBE_N, len(images)), replace=False))
        self.ref_feats, _ = predict(self.net, np.ascontiguousarray(images[idx]))
        self.z, self.s, _ = probe_inputs(sentences.cpu(), PROBE_N, z_dim, seed)

    @torch.no_grad()
    def __call__(self, G_ema: torch.nn.Module) -> dict[str, float]:
        from components.evaluate.features import predict
        from components.evaluate.metrics import frechet
        from components.images import to_uint8

        device = next(G_ema.parameters()).device
        images = to_uint8(G_ema(self.z.to(device), self.s.to(device)))
        feats, _ = predict(self.net, images)
        return {"probe_fid": frechet(self.ref_feats, feats)}
