"""Model: the video family through the Prefect flow on the bundled Moving MNIST (smoke-sized),
then its pyfunc (Python and REST), `generate` GIFs that ingest reads back to the same frames,
export parity, and resume bit-identical."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from components.layout import Layout, read_json
from tests.conftest import SMOKE_BY_FAMILY, use_store

SMOKE = SMOKE_BY_FAMILY["video"]
NAME = "ganops-video"


def _params(*overrides: str):
    from components.config import load_params

    return load_params(SMOKE, list(overrides))


@pytest.fixture(scope="module")
def registered(tmp_path_factory, prefect_harness):
    """ingest -> validate -> train -> evaluate -> register of the smoke profile through the
    Prefect flow into a SQLite store: (root, metrics, store uri)."""
    import os

    import mlflow

    from flows.pipeline import ganops_pipeline

    root = tmp_path_factory.mktemp("video")
    shutil.copy(SMOKE, root / "params.yaml")
    mp = pytest.MonkeyPatch()
    uri = use_store(mp, f"sqlite:///{root / 'mlflow.db'}")
    mp.chdir(root)
    ganops_pipeline(params_file="params.yaml")
    metrics = read_json(Layout(root).metrics)
    yield root, metrics, uri
    os.chdir(root.parent)
    mp.undo()
    mlflow.set_tracking_uri(None)


def test_flow_registers_a_video_model_with_floors_and_controls(registered):
    import mlflow

    root, metrics, uri = registered
    spec = read_json(Layout(root).models / "video.json")
    assert spec["family"] == "video" and spec["arch"] == "mocogan" and spec["frames"] == 8
    assert spec["renderer"] == "sprite"
    for key in ("video_fd", "video_fd_floor", "video_fd_shuffled", "video_fd_frozen", "fid",
                "fid_floor", "kid", "speed_w1", "speed_w1_floor", "frozen_rate",
                "identity_consistency", "identity_consistency_real"):  # fmt: skip
        assert np.isfinite(metrics[key]), key
    # the real-vs-real floor is below both controls: the video distance notices time
    assert metrics["video_fd_floor"] < metrics["video_fd_shuffled"]
    assert metrics["video_fd_floor"] < metrics["video_fd_frozen"]
    assert metrics["speed_w1_floor"] < metrics["speed_w1_frozen"]
    version = mlflow.MlflowClient(uri).get_latest_versions(NAME)[0]
    assert version.tags["family"] == "video"
    samples = root / "reports" / "samples"
    assert (samples / "latest.gif").is_file() and (samples / "latest.png").is_file()
    for name in ("generated.gif", "generated_strip.png", "real_strip.png"):
        assert (Layout(root).evaluation / name).is_file()


def _latest_uri(uri):
    import mlflow

    version = mlflow.MlflowClient(uri).get_latest_versions(NAME)[0].version
    return f"models:/{NAME}/{version}"


def test_pyfunc_draws_clips_by_seed_and_label(registered):
    import mlflow

    _, _, uri = registered
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(_latest_uri(uri))
    frame = pd.DataFrame({"seed": [3, 3, 4], "label": [1, 1, 2]})
    out = model.predict(frame)
    assert out.dtype == np.uint8 and out.shape == (3, 8, 1, 32, 32)
    np.testing.assert_array_equal(out[0], out[1])  # the same (seed, label), the same clip
    assert not np.array_equal(out[0], out[2])
    np.testing.assert_array_equal(out[:1], model.predict(frame[:1]))  # batch-independent
    with pytest.raises(Exception, match="label 10 out of range"):
        model.predict(pd.DataFrame({"seed": [0], "label": [10]}))


def test_generate_writes_gifs_that_ingest_reads_back(registered, tmp_path):
    import mlflow

    from components import ingest
    from components.dataset import load_dataset
    from components.generate import generate

    _, _, uri = registered
    mlflow.set_tracking_uri(uri)
    out = tmp_path / "synthetic"
    manifest = generate(_latest_uri(uri), 6, out, seed=7)
    assert manifest["n_clips"] == 6 and manifest["clip_shape"] == [8, 1, 32, 32]
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows] == [str(i % 10) for i in range(6)]
    assert all((out / r["file_name"]).is_file() for r in rows)
    assert all((out / r["file_name"].replace(".gif", ".strip.png")).is_file() for r in rows)
    model = mlflow.pyfunc.load_model(_latest_uri(uri))
    expected = model.predict(
        pd.DataFrame({"seed": [r["seed"] for r in rows], "label": [int(r["label"]) for r in rows]})
    )
    cfg = _params(f"ingest.source={out}", "ingest.test_fraction=0.5").ingest
    back = ingest.run(cfg, Layout(tmp_path / "back"))
    assert back["kind"] == "clips" and back["n_clips"] == 6
    data = load_dataset(Layout(tmp_path / "back"))
    files = data.meta["file"].tolist()
    for i, r in enumerate(rows):
        row = files.index(r["file_name"])
        np.testing.assert_array_equal(data.images[row], expected[i])  # gray GIFs are exact
        assert data.manifest["class_names"][data.meta["label"][row]] == r["label"]


def test_export_parity(registered, tmp_path):
    from components.export import export

    root, _, _ = registered
    assert export(Layout(root).models, "torchscript", tmp_path / "G.pt") < 1e-4
    assert export(Layout(root).models, "onnx", tmp_path / "G.onnx") < 1e-4
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "G.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z_content", "eps", "label"]


def test_rest_serving_returns_the_pyfunc_clips(registered):
    import mlflow

    from tests.conftest import post_frame, serve_model

    _, _, uri = registered
    mlflow.set_tracking_uri(uri)
    model_uri = _latest_uri(uri)
    frame = pd.DataFrame({"seed": [0, 1], "label": [5, 6]})
    with serve_model(model_uri) as url:
        clips = np.asarray(post_frame(url, frame)["predictions"], dtype=np.uint8)
    assert clips.shape == (2, 8, 1, 32, 32)
    np.testing.assert_array_equal(clips, mlflow.pyfunc.load_model(model_uri).predict(frame))


def test_sprite_renderer_keeps_the_object_and_moves_it():
    """The sprite renderer: every frame is the same object layer shifted over one background,
    so a clip's frames hold the same pixels in another place (up to bilinear resampling)."""
    from components.families.video.nets import SpriteMoCoGenerator, fold

    torch.testing.assert_close(fold(torch.tensor([0.5, 1.5, 2.5, -1.5])),
                               torch.tensor([0.5, 0.5, -0.5, -0.5]))  # fmt: skip
    torch.manual_seed(0)
    G = SpriteMoCoGenerator(8, 4, 0, 1, 32, 6, 8).eval()
    z, eps = torch.randn(1, 8), torch.zeros(1, 6, 4)
    with torch.no_grad():
        for layer in (G.velocity, G.turn):
            layer.weight.zero_()
            layer.bias.zero_()  # no velocity and no turn: every frame is the first
        still = G(z, eps)[0, :, 0]
        G.velocity.bias.fill_(10.0)  # tanh saturates: the largest speed along both axes
        moving = G(z, eps)[0, :, 0]
        track = G.track(G.motion(eps))[0]  # constant velocity without turns: straight and even
    assert all(torch.equal(still[0], f) for f in still)
    torch.testing.assert_close(moving[0], still[0])  # the track starts where it would rest
    assert not torch.equal(moving[0], moving[1])  # then it moves
    steps = track.diff(dim=0)
    torch.testing.assert_close(steps, torch.full_like(steps, G.max_speed))


