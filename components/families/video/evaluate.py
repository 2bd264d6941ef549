"""The video family's evaluation, offline: G_ema's clips against the held-out test clips, every
figure beside its real-vs-real floor (real train clips against the same test clips) and two
negative controls built from real train clips that must score worse than the generator:
`shuffled` (each clip's frames in random order) and `frozen` (its first frame repeated).

- frame `fid` / `kid`: every frame, in the frame feature net of the noise family (a classifier
  on labelled clips, else an autoencoder) trained on real train frames.
- `video_fd`: the Fréchet distance in the feature space of a small 3-D CNN trained here on the
  real train clips (videonet.py). An offline stand-in for FVD; it is NOT FVD.
- temporal checks (temporal.py): `frozen_rate`, the speed distribution's Wasserstein distance
  to the test clips' (`speed_w1`), mean acceleration (smoothness), and, with labels,
  `identity_consistency` (share of a clip's frames the frame classifier puts in the clip's
  majority class) and `cond_acc` (the majority class is the asked one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.families.video import temporal

EVAL_NET_SEED = 0
FRAMES_PER_CLIP = 4  # frames per real train clip the frame feature net learns from
# the video net trains this many epochs per evaluate.classifier_epochs: at 3 it read the class
# of real test clips at chance, while the frame net read them worse at 6 than at 3 (0.33 vs
# 0.54, one run each; docs/video.md, third round)
VIDEO_NET_EPOCHS_PER_CLASSIFIER_EPOCH = 2
PICTURE_CLIPS = 8


def _frame_net(cfg, layout, data, train_clips, train_labels):
    from components.evaluate.features import FEATURE_NET_IMAGES, capped_rows, feature_net
    from components.families.video.probe import train_frames

    k = data.num_classes
    frames, flabels = train_frames(train_clips, train_labels if k else None, FRAMES_PER_CLIP, 0)
    frames, flabels = capped_rows(FEATURE_NET_IMAGES, EVAL_NET_SEED, frames, flabels)
    key = f"video-frames-{data.manifest['content_hash'][:16]}-e{cfg.classifier_epochs}"
    cache = layout.classifier_cache / f"{key}.safetensors"
    return feature_net(frames, flabels, k, cfg.classifier_epochs, EVAL_NET_SEED, cache)


def score(cfg, sets: dict[str, np.ndarray], frame_net, vnet, labels, num_classes: int) -> dict:
    """Every metric from the clip sets test, generated, train, shuffled, frozen (uint8
    (n, T, C, S, S)); `labels`: the test clips' labels (asked of G), or None."""
    from components.evaluate.features import predict
    from components.evaluate.metrics import Pair, Side, frechet, kid
    from components.families.video.videonet import video_features

    frame_feats, frame_pred = {}, {}
    for name in ("test", "generated", "train"):
        clips = sets[name]
        f, p = predict(frame_net, clips.reshape(-1, *clips.shape[2:]))
        frame_feats[name], frame_pred[name] = f, p.numpy().reshape(len(clips), -1)
    out: dict = {}
    out["fid"] = frechet(frame_feats["test"], frame_feats["generated"])
    out["fid_floor"] = frechet(frame_feats["test"], frame_feats["train"])
    out["fid_ratio"] = out["fid"] / max(out["fid_floor"], 1e-12)
    for side, suffix in (("generated", ""), ("train", "_floor")):
        size = min(cfg.kid_subset_size * sets["test"].shape[1], len(frame_feats["test"]))
        pair = Pair(Side(None, frame_feats["test"]), Side(None, frame_feats[side]),
                    kid_subset_size=size, seed=cfg.seed)  # fmt: skip
        k = kid(pair)
        out[f"kid{suffix}"], out[f"kid_std{suffix}"] = k["kid"], k["kid_std"]
    vf = {name: video_features(vnet, clips) for name, clips in sets.items()}
    out["video_fd"] = frechet(vf["test"], vf["generated"])
    out["video_fd_floor"] = frechet(vf["test"], vf["train"])
    out["video_fd_ratio"] = out["video_fd"] / max(out["video_fd_floor"], 1e-12)
    out["video_fd_shuffled"] = frechet(vf["test"], vf["shuffled"])
    out["video_fd_frozen"] = frechet(vf["test"], vf["frozen"])
    stats = {name: temporal.summary(clips) for name, clips in sets.items()}
    real = stats["test"]
    for name, suffix in (("generated", ""), ("train", "_floor"), ("shuffled", "_shuffled"),
                         ("frozen", "_frozen")):  # fmt: skip
        out[f"speed_w1{suffix}"] = temporal.wasserstein(stats[name]["speed"], real["speed"])
    out["frozen_rate"] = float(stats["generated"]["frozen"].mean())
    out["frozen_rate_real"] = float(real["frozen"].mean())
    out["speed_mean"] = float(stats["generated"]["speed"].mean())
    out["speed_mean_real"] = float(real["speed"].mean())
    out["accel_mean"] = float(stats["generated"]["accel"].mean())
    out["accel_mean_real"] = float(real["accel"].mean())
    out["accel_mean_shuffled"] = float(stats["shuffled"]["accel"].mean())
    out["motion_mean"] = float(stats["generated"]["motion"].mean())
    out["motion_mean_real"] = float(real["motion"].mean())
    if num_classes:
        out["identity_consistency"] = temporal.identity_consistency(frame_pred["generated"])
        out["identity_consistency_real"] = temporal.identity_consistency(frame_pred["test"])
        if labels is not None:
            for name, suffix in (("generated", ""), ("test", "_real")):
                major = np.array([np.bincount(r).argmax() for r in frame_pred[name]])
                out[f"cond_acc{suffix}"] = float((major == labels).mean())
    return out


