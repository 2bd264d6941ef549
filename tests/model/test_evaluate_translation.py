"""Model: evaluation of translators, on scikit-learn digits in two styles ingested for real.

Known translators stand in for trained ones (evaluate_translation takes uint8 -> uint8
callables): the oracle applies the true style transform, copy-input returns its input. The
metrics must tell them apart: the oracle closes the gap, lands in the target domain and keeps
the class; copy-input closes nothing and is flagged as a no-op.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from components.config import EvaluateConfig, IngestConfig
from components.families.translation import evaluate as tr
from components.layout import Layout, read_json
from tests.datagen import digit_styles, invert, thicken, tint, tint_files, untint

pytestmark = pytest.mark.model

CFG = EvaluateConfig(
    n_samples=150, seed=0, classifier_epochs=2, kid_subset_size=50, nearest_k=3, metrics=["fid"]
)


def _project(root, style, kind, step, labelled=True, cfg=CFG):
    """An ingested digits translation set and its (cached) domain feature net."""
    from components import ingest
    from components.dataset import load_dataset

    source = digit_styles(root / "raw", style, kind, step=step, labelled=labelled)
    layout = Layout(root)
    ingest.run(
        IngestConfig(
            source=str(source),
            image_size=32,
            channels="auto",
            classes=[],
            test_fraction=0.2,
            seed=0,
        ),
        layout,
    )
    data = load_dataset(layout)
    return layout, data, tr.load_or_train_domain_net(cfg, layout, data)


@pytest.fixture(scope="module")
def unpaired(tmp_path_factory):
    return _project(tmp_path_factory.mktemp("unpaired"), invert, "unpaired", step=1)


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    return _project(tmp_path_factory.mktemp("paired"), thicken, "paired", step=2)


@pytest.fixture(scope="module")
def unlabelled_rgb(tmp_path_factory):
    """A gray, B red; no class folders."""
    root = tmp_path_factory.mktemp("rgb")
    return _project(root, tint_files, "unpaired", step=2, labelled=False)


def copy_input(images):
    return images.copy()


def test_gap_closed_closed_form():
    assert tr.gap_closed(5.0, floor=1.0, ceiling=9.0) == 0.5
    assert tr.gap_closed(9.0, floor=1.0, ceiling=9.0) == 0.0
    assert tr.gap_closed(0.0, floor=1.0, ceiling=9.0) == 1.0  # beating the floor is capped
    assert tr.gap_closed(20.0, floor=1.0, ceiling=9.0) < 0  # worse than doing nothing
    assert math.isnan(tr.gap_closed(1.0, floor=2.0, ceiling=2.0))


def test_oracle_closes_the_gap_and_keeps_the_class(unpaired):
    _layout, data, dnet = unpaired
    m = tr.evaluate_translation(CFG, data, {"a2b": invert, "b2a": invert}, dnet)
    assert m["kind"] == "unpaired"
    for d in ("a2b", "b2a"):
        assert m[f"{d}_n"] == 150
        for key in ("fid", "kid"):
            assert m[f"{d}_{key}_floor"] < m[f"{d}_{key}_ceiling"] / 5, (d, key, m)
        assert m[f"{d}_gap_closed"] > 0.8, m
        assert m[f"{d}_domain_acc"] > 0.9 and m[f"{d}_domain_acc_floor"] > 0.9, m
        assert m[f"{d}_class_preservation_floor"] > 0.7, m
        assert m[f"{d}_class_preservation"] > 0.7, m
        # the target's classifier cannot read inverted digits' classes as they are
        assert m[f"{d}_class_preservation_copy"] < m[f"{d}_class_preservation"] - 0.3, m
        assert m[f"{d}_cycle_l1"] == 0.0  # invert is its own inverse
        assert m[f"{d}_noop_ratio"] > 0.5, m
        assert "l1" not in m and f"{d}_l1" not in m  # no ground truth: unpaired
    assert m["gap_closed"] == pytest.approx((m["a2b_gap_closed"] + m["b2a_gap_closed"]) / 2)
    assert m["fid_ratio"] < 3 and m["domain_acc"] > 0.9 and m["class_preservation"] > 0.7


def test_copy_input_is_no_translation(unpaired):
    _layout, data, dnet = unpaired
    m = tr.evaluate_translation(CFG, data, {"a2b": copy_input, "b2a": copy_input}, dnet)
    for d in ("a2b", "b2a"):
        assert m[f"{d}_fid"] == pytest.approx(m[f"{d}_fid_ceiling"])
        assert abs(m[f"{d}_gap_closed"]) < 1e-6
        assert m[f"{d}_domain_acc"] < 0.1, m
        assert m[f"{d}_noop_l1"] == 0.0 and m[f"{d}_noop_ratio"] == 0.0
        assert m[f"{d}_gap_l1"] > 0.5  # inverted digits are far apart in pixels
        assert m[f"{d}_identity_l1"] == 0.0 and m[f"{d}_cycle_l1"] == 0.0
        assert m[f"{d}_class_preservation"] == m[f"{d}_class_preservation_copy"]
    assert m["noop_ratio_min"] == 0.0 and m["fid_ratio"] > 5


def test_a_halfway_translation_scores_between(unpaired):
    """Blending input and oracle: the metrics order copy < halfway < oracle."""
    _layout, data, dnet = unpaired

    def halfway(images):
        return ((images.astype(np.uint16) + invert(images)) // 2).astype(np.uint8)

    runs = [
        tr.evaluate_translation(CFG, data, {"a2b": t}, dnet) for t in (copy_input, halfway, invert)
    ]
    fids = [m["a2b_fid"] for m in runs]
    ratios = [m["a2b_noop_ratio"] for m in runs]
    assert fids[0] > fids[1] > fids[2] and ratios[0] < ratios[1] < ratios[2]
    assert "a2b_cycle_l1" not in runs[0]  # one direction only: no cycle


def test_paired_oracle_beats_copy_input(paired):
    _layout, data, dnet = paired
    m = tr.evaluate_translation(CFG, data, {"a2b": thicken}, dnet)
    assert m["kind"] == "paired" and not any(k.startswith("b2a") for k in m)
    assert m["a2b_l1"] < m["a2b_l1_copy"] / 5, m
    assert m["a2b_psnr"] > m["a2b_psnr_copy"] + 10, m
    assert m["a2b_ssim"] > 0.95 > m["a2b_ssim_copy"], m
    assert m["a2b_gap_closed"] == 1.0  # the ground truth itself: fid 0, below the floor
    assert m["a2b_domain_acc"] == m["a2b_domain_acc_floor"] > 0.6, m  # a subtle style
    copy = tr.evaluate_translation(CFG, data, {"a2b": copy_input}, dnet)
    assert copy["a2b_l1"] == copy["a2b_l1_copy"] and copy["a2b_ssim"] == copy["a2b_ssim_copy"]


def test_class_gate_refuses_a_translator_that_loses_the_class(paired):
    """A constructed translator that lands in the target style but draws each digit upside
    down keeps the class worse than the untranslated copy does: the gate refuses it (both the
    absolute bar and the copy's), while the oracle passes both."""
    from components.families.translation.options import TranslationRegisterConfig
    from components.families.translation.register import decide_translator

    _layout, data, dnet = paired
    gates = TranslationRegisterConfig(
        model_name="t",
        min_gap_closed=0.0,
        min_class_preservation=0.8,
        max_class_loss=0.02,
        min_domain_acc=0.0,
        min_noop_ratio=0.0,
        fid_margin=0.02,
    )

    def upside_down(images):
        return np.ascontiguousarray(thicken(images)[..., ::-1, ::-1])

    lost = tr.evaluate_translation(CFG, data, {"a2b": upside_down}, dnet)
    kept = lost["a2b_class_preservation"]
    assert kept < lost["a2b_class_preservation_copy"] - 0.2, lost
    alias, reason = decide_translator(gates, lost, None)
    assert alias == "challenger", reason
    assert f"a2b_class_preservation {kept:.3f} < register.min_class_preservation 0.8" in reason
    assert f"a2b_class_preservation {kept:.3f} < min(copy " in reason
    oracle = tr.evaluate_translation(CFG, data, {"a2b": thicken}, dnet)
    assert decide_translator(gates, oracle, None)[0] == "champion", oracle


def test_stage_scores_the_translator_in_models(unpaired, monkeypatch, tmp_path):
    """`evaluate` with a translator.json in models/: metrics.json, one picture per direction,
    the metrics and pictures on the train run in MLflow."""
    import mlflow
    from safetensors.torch import save_file

    from components import tracking
    from components.evaluate.stage import run
    from components.families.translation.nets import SPEC_FILE, WEIGHTS, build_generator, make_spec
    from components.layout import write_json
    from components.orchestrate import metrics_markdown
    from tests.conftest import use_store

    layout, _data, _dnet = unpaired
    use_store(monkeypatch, f"sqlite:///{tmp_path / 'mlflow.db'}")
    spec = make_spec("cyclegan", 1, 1, 32, g_channels=4, n_blocks=1)
    layout.models.mkdir()
    for direction, name in WEIGHTS.items():
        save_file(build_generator(spec, direction).state_dict(), str(layout.models / name))
    write_json(
        layout.models / SPEC_FILE, {**spec, "class_names": list("0123456789"), "best_step": 3}
    )
    tracking.setup(layout)
    with mlflow.start_run() as active:
        run_id = active.info.run_id
    write_json(layout.train_run, {"run_id": run_id})

    metrics = run(CFG, layout)

    assert read_json(layout.metrics) == pytest.approx(metrics, nan_ok=True)
    for key in (
        "a2b_fid",
        "b2a_fid_floor",
        "a2b_gap_closed",
        "b2a_class_preservation",
        "a2b_cycle_l1",
    ):
        assert key in metrics
    for direction in ("a2b", "b2a"):
        from PIL import Image

        picture = Image.open(layout.evaluation / f"translation_{direction}.png")
        assert picture.size == (2 * (3 * 34 + 2), 2 * (10 * 34 + 2))  # 3 columns, 10 classes
    logged = mlflow.get_run(run_id).data.metrics
    assert logged["eval/a2b_fid"] == pytest.approx(metrics["a2b_fid"])
    artifacts = {f.path for f in mlflow.MlflowClient().list_artifacts(run_id, "evaluation")}
    assert {"evaluation/translation_a2b.png", "evaluation/translation_b2a.png"} <= artifacts
    assert "| a2b_fid |" in metrics_markdown(metrics)


def test_unlabelled_gray_to_colour(unlabelled_rgb, tmp_path):
    """A 1-channel, B 3-channel, no labels: class metrics and identity are left out, the rest
    still separates the oracle from copy-input; the picture shows both in colour."""
    from PIL import Image

    _layout, data, dnet = unlabelled_rgb
    assert dnet.channels == 3 and not any(dnet.labelled.values())
    oracle = tr.evaluate_translation(CFG, data, {"a2b": tint, "b2a": untint}, dnet)
    with pytest.raises(ValueError, match="want uint8"):  # copy-input has the wrong channels
        tr.evaluate_translation(CFG, data, {"a2b": copy_input}, dnet)
    copies = {"a2b": lambda x: tr.match_channels(x, 3), "b2a": lambda x: tr.match_channels(x, 1)}
    copy = tr.evaluate_translation(CFG, data, copies, dnet)
    assert not any("class" in k or "identity" in k for k in oracle)
    for d in ("a2b", "b2a"):
        assert oracle[f"{d}_gap_closed"] > 0.8 and oracle[f"{d}_domain_acc"] > 0.9, oracle
        assert oracle[f"{d}_cycle_l1"] == 0.0
        assert copy[f"{d}_noop_ratio"] < 0.01 < oracle[f"{d}_noop_ratio"]  # rounding only
    # gray -> gray repeated to RGB is the no-translation ceiling itself; red -> its channel mean
    # is not (it drops the tint: part of the way to A), so only a2b closes nothing
    assert abs(copy["a2b_gap_closed"]) < 1e-6 and copy["a2b_domain_acc"] < 0.1, copy
    path = tr.translation_picture(data, {"a2b": tint, "b2a": untint}, "a2b", tmp_path / "p.png")
    picture = Image.open(path)
    assert picture.mode == "RGB" and picture.size == (2 * (3 * 34 + 2), 2 * (10 * 34 + 2))