def test_sprite_object_stays_inside_its_window_and_the_rest_is_background():
    """`sprite_extent` 0.5 on 32 px: the mask is 0 beyond a pixel outside the centred 16 px
    square, so (at rest) every pixel outside it is the background's, whatever G draws."""
    from components.families.video.nets import SpriteMoCoGenerator, window

    w = window(32, 0.5)[0, 0]
    assert w.sum() == 16 * 16 + 4 * 16 * 0.5 + 4 * 0.25  # the square, its soft rim
    assert window(32, 1.0).eq(1).all()
    torch.manual_seed(0)
    G = SpriteMoCoGenerator(8, 4, 0, 1, 32, 3, 8, extent=0.5).eval()
    with torch.no_grad():
        for layer in (G.start, G.velocity, G.turn):
            layer.weight.zero_()
            layer.bias.zero_()  # the object rests at the centre
        G.image.body[-2].bias[1].fill_(10.0)  # the mask's pre-tanh: 1 wherever it may be
        z = torch.randn(2, 8)
        frames = G(z, torch.zeros(2, 3, 4))[:, :, 0]
        background = G.low_pass(G.image(z)[:, 2:])[:, 0]
    outside = w == 0
    for t in range(3):
        torch.testing.assert_close(frames[:, t][:, outside], background[:, outside])
    assert not torch.allclose(frames[:, 0][:, w == 1], background[:, w == 1])
    # the background is a 2x2 map upsampled: no detail a still shape could be drawn with
    assert G.low_pass(torch.randn(1, 1, 32, 32)).diff(dim=-1).abs().max() < 0.1
    # grain: a texture per clip (from its content latent), still over the clip's frames
    with torch.no_grad():
        G.grain.fill_(0.1)
        grainy = G(z, torch.zeros(2, 3, 4))[:, :, 0]
    texture = (grainy - frames)[:, :, outside]
    assert texture.std() > 0.05 and not torch.allclose(texture[0], texture[1])
    torch.testing.assert_close(texture[:, 1:], texture[:, :1].expand(-1, 2, -1))


