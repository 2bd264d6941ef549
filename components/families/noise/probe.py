"""A cheap in-training quality probe: FID of G_ema on a fixed sample, in the feature space of a
small network trained (once, cached per dataset hash) on the train split.

It picks the best G_ema (DCGAN runs often peak, then drift) and watches for mode collapse: the
class histogram of the probe's samples (by the probe classifier) and their feature diversity.
Reference images come from the train split, so model selection never sees the test split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

PROBE_EPOCHS = 3  # the probe network is a rough ruler; evaluate trains the real one


class Probe:
    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray | None,
        num_classes: int,
        z_dim: int,
        cache: Path,
        data_hash: str,
        n: int = 1000,
        seed: int = 0,
    ):
        from components.evaluate.features import (
            FEATURE_NET_IMAGES,
            capped_rows,
            feature_net,
            predict,
        )
        from components.seeds import probe_latent_seeds

        self.num_classes = num_classes
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(len(images), min(n, len(images)), replace=False))
        # the probe net learns from at most FEATURE_NET_IMAGES train images, as evaluate's does
        learn_x, learn_y = capped_rows(FEATURE_NET_IMAGES, seed, images, labels)
        key = f"probe-{data_hash[:16]}-m{FEATURE_NET_IMAGES}-e{PROBE_EPOCHS}-s{seed}.safetensors"
        self.net = feature_net(learn_x, learn_y, num_classes, PROBE_EPOCHS, seed, cache / key)
        self.ref_feats, _ = predict(self.net, np.ascontiguousarray(images[idx]))
        self.ref_spread = self._spread(self.ref_feats)
        self.labels = torch.as_tensor(labels[idx]) if num_classes else None
        from components.seeds import latents

        self.z = latents(probe_latent_seeds(len(idx)), z_dim)  # fixed for the whole run

    @staticmethod
    def _spread(feats: torch.Tensor) -> float:
        """Mean distance to the feature centroid: a cheap diversity measure."""
        return float((feats - feats.mean(0)).norm(dim=1).mean())

    @torch.no_grad()
    def __call__(self, G_ema: torch.nn.Module) -> dict[str, float]:
        from components.evaluate.features import predict
        from components.evaluate.metrics import frechet
        from components.images import to_uint8

        device = next(G_ema.parameters()).device
        images = []
        for i in range(0, len(self.z), 500):
            c = self.labels[i : i + 500].to(device) if self.labels is not None else None
            images.append(to_uint8(G_ema(self.z[i : i + 500].to(device), c)))
        feats, pred = predict(self.net, np.concatenate(images))
        out = {
            "probe_fid": frechet(self.ref_feats, feats),
            "probe_diversity": self._spread(feats) / max(self.ref_spread, 1e-12),
        }
        if self.num_classes:
            share = np.bincount(pred.numpy(), minlength=self.num_classes) / len(pred)
            out["probe_modes_covered"] = int((share >= 0.5 / self.num_classes).sum())
            out["probe_cond_acc"] = float((pred == self.labels).double().mean())
        return out
