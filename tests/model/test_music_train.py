"""Model: the music family's nets (shapes, range, straight-through binarisation, the four
latents), its evaluation controls, and resume bit-identical from a checkpoint, on 24 bundled
chorales (the smoke profile)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components.layout import Layout
from tests.conftest import SMOKE_BY_FAMILY

SMOKE = SMOKE_BY_FAMILY["music"]


def _params(*overrides: str):
    from components.config import load_params

    return load_params(SMOKE, list(overrides))


@pytest.fixture(scope="module")
def chorales(tmp_path_factory):
    """24 bundled chorales ingested once (parsed over a process pool), as a project folder."""
    from components import ingest

    root = tmp_path_factory.mktemp("chorales")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)  # the parse cache lives under the project root
    ingest.run(_params().ingest, Layout(root))
    yield root
    mp.undo()


def test_generator_draws_binary_rolls_from_four_latents():
    from components.families.music.nets import Discriminator, Generator, binarize

    G = Generator(8, tracks=4, bars=4, steps_per_bar=16, pitches=48, channels=8).eval()
    assert G.latent_dim == 8 * (2 + 2 * 4)
    z = torch.randn(3, G.latent_dim)
    probs = G(z)
    assert probs.shape == (3, 4, 64, 48) and probs.min() >= 0 and probs.max() <= 1
    shared, shared_t, track, track_t = G.split_latent(z)
    assert shared.shape == shared_t.shape == (3, 8) and track.shape == track_t.shape == (3, 32)
    # a private latent changes its own track more than the others
    z2 = z.clone()
    z2[:, 16:24] += 3.0  # the private latent of track 0
    change = (G(z2) - probs).abs().mean(dim=(0, 2, 3))
    assert change[0] > change[1:].max()
    x = torch.tensor([0.2, 0.7], requires_grad=True)
    y = binarize(x)
    assert y.tolist() == [0.0, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]  # straight through
    D = Discriminator(4, 4, 16, 48, channels=8)
    assert D(binarize(probs)).shape == (3,)
    # on a 2-step note unit, every step repeats its pair: no note shorter than an eighth
    eighths = Generator(8, tracks=4, bars=4, steps_per_bar=16, pitches=48, channels=8, unit=2)
    drawn = eighths.eval()(z)
    assert torch.equal(drawn[:, :, 0::2], drawn[:, :, 1::2])


def test_mono_tracks_sound_one_pitch_or_a_rest_per_step_straight_through():
    from components.families.music.nets import Generator, one_voice

    logits = torch.tensor([[0.1, 2.0, 0.3], [0.0, -1.0, 1.5]], requires_grad=True)  # 2 pitches
    voice = one_voice(logits)  # + a rest each
    assert voice.tolist() == [[0.0, 1.0], [0.0, 0.0]]  # pitch 1, then the rest wins
    voice[0, 1].backward()
    soft = torch.softmax(logits.detach(), -1)[0]
    expected = soft[1] * (torch.eye(3)[1] - soft)  # d softmax_1 / d logits
    torch.testing.assert_close(logits.grad[0], expected)
    torch.manual_seed(0)
    G = Generator(8, tracks=4, bars=4, steps_per_bar=16, pitches=48, channels=8,
                  mono=(True, False, True, True)).eval()  # fmt: skip
    roll = G(torch.randn(16, G.latent_dim)) > 0.5
    at_once = roll.sum(dim=3).amax(dim=(0, 2))  # most pitches sounding at once, per track
    assert at_once[[0, 2, 3]].max() == 1 and at_once[1] > 1  # untrained: some sound, some rest


def test_voicing_auto_follows_each_tracks_polyphony():
    from components.families.music.train import mono_tracks

    windows = np.zeros((10, 3, 16, 24), np.uint8)
    windows[:, 0, :, 5] = 1  # one voice
    windows[:, 1, :, [3, 7]] = 1  # two pitches at every step: chords
    windows[:, 2, :8, 2] = 1  # one voice with a short chord: 1 of its 8 sounding steps
    windows[:, 2, 0, 9] = 1
    assert mono_tracks("auto", windows) == [True, False, False]  # 1/8 >= 0.1: not one voice
    windows[:, 2, 0, 9] = 0
    assert mono_tracks("auto", windows) == [True, False, True]
    assert (
        mono_tracks("mono", windows) == [True] * 3 and mono_tracks("poly", windows) == [False] * 3
    )


def test_roll2d_baseline_draws_and_scores_the_same_windows():
    from components.families.music.nets import build_discriminator, build_generator

    spec = {"arch": "roll2d", "z_dim": 8, "tracks": 4, "bars": 4, "steps_per_bar": 12,
            "pitches": 36, "g_channels": 8}  # fmt: skip
    G = build_generator(spec).eval()
    assert G.latent_dim == 8 * (2 + 2 * 4)  # a seed draws the same latent as for musegan
    probs = G(torch.randn(3, G.latent_dim))
    assert probs.shape == (3, 4, 48, 36) and probs.min() >= 0 and probs.max() <= 1
    assert build_discriminator(spec, 8, chroma=True)(probs).shape == (3,)


def test_controls_keep_density_and_rhythm():
    from components.families.music.evaluate import random_control, shuffled_control

    rng = np.random.default_rng(0)
    real = (rng.random((200, 4, 64, 48)) < 0.03).astype(np.uint8)
    real[:, 0, :, 10] = 1
    rand = random_control(real, rng)
    np.testing.assert_allclose(rand.mean(axis=(0, 2, 3)), real.mean(axis=(0, 2, 3)), atol=2e-3)
    shuf = shuffled_control(real, rng)
    np.testing.assert_array_equal(shuf.sum(axis=3), real.sum(axis=3))  # rhythm per step kept
    assert not np.array_equal(shuf, real)


def test_family_resumes_bit_identical(chorales, tmp_path):
    """8 steps in one go (a checkpoint at step 4) vs resuming that checkpoint for the last 4,
    as after a kill: G, D, G_ema, optimisers and the batch stream restored, bit-identical."""
    from components.dataset import load_dataset
    from components.families import for_arch
    from components.train.distributed import Rank
    from tests.model.test_models import assert_resume_is_exact

    data = load_dataset(Layout(chorales))
    cfg = _params("train.kimg=0.128", "train.ckpt_every_kimg=0.064").train
    me = Rank(rank=0, local_rank=0, world=1)
    cpu = torch.device("cpu")

    def build():
        return for_arch("musegan").build(cfg, Layout(chorales), data, cpu, me).trainer

    assert_resume_is_exact(build, cfg, tmp_path, 4)


def _conditional_trainer(arch: str = "musegan"):
    """A trainer on two constructed styles: class 0 a low one-voice line, class 1 a high one."""
    from components.families.music.train import make_spec
    from components.families.music.trainer import MusicTrainer

    cfg = _params(f"train.arch={arch}", "train.g_channels=8", "train.d_channels=8").train
    windows = np.zeros((64, 4, 64, 48), np.uint8)
    labels = np.arange(64) % 2
    for i, c in enumerate(labels):
        for track in range(4):  # one held pitch per track, a class apart
            windows[i, track, :, 5 + 30 * c + track] = 1
    grid = {"steps_per_beat": 4, "beats_per_bar": 4, "bars_per_window": 4, "pitch_low": 36,
            "pitch_high": 84}  # fmt: skip
    manifest = {"grid": grid, "shape": [4, 64, 48], "class_names": ["low", "high"]}
    spec = make_spec(cfg, manifest, windows)
    return MusicTrainer(cfg, windows, spec, torch.device("cpu"), labels=labels), spec


@pytest.mark.parametrize("arch", ["musegan", "roll2d"])
def test_a_conditional_g_hears_its_class_and_d_projects_it(arch):
    trainer, spec = _conditional_trainer(arch)
    G, D = trainer.G, trainer.D
    zero, one = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    z, x = torch.randn(4, G.latent_dim), torch.rand(4, 4, 64, 48)
    with torch.no_grad():  # class embeddings start at zero: the unconditional net
        assert torch.equal(G.eval()(z, zero), G(z, one)) and torch.equal(D(x, zero), D(x, one))
    with pytest.raises(ValueError, match="conditional: give labels"):
        G(z)
    G.train()
    for step in range(3):
        trainer.step(step)
    assert G.embed.weight.abs().sum() > 0 and D.embed.weight.abs().sum() > 0  # both learn
    with torch.no_grad():
        assert not torch.equal(G.eval()(z, zero), G(z, one))  # the class moves the window
        assert not torch.equal(D(x, zero), D(x, one))
    assert trainer.samples().shape[0] == 8  # the fixed grid asks for every class in turn


def test_the_music_pyfunc_takes_a_class_name_or_index(tmp_path):
    import pandas as pd
    from safetensors.torch import save_file

    from components.families.music.options import SPEC_FILE
    from components.families.music.pyfunc import MusicModel
    from components.layout import write_json

    trainer, spec = _conditional_trainer()
    torch.manual_seed(0)  # the class embeddings start at zero: give each class its own offset
    with torch.no_grad():
        trainer.G_ema.embed.weight.normal_(0.0, 3.0)
    write_json(tmp_path / SPEC_FILE, spec)
    save_file(trainer.G_ema.state_dict(), str(tmp_path / "G_ema.safetensors"))
    model = MusicModel()

    class Context:
        artifacts = {SPEC_FILE: str(tmp_path / SPEC_FILE)}

    model.load_context(Context())
    by_name = model.predict(None, pd.DataFrame({"seed": [3, 3], "label": ["low", "high"]}))
    by_index = model.predict(None, pd.DataFrame({"seed": [3, 3], "label": [0, 1]}))
    assert by_name["label"].tolist() == ["low", "high"]
    assert by_name["roll"].tolist() == by_index["roll"].tolist()  # the same windows
    assert by_name["roll"][0] != by_name["roll"][1]  # and the class was heard: low != high
    with pytest.raises(ValueError, match="conditional: give every row a 'label' \\(low, high\\)"):
        model.predict(None, pd.DataFrame({"seed": [0]}))
    with pytest.raises(ValueError, match="'jazz' is not a class"):
        model.predict(None, pd.DataFrame({"seed": [0], "label": ["jazz"]}))
