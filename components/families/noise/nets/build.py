"""G and D from their specs, G from its files on disk, and z from seeds: how the rest of ganops
gets its nets."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from components.families.noise.nets.dcgan import Discriminator, Generator
from components.families.noise.nets.resnet import ResnetDiscriminator, ResnetGenerator


def build_generator(spec: dict) -> nn.Module:
    """G from its spec (generator.json, written by train)."""
    args = (spec["z_dim"], spec["num_classes"], spec["channels"], spec["image_size"])
    options = {"cond": spec["g_cond"], "spectral_norm": spec["g_spectral_norm"]}
    if spec["arch"] == "resnet":
        return ResnetGenerator(*args, spec["g_channels"], **options)
    return Generator(*args, spec["g_channels"], arch=spec["arch"], **options)


def build_discriminator(
    arch: str, num_classes: int, channels: int, image_size: int, ndf: int, spectral_norm: bool
) -> nn.Module:
    """D for train.arch; resnet's always carries spectral norm (the config requires it)."""
    if arch == "resnet":
        return ResnetDiscriminator(num_classes, channels, image_size, ndf)
    return Discriminator(num_classes, channels, image_size, ndf, arch, spectral_norm)


def load_generator(weights: str | Path, spec: dict) -> nn.Module:
    """G from a safetensors file and its spec (generator.json), in eval mode."""
    from safetensors.torch import load_file

    G = build_generator(spec)
    G.load_state_dict(load_file(str(weights)))
    return G.eval().requires_grad_(False)


SPEC_FILE = "generator.json"  # G's spec, beside its weights (names the family)
GENERATOR_FILES = ("G_ema.safetensors", SPEC_FILE)  # what a registered generator ships


def load_model_dir(folder: str | Path) -> tuple[nn.Module, dict]:
    """(G_ema in eval mode, its spec) from a folder holding GENERATOR_FILES at any depth:
    models/, a downloaded model version, or a pyfunc's artifacts. The one way G is rebuilt."""
    import json

    folder = Path(folder)
    found = {name: next(folder.rglob(name), None) for name in GENERATOR_FILES}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        from components.errors import DataError

        raise DataError(f"{folder}: no {' or '.join(missing)}; not a ganops generator")
    spec = json.loads(found[SPEC_FILE].read_text())
    return load_generator(found["G_ema.safetensors"], spec), spec
