"""Code: the evaluation metrics behave as their definitions say."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from components.evaluate.metrics import Pair, Side, compute, frechet

FEATURE_METRICS = ["fid", "kid", "prdc"]


def clusters(n_per=60, classes=(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), dim=8, seed=0, spread=0.5):
    """Labelled Gaussian blobs in feature space: a stand-in for a domain classifier's features."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(0, 4, (10, dim))
    labels = np.repeat(np.array(classes), n_per)
    feats = centres[labels] + rng.normal(0, spread, (len(labels), dim))
    return Side(None, torch.from_numpy(feats), labels, labels.copy())


def pair(real, other, **kw):
    return Pair(real, other, num_classes=10, nearest_k=3, kid_subset_size=200, **kw)


def scores(real, other):
    names = ["fid", "kid", "prdc", "intra_fid", "cond_acc", "modes"]
    return compute(names, pair(real, other))


def test_identical_sets_are_indistinguishable():
    real = clusters()
    s = scores(real, real)
    assert s["fid"] == pytest.approx(0.0, abs=1e-6)
    assert s["precision"] == s["recall"] == s["coverage"] == 1.0
    assert s["modes_covered"] == 10 and s["mode_kl"] == pytest.approx(0.0, abs=1e-9)
    # KID is unbiased, so identical sets scatter around 0, far below a real gap
    g = torch.randn(600, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    same = compute(["kid"], pair(Side(None, g), Side(None, g)))
    shifted = compute(["kid"], pair(Side(None, g), Side(None, g + 1.0)))
    assert abs(same["kid"]) < 0.02 * shifted["kid"]
    # kid_std, its spread over subsets, tells the two apart: 0 within it, the shift far outside
    assert same["kid_std"] > 0 and abs(same["kid"]) < 3 * same["kid_std"]
    assert shifted["kid"] > 10 * shifted["kid_std"]


def test_fid_matches_closed_form_for_gaussians():
    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.normal(0, 1, (20000, 4)))
    b = torch.from_numpy(rng.normal(0.5, 2, (20000, 4)))
    # FID(N(0, I), N(0.5, 4I)) = |mu|^2 + tr(I + 4I - 2 * 2I) = 4 * 0.25 + 4 * 1
    assert frechet(a, b) == pytest.approx(5.0, rel=0.05)


def test_dropping_half_the_classes_loses_coverage_and_modes():
    real = clusters(seed=0)
    full = scores(real, clusters(seed=1))
    half = scores(real, clusters(n_per=120, classes=(0, 1, 2, 3, 4), seed=1))
    assert half["modes_covered"] == 5 and full["modes_covered"] == 10
    assert half["coverage"] < 0.6 < 0.8 < full["coverage"]
    assert half["recall"] < full["recall"]
    assert half["mode_kl"] > full["mode_kl"] + 0.5  # KL(real || half) ~ log 2
    assert half["fid"] > full["fid"]


def test_a_reference_sides_knn_radii_are_reused_not_stale():
    """PRDC keeps each side's k-NN radii (the test set's serve G's metrics and the floor's):
    the second and third comparisons against one reference side equal those of fresh sides,
    and another k gets its own radii."""
    ref, fake, train = clusters(seed=0), clusters(seed=1, spread=1.0), clusters(seed=2)
    first = compute(["prdc"], pair(ref, fake))
    floor = compute(["prdc"], pair(ref, train))
    assert set(ref.radii) == {3}
    assert floor == compute(["prdc"], pair(clusters(seed=0), clusters(seed=2)))
    assert first == compute(["prdc"], pair(ref, fake))
    k5 = compute(["prdc"], Pair(ref, train, num_classes=10, nearest_k=5))
    assert set(ref.radii) == {3, 5}
    assert k5 == compute(["prdc"], Pair(clusters(seed=0), clusters(seed=2), nearest_k=5))
    assert k5 != floor


def test_pure_noise_scores_worst():
    real = clusters(seed=0)
    rng = np.random.default_rng(2)
    noise_labels = np.repeat(np.arange(10), 60)
    noise = Side(
        None,
        torch.from_numpy(rng.uniform(-15, 15, (600, 8))),
        noise_labels,
        rng.integers(0, 10, 600),
    )
    good, half = (
        scores(real, clusters(seed=1)),
        scores(real, clusters(n_per=120, classes=(0, 1, 2, 3, 4), seed=1)),
    )
    bad = scores(real, noise)
    for key in ("fid", "kid", "intra_fid"):  # lower is better
        assert bad[key] > max(good[key], half[key]), key
    for key in ("precision", "density", "cond_acc"):  # higher is better
        assert bad[key] < min(good[key], half[key]), key


