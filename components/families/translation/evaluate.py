"""evaluate, image-to-image: score translators (A→B, B→A) on the held-out test split.

Feature space: one `Classifier` (features.py) trained on real A ∪ B train images with *joint*
labels, one output per (domain, class); a domain without labels gets one output. Its softmax
summed over a domain's outputs is the domain head (P(image is of domain d)); the argmax among the
target domain's outputs is the class head restricted to target images: a classifier of the target
domain's classes learnt from real target images. Its penultimate layer is the space FID and KID
are measured in. It learns from at most NET_IMAGES random train images per domain (CPU time;
it also keeps the domain prior near even) and is cached per dataset hash, NET_IMAGES, epochs and
seed through `feature_net`. A and B may differ in channels: everything is brought to the larger
count (gray → 3 channels by repeating) for the net and the pictures.

Every direction reports, keyed `<direction>_<metric>` (see README, Evaluation):

- `fid`, `kid` (with `kid_std`, its spread over subsets): translated source test images vs real
  target test images; `_floor`: real target
  train vs real target test (same n); `_ceiling`: source test images as they are vs real target
  test (what doing nothing scores). `gap_closed` = (ceiling - fid) / (ceiling - floor), capped
  at 1 (a translation can beat the real train split by chance; nan when ceiling <= floor).
- `domain_acc`: share of translations the domain head puts in the target domain (P > 0.5);
  `_floor`: the same share for real target test images (the value real images reach).
- `class_preservation` (both domains labelled): the target-class head agrees with the source
  image's class; `_floor`: its accuracy on real target test images; `_copy`: the same head on
  the source images as they are (no translation), the class evidence the inputs carry for it
  (the net has seen both domains, so it reads many source images' classes): well below `_copy`,
  the translation lost class evidence its input had.
- `cycle_l1` (both directions present): mean |G_back(G(x)) - x|; `identity_l1` (channels match):
  mean |G(y) - y| on target images y; `noop_l1`: mean |G(x) - x|; `gap_l1`: mean |x - y| between
  randomly paired source and target test images; `noop_ratio` = noop_l1 / gap_l1 (~0: G does
  nothing). All in [-1, 1] pixel space, channel mean where channels differ.
- Paired data: `l1`, `psnr` (dB, data range 2), `ssim` of G(x) against the ground truth, each
  beside `<metric>_copy`: the input itself (channel-matched) as the prediction.

Means over directions: `gap_closed`, `domain_acc`, `class_preservation`, `fid_ratio` (fid /
fid_floor), and `noop_ratio_min` (the worst direction). `evaluate.metrics` (noise → image) is
not used: translation always gets this set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from components.config import EvaluateConfig
from components.dataset import Dataset, load_dataset
from components.errors import DataError
from components.evaluate.features import (
    EVAL_NET_SEED,
    Classifier,
    feature_net,
    predict,
    seeded_subset,
)
from components.evaluate.metrics import Pair, Side, compute
from components.layout import Layout, read_json

Translate = Callable[[np.ndarray], np.ndarray]  # uint8 (N, C_in, S, S) -> uint8 (N, C_out, S, S)
DIRECTIONS = {"a2b": ("A", "B"), "b2a": ("B", "A")}  # direction -> (source, target) domain
DOMAINS = ("A", "B")
G_BATCH = 64  # images per generator forward pass; no metric depends on it
PIXEL_N = 128  # images for cycle / identity L1: means over ~10^5 pixels, so 128 is plenty
NET_IMAGES = 2000  # most real train images per domain the feature net learns from (CPU time)
PSNR_CAP = 100.0  # dB reported when the prediction equals the ground truth (PSNR is infinite)
PICTURE_ROWS = 10  # rows of a translation picture: one per class when labelled


def match_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 (N, C, S, S) -> (N, channels, S, S): gray repeated to 3, colour averaged to 1."""
    c = images.shape[1]
    if c == channels:
        return images
    if c == 1:
        return np.repeat(images, channels, axis=1)
    return images.mean(axis=1, keepdims=True).round().astype(np.uint8)


