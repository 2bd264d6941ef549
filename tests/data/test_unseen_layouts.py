"""Data: image sets as users' tools write them, not as ganops would: OS litter, wrapper folders,
Windows zips, deep or rotated images, sets that come split. Each must ingest as meant, or fail
with one line naming the archive."""

from __future__ import annotations

import io
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from components import validate
from components.errors import DataError
from tests import datagen


def ingest_to(cfg, tmp_path):
    """(manifest, dataset) of the real ingest stage."""
    return datagen.ingest_to(cfg, tmp_path)[1:]


def _zip(path, files: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        for name, payload in files.items():
            zf.writestr(name, payload)
    return path


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _class_files(classes=("cat", "dog"), n=30, sep="/", prefix="") -> dict[str, bytes]:
    return {
        f"{prefix}{name}{sep}{i:03d}.png": _png(img)
        for k, name in enumerate(classes)
        for i, img in enumerate(datagen.blobs(n, k))
    }


def test_16_bit_images_are_scaled_not_clipped(cfg, tmp_path):
    root = tmp_path / "deep"
    root.mkdir()
    ramp = np.linspace(0, 65535, 28 * 28).reshape(28, 28).astype(np.uint16)
    for i in range(4):
        Image.fromarray(np.roll(ramp, i, axis=1)).save(root / f"{i}.png")  # 16-bit gray PNG
    _, data = ingest_to(cfg(root), tmp_path)
    img = data.images[0, 0].astype(int)
    assert img.min() <= 1 and img.max() >= 254  # the whole 0..255 range, not 255 everywhere
    assert (img == 255).mean() < 0.05
    assert abs(img.mean() - 127.5) < 3


def test_a_colour_class_after_many_gray_ones_makes_the_set_rgb(cfg, tmp_path):
    root = datagen.image_folder(tmp_path / "set", classes=("a", "b", "c"), n=120)
    datagen.image_folder(tmp_path / "set", classes=("z",), n=10, rgb=True)
    manifest, data = ingest_to(cfg(root), tmp_path)
    assert manifest["shape"][0] == 3 and data.images.shape[1] == 3


def test_gray_images_saved_as_rgb_stay_one_channel(cfg, tmp_path):
    root = tmp_path / "set"
    for k, name in enumerate(("a", "b")):
        (root / name).mkdir(parents=True)
        for i, img in enumerate(datagen.blobs(10, k)):
            Image.fromarray(np.repeat(img[..., None], 3, axis=2)).save(root / name / f"{i}.png")
    manifest, _ = ingest_to(cfg(root), tmp_path)
    assert manifest["shape"][0] == 1


@pytest.mark.parametrize("kind", ["generate", "split", "unpaired", "paired"])
def test_fixed_channels_read_no_header_for_them_and_auto_does(cfg, tmp_path, monkeypatch, kind):
    """`ingest.channels: 1 | 3` never asks what the files hold: no pass over every header."""
    import components.sources as sources

    root = tmp_path / "set"
    if kind in ("unpaired", "paired"):
        datagen.translation_folder(root, kind=kind, rgb_b=True)
    else:
        train = root / "train" if kind == "split" else root
        datagen.image_folder(train, classes=("a", "b"), n=12, rgb=True)
        if kind == "split":
            datagen.image_folder(root / "test", classes=("a", "b"), n=6, rgb=True)
    asked = []
    real = sources._colour_mode
    monkeypatch.setattr(sources, "_colour_mode", lambda path: asked.append(path) or real(path))

    def channels(manifest) -> int:
        return (
            max(d["channels"] for d in manifest["domains"].values())
            if "domains" in manifest
            else manifest["shape"][0]
        )

    fixed = datagen.ingest_to(cfg(root, channels=1, image_size=32), tmp_path / "fixed")[1]
    assert asked == [] and channels(fixed) == 1
    auto = datagen.ingest_to(cfg(root, channels="auto", image_size=32), tmp_path / "auto")[1]
    assert asked and channels(auto) == 3  # the colour was found by reading the files


def test_os_litter_and_other_files_are_left_out(cfg, tmp_path, capsys):
    files = _class_files()
    files["__MACOSX/cat/._000.png"] = b"\x00\x05\x16\x07 resource fork"
    files["Thumbs.db"] = b"litter"
    files["README.txt"] = b"pets, 2 classes"
    files["cat/.thumbnails/t.png"] = b"not really a png"
    files["dog/labels.csv"] = b"file,label"
    manifest, data = ingest_to(cfg(_zip(tmp_path / "pets.zip", files)), tmp_path)
    assert manifest["class_names"] == ["cat", "dog"] and len(data.images) == 60
    assert manifest["n_unreadable"] == 0
    assert "ignored 2 non-image file(s): README.txt, dog/labels.csv" in capsys.readouterr().out


def test_flat_zip_with_macos_resource_forks(cfg, tmp_path):
    files = {f"{i:03d}.png": _png(img) for i, img in enumerate(datagen.blobs(20, 0))}
    files.update({f"__MACOSX/._{i:03d}.png": b"\x00\x05\x16\x07" for i in range(20)})
    manifest, data = ingest_to(cfg(_zip(tmp_path / "flat.zip", files)), tmp_path)
    assert not manifest["conditional"] and len(data.images) == 20


def test_an_empty_class_folder_is_not_a_class(cfg, tmp_path, capsys):
    root = datagen.image_folder(tmp_path / "pets")
    (root / "bird").mkdir()
    manifest, _ = ingest_to(cfg(root), tmp_path)
    assert manifest["class_names"] == ["cat", "dog"]
    assert "no images in bird: not a class" in capsys.readouterr().out


def test_windows_zip_paths_keep_their_class_folders(cfg, tmp_path):
    files = _class_files(sep="\\", prefix="pets\\")
    manifest, data = ingest_to(cfg(_zip(tmp_path / "win.zip", files)), tmp_path)
    assert manifest["class_names"] == ["cat", "dog"] and len(data.images) == 60


def test_wrapper_folders_and_a_license_beside_them_are_looked_through(cfg, tmp_path):
    datagen.translation_folder(tmp_path / "datasets" / "horse2zebra", "unpaired")
    (tmp_path / "datasets" / "LICENSE").write_text("CC BY")
    archive = datagen.zip_of(tmp_path / "datasets", tmp_path / "h2z.zip")
    manifest, _ = ingest_to(cfg(archive, image_size=32), tmp_path)
    assert manifest["kind"] == "unpaired"


def test_a_folder_of_shards_of_one_class_stays_one_class(cfg, tmp_path):
    """Only a translation or split layout is looked for below wrappers: `faces/b1/`,
    `faces/b2/` under one folder are the class `faces`, as before."""
    datagen.image_folder(tmp_path / "set" / "faces", classes=("b1", "b2"), n=10)
    manifest, _ = ingest_to(cfg(tmp_path / "set"), tmp_path)
    assert manifest["class_names"] == ["faces"]


def test_layout_folder_names_match_in_any_case(cfg, tmp_path):
    root = datagen.translation_folder(tmp_path / "set", "unpaired")
    for name in ("trainA", "trainB", "testA", "testB"):
        (root / name).rename(root / name.capitalize())
    manifest, _ = ingest_to(cfg(root, image_size=32), tmp_path)
    assert manifest["kind"] == "unpaired"


def test_an_image_set_split_into_train_and_test_keeps_its_split(cfg, tmp_path):
    root = tmp_path / "cifar-like"
    datagen.image_folder(root / "train", n=30)
    datagen.image_folder(root / "test", n=7)
    manifest, data = ingest_to(cfg(root), tmp_path)
    assert manifest["kind"] == "generate" and manifest["class_names"] == ["cat", "dog"]
    assert (manifest["n_train"], manifest["n_test"]) == (60, 14)
    test_files = data.meta.loc[data.meta["split"] == "test", "file"]
    assert test_files.str.contains("/test/").all()


def test_exif_orientation_is_applied(cfg, tmp_path):
    root = tmp_path / "phone"
    root.mkdir()
    img = np.zeros((20, 40), np.uint8)
    img[:, :20] = 255  # left half white, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    for i in range(3):
        Image.fromarray(img).save(root / f"{i}.jpg", exif=exif, quality=95)
    _, data = ingest_to(cfg(root, image_size=28), tmp_path)
    meta = data.meta.iloc[0]
    assert (meta["raw_height"], meta["raw_width"]) == (40, 20)  # upright: taller than wide
    top, bottom = data.images[0, 0, :10].mean(), data.images[0, 0, -10:].mean()
    assert top > 200 and bottom < 50  # the white half is on top once rotated


def test_npz_labels_as_a_column(cfg, tmp_path):
    path = tmp_path / "keras.npz"
    labels = np.repeat([0, 1], 30)[:, None]  # (N, 1), as Keras' datasets ship them
    np.savez(path, images=np.stack(datagen.blobs(60, 0, size=(28, 28))), labels=labels)
    manifest, _ = ingest_to(cfg(path), tmp_path)
    assert manifest["class_names"] == ["0", "1"]


def _bad_crc_zip(t):
    path = _zip(t / "bad.zip", _class_files(n=3))
    data = bytearray(path.read_bytes())
    at = data.index(b"IDAT") + 8  # a byte inside the first image's stored pixels
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _truncated_tar(t):
    folder = datagen.image_folder(t / "pets", n=20)
    whole = datagen.tar_of(folder, t / "whole.tar.gz").read_bytes()
    (t / "cut.tar.gz").write_bytes(whole[: len(whole) // 2])
    return t / "cut.tar.gz"


@pytest.mark.parametrize("make", [_bad_crc_zip, _truncated_tar], ids=["bad CRC", "truncated"])
def test_a_damaged_archive_is_one_line(cfg, tmp_path, make):
    src = make(tmp_path)
    with pytest.raises(DataError) as err:
        ingest_to(cfg(src), tmp_path)
    text = str(err.value)
    assert text.startswith(f"ingest.source: {src}: not a readable archive") and "\n" not in text
    assert not (tmp_path / "proj" / "data" / "processed").exists()


def test_a_flat_colour_is_blank():
    flat = np.zeros((2, 3, 8, 8), np.uint8)
    flat[0] = np.array([200, 30, 30], np.uint8)[:, None, None]  # one solid red
    flat[1, 0] = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4  # texture in one channel
    std = validate.pixel_std(flat)
    assert std[0] == 0 and std[1] > 10


def test_a_tar_whose_entries_start_with_dot_slash(cfg, tmp_path):
    """A tar whose content sits under ./ (GNU tar's default) is one image folder."""
    path = tmp_path / "dot.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for name, payload in _class_files(n=10, prefix="./").items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    manifest, _ = ingest_to(cfg(path), tmp_path)
    assert manifest["class_names"] == ["cat", "dog"]


@pytest.mark.parametrize(
    ("code", "under_scratch", "said"),
    [
        ("ENOSPC", False, "cannot extract into the scratch folder {scratch}: No space left"),
        ("EACCES", True, "cannot extract into the scratch folder {scratch}: Permission denied"),
        ("ENAMETOOLONG", True, "not a readable archive ([Errno"),  # the entry's name, not the disk
    ],
)
def test_a_failing_disk_while_extracting_is_not_called_a_damaged_archive(
    tmp_path, monkeypatch, code, under_scratch, said
):
    import errno
    import os

    from components.sources import extract_archive

    src = _zip(tmp_path / "pets.zip", _class_files(n=3))
    scratch = tmp_path / "scratch"
    number = getattr(errno, code)

    written = str(scratch / "x.png") if under_scratch else None

    def failing(*args, **kwargs):
        raise OSError(number, os.strerror(number), written)

    monkeypatch.setattr(zipfile.ZipFile, "extract", failing)
    scratch.mkdir()
    with pytest.raises(DataError) as err:
        extract_archive(src, scratch)
    assert str(err.value).startswith(f"ingest.source: {src}: " + said.format(scratch=scratch))
