"""The probe of image -> image families: per-direction probe FID in a domain classifier's
feature space, domain accuracy, and no-op / collapse detectors (see TranslationProbe)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from components.images import common_channels

PROBE_EPOCHS = 3  # the probe network is a rough ruler; evaluate trains the real one

NOOP_WARN = 0.25  # translation closer to its input than this share of the domain gap: no-op
COLLAPSE_WARN = 0.2  # outputs varying less than this share of their inputs: collapse


class TranslationProbe:
    """The probe of image -> image families: per direction, FID of translated train inputs vs
    real train images of the target domain in the feature space of a domain classifier (A vs
    B, trained once on the train split), how often that classifier calls a translation the
    target domain, and two degenerate-solution detectors: no-op (the translation's distance to
    its input, over the typical distance between an A and a B image) and collapse (output
    spread over input spread). probe_fid, the mean over directions, picks the best state."""

    def __init__(self, data, cache: Path, data_hash: str, n: int = 500, seed: int = 0):
        from components.evaluate.features import (
            FEATURE_NET_IMAGES,
            capped_rows,
            feature_net,
            predict,
        )

        a, _ = data.domain("A", "train")
        b, _ = data.domain("B", "train")
        self.channels = {"A": a.shape[1], "B": b.shape[1]}
        c = max(self.channels.values())
        rng = np.random.default_rng(seed)
        pick = {
            name: np.sort(rng.choice(len(x), min(n, len(x)), replace=False))
            for name, x in (("A", a), ("B", b))
        }
        self.inputs = {
            "A": np.ascontiguousarray(a[pick["A"]]),
            "B": np.ascontiguousarray(b[pick["B"]]),
        }
        # the domain net learns from at most FEATURE_NET_IMAGES train images per domain
        (a,), (b,) = (capped_rows(FEATURE_NET_IMAGES, seed, x) for x in (a, b))
        both = np.concatenate([common_channels(a, c), common_channels(b, c)])
        domain = np.concatenate([np.zeros(len(a), np.int64), np.ones(len(b), np.int64)])
        key = f"probe-domains-{data_hash[:16]}-m{FEATURE_NET_IMAGES}-e{PROBE_EPOCHS}-s{seed}"
        key += ".safetensors"
        self.net = feature_net(both, domain, 2, PROBE_EPOCHS, seed, cache / key)
        self.common = c
        self.ref_feats = {
            name: predict(self.net, common_channels(x, c))[0] for name, x in self.inputs.items()
        }
        m = min(len(self.inputs["A"]), len(self.inputs["B"]))
        same = self.channels["A"] == self.channels["B"]
        self.gap = (
            float(np.abs(self.inputs["A"][:m].astype(np.float32) - self.inputs["B"][:m]).mean())
            / 127.5
            if same
            else None
        )  # mean |a - b| in [-1, 1] units: the distance a translation should cover

    @torch.no_grad()
    def __call__(self, nets: torch.nn.ModuleDict) -> dict[str, float]:
        from components.evaluate.features import predict
        from components.evaluate.metrics import frechet
        from components.families.translation.common import collapse_score, noop_distance
        from components.images import to_uint8

        out: dict[str, float] = {}
        fids = []
        modes = {name: m.training for name, m in nets.items()}
        nets.eval()
        device = next(nets.parameters()).device
        for name, G in nets.items():  # "G_AB" translates A into B
            source, target = name[2], name[3]
            x = torch.from_numpy(self.inputs[source]).to(device).float() / 127.5 - 1
            y = torch.cat([G(x[i : i + 250]) for i in range(0, len(x), 250)])  # (n, C_t, S, S)
            images = common_channels(to_uint8(y), self.common)
            feats, pred = predict(self.net, images)
            tag = f"{source}2{target}".lower()
            fid = frechet(self.ref_feats[target], feats)
            fids.append(fid)
            out[f"probe_{tag}_fid"] = fid
            out[f"probe_{tag}_domain_acc"] = float((pred == int(target == "B")).double().mean())
            out[f"probe_{tag}_collapse"] = collapse_score(y.cpu(), x.cpu())
            if self.gap:
                out[f"probe_{tag}_noop"] = noop_distance(x.cpu(), y.cpu()) / self.gap
        for name, mode in modes.items():
            nets[name].train(mode)
        out["probe_fid"] = float(np.mean(fids))
        self._warn(out)
        return out

    @staticmethod
    def _warn(result: dict[str, float]) -> None:
        for key, value in result.items():
            if key.endswith("_noop") and value < NOOP_WARN:
                print(
                    f"train: warning: {key} = {value:.2f} of the domain gap: the translation "
                    "stays close to its input (possible no-op solution)"
                )
            if key.endswith("_collapse") and value < COLLAPSE_WARN:
                print(
                    f"train: warning: {key} = {value:.2f}: outputs barely vary across inputs "
                    "(possible collapse)"
                )
