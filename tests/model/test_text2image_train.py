"""Model: the text-to-image family through train, evaluate and register on the bundled
`shapes` captions (smoke-sized), its resume, its pyfunc, `generate --prompts` and export."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from components.layout import Layout, read_json
from tests.text2image_fixtures import t2i_params


def test_models_folder_names_its_family_and_ships_the_vocabulary(t2i_registered):
    from components import families

    root, _, _, _ = t2i_registered
    family, _, spec = families.of_model_dir(Layout(root).models)
    assert family.name == "text2image" and spec["family"] == "text2image"
    vocab = read_json(Layout(root).models / "vocab.json")
    assert vocab["tokens"][:2] == ["<pad>", "<unk>"]
    assert {"G_ema", "G", "D", "text_encoder"} <= {
        p.stem for p in Layout(root).models.glob("*.safetensors")
    }


def test_evaluation_reports_floors_ceilings_and_controls(t2i_registered):
    _, metrics, decision, _ = t2i_registered
    keys = ("fid", "fid_floor", "r_precision", "r_precision_ceiling", "r_precision_shuffled")
    keys += ("attr_exact_seen", "attr_exact_heldout", "attr_exact_ceiling", "diversity_ratio")
    for key in keys:
        assert np.isfinite(metrics[key]), key
    assert metrics["r_precision_chance"] == 0.01
    # the real-image ceiling is measured by an encoder that saw real train pairs: above chance
    assert metrics["r_precision_ceiling"] > 0.05
    assert decision["alias"] == "champion" and decision["tags"]["family"] == "text2image"
    assert (Layout(t2i_registered[0]).evaluation / "captions.png").is_file()


def test_pyfunc_draws_a_caption_and_names_unknown_words(t2i_registered):
    import mlflow

    _, _, _, uri = t2i_registered
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/ganops-text2image@champion")
    frame = pd.DataFrame(
        {"text": ["a small red circle on the left", "a blue square"], "seed": [3, 3]}
    )
    out = model.predict(frame)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 32, 32)
    np.testing.assert_array_equal(
        out, model.predict(frame)
    )  # the same (text, seed), the same image
    assert not np.array_equal(out[0], out[1])  # another caption, another image
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.predict(pd.DataFrame({"text": ["a red zeppelin"], "seed": [0]}))
    assert any("zeppelin" in str(w.message) for w in caught)
    with pytest.raises(Exception, match="row 0: empty caption"):
        model.predict(pd.DataFrame({"text": ["  "], "seed": [0]}))


def test_generate_prompts_writes_an_imagefolder_ingest_reads_back(t2i_registered, tmp_path):
    import mlflow

    from components import ingest
    from components.generate import generate, read_prompts

    _, _, _, uri = t2i_registered
    mlflow.set_tracking_uri(uri)
    (tmp_path / "prompts.txt").write_text("a small red circle on the left\n\na large blue square\n")
    texts = read_prompts(None, tmp_path / "prompts.txt")
    out = tmp_path / "synthetic"
    manifest = generate("models:/ganops-text2image@champion", 3, out, seed=7, texts=texts)
    assert manifest["n_images"] == 6 and manifest["n_captions"] == 2
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == [texts[0]] * 3 + [texts[1]] * 3
    assert all((out / r["file_name"]).is_file() for r in rows)
    cfg = t2i_params(f"ingest.source={out}", "ingest.test_fraction=0.5").ingest
    back = ingest.run(cfg, Layout(tmp_path / "back"))
    assert back["kind"] == "captioned" and back["n_images"] == 6 and back["layout"] == "imagefolder"
    with pytest.raises(Exception, match="this model draws from captions"):
        generate("models:/ganops-text2image@champion", 2, tmp_path / "x", seed=0)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_parity(t2i_registered, tmp_path, fmt):
    """Both formats, batch dynamic (traced at 2, checked at 3)."""
    from components.export import export

    root, _, _, _ = t2i_registered
    diff = export(Layout(root).models, fmt, tmp_path / f"G.{'pt' if fmt == 'torchscript' else fmt}")
    assert diff < 1e-4


def test_exported_encoder_matches_the_packed_one(t2i_registered):
    """The export's unpacked bi-GRU gives the packed encoder's sentence vectors (captions of
    several lengths, one empty row of padding)."""
    from components.families.text2image.evaluate import load_generator
    from components.families.text2image.export import UnpackedTextEncoder

    root, _, _, _ = t2i_registered
    _, text, _, prompts = load_generator(Layout(root).models)
    long = "there is a large blue square at the top on a dark background"
    ids, _ = prompts.encode(["red", "a small red circle on the left", long])
    tokens = torch.cat([torch.from_numpy(ids), torch.zeros(1, ids.shape[1], dtype=torch.long)])
    with torch.no_grad():
        torch.testing.assert_close(UnpackedTextEncoder(text)(tokens), text(tokens))


def test_family_resumes_bit_identical(t2i_shapes, tmp_path):
    """8 steps in one go (a checkpoint at step 4) vs resuming that checkpoint for the last 4:
    G, D, G_ema, optimisers and the batch stream restored, bit-identical."""
    from components.dataset import load_dataset
    from components.families import for_arch
    from components.train.distributed import Rank
    from tests.model.test_models import assert_resume_is_exact

    data = load_dataset(Layout(t2i_shapes))
    cfg = t2i_params("train.kimg=0.128", "train.ckpt_every_kimg=0.064").train
    me, cpu = Rank(rank=0, local_rank=0, world=1), torch.device("cpu")

    def build():
        return for_arch("text2image").build(cfg, Layout(t2i_shapes), data, cpu, me).trainer

    assert_resume_is_exact(build, cfg, tmp_path, 4)


@pytest.mark.parametrize("k", [1, 64])
def test_mismatched_captions_are_other_images_and_hard_with_candidates(k):
    """D's mismatched caption is always another image's; with mismatch_candidates k > 1 it is
    the candidate closest to the true sentence: here, with 64 draws among 6 captions, the
    nearest other-image caption every time (k = 1 draws them all)."""
    from components.families.text2image.trainer import Text2ImageTrainer

    cfg = t2i_params(
        "train.batch_size=16", f"train.mismatch_candidates={k}", "train.match_weight=0",
        "train.d_encoder_features=false",
    ).train  # fmt: skip
    # captions 0-5 on images 0, 0, 1, 1, 2, 2; caption i's sentence points at angle 20 * i deg
    angles = torch.deg2rad(torch.arange(6.0) * 20)
    sentences = torch.stack([angles.cos(), angles.sin()], 1).repeat(1, 8)  # (6, 16)
    rows = np.array([0, 0, 1, 1, 2, 2])
    images = np.zeros((3, 3, 32, 32), np.uint8)
    nearest = torch.tensor([2, 2, 1, 4, 3, 3])  # nearest caption on another image
    trainer = Text2ImageTrainer(
        cfg, images, rows, sentences, sentences[:2], torch.nn.Identity(), torch.device("cpu")
    )
    picked = set()
    for _ in range(20):
        caps = torch.randint(0, 6, (16,))
        other = trainer.mismatched(caps, 16, slice(0, 16))
        assert (torch.from_numpy(rows)[other] != torch.from_numpy(rows)[caps]).all()
        if k > 1:
            assert torch.equal(other, nearest[caps])
        picked |= set(other.tolist())
    assert picked == (set(range(6)) if k == 1 else {1, 2, 3, 4})


def test_match_loss_and_encoder_features_train_g_and_d_but_never_the_encoder():
    """With train.match_weight and train.d_encoder_features, G's step carries the frozen
    encoder's matching loss (G moves otherwise than without it), D reads the encoder's features,
    and neither the encoder nor D's copy of it changes; without the encoder it is one error."""
    from components.families.text2image.nets import ImageEncoder
    from components.families.text2image.trainer import Text2ImageTrainer

    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, 3, 32, 32), generator=gen, dtype=torch.uint8).numpy()
    rows = np.array([0, 0, 1, 2, 3, 4, 5])
    sentences = torch.randn(7, 64, generator=gen)

    def trained(match: float, steps: int = 2):
        cfg = t2i_params(
            "train.batch_size=8", f"train.match_weight={match}", "train.d_encoder_features=true"
        ).train
        torch.manual_seed(1)
        enc = ImageEncoder(3, 32, 64).eval().requires_grad_(False)
        frozen = {k: v.clone() for k, v in enc.state_dict().items()}
        t = Text2ImageTrainer(
            cfg, images, rows, sentences, sentences[:2], torch.nn.Identity(),
            torch.device("cpu"), image_encoder=enc,
        )  # fmt: skip
        aid = {k: v.clone() for k, v in t.D.aid.state_dict().items()}
        stats = [t.step(i) for i in range(steps)]
        for k, v in enc.state_dict().items():
            torch.testing.assert_close(v, frozen[k], rtol=0, atol=0)
        for k, v in t.D.aid.state_dict().items():
            torch.testing.assert_close(v, aid[k], rtol=0, atol=0)
        return t, torch.stack(stats)

    with_match, stats = trained(1.0)
    match = stats[:, with_match.stat_names.index("match")]
    assert torch.isfinite(match).all() and (match > 0).all()
    without, stats0 = trained(0.0)
    assert (stats0[:, without.stat_names.index("match")] == 0).all()
    assert not torch.equal(with_match.G.fc.weight, without.G.fc.weight)
    cfg = t2i_params("train.match_weight=1", "train.d_encoder_features=false").train
    with pytest.raises(ValueError, match="image encoder"):
        Text2ImageTrainer(
            cfg, images, rows, sentences, sentences[:2], torch.nn.Identity(), torch.device("cpu")
        )


@pytest.mark.parametrize("keep", ["last", "probe"])
def test_keep_g_ema_picks_what_models_registers(keep):
    """train.keep_g_ema last registers the last G_ema and keeps the probe's best beside it;
    probe registers the probe's best and keeps the last beside it."""
    from components.families.text2image.trainer import Text2ImageTrainer

    cfg = t2i_params(
        f"train.keep_g_ema={keep}", "train.match_weight=0", "train.d_encoder_features=false"
    ).train
    sentences = torch.randn(4, 64)
    images = np.zeros((2, 3, 32, 32), np.uint8)
    trainer = Text2ImageTrainer(
        cfg, images, np.array([0, 0, 1, 1]), sentences, sentences[:2], torch.nn.Identity(),
        torch.device("cpu"),
    )  # fmt: skip
    best = {k: torch.zeros_like(v) for k, v in trainer.G_ema.state_dict().items()}
    files = trainer.model_files(best)
    last = trainer.G_ema.state_dict()
    kept, beside = (last, best) if keep == "last" else (best, last)
    other = "G_ema_best" if keep == "last" else "G_ema_last"
    for k in last:
        assert torch.equal(files["G_ema"][k], kept[k]) and torch.equal(files[other][k], beside[k])
