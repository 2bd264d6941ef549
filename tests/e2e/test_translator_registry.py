"""Registry and serving of translators: per-direction gates, champion/challenger on the mean FID,
the pyfunc (models from code, no pickle) in Python and over REST (`mlflow models serve`), and
`ganops translate` from a models:/ URI. The translators are tiny random-init nets with faked
evaluation metrics (tests/registry_worker.py): plumbing, not quality."""

from __future__ import annotations

import base64
import io
import json
import math
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from components.families.translation import register as translation_register
from components.families.translation.options import TranslationRegisterConfig
from tests.conftest import SMOKE, start_server, use_store
from tests.e2e.test_register import _free_port
from tests.registry_worker import TRANSLATOR_METRICS, register_translator

NAME = "ganops-translator"
GATES = TranslationRegisterConfig(  # explicit gates: the rules are under test, not params.yaml's
    model_name=NAME,
    min_gap_closed=0.5,
    min_class_preservation=0.8,
    max_class_loss=0.02,
    min_domain_acc=0.8,
    min_noop_ratio=0.2,
    fid_margin=0.02,
)
FLOOR = {"a2b_class_preservation_floor": 0.95}
FLOOR87 = {"a2b_class_preservation_floor": 0.87}


@pytest.mark.parametrize(
    ("change", "champion_fid", "alias", "why"),
    [
        ({}, None, "champion", "gates passed (mean fid 4.000); no champion yet"),
        ({"a2b_fid": 3.0}, 4.0, "champion", "mean fid 3.500 < champion's 4.000"),  # (3 + 4) / 2
        ({}, 4.05, "challenger", "does not beat champion's 4.050"),  # inside the 2% margin
        (
            {"a2b_gap_closed": 0.3},
            None,
            "challenger",
            "a2b_gap_closed 0.300 < register.min_gap_closed 0.5",
        ),
        (
            {"b2a_domain_acc": 0.5},
            None,
            "challenger",
            "b2a_domain_acc 0.500 < register.min_domain_acc 0.8",
        ),
        (
            {"a2b_class_preservation": 0.1},
            None,
            "challenger",
            "a2b_class_preservation 0.100 < register.min_class_preservation 0.8",
        ),
        (  # above the absolute bar, but the copy kept more: the translation lost the class
            {"a2b_class_preservation": 0.85, "a2b_class_preservation_copy": 0.9, **FLOOR},
            None,
            "challenger",
            "a2b_class_preservation 0.850 < min(copy 0.900, floor 0.950) - "
            "register.max_class_loss 0.02",
        ),
        (  # within the margin of the copy
            {"a2b_class_preservation": 0.89, "a2b_class_preservation_copy": 0.9, **FLOOR},
            None,
            "champion",
            "",
        ),
        (  # the head reads real targets worse than the copy: the floor is the bar
            {"a2b_class_preservation": 0.86, "a2b_class_preservation_copy": 0.97, **FLOOR87},
            None,
            "champion",
            "",
        ),
        (
            {"b2a_noop_ratio": 0.05},
            None,
            "challenger",
            "b2a_noop_ratio 0.050 < register.min_noop_ratio 0.2",
        ),
        (
            {"a2b_gap_closed": math.nan},
            None,
            "challenger",
            "a2b_gap_closed nan < register.min_gap_closed 0.5",
        ),
        (
            {"a2b_noop_ratio": None},
            None,
            "challenger",
            "a2b_noop_ratio missing from reports/metrics.json",
        ),
        (
            {"a2b_class_preservation": None, "b2a_class_preservation": None},
            None,
            "champion",
            "no champion yet",
        ),
    ],
)
def test_gates_per_direction_quote_value_and_threshold(change, champion_fid, alias, why):
    metrics = {k: v for k, v in {**TRANSLATOR_METRICS, **change}.items() if v is not None}
    got, reason = translation_register.decide_translator(GATES, metrics, champion_fid)
    assert got == alias and why in reason, reason


# ---------------------------------------------------------------------------------------------
# A real SQLite store: v1 (cyclegan, 1-channel A <-> RGB B) is champion; a pix2pix beside it
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("translator-registry")
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_store(monkeypatch, f"sqlite:///{root / 'mlflow.db'}")
        first = register_translator(root / "v1", GATES, channels_b=3)
        pix2pix = register_translator(
            root / "p2p", GATES.model_copy(update={"model_name": "ganops-p2p"}), arch="pix2pix"
        )
        yield {"root": root, "first": first, "pix2pix": pix2pix}


