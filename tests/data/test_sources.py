"""Data: every source kind, and bad input that must fail with a clear message (no traceback)."""

from __future__ import annotations

import io
import tarfile
import zipfile

import numpy as np
import pytest

from components import validate
from components.errors import DataError
from tests import datagen

ingest_to = datagen.ingest_to


def test_rgb_class_folders_are_labelled_by_folder_and_resized(cfg, tmp_path):
    src = datagen.image_folder(tmp_path / "pets", classes=("cat", "dog"), rgb=True)
    _, manifest, data = ingest_to(cfg(src), tmp_path)
    assert manifest["class_names"] == ["cat", "dog"] and manifest["conditional"]
    assert data.images.shape == (60, 3, 28, 28)  # 20x24 -> shorter side 28, centre crop
    assert sorted(set(data.meta["label"])) == [0, 1]
    assert data.meta["file"].iloc[0] == f"{src}/cat/000.png"


def test_photo_crops_are_bundled_rgb_labelled_by_photo_and_deterministic():
    """The bundled RGB set (scikit-learn's two sample photos): square crops, one class per
    photo, the same crops on every call, never an all-flat image."""
    from components.datakinds.images.sources import BUNDLED, PhotoCrops

    src = BUNDLED["photo-crops"]()
    assert src.info.class_names == ["china", "flower"] and src.info.channels == 3
    first = next(src.chunks())
    again = next(PhotoCrops().chunks())
    x = np.stack(first.images)  # (256, 3, 256, 256) uint8
    assert x.shape[1:] == (3, PhotoCrops.CROP_SIZE, PhotoCrops.CROP_SIZE)
    assert np.array_equal(x, np.stack(again.images)) and (first.labels == 0).all()
    assert x.reshape(len(x), -1).std(1).min() > 2  # no blank crop
    labels = np.concatenate([c.labels for c in src.chunks()])
    assert len(labels) == src.info.n_images and np.bincount(labels).tolist() == [1000, 1000]


def test_flat_grayscale_folder_is_unlabeled(cfg, tmp_path):
    src = datagen.image_folder(tmp_path / "flat", classes=(), suffix=".bmp")
    _, manifest, data = ingest_to(cfg(src), tmp_path)
    assert not manifest["conditional"] and manifest["class_names"] == []
    assert data.images.shape == (30, 1, 28, 28) and (data.meta["label"] == -1).all()
    assert data.num_classes == 0


def test_channels_param_converts(cfg, tmp_path):
    src = datagen.image_folder(tmp_path / "rgb", rgb=True, suffix=".webp")
    _, _, data = ingest_to(cfg(src, channels=1), tmp_path)
    assert data.images.shape[1] == 1


@pytest.mark.parametrize("layout", ["NHW", "NHWC", "NCHW", "float01"])
def test_npz_layouts(cfg, tmp_path, layout):
    base = np.stack(datagen.blobs(20, 0, size=(28, 28)) + datagen.blobs(20, 1, size=(28, 28)))
    images = {
        "NHW": base,
        "NHWC": base[..., None],
        "NCHW": base[:, None],
        "float01": base.astype(np.float32) / 255.0,
    }[layout]
    path = tmp_path / "d.npz"
    np.savez(path, images=images, labels=np.repeat([3, 7], 20))
    _, manifest, data = ingest_to(cfg(path), tmp_path)
    assert data.images.shape == (40, 1, 28, 28)
    assert manifest["class_names"] == ["3", "7"]  # label values become class names
    assert np.abs(data.images[0].astype(int) - base[0].astype(int)).max() <= 1


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_archives_hold_an_image_folder(cfg, tmp_path, kind):
    folder = datagen.image_folder(tmp_path / "pets", rgb=True, suffix=".jpg")
    archive = (datagen.zip_of if kind == "zip" else datagen.tar_of)(folder, tmp_path / f"p.{kind}")
    _, manifest, data = ingest_to(cfg(archive), tmp_path)
    assert manifest["class_names"] == ["cat", "dog"] and data.images.shape == (60, 3, 28, 28)
    assert not list((tmp_path / "proj" / "data").glob(".extract-*"))  # scratch removed


# --- bad input: clear errors at ingest ------------------------------------------------------


def _evil_zip(path, name):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ok/a.png", b"x")
        zf.writestr(name, b"x")
    return path


def _evil_tar(path, name, link=False):
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo(name)
        if link:
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tf.addfile(info)
        else:
            info.size = 1
            tf.addfile(info, io.BytesIO(b"x"))
    return path