def evaluate_model(cfg, layout, folder: Path) -> tuple[dict, list[Path]]:
    from components.dataset import load_dataset
    from components.evaluate.features import weights_digest
    from components.families.video.clipfiles import save_gif, save_strip
    from components.families.video.nets import load_generator, sample_clips
    from components.families.video.videonet import video_net
    from components.seeds import latent_seeds

    data = load_dataset(layout)
    G, spec = load_generator(layout.models)
    test_x, test_y = data.split("test")
    train_x, train_y = data.split("train")
    n = min(cfg.n_samples, len(test_x), len(train_x))
    rng = np.random.default_rng(cfg.seed)
    test_idx = np.sort(rng.choice(len(test_x), n, replace=False))
    train_idx = np.sort(rng.choice(len(train_x), n, replace=False))
    asked = test_y[test_idx] if spec["num_classes"] else None
    train_all = np.asarray(train_x)
    train = train_all[train_idx]
    sets = {
        "test": np.asarray(test_x[test_idx]),
        "generated": sample_clips(G, spec, latent_seeds(cfg.seed, n), asked),
        "train": train,
        "shuffled": temporal.shuffled_in_time(train, cfg.seed),
        "frozen": temporal.frozen_copy(train),
    }
    frame_net = _frame_net(cfg, layout, data, train_all, train_y)
    k = data.num_classes
    epochs = VIDEO_NET_EPOCHS_PER_CLASSIFIER_EPOCH * cfg.classifier_epochs
    key = f"video-net-{data.manifest['content_hash'][:16]}-e{epochs}"
    vnet = video_net(train_all, train_y if k else None, k, epochs,
                     layout.classifier_cache / f"{key}.safetensors")  # fmt: skip
    metrics = {"n": n, "seed": cfg.seed, "family": "video", "arch": spec["arch"]}
    metrics.update(score(cfg, sets, frame_net, vnet, asked, k))
    metrics["video_net_digest"] = weights_digest(vnet)
    shown = sets["generated"][:PICTURE_CLIPS]
    paths = [
        save_gif(sets["generated"][:16], folder / "generated.gif", cols=4, scale=2),
        save_strip(shown, folder / "generated_strip.png", scale=2),
        save_strip(sets["test"][:PICTURE_CLIPS], folder / "real_strip.png", scale=2),
        save_gif(sets["test"][:16], folder / "real.gif", cols=4, scale=2),
    ]
    return metrics, paths
