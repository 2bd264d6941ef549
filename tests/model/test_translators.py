"""Model: the translation nets (ResNet and U-Net G, PatchGAN D) built from their spec."""

from __future__ import annotations

import json

import pytest
import torch

from components.errors import ConfigError
from components.families.translation.nets import (
    PatchDiscriminator,
    build_discriminator,
    build_generator,
    default_d_layers,
    load_translator,
    make_spec,
    receptive_field,
)

SIZES = (32, 64, 128, 256)
SMALL = {"g_channels": 4, "d_channels": 4, "n_blocks": 1}  # cheap nets: shapes only
NETS = {  # id -> (arch, spec overrides)
    "cyclegan-resize": ("cyclegan", {"upsample": "resize"}),
    "cyclegan-transpose": ("cyclegan", {"upsample": "transpose"}),
    "pix2pix": ("pix2pix", {}),
}


def _images(batch: int, channels: int, size: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, channels, size, size, generator=gen) * 2 - 1  # (B, C, S, S)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("net", NETS, ids=list(NETS))
def test_g_and_d_shapes_at_each_size(net, size):
    arch, overrides = NETS[net]
    spec = make_spec(arch, 1, 3, size, **SMALL, **overrides)
    G, D = build_generator(spec, "a2b"), build_discriminator(spec, "b")
    real_a = _images(1, 1, size)
    with torch.no_grad():
        gen_b = G(real_a)
        pair = torch.cat([real_a, gen_b], dim=1) if arch == "pix2pix" else gen_b
        logits = D(pair)
    assert gen_b.shape == (1, 3, size, size)
    assert gen_b.abs().max() <= 1.0  # tanh
    patches = size // 2 ** spec["d_layers"] - 2
    assert logits.shape == (1, 1, patches, patches)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("upsample", ["resize", "transpose"])
def test_cyclegan_both_directions_swap_channels(upsample):
    spec = make_spec("cyclegan", 1, 3, 32, **SMALL, upsample=upsample)
    G_AB, G_BA = build_generator(spec, "a2b"), build_generator(spec, "b2a")
    real_a, real_b = _images(2, 1, 32), _images(2, 3, 32)
    assert G_AB(real_a).shape == (2, 3, 32, 32)
    assert G_BA(real_b).shape == (2, 1, 32, 32)
    assert build_discriminator(spec, "a")(real_a).shape[1] == 1
    with pytest.raises(AssertionError, match="expected shape"):
        G_AB(real_b)  # 3 channels into the A -> B net


def test_pix2pix_d_judges_the_concatenated_pair():
    spec = make_spec("pix2pix", 3, 1, 32, **SMALL)
    D = build_discriminator(spec, "b")
    assert D.in_channels == 4
    real_a, real_b = _images(2, 3, 32), _images(2, 1, 32)
    assert D(torch.cat([real_a, real_b], dim=1)).shape == (2, 1, 14, 14)
    with pytest.raises(AssertionError, match="expected shape"):
        D(real_b)  # B alone is not a pair
    with pytest.raises(ConfigError, match="b2a"):
        build_generator(spec, "b2a")
    with pytest.raises(ConfigError, match="one conditional D"):
        build_discriminator(spec, "a")


@pytest.mark.parametrize("n_layers", range(6))
def test_receptive_field_matches_the_layer_walk(n_layers):
    """9 * 2^n - 2 against walking back through the net's own convolutions."""
    D = PatchDiscriminator(1, 256, 4, n_layers, "none")
    r = 1
    for conv in reversed([m for m in D.net if isinstance(m, torch.nn.Conv2d)]):
        r = (r - 1) * conv.stride[0] + conv.kernel_size[0]
    assert receptive_field(n_layers) == r


def test_receptive_field_of_the_reference_patchgan_is_70():
    assert receptive_field(3) == 70
    assert [receptive_field(n) for n in (1, 2, 4)] == [16, 34, 142]


def test_default_d_layers_keep_the_patch_smaller_than_the_image():
    table = {size: default_d_layers(size) for size in SIZES}
    assert table == {32: 1, 64: 2, 128: 3, 256: 3}
    assert all(receptive_field(n) < size for size, n in table.items())