def _digits_data(tmp_path, smoke_params):
    """(layout, dataset) of the bundled digits, ingested into tmp_path."""
    from components.dataset import load_dataset
    from components.ingest import run as ingest_run
    from components.layout import Layout

    layout = Layout(tmp_path)
    ingest_run(smoke_params.ingest.model_copy(update={"source": "digits"}), layout)
    return layout, load_dataset(layout)


def _digits_eval(tmp_path, smoke_params):
    """(cfg, data, G, net) for a small evaluation of an untrained G on bundled digits."""
    from components.evaluate.features import train_classifier
    from components.families.noise.nets import Generator

    _layout, data = _digits_data(tmp_path, smoke_params)
    torch.manual_seed(0)
    G = Generator(16, 10, 1, 28, 32).eval()
    x, y = data.split("train")
    net = train_classifier(x[:300], y[:300], 10, 1, seed=0)
    cfg = smoke_params.evaluate.model_copy(
        update={"n_samples": 120, "kid_subset_size": 50, "classifier_epochs": 1}
    )
    return cfg, data, G, net


def test_no_metric_depends_on_the_batch_size(tmp_path, smoke_params):
    """The whole evaluation (generation, features, metrics) at two batch sizes."""
    from components.evaluate import evaluate

    cfg, data, G, net = _digits_eval(tmp_path, smoke_params)
    small, _ = evaluate(cfg, data, G, net, batch=7)
    large, _ = evaluate(cfg, data, G, net, batch=1000)
    assert set(small) == set(large)
    for key in small:
        assert small[key] == pytest.approx(large[key], rel=1e-6, abs=1e-9), key


def test_floors_are_cached_per_dataset_and_settings(tmp_path, smoke_params, monkeypatch):
    """The real-vs-real floors do not depend on G: computed once, then read back unchanged;
    other settings and caps get their own entry."""
    from components.evaluate import evaluate

    cfg, data, G, net = _digits_eval(tmp_path, smoke_params)
    cache = tmp_path / "cache"
    fresh, _ = evaluate(cfg, data, G, net)
    first, _ = evaluate(cfg, data, G, net, floor_cache=cache)
    [entry] = cache.iterdir()
    torch.manual_seed(1)
    other_G = type(G)(16, 10, 1, 28, 32).eval()
    second, _ = evaluate(cfg, data, other_G, net, floor_cache=cache)
    floors = sorted(k for k in fresh if k.endswith("_floor"))
    assert floors and "tstr_floor" in floors and "fid_floor" in floors
    for key in floors:
        assert first[key] == pytest.approx(fresh[key], rel=1e-6, abs=1e-9), key
        assert second[key] == first[key], key
    assert second["fid"] != first["fid"]  # G's own metrics are never cached
    cached = json.loads(entry.read_text())
    entry.write_text(json.dumps(cached | {"fid": 12345.0}))
    assert evaluate(cfg, data, G, net, floor_cache=cache)[0]["fid_floor"] == 12345.0
    # an entry without a key G's metrics have (an older ganops wrote it) is computed afresh
    entry.write_text(json.dumps({k: v for k, v in cached.items() if k != "kid_std"}))
    again, _ = evaluate(cfg, data, G, net, floor_cache=cache)
    assert again["kid_std_floor"] == first["kid_std_floor"]
    assert again["fid_floor"] == first["fid_floor"] and json.loads(entry.read_text()) == cached
    evaluate(cfg.model_copy(update={"nearest_k": 4}), data, G, net, floor_cache=cache)
    assert len(list(cache.iterdir())) == 2
    # TSTR's cap and the feature net itself are part of the key too
    from components.evaluate import metrics

    monkeypatch.setattr(metrics, "TSTR_IMAGES", 50)
    evaluate(cfg, data, G, net, floor_cache=cache)
    assert len(list(cache.iterdir())) == 3
    other_net = copy.deepcopy(net)
    with torch.no_grad():
        other_net.head.bias[0] += 1.0
    evaluate(cfg, data, G, other_net, floor_cache=cache)
    assert len(list(cache.iterdir())) == 4


def test_tstr_trains_on_at_most_tstr_images(monkeypatch, training_set_sizes):
    """Above TSTR_IMAGES candidates, TSTR trains on a seeded subset of that size."""
    from components.evaluate import metrics

    monkeypatch.setattr(metrics, "TSTR_IMAGES", 30)
    seen = training_set_sizes
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (50, 1, 28, 28), dtype=np.uint8)
    labels = np.arange(50) % 2
    side = Side(images, torch.zeros(50, 4), labels, labels)
    value = compute(["tstr"], Pair(side, side, num_classes=2, classifier_epochs=1))["tstr"]
    assert seen == [30] and 0.0 <= value <= 1.0


