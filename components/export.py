"""`ganops export`: a registered generator as ONNX or TorchScript, checked against PyTorch.

Works on any family's model: the family its spec names builds G and G's example inputs
(a translator: one direction per file). The model is a models:/ or runs:/ URI, or a local
folder holding its files (at any depth, as in a downloaded pyfunc).

Both formats keep the batch dimension dynamic. ONNX uses torch's dynamo exporter (it needs
onnxscript; the legacy TorchScript-based exporter cannot export instance norm after reflection
padding) and parity is checked with onnxruntime: `pip install -e ".[export]"`. TorchScript
(torch.jit.trace) is deprecated in torch 2.13 but still written and loaded (libtorch, C++).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from components.errors import ConfigError, DataError

FORMATS = ("onnx", "torchscript")
OPSET = 18  # the dynamo exporter's default opset in torch 2.13
PARITY_BATCH = 3  # parity batch; the exporter traces batch 2, so this checks a dynamic batch


def resolve_model_dir(model: str) -> Path:
    """A local folder as is; a URI downloaded from MLflow (the caller sets the tracking URI)."""
    local = Path(model)
    if local.is_dir():
        return local
    if "://" not in model and not model.startswith(("models:/", "runs:/")):
        raise DataError(f"--model {model}: no such folder, and not a models:/ or runs:/ URI")
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return Path(mlflow.artifacts.download_artifacts(model))
    except (MlflowException, OSError) as exc:
        raise DataError(f"--model {model}: {getattr(exc, 'message', exc)}") from None


def load_model(model_dir: Path, direction: str = "a2b") -> tuple[torch.nn.Module, Callable]:
    """(G in eval mode, inputs(batch, seed) -> a tuple of G's inputs) from a model folder, built
    by the family its spec names (components/families)."""
    from components import families

    family, _, spec = families.of_model_dir(model_dir)
    return family.export_module(model_dir, spec, direction)


def _torchscript(G: torch.nn.Module, example: tuple, path: Path, check: tuple) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape asserts: fixed by trace
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit: deprecated, still works
        traced = torch.jit.trace(G, example)
        traced.save(str(path))
        return torch.jit.load(str(path))(*check)


def _onnx(G: torch.nn.Module, example: tuple, path: Path, check: tuple) -> torch.Tensor:
    try:
        import onnxruntime as ort
        import onnxscript  # noqa: F401  (torch's dynamo exporter needs it)
    except ImportError:
        raise ConfigError(
            'onnx export needs onnx, onnxscript and onnxruntime: pip install -e ".[export]"'
        ) from None
    # the family's export names G's inputs (ModelFamily.export_module)
    names = list(getattr(G, "input_names", ())) or [f"input{i}" for i in range(len(example))]
    batch = torch.export.Dim("batch", min=1)
    dynamic = tuple({0: batch} for _ in example)
    quiet = logging.getLogger("torch.onnx")  # "torchvision is not installed" lines
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's progress lines and deprecations
            program = torch.onnx.export(
                G,
                example,
                input_names=names,
                output_names=["img"],
                opset_version=OPSET,
                dynamo=True,
                dynamic_shapes=dynamic,
                external_data=False,
            )
        program.save(str(path))
    finally:
        quiet.setLevel(level)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {name: t.numpy() for name, t in zip(names, check, strict=True)}
    return torch.from_numpy(session.run(None, feed)[0])


def export(model: str | Path, fmt: str, out_path: str | Path, direction: str = "a2b") -> float:
    """Write G of `model` as `fmt` to out_path (via a temp file, then rename); return the max
    abs difference between the exported model's and PyTorch's outputs on a fixed input."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: one of {', '.join(FORMATS)}")
    if Path(out_path).is_dir():
        raise ConfigError(f"--out {out_path}: a folder; name the file to write")
    expected = {"onnx": ".onnx", "torchscript": ".pt"}.get(fmt)
    if Path(out_path).suffix not in (expected, ".pth" if fmt == "torchscript" else expected):
        print(f"export: note: writing {fmt} to {out_path} (the usual suffix is {expected})")
    G, inputs = load_model(resolve_model_dir(str(model)), direction)
    example = inputs(2, 0)  # what the exporter traces
    check = inputs(PARITY_BATCH, 1000)  # new values and another batch size
    with torch.no_grad():
        expected = G(*check)  # (3, C, S, S)
    out_path = Path(out_path)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--out {out_path}: cannot be created ({err.strerror})") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    os.close(fd)
    try:
        write = _onnx if fmt == "onnx" else _torchscript
        with torch.no_grad():
            got = write(G, example, Path(tmp), check)
        os.replace(tmp, out_path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return float((got.float() - expected.float()).abs().max())