def test_family_resumes_bit_identical(registered, tmp_path):
    """8 steps in one go (a checkpoint at step 4) vs resuming that checkpoint for the last 4:
    G, both Ds, G_ema, optimisers and the batch stream restored, bit-identical."""
    from components.dataset import load_dataset
    from components.families import for_arch
    from components.train.distributed import Rank
    from tests.model.test_models import assert_resume_is_exact

    root, _, _ = registered
    data = load_dataset(Layout(root))
    cfg = _params("train.kimg=0.064", "train.ckpt_every_kimg=0.032").train
    me = Rank(rank=0, local_rank=0, world=1)
    layout = Layout(tmp_path)

    def build():
        return for_arch("mocogan").build(cfg, layout, data, torch.device("cpu"), me).trainer

    assert_resume_is_exact(build, cfg, tmp_path, 4)


def test_first_frame_alone_is_the_clips_first_frame():
    """MoCoGAN's image batch renders one frame per content (motion noise of length 1): that
    frame is exactly the first frame of the clip the same latents draw, for every G."""
    from components.families.video.nets import GENERATORS

    torch.manual_seed(0)
    zc, eps, labels = torch.randn(3, 8), torch.randn(3, 16, 4), torch.tensor([0, 1, 2])
    for cls in {GENERATORS[("mocogan", "sprite")], GENERATORS[("mocogan", "frames")]}:
        G = cls(8, 4, 3, 1, 32, 16, 8).eval()
        with torch.no_grad():
            torch.testing.assert_close(G(zc, eps[:, :1], labels)[:, 0], G(zc, eps, labels)[:, 0])


def test_every_generator_makes_clips_of_the_asked_length():
    from components.families.video.nets import GENERATORS

    for cls in set(GENERATORS.values()):
        G = cls(8, 4, 3, 1, 32, 16, 8).eval()
        out = G(torch.randn(2, 8), torch.randn(2, 16, 4), torch.tensor([0, 2]))
        assert out.shape == (2, 16, 1, 32, 32) and out.abs().max() <= 1


def test_minibatch_std_measures_the_spread_of_samples_from_other_clips():
    """The std channel: per group of every (N / group)-th sample, the feature std averaged;
    one value per group, the same for its members; a batch of identical samples reads 0 (up to
    the epsilon), so D can tell a G that draws one thing whatever z asks."""
    from components.families.video.nets import ImageDiscriminator, MinibatchStd

    torch.manual_seed(0)
    h = torch.randn(8, 3, 2, 2)
    out = MinibatchStd(4)(h)
    assert out.shape == (8, 4, 2, 2)
    torch.testing.assert_close(out[:, :3], h)
    for i in range(2):  # group i: samples i, i + 2, i + 4, i + 6
        members = h[i::2]
        want = members.var(0, unbiased=False).add(1e-8).sqrt().mean()
        for j in range(i, 8, 2):
            torch.testing.assert_close(out[j, 3], torch.full((2, 2), want.item()))
    same = MinibatchStd(4)(torch.ones(8, 3, 2, 2))[:, 3]
    assert same.max() < 1e-3
    assert MinibatchStd(4)(torch.randn(6, 3, 2, 2)).shape == (6, 4, 2, 2)  # groups of 3
    assert torch.equal(MinibatchStd(0)(h), h)  # off
    D = ImageDiscriminator(1, 32, 8, 3, mbstd=4)
    assert D(torch.randn(8, 1, 32, 32), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])).shape == (8,)


