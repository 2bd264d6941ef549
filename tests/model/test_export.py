"""Model: `ganops export` of a translator and of the noise generator, with output parity."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from components.errors import ConfigError, DataError
from components.export import export
from components.families.noise.nets import build_generator as build_noise_generator
from components.families.noise.nets import init_weights
from components.families.translation import nets as translators
from tests.conftest import ROOT

TOLERANCE = {"torchscript": 1e-4, "onnx": 1e-3}
NOISE_SPEC = {  # as train writes generator.json
    "arch": "dcgan",
    "g_cond": "embed",
    "g_spectral_norm": False,
    "z_dim": 16,
    "num_classes": 10,
    "channels": 1,
    "image_size": 32,
    "g_channels": 8,
}
RESNET_SPEC = {  # SNGAN/BigGAN residual G: nearest upsampling, cBN, spectral norm in G too
    **NOISE_SPEC,
    "arch": "resnet",
    "g_cond": "cbn",
    "g_spectral_norm": True,
    "image_size": 64,
    "g_channels": 4,
}


def _perturb(module: torch.nn.Module) -> None:
    """Weights off their init, so a constant-output export would not pass the parity check."""
    gen = torch.Generator().manual_seed(1)
    for p in module.parameters():
        p.data.add_(torch.randn(p.shape, generator=gen) * 0.05)


@pytest.fixture(scope="module")
def translator_dir(tmp_path_factory):
    """A cyclegan model folder as register will log it: translator.json, G_AB and G_BA."""
    folder = tmp_path_factory.mktemp("translator") / "artifacts"
    folder.mkdir()
    spec = translators.make_spec("cyclegan", 1, 3, 32, g_channels=8, d_channels=8, n_blocks=2)
    (folder / translators.SPEC_FILE).write_text(json.dumps(spec))
    for direction, name in translators.WEIGHTS.items():
        G = translators.build_generator(spec, direction)
        _perturb(G)
        save_file(G.state_dict(), str(folder / name))
    return folder.parent  # files found at any depth, as in a downloaded pyfunc


@pytest.fixture(scope="module")
def pix2pix_dir(tmp_path_factory):
    """A pix2pix model folder: U-Net G_AB with BatchNorm (exported with its running stats)."""
    folder = tmp_path_factory.mktemp("pix2pix")
    spec = translators.make_spec("pix2pix", 3, 1, 32, g_channels=8, d_channels=8)
    G = translators.build_generator(spec, "a2b")
    _perturb(G)
    G(torch.rand(4, 3, 32, 32) * 2 - 1)  # one train-mode batch moves the BN running stats
    (folder / translators.SPEC_FILE).write_text(json.dumps(spec))
    save_file(G.state_dict(), str(folder / "G_AB.safetensors"))
    return folder


@pytest.fixture(scope="module", params=[NOISE_SPEC, RESNET_SPEC], ids=["dcgan", "resnet"])
def generator_dir(tmp_path_factory, request):
    folder = tmp_path_factory.mktemp("generator")
    G = build_noise_generator(request.param)
    G.apply(init_weights)
    _perturb(G)
    G.eval()
    (folder / "generator.json").write_text(json.dumps(request.param))
    save_file(G.state_dict(), str(folder / "G_ema.safetensors"))
    return folder


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
@pytest.mark.parametrize("direction", ["a2b", "b2a"])
def test_translator_export_parity(translator_dir, tmp_path, fmt, direction):
    out = tmp_path / f"G.{fmt}"
    diff = export(translator_dir, fmt, out, direction)
    print(f"translator {direction} {fmt}: max abs diff {diff:.2e}")
    assert 0.0 <= diff < TOLERANCE[fmt]
    assert out.is_file() and out.stat().st_size > 10_000
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temp file left


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_pix2pix_export_parity(pix2pix_dir, tmp_path, fmt):
    diff = export(pix2pix_dir, fmt, tmp_path / f"G.{fmt}")
    print(f"pix2pix a2b {fmt}: max abs diff {diff:.2e}")
    assert 0.0 <= diff < TOLERANCE[fmt]
    with pytest.raises(ConfigError, match="translates a2b only"):
        export(pix2pix_dir, fmt, tmp_path / "b2a", "b2a")


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_noise_generator_export_parity(generator_dir, tmp_path, fmt):
    out = tmp_path / "sub" / f"G.{fmt}"
    diff = export(generator_dir, fmt, out)
    print(f"noise generator {fmt}: max abs diff {diff:.2e}")
    assert 0.0 <= diff < TOLERANCE[fmt]
    assert out.is_file()
    if fmt == "onnx":  # the graph's inputs keep the names they have always had
        assert onnx_inputs(out) == ["z", "c"]


def onnx_inputs(path) -> list[str]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [i.name for i in session.get_inputs()]


def test_exported_onnx_runs_on_its_own(translator_dir, tmp_path):
    """The ONNX file alone (onnxruntime, no torch model) translates A -> B at any batch size."""
    import onnxruntime as ort

    export(translator_dir, "onnx", tmp_path / "G.onnx", "b2a")
    assert onnx_inputs(tmp_path / "G.onnx") == ["x"]
    session = ort.InferenceSession(str(tmp_path / "G.onnx"), providers=["CPUExecutionProvider"])
    (img,) = session.run(None, {"x": (torch.rand(5, 3, 32, 32) * 2 - 1).numpy()})
    assert img.shape == (5, 1, 32, 32)
    assert abs(img).max() <= 1.0


def test_bad_format_direction_or_folder_is_one_clear_error(translator_dir, tmp_path):
    with pytest.raises(ConfigError, match="--format 'tflite': one of onnx, torchscript"):
        export(translator_dir, "tflite", tmp_path / "G")
    with pytest.raises(ConfigError, match="--direction 'up'"):
        export(translator_dir, "onnx", tmp_path / "G", "up")
    with pytest.raises(
        DataError, match=r"no model found \(none of generator.json, translator.json, text2image"
    ):
        export(tmp_path, "onnx", tmp_path / "G")
    with pytest.raises(DataError, match="no such folder"):
        export(tmp_path / "missing", "onnx", tmp_path / "G")
    assert list(tmp_path.iterdir()) == []


def test_missing_weights_file_is_a_data_error(translator_dir, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "translator.json").write_text(
        (translator_dir / "artifacts/translator.json").read_text()
    )
    (folder / "G_AB.safetensors").write_bytes(
        (translator_dir / "artifacts/G_AB.safetensors").read_bytes()
    )
    assert export(folder, "torchscript", tmp_path / "a.pt", "a2b") < 1e-4
    with pytest.raises(DataError, match="no G_BA.safetensors"):
        export(folder, "torchscript", tmp_path / "b.pt", "b2a")


def test_cli_export_prints_parity_and_errors_in_one_line(translator_dir, tmp_path):
    def ganops(*args):
        return subprocess.run(
            [sys.executable, "-m", "components.cli", "export", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    ok = ganops(
        "--model", str(translator_dir), "--format", "torchscript", "--out", str(tmp_path / "G.pt")
    )
    assert ok.returncode == 0, ok.stderr
    assert "parity: max abs difference to PyTorch" in ok.stdout
    bad = ganops("--model", str(translator_dir), "--format", "tflite", "--out", str(tmp_path / "G"))
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: --format 'tflite': one of onnx, torchscript"
