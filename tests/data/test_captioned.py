"""Data: captioned images (the `captioned` kind) through the real ingest stage and GX gate.

Every layout (imagefolder with metadata.jsonl / metadata.csv / a train-test split, side-car
captions, WebDataset tar shards) from a folder and from .zip / .tar.gz archives; each caption
fault giving its one line; the vocabulary from train captions only; truncation; the bundled
`shapes` (deterministic, held-out pairs in test only); and the caption rules of the gate.
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from PIL import Image

from components import validate
from components.datakinds.captioned import sources as captioned_sources
from components.datakinds.captioned import text
from components.datakinds.captioned.read import read
from components.errors import DataError
from components.families.text2image.options import (
    Text2ImageIngestConfig,
    Text2ImageValidateConfig,
)
from components.layout import read_json
from tests import datagen

N = 12  # images per folder


@pytest.fixture
def cfg(smoke_params):
    """Text2ImageIngestConfig: the smoke ingest section, 32 px, 8 words a caption."""

    def make(source, **kw):
        keys = smoke_params.ingest.model_dump() | {"image_size": 32, "max_caption_words": 8}
        return Text2ImageIngestConfig(**(keys | {"source": str(source), **kw}))

    return make


@pytest.fixture
def vcfg(smoke_params):
    """Text2ImageValidateConfig: the smoke validate section for sets of a few dozen images."""

    def make(**kw):
        keys = smoke_params.validate_.model_dump() | {"min_images": 10}
        extra = {"min_caption_words": 2, "max_caption_words": 12, "max_test_oov_fraction": 0.2}
        return Text2ImageValidateConfig(**(keys | extra | kw))

    return make


ingest_to = datagen.ingest_to


# --- synthetic captioned sets --------------------------------------------------------------

WORDS = ("bright", "square", "noise", "dark", "corner", "speckled")


def captions_of(stem: str) -> list[str]:
    """The two captions written for image `stem` (s003: "a dark square on noise", ...)."""
    i = int(stem[1:])
    return [f"a {WORDS[i % 6]} square on noise", f"square number {i % 4}, {WORDS[(i + 1) % 6]}"]


def png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def images(n: int, start: int = 0) -> dict[str, bytes]:
    """stem -> PNG bytes of n distinct 12x12 RGB images, stems s{start}..."""
    blobs = datagen.blobs(n, 0, size=(12, 12), rgb=True, seed=start)
    return {f"s{start + i:03d}": png(img) for i, img in enumerate(blobs)}


def write_jsonl(root: Path, n=N, start=0, sub="") -> Path:
    """An imagefolder with metadata.jsonl (text as a list, or a string for odd images);
    images in `sub`/ when given (file_name names the sub-folder)."""
    (root / sub).mkdir(parents=True, exist_ok=True)
    rows = []
    for stem, data in images(n, start).items():
        (root / sub / f"{stem}.png").write_bytes(data)
        caps = captions_of(stem)
        name = f"{sub}/{stem}.png" if sub else f"{stem}.png"
        rows += [{"file_name": name, "text": caps if int(stem[1:]) % 2 == 0 else caps[0]}]
        if int(stem[1:]) % 2:  # a second row for the same file adds its second caption
            rows.append({"file_name": name, "text": caps[1]})
    lines = [json.dumps(r) for r in rows]
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def write_csv(root: Path, n=N, start=0) -> Path:
    """An imagefolder with metadata.csv (one row per caption; the commas are quoted)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["file_name", "text", "source"])
        for stem, data in images(n, start).items():
            (root / f"{stem}.png").write_bytes(data)
            out.writerows([f"{stem}.png", c, "test"] for c in captions_of(stem))
    return root


def write_split(root: Path) -> Path:
    """train/ with metadata.jsonl, test/ with metadata.csv: the split is kept."""
    write_jsonl(root / "train", n=N)
    write_csv(root / "test", n=6, start=100)
    return root


def write_sidecar(root: Path, n=N, start=0) -> Path:
    """x.png beside x.txt (a caption per line, a blank line between), in two sub-folders."""
    for i, (stem, data) in enumerate(images(n, start).items()):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{stem}.png").write_bytes(data)
        (folder / f"{stem}.txt").write_text("\n\n".join(captions_of(stem)) + "\n")
    (root / "README.txt").write_text("captioned blobs")
    return root


