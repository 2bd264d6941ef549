"""Model: `train.text.encoder: <folder>`, a local pretrained Hugging Face text model, offline.
A tiny randomly initialised BERT (hidden 32, 2 layers, a WordPiece vocabulary written here)
saved to a temp folder: config errors name the key in one line; the smoke profile trains on
it (frozen model, projection trained), registers, and the registered pyfunc, generate and
export work from the model's own copy after the source folder is deleted."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.errors import ConfigError
from components.layout import Layout, read_json
from tests.text2image_fixtures import t2i_params, train_and_register

pytest.importorskip("transformers")

NAME = "ganops-t2i-pretrained"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# the words of the bundled captions, less "triangle" (an unknown word to warn about)
WORDS = [
    "a", "background", "half", "image", "in", "is", "of", "on", "picture", "placed", "shows",
    "side", "the", "there", "with", "at", "small", "large", "red", "green", "blue", "yellow",
    "purple", "circle", "square", "left", "right", "top", "bottom", "dark", "light"
]  # fmt: skip


def save_tiny_bert(folder):
    """A 2-layer BERT of width 32 with random weights and its WordPiece tokenizer, saved."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = {w: i for i, w in enumerate([*SPECIALS, *WORDS, "##s", "##ed"])}
    tokenizer = BertTokenizerFast(vocab=vocab)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=64)  # fmt: skip
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("bert") / "tiny-bert")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "absent", "not 'scratch' and no such folder"),
        (lambda d: d, "the folder holds no config.json: not a saved Hugging Face model"),
        (lambda d: (d / "config.json").write_text("{}") and d, "the folder holds no model weights"),
    ],
)
def test_a_bad_folder_is_one_config_error_naming_the_key(tmp_path, make, message):
    folder = make(tmp_path)
    with pytest.raises(ConfigError) as err:
        t2i_params(f"train.text.encoder={folder}")
    line = str(err.value)
    assert "\n" not in line and f"train.text.encoder: {message}" in line, line


def test_a_folder_that_does_not_load_is_one_config_error(tmp_path):
    """Files in place, but not a model transformers can build: the key, the folder, why."""
    from components.families.text2image.pretrained import load

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no-such-model"}))
    (tmp_path / "model.safetensors").write_bytes(b"not weights")
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    t2i_params(f"train.text.encoder={tmp_path}")  # the files are there: the params load
    with pytest.raises(ConfigError) as err:
        load(tmp_path)
    line = str(err.value)
    assert "\n" not in line
    assert line.startswith(f"train.text.encoder: '{tmp_path}' does not load as a Hugging Face")


@pytest.fixture(scope="module")
def pretrained_registered(t2i_shapes, tiny_bert, tmp_path_factory):
    """The smoke profile on the tiny BERT, registered as NAME; then the BERT folder deleted."""
    import mlflow

    root = tmp_path_factory.mktemp("t2i-bert")
    metrics, decision, uri = train_and_register(
        t2i_shapes, root, f"train.text.encoder={tiny_bert}", f"register.model_name={NAME}"
    )
    shutil.rmtree(tiny_bert)  # from here on only the model's own copy exists
    yield root, metrics, decision, uri
    mlflow.set_tracking_uri(None)


def test_pretrained_model_trains_registers_and_serves_without_its_folder(
    pretrained_registered, tmp_path
):
    import mlflow

    from components.export import export
    from components.generate import generate

    root, metrics, decision, uri = pretrained_registered
    spec = read_json(Layout(root).models / "text2image.json")
    assert spec["text_model"]["hidden"] == 32 and spec["text_model"]["folder"] == "text_model"
    assert len(spec["text_encoder_losses"]) == 1  # the projection's contrastive epoch
    assert (Layout(root).models / "text_model" / "model.safetensors").is_file()
    assert np.isfinite(metrics["r_precision"]) and np.isfinite(metrics["fid"])
    assert decision["alias"] == "champion"

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    reqs = mlflow.pyfunc.get_model_dependencies(f"models:/{NAME}@champion")
    pins = Path(reqs).read_text().split()
    assert any(p.startswith("transformers==") for p in pins), pins  # a fresh env can serve it
    frame = pd.DataFrame({"text": ["a small red circle on the left", "a blue square"], "seed": 3})
    out = model.predict(frame)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 32, 32)
    np.testing.assert_array_equal(out, model.predict(frame))  # the same (text, seed)
    assert not np.array_equal(out[0], out[1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.predict(pd.DataFrame({"text": ["a red triangle"], "seed": [0]}))
    assert any("triangle" in str(w.message) for w in caught), [str(w.message) for w in caught]
    with pytest.raises(Exception, match="row 0: empty caption"):
        model.predict(pd.DataFrame({"text": [""], "seed": [0]}))

    manifest = generate(f"models:/{NAME}@champion", 2, tmp_path / "gen", seed=1,
                        texts=["a large green square at the top"])  # fmt: skip
    assert manifest["n_images"] == 2 and (tmp_path / "gen" / "metadata.jsonl").is_file()
    assert export(Layout(root).models, "torchscript", tmp_path / "G.pt") < 1e-4
    assert export(Layout(root).models, "onnx", tmp_path / "G.onnx") < 1e-4


def test_scratch_is_still_the_default():
    assert t2i_params().train.text.encoder == "scratch"
    assert not t2i_params().train.text.pretrained


@pytest.mark.slow
def test_rest_serving_works_without_the_source_folder(pretrained_registered):
    """`mlflow models serve` of the version, its source folder gone: the pyfunc's images."""
    import mlflow

    from tests.conftest import post_frame, serve_model

    _, _, _, uri = pretrained_registered
    mlflow.set_tracking_uri(uri)
    frame = pd.DataFrame({"text": ["a large blue square at the top"], "seed": [5]})
    with serve_model(f"models:/{NAME}@champion") as url:
        images = np.asarray(post_frame(url, frame)["predictions"])
    local = mlflow.pyfunc.load_model(f"models:/{NAME}@champion").predict(frame)
    np.testing.assert_array_equal(images.astype(np.uint8), local)