def test_seeded_subset_bounds_a_training_set():
    """At most `cap` of the given indices, seeded, sorted; all of them when under the cap."""
    from components.evaluate.features import seeded_subset

    keep = np.arange(3, 40, 2)  # 19 indices
    assert seeded_subset(keep, 19, seed=0) is keep
    first, again, other = (seeded_subset(keep, 7, seed=s) for s in (0, 0, 1))
    assert len(first) == 7 and set(first) <= set(keep) and list(first) == sorted(set(first))
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_capped_rows_takes_the_same_rows_of_each_array():
    """capped_rows: one seeded row subset for every array (None passes through); under the cap,
    the arrays themselves."""
    from components.evaluate.features import capped_rows, seeded_subset

    x, y = np.arange(40).reshape(20, 2), np.arange(20) * 10
    assert all(a is b for a, b in zip(capped_rows(20, 0, x, y), (x, y), strict=True))
    cx, cy, none = capped_rows(7, 3, x, y, None)
    keep = seeded_subset(np.arange(20), 7, 3)
    assert np.array_equal(cx, x[keep]) and np.array_equal(cy, y[keep]) and none is None


def test_feature_net_trains_on_at_most_feature_net_images(
    tmp_path, smoke_params, monkeypatch, training_set_sizes
):
    """A data set above FEATURE_NET_IMAGES train images: the evaluation net learns from a
    seeded subset of that size, once; the next evaluation reads it back from the cache."""
    from components.evaluate import features

    layout, data = _digits_data(tmp_path, smoke_params)
    assert len(data.split("train")[0]) > 100
    monkeypatch.setattr(features, "FEATURE_NET_IMAGES", 100)
    seen = training_set_sizes
    cfg = smoke_params.evaluate.model_copy(update={"classifier_epochs": 1})
    net, acc = features.load_or_train_classifier(cfg, layout, data)
    again, acc_again = features.load_or_train_classifier(cfg, layout, data)
    assert seen == [100] and acc == acc_again and 0.0 <= acc <= 1.0
    for a, b in zip(net.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_predict_gives_the_nets_own_features():
    """predict runs an NHWC copy of the net with BatchNorm folded into the convs: the same
    features and labels, the net untouched."""
    from components.evaluate.features import Classifier, predict

    torch.manual_seed(0)
    net = Classifier(1, 10).eval()
    with torch.no_grad():  # BatchNorm far from identity, so a wrong fold would show
        for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.running_mean.normal_(0, 0.5)
            bn.running_var.uniform_(0.2, 3.0)
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.normal_(0, 0.5)
    images = torch.randint(0, 256, (37, 1, 28, 28), dtype=torch.uint8)
    feats, pred = predict(net, images, batch=16)
    with torch.no_grad():
        want = net.features(images)
        assert torch.allclose(feats, want, atol=1e-5)
        assert torch.equal(pred, net.head(want).argmax(1))
    assert all(p.is_contiguous() for p in net.parameters())


@pytest.mark.parametrize("size", [128, 256])
def test_feature_net_learns_rgb_classes_at_large_sizes(size):
    """The evaluation classifier works on big RGB images (downsampled to INPUT_SIZE inside):
    a class told apart only by colour and placement is learnt in a few epochs."""
    from components.evaluate.features import INPUT_SIZE, predict, train_classifier

    rng = np.random.default_rng(0)
    n = 64
    labels = np.arange(n) % 2
    images = rng.integers(0, 40, (n, 3, size, size), dtype=np.uint8)  # dark noise
    q = size // 4
    for i, y in enumerate(labels):  # class 0: a red square top-left; 1: a blue one bottom-right
        r, c = (q, q) if y == 0 else (2 * q, 2 * q)
        images[i, 0 if y == 0 else 2, r : r + q, c : c + q] = 220
    clf = train_classifier(images, labels, 2, epochs=4, seed=0)
    feats, pred = predict(clf, images)
    assert feats.shape == (n, 128) and size > INPUT_SIZE
    assert (pred.numpy() == labels).mean() >= 0.95


def test_knn_metrics_keep_float64_values_for_features_with_an_offset():
    """float32 distances are taken after centring: a shared offset (ReLU features) loses no
    digits, so the balls and the four figures match a float64 computation."""
    import torch

    from components.evaluate.metrics import Pair, Side, prdc

    gen = torch.Generator().manual_seed(0)
    a = 30 + 0.3 * torch.randn(2000, 256, generator=gen)
    b = 30 + 0.3 * torch.randn(2000, 256, generator=gen) + 0.01
    got = prdc(Pair(Side(None, a), Side(None, b)))
    real, fake, k = a.double(), b.double(), 3

    def radii(f):
        return torch.cdist(f, f).topk(k + 1, dim=1, largest=False).values[:, -1]

    r_real, r_fake, d = radii(real), radii(fake), torch.cdist(real, fake)
    assert got["precision"] == float((d <= r_real[:, None]).any(0).double().mean())
    assert got["recall"] == float((d <= r_fake[None, :]).any(1).double().mean())