def _shape_clips(n: int, seed: int, T: int = 8, S: int = 32):
    """uint8 (n, T, 1, S, S): a square (class 0) or a plus (class 1) of 7 px moving at a
    constant random velocity of up to 2 px per frame on black (held at the walls)."""
    rng = np.random.default_rng(seed)
    clips, labels = np.zeros((n, T, 1, S, S), np.uint8), rng.integers(0, 2, n)
    for i in range(n):
        v = rng.uniform(-2, 2, 2)
        p0 = rng.uniform(0, S - 7, 2) - v * (T - 1) / 2  # the track's middle anywhere
        for t in range(T):
            y, x = np.clip(p0 + v * t, 0, S - 7).round().astype(int)
            if labels[i] == 0:
                clips[i, t, 0, y : y + 7, x : x + 7] = 255
            else:
                clips[i, t, 0, y + 3, x : x + 7] = 255
                clips[i, t, 0, y : y + 7, x + 3] = 255
    return clips, labels


def test_video_net_reads_the_class_and_the_motion_of_held_out_clips():
    """The video distance's feature net, trained on real clips only, must read what it is
    trained on in clips it has not seen: the object's class and its motion. (Its first version
    read the bundled test clips' class at chance: a distance in such features measures little.)"""
    from components.families.video.videonet import motion_targets, train_video_net

    train, train_y = _shape_clips(320, 0)
    test, test_y = _shape_clips(100, 1)
    net = train_video_net(train, train_y, 2, epochs=6)
    with torch.no_grad():
        h = net.features(torch.from_numpy(test))
        acc = (net.classes(h).argmax(1).numpy() == test_y).mean()
        m = net.motion(h).numpy()
    ref = motion_targets(train)
    want = (motion_targets(test) - ref.mean(0)) / ref.std(0)  # the net predicts standardised
    r2 = 1 - ((m - want) ** 2).mean(0) / want.var(0)
    assert acc >= 0.9, acc
    assert (r2[:2] >= 0.5).all() and r2[2] > 0.2, r2  # velocity (y, x), speed: above a constant


def test_probe_ranks_a_generator_that_draws_the_wrong_class_below_one_that_draws_the_asked(
    tmp_path,
):
    """A conditional probe measures class by class: two stand-in Gs that draw the same real
    clips, one of the asked class and one of the other, tie on the pooled frame distance but
    not on the per-class one (the swapped G must rank worse)."""
    from components.families.video.probe import VideoProbe

    clips, labels = _shape_clips(400, 2)
    spec = {"num_classes": 2, "z_content": 4, "z_motion": 2, "frames": 8}
    pool = {k: torch.from_numpy(clips[labels == k][:40]).float() / 127.5 - 1 for k in (0, 1)}

    class StandIn(torch.nn.Module):
        def __init__(self, swap: bool):
            super().__init__()
            self.swap = swap

        def forward(self, zc, eps, asked):
            drawn = (1 - asked) if self.swap else asked
            return torch.stack([pool[int(k)][i % 40] for i, k in enumerate(drawn)])

    probe = VideoProbe(clips, labels, spec, tmp_path, "shapes", seed=0)
    right, swapped = probe(StandIn(False)), probe(StandIn(True))
    pooled = sorted([right["probe_frame_fd"], swapped["probe_frame_fd"]])
    assert pooled[1] < 1.5 * pooled[0] + 1  # the same frames overall
    assert swapped["probe_fid"] > 5 * right["probe_fid"], (right, swapped)