BAD_INGEST = {
    "missing path": (lambda t: t / "nope", "nor an existing path"),
    "empty folder": (lambda t: (t / "empty").mkdir() or t / "empty", "no image files found"),
    "npz without images": (
        lambda t: np.savez(t / "x.npz", pixels=np.zeros((3, 4, 4))) or t / "x.npz",
        "no array named 'images' (found: pixels)",
    ),
    "npz labels wrong length": (
        lambda t: (
            np.savez(t / "x.npz", images=np.zeros((6, 28, 28)), labels=np.arange(5)) or t / "x.npz"
        ),
        "'labels' has shape (5,); expected (6,), one per image",
    ),
    "npz negative labels": (
        lambda t: (
            np.savez(t / "x.npz", images=np.zeros((4, 28, 28)), labels=[0, 1, -2, 1]) or t / "x.npz"
        ),
        "'labels'[2] = -2 is negative",
    ),
    "zip traversal": (lambda t: _evil_zip(t / "e.zip", "../escape.png"), "outside the extraction"),
    "zip absolute": (lambda t: _evil_zip(t / "e.zip", "/tmp/abs.png"), "absolute path"),
    "tar traversal": (lambda t: _evil_tar(t / "e.tgz", "a/../../x.png"), "outside the extraction"),
    "tar link": (lambda t: _evil_tar(t / "e.tar.gz", "a/link.png", link=True), "is a link"),
    "not a data file": (lambda t: (t / "a.csv").write_text("x") and t / "a.csv", "unsupported"),
}


@pytest.mark.parametrize("case", list(BAD_INGEST))
def test_bad_input_fails_at_ingest(cfg, tmp_path, case):
    make, message = BAD_INGEST[case]
    src = make(tmp_path)
    with pytest.raises(DataError) as err:
        ingest_to(cfg(src), tmp_path)
    assert message in str(err.value)
    assert "ingest.source" in str(err.value)
    proj = tmp_path / "proj" / "data"
    assert not (proj / "processed").exists()  # nothing half-written
    assert not list(proj.glob(".*")) if proj.exists() else True
    assert not (tmp_path.parent / "escape.png").exists() and not (tmp_path / "escape.png").exists()


# --- bad input: caught by the validation gate -----------------------------------------------


def _with_files(t, extra):
    root = datagen.image_folder(t / "pets")
    for name, payload in extra.items():
        (root / name).write_bytes(payload)
    return root


def _truncated_png(t):
    root = datagen.image_folder(t / "pets")
    data = (root / "cat" / "001.png").read_bytes()
    (root / "cat" / "001.png").write_bytes(data[: len(data) // 2])
    return root


def _with_nan():
    images = np.random.default_rng(0).uniform(0, 255, (60, 28, 28))
    images[0, 3, 3] = np.nan
    return images


BAD_DATA = {
    "not an image": (
        lambda t: _with_files(t, {"dog/notes.png": b"hello"}),
        "unreadable files",
        "dog/notes.png",
    ),
    "truncated image": (_truncated_png, "unreadable files", "cat/001.png"),
    "npz with NaN": (
        lambda t: (
            np.savez(t / "x.npz", images=_with_nan(), labels=np.arange(60) % 2) or t / "x.npz"
        ),
        "no NaN or inf pixels",
        "x.npz[0]",
    ),
    "npz out of range": (
        lambda t: (
            np.savez(
                t / "x.npz",
                images=np.random.default_rng(0).uniform(0, 400, (60, 28, 28)),
                labels=np.arange(60) % 2,
            )
            or t / "x.npz"
        ),
        "pixel values <= 255",
        "x.npz[0]",
    ),
    "label outside named classes": (
        lambda t: datagen.image_folder(t / "pets", classes=("cat", "dog", "emu")),
        "labels in 0..1",
        "emu/000.png",
    ),
    "named class without images": (
        lambda t: datagen.image_folder(t / "pets"),
        "every class has images (cat, dog, bird): observed none with label(s) 2",
        None,
    ),
    "single class": (
        lambda t: datagen.image_folder(t / "pets", classes=("cat",)),
        "at least validate.min_classes",
        None,
    ),
    "below minimum size": (
        lambda t: datagen.image_folder(t / "pets", n=5),
        "dataset size >= validate.min_images",
        None,
    ),
    "all blank": (
        lambda t: (
            np.savez(
                t / "x.npz", images=np.full((60, 28, 28), 7, np.uint8), labels=np.arange(60) % 2
            )
            or t / "x.npz"
        ),
        "blank images",
        "x.npz[0]",
    ),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_fails_validation_with_example(cfg, smoke_params, tmp_path, case):
    make, check, example = BAD_DATA[case]
    classes = {
        "label outside named classes": ["cat", "dog"],
        "named class without images": ["cat", "dog", "bird"],
    }.get(case, [])
    layout, manifest, data = ingest_to(cfg(make(tmp_path), classes=classes), tmp_path)
    vcfg = smoke_params.validate_.model_copy(update={"min_images": 20})
    results = validate.validate_dataset(vcfg, data, layout)
    lines = [line for line in validate.failure_lines(results) if check in line]
    assert lines, validate.failure_lines(results)
    if example:
        assert example in lines[0]
    assert layout.validation_result.is_file() and (layout.validation / "data_docs").is_dir()
