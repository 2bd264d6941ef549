"""The music probe: the Frechet distance between G_ema's windows (fixed z) and the train
windows in the space of musical statistics (metrics.window_features: per track density, empty
bars, mean pitch, pitch classes; pitches at once). No net to train, so it is cheap enough to
run every eval interval; it picks the best G_ema and never sees the test split."""

from __future__ import annotations

import numpy as np
import torch

PROBE_N = 500  # windows per side


class MusicProbe:
    def __init__(self, windows: np.ndarray, latent_dim: int, spec: dict, seed: int = 0):
        from components.families.music.metrics import window_features

        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(windows), min(PROBE_N, len(windows)), replace=False))
        self.spec = spec
        self.ref = torch.from_numpy(
            window_features(np.asarray(windows[pick]), spec["steps_per_bar"], spec["pitch_low"])
        )
        gen = torch.Generator().manual_seed(seed)
        self.z = torch.randn(PROBE_N, latent_dim, generator=gen)
        k = len(spec.get("class_names", []))  # a conditional G: every class in turn
        self.labels = torch.arange(PROBE_N) % k if k else None

    @torch.no_grad()
    def __call__(self, G_ema: torch.nn.Module) -> dict[str, float]:
        from components.evaluate.metrics import frechet
        from components.families.music.metrics import window_features

        device = next(G_ema.parameters()).device
        labels = self.labels.to(device) if self.labels is not None else None
        rolls = (G_ema(self.z.to(device), labels) > 0.5).to(torch.uint8).cpu().numpy()
        s = self.spec
        feats = torch.from_numpy(window_features(rolls, s["steps_per_bar"], s["pitch_low"]))
        return {"probe_fid": frechet(self.ref, feats), "probe_density": float(rolls.mean())}