def aliases(name=NAME) -> dict[str, str]:
    import mlflow

    model = mlflow.MlflowClient().get_registered_model(name)
    return {alias: str(version) for alias, version in model.aliases.items()}


def png(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt)
    return buf.getvalue()


def gray(size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)


def decoded(image: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(image))
    img.load()
    return img


def test_registered_translator_is_code_plus_safetensors_with_tags_and_card(store):
    import mlflow

    assert store["first"]["alias"] == "champion" and aliases()["champion"] == "1"
    model_dir = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}/1"))
    files = [p for p in model_dir.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".pkl", ".pickle", ".cloudpickle")]
    pickled = [
        p
        for p in files
        if p.read_bytes()[:2] in {b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"}
    ]
    assert not pickled, pickled
    mlmodel = (model_dir / "MLmodel").read_text()
    assert "model_code_path" in mlmodel and "pyfunc_model.py" in mlmodel
    names = {p.name for p in files}
    assert {"translator.json", "G_AB.safetensors", "G_BA.safetensors"} <= names
    assert any(
        r.startswith("pillow==") for r in (model_dir / "requirements.txt").read_text().split()
    )

    version = mlflow.MlflowClient().get_model_version(NAME, "1")
    tags = version.tags
    assert (tags["family"], tags["kind"], tags["arch"], tags["directions"]) == (
        "translation", "unpaired", "cyclegan", "a2b,b2a",
    )  # fmt: skip
    assert float(tags["fid"]) == 4.0 and float(tags["b2a_gap_closed"]) == pytest.approx(2 / 3)
    assert {"dataset_hash", "git_commit", "params_hash", "decision", "a2b_noop_ratio"} <= set(tags)
    assert version.description.startswith("# ganops translator (cyclegan, unpaired, a2b,b2a)")
    assert "| gap_closed | 0.6667 | 0.6667 |" in version.description

    p2p = mlflow.MlflowClient().get_model_version("ganops-p2p", "1")
    assert (p2p.tags["directions"], p2p.tags["kind"]) == ("a2b", "paired")
    assert "G_BA.safetensors" not in {
        p.name for p in Path(mlflow.artifacts.download_artifacts("models:/ganops-p2p/1")).rglob("*")
    }


def test_failing_gate_other_dataset_and_better_fid(store):
    """A failing gate -> challenger, quoted; a better translator evaluated on another dataset
    cannot be compared -> champion kept; a better one on the same dataset -> champion."""
    root = store["root"]
    failed = register_translator(root / "v2", GATES, metrics={"b2a_gap_closed": 0.25})
    assert failed["alias"] == "challenger"
    assert "b2a_gap_closed 0.250 < register.min_gap_closed 0.5" in failed["reason"]

    better = {"a2b_fid": 2.0, "b2a_fid": 2.0}
    elsewhere = register_translator(root / "v3", GATES, metrics=better, dataset_hash="other")
    assert elsewhere["alias"] == "challenger"
    assert (
        "champion kept: v1 was evaluated on another dataset; not comparable" in elsewhere["reason"]
    )
    assert aliases()["champion"] == "1"

    won = register_translator(root / "v4", GATES, metrics=better)
    assert won["alias"] == "champion" and "mean fid 2.000 < champion's 4.000" in won["reason"]
    assert aliases()["champion"] == "4" and aliases()["previous-champion"] == "1"


def test_pyfunc_round_trip_bytes_and_base64(store):
    import mlflow

    model = mlflow.pyfunc.load_model(f"models:/{NAME}/1")
    a_small, a_big = png(gray(32, 0)), png(gray(50, 1), "JPEG")  # 50 px: resized as ingest
    b_rgb = png(np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    frame = pd.DataFrame(
        {
            "image": [a_small, a_big, b_rgb, base64.b64encode(a_small).decode(), a_small],
            "direction": ["a2b", "a2b", "b2a", "a2b", "a2b"],
        }
    )
    out = model.predict(frame)
    assert list(out.columns) == ["image"] and len(out) == 5
    images = out["image"].tolist()
    assert all(isinstance(v, bytes) for v in images[:3] + images[4:])
    assert isinstance(images[3], str)  # base64 in -> base64 out
    assert base64.b64decode(images[3]) == images[0] == images[4]  # same input, same PNG
    shapes = [(decoded(v).format, decoded(v).mode, decoded(v).size) for v in images[:3]]
    assert shapes == [("PNG", "RGB", (32, 32))] * 2 + [("PNG", "L", (32, 32))]  # B RGB, A gray
    assert model.predict(frame)["image"].tolist() == images  # eval mode: deterministic
    only_text = pd.DataFrame({"image": [base64.b64encode(a_small).decode()], "direction": ["a2b"]})
    assert model.predict(only_text)["image"].tolist() == [images[3]]  # a str column (pandas 3)


@pytest.mark.parametrize(
    ("name", "image", "direction", "message"),
    [
        (NAME, b"not an image", "a2b", "row 1: not a decodable image"),
        (NAME, png(gray(32, 0)), "x2y", "row 1: direction 'x2y' is not one of a2b, b2a"),
        (NAME, png(np.full((32, 32, 3), (200, 0, 0), np.uint8)), "a2b", "row 1: a colour image"),
        ("ganops-p2p", png(gray(32, 0)), "b2a", "row 1: direction b2a: a pix2pix model translates"),
    ],
    ids=["undecodable", "unknown-direction", "colour-for-gray", "pix2pix-b2a"],
)
def test_each_bad_input_is_one_clear_error(store, name, image, direction, message):
    import mlflow
    from mlflow.exceptions import MlflowException

    model = mlflow.pyfunc.load_model(f"models:/{name}/1")
    frame = pd.DataFrame({"image": [png(gray(32, 1)), image], "direction": ["a2b", direction]})
    with pytest.raises(MlflowException) as err:
        model.predict(frame)
    assert err.value.message.startswith(message), err.value.message


@pytest.mark.slow
def test_rest_invocations_with_base64_match_the_pyfunc(store):
    import mlflow

    port = _free_port()
    server = start_server(
        ["mlflow", "models", "serve", "-m", f"models:/{NAME}/1", "--env-manager", "local",
         "--host", "127.0.0.1", "--port", str(port)],
        f"http://127.0.0.1:{port}/ping",
    )  # fmt: skip
    try:
        inputs = [png(gray(32, 3)), png(gray(40, 4)), png(np.stack([gray(32, 5)] * 3, -1))]
        frame = pd.DataFrame(
            {
                "image": [base64.b64encode(b).decode() for b in inputs],
                "direction": ["a2b", "a2b", "b2a"],
            }
        )
        answer = post(port, frame)
        got = [base64.b64decode(row["image"]) for row in answer["predictions"]]
        assert [decoded(g).size for g in got] == [(32, 32)] * 3
        local = mlflow.pyfunc.load_model(f"models:/{NAME}/1").predict(frame.assign(image=inputs))
        assert got == local["image"].tolist()  # the REST answer is the pyfunc's, byte for byte

        with pytest.raises(urllib.error.HTTPError) as err:
            post(port, frame.assign(direction=["a2b", "x2y", "a2b"]))
        assert err.value.code == 400
        assert "row 1: direction 'x2y' is not one of a2b, b2a" in err.value.read().decode()
    finally:
        server.terminate()
        server.wait(timeout=30)


def post(port: int, frame: pd.DataFrame) -> dict:
    body = json.dumps({"dataframe_split": frame.to_dict(orient="split", index=False)})
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def test_cli_translates_from_the_registered_champion(store, tmp_path, monkeypatch, capsys):
    """The default --model is models:/<register.model_name of --params>@champion."""
    from components import cli

    params = tmp_path / "params.yaml"
    params.write_text(
        SMOKE.read_text().replace("model_name: ganops-generator", f"model_name: {NAME}")
    )
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "sub" / "x.png").write_bytes(png(gray(50, 6)))
    with pytest.raises(SystemExit) as done:
        cli.main(["translate", "--params", str(params), "--direction", "a2b", "in", "out"])
    assert done.value.code == 0
    assert f"from models:/{NAME}@champion" in capsys.readouterr().out
    assert decoded((tmp_path / "out" / "sub" / "x.png").read_bytes()).size == (32, 32)