def pixel_l1(x: np.ndarray, y: np.ndarray) -> float:
    """Mean |x - y| of uint8 images in [-1, 1] space; on the channel mean when channels differ."""
    xf, yf = x.astype(np.float32) / 127.5 - 1.0, y.astype(np.float32) / 127.5 - 1.0
    if xf.shape[1] != yf.shape[1]:
        xf, yf = xf.mean(1, keepdims=True), yf.mean(1, keepdims=True)
    if xf.shape != yf.shape:
        raise ValueError(f"shapes differ: {x.shape} vs {y.shape}")
    return float(np.abs(xf - yf).mean())


def as_translate(G: torch.nn.Module, batch: int = G_BATCH) -> Translate:
    """A generator (in eval mode, [-1, 1] in and out) as a uint8 → uint8 callable."""
    from components.images import to_uint8

    @torch.no_grad()
    def translate(images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(images))
        return np.concatenate([to_uint8(G(b.float() / 127.5 - 1.0)) for b in x.split(batch)])

    return translate


# ---------------------------------------------------------------------------------------------
# The domain feature net
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DomainNet:
    """The joint (domain, class) classifier and which of its outputs belong to which domain."""

    net: Classifier
    channels: int  # every image is brought to this channel count first
    slots: dict[str, np.ndarray]  # domain -> its output indices (one per class, or one)
    labelled: dict[str, bool]


@dataclass(frozen=True)
class Scored:
    """Images seen by the DomainNet against one target domain."""

    feats: torch.Tensor  # (N, F)
    in_target: np.ndarray  # (N,) bool: P(target domain) > 0.5
    cls: np.ndarray | None  # (N,) target-domain class guess; None when the target is unlabelled


def domain_slots(data: Dataset) -> tuple[dict[str, np.ndarray], dict[str, bool]]:
    """Joint-label layout: A's slots first, then B's; a labelled domain has one per class."""
    k = len(data.manifest["class_names"])
    labelled = {d: bool(data.manifest["domains"][d]["class_names"]) and k > 0 for d in DOMAINS}
    sizes = {d: k if labelled[d] else 1 for d in DOMAINS}
    slots = {"A": np.arange(sizes["A"]), "B": sizes["A"] + np.arange(sizes["B"])}
    return slots, labelled


def load_or_train_domain_net(cfg: EvaluateConfig, layout: Layout, data: Dataset) -> DomainNet:
    """The translation feature net of this dataset, cached per dataset hash, epochs and seed."""
    slots, labelled = domain_slots(data)
    channels = max(data.manifest["domains"][d]["channels"] for d in DOMAINS)
    images, joint = [], []
    for d in DOMAINS:
        x, y = data.domain(d, "train")
        # unlabelled rows of a labelled domain have no output to learn: left out
        keep = np.flatnonzero(y >= 0) if labelled[d] else np.arange(len(y))
        keep = seeded_subset(keep, NET_IMAGES, EVAL_NET_SEED)
        images.append(match_channels(x[keep], channels))
        joint.append(slots[d][y[keep]] if labelled[d] else np.full(len(keep), slots[d][0]))
    key = f"{data.manifest['content_hash'][:16]}-translation-n{NET_IMAGES}-e{cfg.classifier_epochs}"
    cache = layout.classifier_cache / f"{key}-s{EVAL_NET_SEED}.safetensors"
    num_slots = len(slots["A"]) + len(slots["B"])
    net = feature_net(
        np.concatenate(images),
        np.concatenate(joint).astype(np.int64),
        num_slots,
        cfg.classifier_epochs,
        EVAL_NET_SEED,
        cache,
    )
    return DomainNet(net, channels, slots, labelled)