def tar_members(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tf:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    return path


def shard_members(n: int, start: int) -> dict[str, bytes]:
    members = {}
    for stem, data in images(n, start).items():
        members[f"{stem}.png"] = data
        members[f"{stem}.txt"] = "\n".join(captions_of(stem)).encode()
        members[f"{stem}.json"] = b"{}"  # other fields of a sample are left alone
    return members


def write_shards(root: Path, n=N) -> Path:
    """Two WebDataset-style shards of key.png + key.txt (+ key.json)."""
    root.mkdir(parents=True, exist_ok=True)
    tar_members(root / "shard-000.tar", shard_members(n // 2, 0))
    tar_members(root / "shard-001.tar", shard_members(n - n // 2, n // 2))
    return root


def pack(folder: Path, how: str, tmp_path: Path) -> Path:
    if how == "zip":
        return datagen.zip_of(folder, tmp_path / "set.zip")
    if how == "tar.gz":
        return datagen.tar_of(folder, tmp_path / "set.tar.gz")
    return folder


def stem_of(file: str) -> str:
    return PurePosixPath(file).stem


# --- layouts -------------------------------------------------------------------------------

LAYOUTS = {  # writer, manifest layout, images in train / test when the set comes split
    "imagefolder jsonl": (write_jsonl, "imagefolder", None),
    "imagefolder jsonl, images/ sub-folder": (
        lambda r: write_jsonl(r, sub="images"),
        "imagefolder",
        None,
    ),
    "imagefolder csv": (write_csv, "imagefolder", None),
    "imagefolder train/ test/": (write_split, "imagefolder", (N, 6)),
    "side-car": (write_sidecar, "sidecar", None),
    "webdataset shards": (write_shards, "webdataset", None),
}


@pytest.mark.parametrize("how", ["folder", "zip", "tar.gz"])
@pytest.mark.parametrize("case", list(LAYOUTS))
def test_captioned_layouts_ingest(cfg, tmp_path, case, how):
    write, layout_name, split = LAYOUTS[case]
    folder = write(tmp_path / "set")
    _, manifest, data = ingest_to(cfg(pack(folder, how, tmp_path)), tmp_path)
    n = sum(split) if split else N
    assert manifest["kind"] == data.kind == "captioned" and manifest["layout"] == layout_name
    assert manifest["n_images"] == n and manifest["n_captions"] == 2 * n
    assert manifest["shape"] == [3, 32, 32] and not manifest["conditional"]
    assert manifest["class_names"] == [] and data.num_classes == 0
    if split:
        assert (manifest["n_train"], manifest["n_test"]) == split
    else:  # split by image with ingest.test_fraction
        assert (
            manifest["n_test"] == round(0.2 * N) and manifest["n_train"] == N - manifest["n_test"]
        )
    assert (data.meta["label"] == -1).all() and data.meta["readable"].all()
    for s in ("train", "test"):
        rows, tokens, texts = read(data).split(s)
        assert tokens.shape == (len(rows), 8) and tokens.dtype == np.int32
        assert (data.meta["split"].to_numpy()[rows] == s).all()
        for row, caption in zip(rows, texts, strict=True):  # each caption beside its image
            assert caption in captions_of(stem_of(data.meta["file"].iloc[row]))
        images_, labels = data.split(s)
        assert len(images_) == len(set(rows)) and (labels == -1).all()
    table = read(data).table
    assert table.groupby("image").size().eq(2).all()  # both captions of every image
    assert table.groupby("image")["split"].nunique().eq(1).all()  # one split per image


def test_imagefolder_zip_without_a_wrapper_keeps_its_metadata_beside_images(cfg, tmp_path):
    """metadata.jsonl at the zip's top beside one images/ folder: not looked through."""
    folder = write_jsonl(tmp_path / "set", sub="images")
    with zipfile.ZipFile(tmp_path / "flat.zip", "w") as zf:
        for f in sorted(folder.rglob("*")):
            zf.write(f, f.relative_to(folder))
    _, manifest, _ = ingest_to(cfg(tmp_path / "flat.zip"), tmp_path)
    assert manifest["layout"] == "imagefolder" and manifest["n_images"] == N


def test_a_single_tar_shard_is_extracted_as_side_car_captions(cfg, tmp_path):
    shard = tar_members(tmp_path / "shard.tar", shard_members(N, 0))
    _, manifest, data = ingest_to(cfg(shard), tmp_path)
    assert manifest["layout"] == "sidecar" and manifest["n_captions"] == 2 * N
    assert read(data).table["text"].iloc[0] in captions_of(stem_of(data.meta["file"].iloc[0]))


def test_image_folders_with_other_txt_files_stay_image_sets(cfg, tmp_path):
    root = datagen.image_folder(tmp_path / "pets", n=10)
    (root / "cat" / "notes.txt").write_text("not a caption: no image is called notes")
    _, manifest, data = ingest_to(cfg(root), tmp_path)
    assert manifest["kind"] == "generate" and manifest["class_names"] == ["cat", "dog"]
    with pytest.raises(DataError, match="a generate dataset has no captions"):
        read(data)


# --- faults: one clear line each -----------------------------------------------------------


def _append(root: Path, name: str, line: str | bytes) -> int:
    """Add one line to root/name; its line number."""
    with open(root / name, "ab") as f:
        f.write(line.encode() if isinstance(line, str) else line)
    return len((root / name).read_bytes().splitlines())


def _cut_json(root: Path) -> None:
    lines = (root / "metadata.jsonl").read_text().splitlines()
    lines[2] = lines[2][:-5]
    (root / "metadata.jsonl").write_text("\n".join(lines))


def _rename_column(root: Path) -> None:
    text_ = (root / "metadata.csv").read_text().replace("file_name,", "image,", 1)
    (root / "metadata.csv").write_text(text_)


def _shard_without(member: str):
    def drop(root: Path) -> None:
        members = shard_members(3, 200)
        del members[member]
        tar_members(root / "shard-002.tar", members)

    return drop


def _row(**row) -> str:
    return json.dumps(row) + "\n"


# case -> (the layout written into set/, how it is broken, the fault's line; {n}: the line
# number _append returned)
FAULTS = {
    "broken JSON line": (write_jsonl, _cut_json, "set/metadata.jsonl: line 3: not valid JSON ("),
    "metadata.csv not UTF-8": (
        write_csv,
        lambda r: _append(r, "metadata.csv", "s000.png,un caf\u00e9 noir,x\n".encode("latin-1")),
        "set/metadata.csv: not UTF-8 text (byte ",
    ),
    "side-car caption not UTF-8": (
        write_sidecar,
        lambda r: (r / "b" / "s002.txt").write_bytes("un caf\u00e9\n".encode("latin-1")),
        "set/b/s002.txt: not UTF-8 text",
    ),
    "metadata row naming a missing image": (
        write_jsonl,
        lambda r: _append(r, "metadata.jsonl", _row(file_name="gone.png", text="a lost caption")),
        "metadata.jsonl: line {n}: gone.png does not exist (no caption without its image)",
    ),
    "image without a metadata row": (
        write_jsonl,
        lambda r: (r / "extra.png").write_bytes(next(iter(images(1, 50).values()))),
        "set: 1 image(s) without a caption (no row in metadata.jsonl): extra.png",
    ),
    "image without its .txt": (
        write_sidecar,
        lambda r: (r / "a" / "s001.txt").unlink(),
        "set: 1 image(s) without a caption (x.png needs x.txt beside it): a/s001.png",
    ),
    "image with only empty captions": (
        write_sidecar,
        lambda r: (r / "a" / "s003.txt").write_text("\n  \n\n"),
        "set/a/s003.png: an image without a caption (only empty ones)",
    ),
    "jsonl row without text": (
        write_jsonl,
        lambda r: _append(r, "metadata.jsonl", _row(file_name="s001.png", caption="the wrong key")),
        'set/metadata.jsonl: line {n}: no "text" (every row needs file_name, text)',
    ),
    "csv without a file_name column": (
        write_csv,
        _rename_column,
        'set/metadata.csv: no "file_name" column (found: image, text, source)',
    ),
    "shard image without a caption": (
        write_shards,
        _shard_without("s201.txt"),
        "set/shard-002.tar: 1 image(s) without a caption (key.png needs key.txt): s201.png",
    ),
    "shard caption without its image": (
        write_shards,
        _shard_without("s202.png"),
        "set/shard-002.tar: s202.txt: a caption without its image",
    ),
}


def _broken(case: str, t: Path) -> tuple[Path, str]:
    """(the folder set/ written and broken as FAULTS[case] says, the line its ingest gives)."""
    write, breaks, message = FAULTS[case]
    root = write(t / "set")
    return root, message.format(n=breaks(root))


@pytest.mark.parametrize("case", list(FAULTS))
def test_caption_faults_are_one_line(cfg, tmp_path, case):
    root, message = _broken(case, tmp_path)
    with pytest.raises(DataError) as err:
        ingest_to(cfg(root), tmp_path)
    line = str(err.value)
    assert line.startswith("ingest.source: ") and message in line and "\n" not in line
    assert not (tmp_path / "proj" / "data" / "processed").exists()  # nothing half-written


def test_a_fault_inside_an_archive_names_the_archive(cfg, tmp_path):
    root, _ = _broken("broken JSON line", tmp_path)
    with pytest.raises(DataError, match=r"set\.zip/metadata\.jsonl: line 3: not valid JSON"):
        ingest_to(cfg(pack(root, "zip", tmp_path)), tmp_path)


def test_captioned_data_needs_the_text_to_image_params(smoke_params, tmp_path):
    plain = smoke_params.ingest.model_copy(update={"source": str(write_csv(tmp_path / "set"))})
    with pytest.raises(DataError) as err:
        ingest_to(plain, tmp_path)
    assert "captioned data needs the text-to-image params (params-text2image.yaml" in str(err.value)
    assert "\n" not in str(err.value)


# --- text: vocabulary and truncation -------------------------------------------------------


def test_words_encode_and_decode():
    assert text.words("A small, red circle -- isn't it? 3rd_place") == [
        "a", "small", "red", "circle", "isn't", "it", "3rd", "place",
    ]  # fmt: skip
    tokens = text.build_vocab(["b a", "a c", "c a"])
    assert tokens == ["<pad>", "<unk>", "a", "c", "b"]  # by count, then alphabetically
    ids, oov, cut = text.encode("A zebra, a C", tokens, 6)
    assert ids == [2, 1, 2, 3, 0, 0] and oov == ["zebra"] and not cut
    ids, oov, cut = text.encode("c b a zebra b", text.lookup(tokens), 3)
    assert ids == [3, 4, 2] and oov == ["zebra"] and cut  # the first 3 words, always
    assert text.decode(ids, tokens) == "c b a"
    vocab_json = {"tokens": tokens, "max_words": 3}  # as the family reads vocab.json
    assert text.encode("c b a zebra b", vocab_json, 3) == (ids, oov, cut)


def _split_set(root: Path, train: list[str], test: list[str]) -> Path:
    """train/ and test/ imagefolders, one image per caption."""
    for split, texts, start in (("train", train, 0), ("test", test, 100)):
        folder = root / split
        folder.mkdir(parents=True)
        rows = []
        for (stem, data), caption in zip(images(len(texts), start).items(), texts, strict=True):
            (folder / f"{stem}.png").write_bytes(data)
            rows.append(json.dumps({"file_name": f"{stem}.png", "text": caption}))
        (folder / "metadata.jsonl").write_text("\n".join(rows))
    return root


def test_the_vocabulary_comes_from_train_captions_only(cfg, tmp_path):
    root = _split_set(tmp_path / "set", ["b a", "a c", "c a"], ["a zebra", "c b"])
    layout, manifest, data = ingest_to(cfg(root), tmp_path)
    assert read(data).vocab == {"tokens": ["<pad>", "<unk>", "a", "c", "b"], "max_words": 8}
    assert read_json(layout.processed / "vocab.json") == read(data).vocab
    assert manifest["vocab_size"] == 5 and manifest["test_oov_fraction"] == 0.25  # 1 of 4 words
    _, tokens, texts = read(data).split("test")
    assert texts == ["a zebra", "c b"] and tokens[0].tolist() == [2, 1, 0, 0, 0, 0, 0, 0]
    assert read(data).table["n_oov"].tolist() == [0, 0, 0, 1, 0]


def test_truncation_keeps_the_first_words_and_is_counted(cfg, tmp_path):
    long = "one two three four five six seven"
    train = [long, "one two", long, "three four five six seven six"]
    root = _split_set(tmp_path / "set", train, ["one two three four"])
    _, manifest, data = ingest_to(cfg(root, max_caption_words=4), tmp_path)
    assert manifest["n_truncated"] == 3 and manifest["max_words"] == 4
    table = read(data).table
    assert table["truncated"].tolist() == [True, False, True, True, False]
    assert table["n_words"].tolist() == [7, 2, 7, 6, 4]  # before truncation
    tokens = read(data).vocab["tokens"]
    decoded = [text.decode(ids, tokens) for ids in read(data).tokens]
    first_four = "one two three four"
    assert decoded == [first_four, "one two", first_four, "three four five six", first_four]


# --- the bundled shapes --------------------------------------------------------------------


def test_shapes_is_deterministic_holds_out_pairs_and_passes_the_gate(cfg, vcfg, tmp_path):
    layout, manifest, data = ingest_to(cfg("shapes", max_caption_words=12), tmp_path / "a")
    assert (manifest["n_train"], manifest["n_test"]) == (6000, 1200)
    assert manifest["layout"] == "bundled" and manifest["shape"] == [3, 32, 32]
    values = manifest["attributes"]
    assert list(values) == ["shape", "colour", "size", "position", "background"]
    assert values["colour"] == ["red", "green", "blue", "yellow", "purple"]
    held_out = {(h["colour"], h["shape"]) for h in manifest["heldout"]}
    assert len(held_out) == 3
    captions = read(data)
    train, test = captions.attributes("train", ids=False), captions.attributes("test", ids=False)
    pairs = {split: set(zip(t["colour"], t["shape"], strict=True)) for split, t in
             (("train", train), ("test", test))}  # fmt: skip
    assert not pairs["train"] & held_out and held_out <= pairs["test"]
    assert len(pairs["train"]) == 12 and pairs["train"] <= pairs["test"]  # seen pairs in test too
    assert not train["heldout"].any() and test["heldout"].sum() == 600
    ids = read(data).attributes()  # every image; value ids: classifier targets
    assert len(ids) == 7200 and ids.loc[test.index[0], "colour"] == values["colour"].index(
        test["colour"].iloc[0]
    )
    assert ids[list(values)].dtypes.map(lambda d: d.kind == "i").all()
    assert 3 <= read(data).table.groupby("image").size().min() <= 5
    assert read(data).table.groupby("image").size().max() == 5
    assert manifest["test_oov_fraction"] == 0 and manifest["n_truncated"] == 0
    # a caption names its image's attributes
    rows, _, texts = read(data).split("test")
    row = test.loc[rows[0]]
    assert row["colour"] in texts[0] and row["shape"] in texts[0]
    results = validate.validate_dataset(vcfg(max_caption_words=12), data, layout)
    assert validate.failure_lines(results) == []
    again = ingest_to(cfg("shapes", max_caption_words=12), tmp_path / "b")[1]
    assert again["content_hash"] == manifest["content_hash"]


def test_shapes_scenes_follow_the_seed():
    a, b = captioned_sources.Shapes(0), captioned_sources.Shapes(0).seeded(1)
    assert a.captions[:50] != b.captions[:50]
    assert captioned_sources.Shapes(0).captions[:50] == a.captions[:50]
    assert (a.splits == b.splits).all()  # the split is the construction's


# --- the gate ------------------------------------------------------------------------------


def _too_long(t):
    root = write_sidecar(t / "set", n=20)
    (root / "b" / "s004.txt").write_text("a caption " + " ".join(["word"] * 20))
    return root, "every caption has <= validate.max_caption_words (12) words", "set/b/s004.png"


def _wordless(t):
    root = write_sidecar(t / "set", n=20)
    (root / "a" / "s005.txt").write_text("...\n")
    return root, "every image has a caption with words", "set/a/s005.png"


def _new_words_in_test(t):
    train = [f"{w} square on noise" for w in WORDS * 3]
    test = ["zebra giraffe okapi", "a bright square"]
    return _split_set(t / "set", train, test), "test-caption words outside the train vocab", None


BAD = {
    "a caption too long": _too_long,
    "a caption without words": _wordless,
    "test captions in new words": _new_words_in_test,
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_captions_fail_the_gate_naming_the_rule(cfg, vcfg, tmp_path, case):
    root, check, example = BAD[case](tmp_path)
    layout, _, data = ingest_to(cfg(root), tmp_path)
    results = validate.validate_dataset(vcfg(), data, layout)
    failed = validate.failure_lines(results)
    assert failed and failed[0].startswith(f"FAILED {check}"), failed
    if example:
        assert failed[0].endswith(f"{example})")
    assert not read_json(layout.validation_result)["success"]
    verdict = read_json(layout.validation_result)
    assert verdict["kind"] == "captioned"


def test_the_gate_needs_the_text_to_image_params(cfg, smoke_params, tmp_path):
    layout, _, data = ingest_to(cfg(write_csv(tmp_path / "set")), tmp_path)
    with pytest.raises(DataError, match=r"validate\.min_caption_words: captioned data needs"):
        validate.validate_dataset(smoke_params.validate_, data, layout)