def test_one_logit_only_sees_its_receptive_field():
    """Changing a pixel outside a logit's patch leaves that logit unchanged."""
    D = PatchDiscriminator(1, 64, 4, 2, "none").eval()  # 34 px patches
    img = _images(1, 1, 64)
    moved = img.clone()
    moved[..., 40:, 40:] = 1.0  # far from the top-left patch
    with torch.no_grad():
        a, b = D(img), D(moved)
    assert torch.equal(a[..., 0, 0], b[..., 0, 0])
    assert not torch.equal(a[..., -1, -1], b[..., -1, -1])


@pytest.mark.parametrize("arch", ["cyclegan", "pix2pix"])
def test_dropout_is_active_in_train_mode_only(arch):
    spec = make_spec(arch, 1, 1, 32, **SMALL, dropout=True, norm="instance")
    G = build_generator(spec, "a2b")
    real_a = _images(2, 1, 32)
    assert any(isinstance(m, torch.nn.Dropout) for m in G.modules())
    G.train()
    torch.manual_seed(0)
    first = G(real_a)
    assert not torch.equal(first, G(real_a))  # another dropout mask
    G.eval()
    assert torch.equal(G(real_a), G(real_a))


def test_pix2pix_has_dropout_in_the_three_innermost_decoder_levels_at_32_px():
    G = build_generator(make_spec("pix2pix", 1, 1, 32, **SMALL), "a2b")
    assert sum(isinstance(m, torch.nn.Dropout) for m in G.modules()) == 3
    no_dropout = make_spec("cyclegan", 1, 1, 32, **SMALL)
    assert not any(isinstance(m, torch.nn.Dropout) for m in build_generator(no_dropout).modules())


def test_init_is_normal_0_002():
    spec = make_spec("cyclegan", 1, 1, 32, g_channels=16, n_blocks=2)
    convs = [m for m in build_generator(spec).modules() if isinstance(m, torch.nn.Conv2d)]
    weights = torch.cat([m.weight.detach().flatten() for m in convs])
    assert abs(float(weights.mean())) < 2e-3
    assert abs(float(weights.std()) - 0.02) < 1e-3
    assert all(float(m.bias.detach().abs().max()) == 0 for m in convs if m.bias is not None)


def test_spec_round_trips_through_json_and_rejects_bad_keys():
    spec = make_spec("cyclegan", 1, 3, 64, upsample="transpose")
    assert json.loads(json.dumps(spec)) == spec
    assert set(spec) == {
        "family", "arch", "channels_a", "channels_b", "image_size", "g_channels",
        "d_channels", "n_blocks", "d_layers", "norm", "upsample", "dropout",
    }  # fmt: skip
    with pytest.raises(ConfigError, match="unknown keys \\['colour'\\]"):
        build_generator({**spec, "colour": 1})
    with pytest.raises(ConfigError, match="upsample 'bilinear'"):
        make_spec("cyclegan", 1, 1, 32, upsample="bilinear")
    with pytest.raises(ConfigError, match="image_size 48"):
        make_spec("cyclegan", 1, 1, 48)
    with pytest.raises(ConfigError, match="d_layers 4 too deep for 32 px"):
        make_spec("cyclegan", 1, 1, 32, d_layers=4)


@pytest.mark.parametrize("net", NETS, ids=list(NETS))
def test_load_translator_round_trip_gives_identical_outputs(net, tmp_path):
    from safetensors.torch import save_file

    arch, overrides = NETS[net]
    spec = make_spec(arch, 1, 3, 32, **SMALL, **overrides)
    G = build_generator(spec, "a2b")
    for p in G.parameters():  # move off the init so a wrong load would show
        p.data.add_(torch.randn_like(p) * 0.01)
    (tmp_path / "translator.json").write_text(json.dumps(spec))
    save_file(G.state_dict(), str(tmp_path / "G_AB.safetensors"))

    loaded = load_translator(
        tmp_path / "G_AB.safetensors", json.loads((tmp_path / "translator.json").read_text())
    )
    assert not loaded.training
    assert not any(p.requires_grad for p in loaded.parameters())
    real_a = _images(3, 1, 32)
    with torch.no_grad():
        assert torch.equal(loaded(real_a), G.eval()(real_a))
    wrong = RuntimeError if arch == "cyclegan" else ConfigError  # 3 -> 1 weights do not fit
    with pytest.raises(wrong):
        load_translator(tmp_path / "G_AB.safetensors", spec, "b2a")