@torch.no_grad()
def score(dnet: DomainNet, images: np.ndarray, target: str) -> Scored:
    """Features, target-domain membership and target-class guesses of uint8 images."""
    feats, _ = predict(dnet.net, match_channels(images, dnet.channels))
    prob = torch.softmax(dnet.net.head(feats), dim=1).numpy()  # (N, slots)
    in_target = prob[:, dnet.slots[target]].sum(1) > 0.5
    cls = prob[:, dnet.slots[target]].argmax(1) if dnet.labelled[target] else None
    return Scored(feats, in_target, cls)


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestSets:
    """The test images one direction is scored on (n of each, drawn with evaluate.seed)."""

    source: np.ndarray  # (n, C_src, S, S) source test images
    source_labels: np.ndarray  # (n,) -1 where unlabelled
    target: np.ndarray  # (n, C_tgt, S, S) real target test images
    target_labels: np.ndarray  # (n,)
    target_train: np.ndarray  # (n, C_tgt, S, S) real target train images (the floor)
    truth: np.ndarray | None  # paired data: the source's ground-truth target image


def draw_sets(cfg: EvaluateConfig, data: Dataset, direction: str) -> TestSets:
    """n = min(evaluate.n_samples, every set's size) images of each set, without replacement."""
    src, tgt = DIRECTIONS[direction]
    rng = np.random.default_rng(cfg.seed)
    train_x, _ = data.domain(tgt, "train")
    if data.kind == "paired":
        a, b, labels = data.pairs("test")
        source, target = (a, b) if direction == "a2b" else (b, a)
        n = min(cfg.n_samples, len(source), len(train_x))
        idx = np.sort(rng.choice(len(source), n, replace=False))
        source, target, labels = source[idx], target[idx], labels[idx]
        train_idx = np.sort(rng.choice(len(train_x), n, replace=False))
        return TestSets(source, labels, target, labels, train_x[train_idx], target)
    src_x, src_y = data.domain(src, "test")
    tgt_x, tgt_y = data.domain(tgt, "test")
    n = min(cfg.n_samples, len(src_x), len(tgt_x), len(train_x))
    i, j, k = (
        np.sort(rng.choice(m, n, replace=False)) for m in (len(src_x), len(tgt_x), len(train_x))
    )
    return TestSets(src_x[i], src_y[i], tgt_x[j], tgt_y[j], train_x[k], None)


def distances(cfg: EvaluateConfig, real: Scored, others: dict[str, Scored]) -> dict[str, float]:
    """fid, kid and kid_std of each candidate set against the real target test set:
    {"fid_<name>": ...}."""
    out = {}
    for name, other in others.items():
        pair = Pair(
            Side(None, real.feats),
            Side(None, other.feats),
            kid_subset_size=cfg.kid_subset_size,
            seed=cfg.seed,
        )
        out.update({f"{k}{name}": v for k, v in compute(["fid", "kid"], pair).items()})
    return out


def gap_closed(value: float, floor: float, ceiling: float) -> float:
    """Share of the no-translation → real-vs-real gap closed, capped at 1 (nan: no gap)."""
    if not ceiling > floor:
        return float("nan")
    return min((ceiling - value) / (ceiling - floor), 1.0)


