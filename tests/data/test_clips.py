"""The clips data kind: every format from a folder and from an archive (GIF class folders,
frame folders, video files, .npy/.npz including the (T, N, H, W) layout), windows split by
source video, the bundled Moving MNIST's unseen test digits, and each bad input's one line."""

from __future__ import annotations

import shutil
import tarfile

import numpy as np
import pytest

from components.layout import Layout
from tests.conftest import SMOKE_BY_FAMILY

SMOKE = SMOKE_BY_FAMILY["video"]
T = 8


def _params(*sets: str):
    from components.config import load_params

    return load_params(SMOKE, list(sets))


def moving_square(n_frames: int, seed: int, size: int = 24, colour=False) -> np.ndarray:
    """uint8 (n_frames, H, W[, 3]): a bright square bouncing on a dark background."""
    from components.datakinds.clips.sources import bounce_track

    rng = np.random.default_rng(seed)
    track = bounce_track(rng, n_frames, size - 6)
    frames = np.full((n_frames, size, size, 3) if colour else (n_frames, size, size), 20, np.uint8)
    for t, (y, x) in enumerate(np.rint(track).astype(int)):
        frames[t, y : y + 6, x : x + 6] = (250, 40, 40) if colour else 230
    return frames


def write_gif(path, frames: np.ndarray) -> None:
    from PIL import Image

    pics = [Image.fromarray(f) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    pics[0].save(path, save_all=True, append_images=pics[1:], duration=100, loop=0)


def gif_classes(root, per_class=6, n_frames=T) -> None:
    for c, name in enumerate(("ball", "box")):
        for i in range(per_class):
            write_gif(root / name / f"{i}.gif", moving_square(n_frames, 10 * c + i))


def _ingest(tmp_path, source, *sets):
    from components import ingest
    from components.dataset import load_dataset

    cfg = _params(f"ingest.source={source}", *sets).ingest
    layout = Layout(tmp_path / "project")
    manifest = ingest.run(cfg, layout)
    return manifest, load_dataset(layout)


def _validate(tmp_path, *sets):
    from components import validate

    cfg = _params(*sets).validate_
    layout = Layout(tmp_path / "project")
    return validate.validate_dataset(cfg, validate.load_dataset(layout), layout)


def test_gif_class_folders_from_folder_and_archives_give_the_same_clips(tmp_path):
    gif_classes(tmp_path / "gifs")
    manifest, data = _ingest(tmp_path, tmp_path / "gifs", "ingest.image_size=32")
    assert manifest["kind"] == "clips" and manifest["class_names"] == ["ball", "box"]
    assert data.images.shape == (12, T, 1, 32, 32) and manifest["conditional"]
    folder_clips = np.asarray(data.images).copy()
    shutil.make_archive(str(tmp_path / "gifs"), "zip", tmp_path, "gifs")
    with tarfile.open(tmp_path / "gifs.tar.gz", "w:gz") as tf:
        tf.add(tmp_path / "gifs", arcname="gifs")
    for archive in ("gifs.zip", "gifs.tar.gz"):
        again, data = _ingest(tmp_path, tmp_path / archive)
        np.testing.assert_array_equal(np.asarray(data.images), folder_clips)
        assert again["content_hash"] == manifest["content_hash"]


def test_frame_folders_and_video_files(tmp_path):
    import imageio_ffmpeg
    from PIL import Image

    frames = moving_square(T, 1, size=32)
    for c in ("a", "b"):
        for i in range(3):
            clip = tmp_path / "frames" / c / f"clip{i}"
            clip.mkdir(parents=True)
            for t, f in enumerate(moving_square(T, i + 7 * (c == "b"), size=32)):
                Image.fromarray(f).save(clip / f"{t:04d}.png")
    manifest, data = _ingest(tmp_path, tmp_path / "frames")
    assert data.images.shape == (6, T, 1, 32, 32) and manifest["class_names"] == ["a", "b"]
    np.testing.assert_array_equal(data.images[0, :, 0], moving_square(T, 0, size=32))

    (tmp_path / "videos").mkdir()
    writer = imageio_ffmpeg.write_frames(
        str(tmp_path / "videos" / "one.mp4"), (32, 32), fps=10, macro_block_size=1,
        output_params=["-crf", "0"],
    )  # fmt: skip
    writer.send(None)
    for f in frames:
        writer.send(np.ascontiguousarray(np.repeat(f[..., None], 3, axis=2)))
    writer.close()
    write_gif(tmp_path / "videos" / "two.gif", moving_square(T, 2, size=32))
    manifest, data = _ingest(tmp_path, tmp_path / "videos")
    assert manifest["n_clips"] == 2 and data.images.shape[1:] == (T, 1, 32, 32)
    # the H.264 round trip is near, not exact (yuv420p): within a few grey levels on average
    diff = np.abs(data.images[0, :, 0].astype(int) - frames.astype(int)).mean()
    assert diff < 8


def test_arrays_nthw_npz_and_the_moving_mnist_tnhw_layout(tmp_path):
    clips = np.stack([moving_square(T, i, size=32) for i in range(10)])  # (N, T, H, W)
    np.save(tmp_path / "clips.npy", clips)
    manifest, data = _ingest(tmp_path, tmp_path / "clips.npy")
    np.testing.assert_array_equal(data.images[:, :, 0], clips)
    np.save(tmp_path / "mnist_test_seq.npy", clips.swapaxes(0, 1))  # (T, N, H, W)
    again, data = _ingest(tmp_path, tmp_path / "mnist_test_seq.npy", "ingest.array_layout=tnhw")
    np.testing.assert_array_equal(data.images[:, :, 0], clips)
    assert again["clip_shape"] == manifest["clip_shape"] == [T, 1, 32, 32]
    labels = np.array(["x", "y"] * 5)
    np.savez(tmp_path / "set.npz", clips=clips[..., None], labels=labels)  # (N, T, H, W, 1)
    manifest, data = _ingest(tmp_path, tmp_path / "set.npz")
    assert manifest["class_names"] == ["x", "y"] and list(data.meta["label"][:2]) == [0, 1]


def test_long_videos_are_windows_that_stay_in_their_videos_split(tmp_path):
    for i in range(10):
        write_gif(tmp_path / "long" / f"v{i}.gif", moving_square(3 * T + 2, i))
    manifest, data = _ingest(tmp_path, tmp_path / "long", "ingest.test_fraction=0.3")
    assert manifest["n_clips"] == 30 and manifest["n_videos"] == 10  # 3 windows each
    per_video = data.meta.groupby("video")["split"].nunique()
    assert (per_video == 1).all()
    assert set(data.meta["split"]) == {"train", "test"}
    # windows are consecutive frames of the video: window 1 starts where window 0 ended
    full = moving_square(3 * T + 2, 0)
    first = data.meta.index[data.meta["video"] == "v0.gif"]
    assert len(first) == 3
    frames_back = np.concatenate([data.images[i, :, 0] for i in first])
    assert frames_back.shape[0] == 3 * T
    assert np.abs(frames_back.astype(int) - _resized(full[: 3 * T]).astype(int)).max() == 0


def _resized(frames):
    from components.ingest import resize_center_crop

    return np.stack([resize_center_crop(f[None], 32)[0] for f in frames])


def test_bundled_moving_mnist_tests_on_unseen_digit_images(tmp_path):
    manifest, data = _ingest(tmp_path, "moving_mnist")
    assert manifest["kind"] == "clips" and manifest["frames"] == T  # 16 drawn, cut in 2 windows
    assert manifest["n_clips"] == 2 * 200
    digit = data.meta["video"].str.extract(r"digit(\d+)-")[0].astype(int)
    train = set(digit[data.meta["split"] == "train"])
    test = set(digit[data.meta["split"] == "test"])
    assert test and train and not train & test
    assert all(r["success"] for r in _validate(tmp_path))


def test_bad_files_each_give_one_line(tmp_path, capsys):
    from components.errors import DataError

    gif_classes(tmp_path / "bad", per_class=4)
    (tmp_path / "bad" / "ball" / "broken.gif").write_bytes(b"GIF89a not really")
    write_gif(tmp_path / "bad" / "box" / "short.gif", moving_square(T - 3, 99))
    still = np.repeat(moving_square(1, 5), T, axis=0)
    still[:, 0, 0] = np.arange(T)  # one pixel flickers by a grey level: static all the same
    write_gif(tmp_path / "bad" / "box" / "still.gif", still)
    _ingest(tmp_path, tmp_path / "bad")
    results = {r["check"]: r for r in _validate(tmp_path, "validate.max_static_fraction=0.0")}
    failed = {k: r for k, r in results.items() if not r["success"]}
    unreadable = next(r for k, r in failed.items() if k.startswith("unreadable"))
    assert unreadable["example"] == "ball/broken.gif"
    frames = next(r for k, r in failed.items() if k.startswith(f"every clip has {T} frames"))
    assert frames["example"] == "box/short.gif"
    static = next(r for k, r in failed.items() if k.startswith("static clips"))
    assert static["example"] == "box/still.gif"

    np.savez(tmp_path / "two.npz", a=np.zeros((2, T, 8, 8)), b=np.zeros(2))
    with pytest.raises(DataError, match=r"two.npz: an .npz of clips needs an array named 'clips'"):
        _ingest(tmp_path, tmp_path / "two.npz")
    np.save(tmp_path / "flat.npy", np.zeros((4, 8, 8)))
    with pytest.raises(DataError, match=r"flat.npy: clips must be a numeric array"):
        _ingest(tmp_path, tmp_path / "flat.npy")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="unsupported file type for clips"):
        _ingest(tmp_path, tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no clips found"):
        _ingest(tmp_path, tmp_path / "empty")
    with pytest.raises(DataError, match="bundled image set"):
        _ingest(tmp_path, "mnist5k")


def test_an_image_params_file_refuses_moving_mnist(tmp_path):
    from components import ingest
    from components.config import load_params
    from components.errors import DataError
    from tests.conftest import SMOKE as IMAGE_SMOKE

    cfg = load_params(IMAGE_SMOKE, ["ingest.source=moving_mnist"]).ingest
    with pytest.raises(DataError, match="moving_mnist is a clip set"):
        ingest.run(cfg, Layout(tmp_path))
    assert not (tmp_path / "data" / "processed").exists()
