"""Data: translation sets (unpaired, paired) through ingest and the real GX gate.

Layouts from folders and archives, with and without class sub-folders; the bundled
mnist2mnistm, mnist2digits and digits-edges; and each layout or pairing fault giving its one line.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from components import ingest, sources, validate
from components.datakinds.pairs import sources as pair_sources
from components.errors import DataError
from components.layout import read_json
from tests import datagen

N = 12  # images per class folder (datagen.translation_folder)


@pytest.fixture
def cfg(smoke_params):
    def make(source, **kw):
        return smoke_params.ingest.model_copy(
            update={"source": str(source), "image_size": 32, **kw}
        )

    return make


@pytest.fixture
def vcfg(smoke_params):
    return smoke_params.validate_.model_copy(update={"min_images": 20})


ingest_to = datagen.ingest_to


def pack(folder, how, tmp_path):
    if how == "zip":
        return datagen.zip_of(folder, tmp_path / "set.zip")
    if how == "tar.gz":
        return datagen.tar_of(folder, tmp_path / "set.tar.gz")
    return folder


# --- layouts -------------------------------------------------------------------------------

LAYOUTS = {  # kind, class folders, packed as, B in RGB
    "unpaired folder, classes": ("unpaired", ("0", "1"), "folder", False),
    "unpaired zip, flat, RGB B": ("unpaired", (), "zip", True),
    "paired folder, flat": ("paired", (), "folder", False),
    "paired zip, classes, RGB B": ("paired", ("0", "1"), "zip", True),
    "paired tar.gz, classes": ("paired", ("0", "1"), "tar.gz", False),
}


@pytest.mark.parametrize("case", list(LAYOUTS))
def test_translation_layouts_ingest(cfg, tmp_path, case):
    kind, classes, how, rgb_b = LAYOUTS[case]
    folder = datagen.translation_folder(tmp_path / "set", kind, classes=classes, rgb_b=rgb_b)
    layout, manifest, data = ingest_to(cfg(pack(folder, how, tmp_path)), tmp_path)
    per_split = N * max(1, len(classes))
    channels = {"A": 1, "B": 3 if rgb_b else 1}  # by content: gray A in RGB files is 1-channel
    assert manifest["kind"] == data.kind == kind and not manifest["conditional"]
    assert data.num_classes == 0  # translation labels are never training conditions
    for d in ("A", "B"):
        spec = manifest["domains"][d]
        assert spec["channels"] == channels[d] and spec["class_names"] == list(classes)
        assert spec["n_train"] == spec["n_test"] == per_split
        for split in ("train", "test"):
            images, labels = data.domain(d, split)
            assert images.shape == (per_split, channels[d], 32, 32) and images.dtype == np.uint8
            expected = sorted(range(len(classes))) if classes else [-1]
            assert sorted(set(labels.tolist())) == expected
    if rgb_b:  # A and B differ in channels: one array per domain
        assert manifest["storage"] == {"A": "images_A.npy", "B": "images_B.npy"}
        assert data.images is None and not layout.images.exists()
    else:
        assert manifest["storage"] == "images.npy" and data.images.shape[0] == 4 * per_split
    assert {"domain", "pair"} <= set(data.meta.columns)
    if kind == "paired":
        a, b, labels = data.pairs("test")
        assert len(a) == len(b) == len(labels) == per_split
        assert a.mean() < 100 < b.mean()  # A is the left half (dark), B the right (inverted)
        meta = data.meta
        for pair in (0, per_split + 3):  # both halves of a pair come from one file
            rows = meta[meta["pair"] == pair]
            assert sorted(rows["domain"]) == ["A", "B"] and rows["file"].nunique() == 1
        assert (meta["raw_width"] == 2 * meta["raw_height"]).all()
    else:
        assert (data.meta["pair"] == -1).all()
        with pytest.raises(DataError, match="has no pairs"):
            data.pairs("train")
    with pytest.raises(DataError, match="use Dataset.domain"):
        data.split("train")


def test_translation_set_passes_the_gate(cfg, vcfg, tmp_path):
    folder = datagen.translation_folder(tmp_path / "set", "paired", rgb_b=True)
    layout, _, data = ingest_to(cfg(folder), tmp_path)
    results = validate.validate_dataset(vcfg, data, layout)
    assert validate.failure_lines(results) == [] and validate.warning_lines(results) == []
    checks = {r["check"] for r in results}
    assert "every paired image is 2:1 (width = 2 x height: A left, B right)" in checks
    assert "domain B: every image has 3 channel(s)" in checks
    verdict = read_json(layout.validation_result)
    assert verdict["success"] and verdict["kind"] == "paired" and verdict["warnings"] == []


def test_generate_sets_are_unchanged(cfg, tmp_path):
    folder = datagen.image_folder(tmp_path / "pets")
    _, manifest, data = ingest_to(cfg(folder, image_size=28), tmp_path)
    assert manifest["kind"] == data.kind == "generate" and manifest["conditional"]
    assert (data.meta["domain"] == "").all() and (data.meta["pair"] == -1).all()
    images, labels = data.split("train")
    assert images.shape[1:] == (1, 28, 28) and len(images) == len(labels) == 48
    with pytest.raises(DataError, match="no domains"):
        data.domain("A", "train")


# --- bundled sets --------------------------------------------------------------------------


def test_mnist2mnistm_is_built_the_same_every_time_and_differs_in_channels(cfg, vcfg, tmp_path):
    layout, manifest, data = ingest_to(cfg("mnist2mnistm"), tmp_path / "one")
    _, again, _ = ingest_to(cfg("mnist2mnistm"), tmp_path / "two")
    assert manifest["content_hash"] == again["content_hash"]  # same seed, same content
    domains = manifest["domains"]
    assert manifest["kind"] == "unpaired" and manifest["class_names"] == list("0123456789")
    assert (domains["A"]["n_train"], domains["A"]["n_test"]) == (4000, 1000)
    assert (domains["B"]["n_train"], domains["B"]["n_test"]) == (4000, 1000)
    a, a_labels = data.domain("A", "train")
    b, b_labels = data.domain("B", "train")
    assert a.shape[1:] == (1, 32, 32) and b.shape[1:] == (3, 32, 32)  # grey vs colour
    assert np.bincount(a_labels).tolist() == np.bincount(b_labels).tolist() == [400] * 10
    # one split for both domains: no test digit is in either train split (A's digits are B's)
    a_test, a_test_labels = data.domain("A", "test")
    _, b_test_labels = data.domain("B", "test")
    assert (a_test_labels == b_test_labels).all()
    seen = {img.tobytes() for img in a}
    assert not any(img.tobytes() in seen for img in a_test)
    # B is colour on texture, not a grey digit: its channels differ and its background varies
    assert np.abs(b[:, 0].astype(int) - b[:, 1]).mean() > 4  # a grey image has 0
    corner = (slice(None), slice(None), slice(0, 4), slice(0, 4))
    assert a[corner].std() < 1 and b[corner].std() > 10
    results = validate.validate_dataset(vcfg, data, layout)
    assert validate.failure_lines(results) == [] and validate.warning_lines(results) == []


def test_mnistm_blend_is_the_absolute_difference_with_a_photo_patch():
    """|patch - digit|: where the digit is 0 the pixel is the (dimmed) photo's, where it is 255
    the photo's negative; the same generator seed gives the same patches; every full stroke
    stands at least 255 * (1 - 2 * gain) above its background (MNIST-M's blend loses the
    stroke on mid-grey patches: the reason for the gain)."""
    digits = np.zeros((2, 28, 28), np.float32)
    digits[1] = 255
    one = pair_sources.mnistm_blend(digits, np.random.default_rng(3))
    two = pair_sources.mnistm_blend(digits, np.random.default_rng(3))
    assert one.shape == (2, 3, 28, 28) and one.dtype == np.uint8 and (one == two).all()
    other = pair_sources.mnistm_blend(digits[::-1], np.random.default_rng(3))  # same patches
    total = one[0].astype(int) + other[0]  # photo + its negative (each rounded once)
    assert (np.abs(total - 255) <= 1).all()
    contrast = other[0].astype(int) - one[0]  # the stroke minus its background, same patch
    assert contrast.min() >= np.floor(255 * (1 - 2 * pair_sources.MNISTM_PHOTO_GAIN)) - 1


def test_mnist2digits_is_two_labelled_domains(cfg, vcfg, tmp_path):
    layout, manifest, data = ingest_to(cfg("mnist2digits"), tmp_path)
    domains = manifest["domains"]
    assert manifest["kind"] == "unpaired" and manifest["class_names"] == list("0123456789")
    assert (domains["A"]["n_train"], domains["A"]["n_test"]) == (4000, 1000)
    assert (domains["B"]["n_train"], domains["B"]["n_test"]) == (1438, 359)  # 20% per class
    a, a_labels = data.domain("A", "test")
    b, b_labels = data.domain("B", "test")
    assert a.shape[1:] == b.shape[1:] == (1, 32, 32)
    assert set(a_labels) == set(b_labels) == set(range(10))

    def blocky(x):  # 8x8 digits upscaled by nearest into the middle 24 px: 3x3 blocks
        middle = x[..., 4:28, 4:28]
        blocks = np.repeat(np.repeat(middle[..., ::3, ::3], 3, -2), 3, -1)
        return (middle == blocks).all(axis=(1, 2, 3))

    assert blocky(b).all() and not blocky(a).any()  # a real domain gap
    assert (b[..., :4, :] == 0).all() and (b[..., 28:, :] == 0).all()  # framed like MNIST
    results = validate.validate_dataset(vcfg, data, layout)
    assert validate.failure_lines(results) == [] and validate.warning_lines(results) == []


def test_digits_edges_pairs_an_outline_with_its_digit(cfg, tmp_path):
    layout, manifest, data = ingest_to(cfg("digits-edges"), tmp_path)
    assert manifest["kind"] == "paired" and manifest["storage"] == "images.npy"
    edges, digits, labels = data.pairs("train")
    assert edges.shape == digits.shape == (4000, 1, 32, 32) and len(labels) == 4000
    assert np.bincount(labels).tolist() == [400] * 10  # stratified split, pairs kept whole
    assert ((data.meta["raw_width"] == 56) & (data.meta["raw_height"] == 28)).all()
    # pair 0 is MNIST-5k's first digit: A its Sobel edge map, B the digit, each resized
    digit = sources._mnist()[0][0].reshape(1, 28, 28)  # (1, 28, 28) float 0..255
    edge = np.round(pair_sources.sobel_edges(digit)).clip(0, 255)
    meta = data.meta
    for domain, want in (("A", edge), ("B", digit)):
        row = meta.index[(meta["pair"] == 0) & (meta["domain"] == domain)][0]
        resized = ingest.resize_center_crop(want.astype(np.uint8), 32)  # (1, 32, 32)
        assert np.array_equal(data.images[row], resized)
    assert (edges != digits).mean() > 0.1


# --- faults: one clear line each -----------------------------------------------------------


def _partial(t, names):
    for name in names:
        datagen.image_folder(t / "set" / name, classes=(), n=3)
    return t / "set"


BAD_LAYOUT = {
    "unpaired, two folders": (
        lambda t: _partial(t, ["trainA", "testB"]),
        "folder",
        "set: not a dataset layout: found folders testB/, trainA/ (unpaired needs trainA/ "
        "trainB/ testA/ testB/; paired needs train/ test/",
    ),
    "paired without test, zipped": (
        lambda t: _partial(t, ["train", "notes"]),
        "zip",
        "set.zip: not a dataset layout: found folders notes/, train/ (unpaired needs",
    ),
    "empty testB": (
        lambda t: (_partial(t, ["trainA", "trainB", "testA"]) / "testB").mkdir() or t / "set",
        "folder",
        "set/testB: no image files found",
    ),
    "class folders in trainA, loose files in testA": (
        lambda t: _partial(t, ["trainA/0", "trainB", "testA", "testB"]),
        "folder",
        "trainA/ has class folders but testA/ holds loose images",
    ),
}


@pytest.mark.parametrize("case", list(BAD_LAYOUT))
def test_bad_layout_is_one_line_at_ingest(cfg, tmp_path, case):
    make, how, message = BAD_LAYOUT[case]
    src = pack(make(tmp_path), how, tmp_path)
    with pytest.raises(DataError) as err:
        ingest_to(cfg(src), tmp_path)
    text = str(err.value)
    assert text.startswith("ingest.source: ") and message in text and "\n" not in text
    assert not (tmp_path / "proj" / "data" / "processed").exists()  # nothing half-written
    assert not list((tmp_path / "proj" / "data").glob(".*"))  # no temp folders left


def _square_in_paired(t):
    root = datagen.translation_folder(t / "set", "paired")
    Image.fromarray(datagen.blobs(1, 0, size=(24, 24))[0]).save(root / "train" / "1" / "004.png")
    return root, "every paired image is 2:1", "set/train/1/004.png", {}


def _shared_train_test(t):
    root = datagen.translation_folder(t / "set", "unpaired")
    shutil.copy(root / "trainB" / "0" / "002.png", root / "testB" / "0" / "copy.png")
    # the copy is also a duplicate (2 of 96 rows); tolerate that here to see this line alone
    return (
        root,
        "no image in both train and test (content hash)",
        "set/trainB/0/002.png",
        {"max_duplicate_fraction": 0.05},
    )


def _few_in_b(t):
    root = datagen.translation_folder(t / "set", "unpaired")
    for f in sorted((root / "trainB").rglob("*.png"))[5:]:
        f.unlink()
    return root, "domain B: readable train images >= validate.min_images (20): observed 5", None, {}


def _unreadable_in_test_b(t):
    root = datagen.translation_folder(t / "set", "unpaired")
    (root / "testB" / "1" / "bad.png").write_bytes(b"not a png")
    return root, "unreadable files <= validate.max_unreadable_fraction", "set/testB/1/bad.png", {}


BAD_DATA = {
    "paired image not 2:1": _square_in_paired,
    "image in train and test": _shared_train_test,
    "too few images in domain B": _few_in_b,
    "unreadable file in testB": _unreadable_in_test_b,
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_translation_data_fails_the_gate_with_one_line(cfg, vcfg, tmp_path, case):
    root, check, example, overrides = BAD_DATA[case](tmp_path)
    layout, _, data = ingest_to(cfg(root), tmp_path)
    results = validate.validate_dataset(vcfg.model_copy(update=overrides), data, layout)
    failed = validate.failure_lines(results)
    assert len(failed) == 1, failed  # this fault, and only this fault
    assert failed[0].startswith(f"FAILED {check}")
    if example:
        assert failed[0].endswith(f"{example})")
    assert not read_json(layout.validation_result)["success"]


def test_same_domain_warns_but_passes(cfg, vcfg, tmp_path):
    root = datagen.translation_folder(tmp_path / "set", "unpaired")
    for split in ("train", "test"):  # B is a copy of A
        shutil.rmtree(root / f"{split}B")
        shutil.copytree(root / f"{split}A", root / f"{split}B")
    layout, _, data = ingest_to(cfg(root), tmp_path)
    results = validate.validate_dataset(vcfg, data, layout)
    assert validate.failure_lines(results) == []
    (warning,) = validate.warning_lines(results)
    assert warning.startswith("WARNING A and B are different domains: <= 50% of A-train images")
    assert "24 of 24 rows" in warning
    verdict = read_json(layout.validation_result)
    assert verdict["success"] and verdict["warnings"] == [warning]