def paired_scores(prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """l1, psnr (dB, capped at PSNR_CAP) and ssim of uint8 predictions against the truth."""
    from torchmetrics.functional.image import (
        peak_signal_noise_ratio,
        structural_similarity_index_measure,
    )

    pred = torch.from_numpy(prediction).double() / 127.5 - 1.0  # (N, C, S, S) in [-1, 1]
    true = torch.from_numpy(truth).double() / 127.5 - 1.0
    psnr = float(peak_signal_noise_ratio(pred, true, data_range=2.0))
    return {
        "l1": pixel_l1(prediction, truth),
        "psnr": min(psnr, PSNR_CAP),
        "ssim": float(structural_similarity_index_measure(pred, true, data_range=2.0)),
    }


def evaluate_direction(
    cfg: EvaluateConfig,
    data: Dataset,
    dnet: DomainNet,
    translators: dict[str, Translate],
    direction: str,
) -> dict[str, float]:
    """Every metric of one direction, keyed without the direction prefix."""
    src, tgt = DIRECTIONS[direction]
    sets = draw_sets(cfg, data, direction)
    n, c_tgt = len(sets.source), sets.target.shape[1]
    G = translators[direction]
    fake = G(sets.source)
    if fake.dtype != np.uint8 or fake.shape != (n, c_tgt, *sets.source.shape[2:]):
        raise ValueError(
            f"{direction}: translator gave {fake.dtype} {fake.shape}, "
            f"want uint8 (n={n}, C={c_tgt}, S, S)"
        )
    real, translated = score(dnet, sets.target, tgt), score(dnet, fake, tgt)
    m: dict[str, float] = {"n": n}
    candidates = {
        "": translated,
        "_floor": score(dnet, sets.target_train, tgt),  # real vs real
        "_ceiling": score(dnet, sets.source, tgt),  # no translation at all
    }
    d = distances(cfg, real, candidates)
    for metric in ("fid", "kid", "kid_std"):
        m.update({f"{metric}{s}": d[f"{metric}{s}"] for s in candidates})
    m["gap_closed"] = gap_closed(m["fid"], m["fid_floor"], m["fid_ceiling"])
    m["domain_acc"] = float(translated.in_target.mean())
    m["domain_acc_floor"] = float(real.in_target.mean())
    kept = sets.source_labels >= 0
    if dnet.labelled[src] and dnet.labelled[tgt] and kept.any():
        labels = sets.source_labels[kept]
        m["class_preservation"] = float((translated.cls[kept] == labels).mean())
        m["class_preservation_copy"] = float((candidates["_ceiling"].cls[kept] == labels).mean())
        known = sets.target_labels >= 0
        m["class_preservation_floor"] = float((real.cls[known] == sets.target_labels[known]).mean())
    m.update(pixel_distances(sets, translators, direction, fake))
    if sets.truth is not None:
        copy = paired_scores(match_channels(sets.source, c_tgt), sets.truth)
        m.update(paired_scores(fake, sets.truth))
        m.update({f"{key}_copy": value for key, value in copy.items()})
    return m


def pixel_distances(
    sets: TestSets, translators: dict[str, Translate], direction: str, fake: np.ndarray
) -> dict[str, float]:
    """cycle / identity L1 (on the first PIXEL_N images), no-op distance and the domain gap."""
    back = "b2a" if direction == "a2b" else "a2b"
    k = min(PIXEL_N, len(fake))
    m = {}
    if back in translators:
        m["cycle_l1"] = pixel_l1(translators[back](fake[:k]), sets.source[:k])
    if sets.source.shape[1] == sets.target.shape[1]:
        m["identity_l1"] = pixel_l1(translators[direction](sets.target[:k]), sets.target[:k])
    perm = np.random.default_rng(len(fake)).permutation(len(fake))
    m["noop_l1"] = pixel_l1(fake, sets.source)
    m["gap_l1"] = pixel_l1(sets.source, sets.target[perm])
    m["noop_ratio"] = m["noop_l1"] / max(m["gap_l1"], 1e-12)
    return m


def check_data(data: Dataset, spec: dict | None = None) -> None:
    """Translation data (unpaired or paired) whose channels are the translator's."""
    if data.kind not in ("unpaired", "paired"):
        raise DataError(f"a {data.kind} dataset: a translator needs unpaired or paired data")
    for d in DOMAINS if spec else ():
        have, want = data.manifest["domains"][d]["channels"], spec[f"channels_{d.lower()}"]
        if have != want:
            raise DataError(
                f"models/: the translator takes {want}-channel {d} images, the dataset's {d} "
                f"has {have}; retrain on this data"
            )


def evaluate_translation(
    cfg: EvaluateConfig, data: Dataset, translators: dict[str, Translate], dnet: DomainNet
) -> dict:
    """Every translation metric of every direction in `translators`, and their means."""
    check_data(data)
    metrics: dict = {"kind": data.kind, "seed": cfg.seed}
    per_direction = {}
    for direction in (d for d in DIRECTIONS if d in translators):
        per_direction[direction] = evaluate_direction(cfg, data, dnet, translators, direction)
        metrics.update({f"{direction}_{k}": v for k, v in per_direction[direction].items()})
    values = list(per_direction.values())
    for key in ("gap_closed", "domain_acc", "class_preservation"):
        present = [m[key] for m in values if key in m]
        if present:
            metrics[key] = float(np.mean(present))
    metrics["fid_ratio"] = float(np.mean([m["fid"] / max(m["fid_floor"], 1e-12) for m in values]))
    metrics["noop_ratio_min"] = float(min(m["noop_ratio"] for m in values))
    return metrics


# ---------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------


def translation_picture(
    data: Dataset, translators: dict[str, Translate], direction: str, path: Path
) -> Path:
    """Rows of input | translation | back-translation (cyclegan) | ground truth (paired), one
    row per class of the source test split (or PICTURE_ROWS spread over it when unlabelled)."""
    from components.images import grid, save_png

    src, _tgt = DIRECTIONS[direction]
    if data.kind == "paired":
        a, b, labels = data.pairs("test")
        source, truth = (a, b) if direction == "a2b" else (b, a)
    else:
        (source, labels), truth = data.domain(src, "test"), None
    classes = np.unique(labels[labels >= 0])[:PICTURE_ROWS]
    if len(classes):
        picks = np.array([np.flatnonzero(labels == c)[0] for c in classes])
    else:
        picks = np.linspace(0, len(source) - 1, min(PICTURE_ROWS, len(source))).round().astype(int)
    inputs = np.ascontiguousarray(source[picks])
    columns = [inputs, translators[direction](inputs)]
    back = "b2a" if direction == "a2b" else "a2b"
    if back in translators:
        columns.append(translators[back](columns[1]))
    if truth is not None:
        columns.append(np.ascontiguousarray(truth[picks]))
    channels = max(c.shape[1] for c in columns)
    tiles = np.stack(
        [match_channels(c, channels) for c in columns], axis=1
    )  # (rows, cols, C, S, S)
    return save_png(grid(tiles.reshape(-1, *tiles.shape[2:]), len(picks)), path, scale=2)


def load_translators(models: Path) -> tuple[dict[str, Translate], dict]:
    """The generators in models/ (G_AB, and G_BA for cyclegan) as callables, and their spec."""
    from components.families.translation.nets import SPEC_FILE, SPEC_KEYS, WEIGHTS, load_translator

    stored = read_json(models / SPEC_FILE)
    spec = {k: stored[k] for k in SPEC_KEYS if k in stored}  # the file adds class_names etc.
    directions = ("a2b",) if spec.get("arch") == "pix2pix" else ("a2b", "b2a")
    translators = {}
    for direction in directions:
        weights = models / WEIGHTS[direction]
        if not weights.is_file():
            raise DataError(f"{weights}: missing ({spec.get('arch')} needs {direction}); run train")
        translators[direction] = as_translate(load_translator(weights, spec, direction))
    return translators, spec


def run_translation(cfg: EvaluateConfig, layout: Layout, folder: Path) -> tuple[dict, list[Path]]:
    """Score the translator in models/: (metrics, pictures written into `folder`: one per
    direction, translation_<direction>.png). The stage (stage.py) publishes both."""
    data = load_dataset(layout)
    translators, spec = load_translators(layout.models)
    check_data(data, spec)
    dnet = load_or_train_domain_net(cfg, layout, data)
    metrics = evaluate_translation(cfg, data, translators, dnet)
    paths = [
        translation_picture(data, translators, d, folder / f"translation_{d}.png")
        for d in translators
    ]
    return metrics, paths


# ---- the stage hooks (components/families/base.py) ----


def evaluate_model(cfg, layout, folder: Path):
    return run_translation(cfg, layout, folder)
