"""`ganops translate` on a local translator folder (a tiny random-init G, see registry_worker):
folders, archives, single images, ingest's resize, and one error line per user mistake."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components import cli
from components.families.translation.translate import Translator
from components.ingest import resize_center_crop
from tests.registry_worker import make_translator


@pytest.fixture(scope="module")
def cyclegan(tmp_path_factory) -> Path:
    models = tmp_path_factory.mktemp("cyclegan") / "models"
    make_translator(models, "cyclegan", channels_b=3)  # A gray, B RGB
    return models


@pytest.fixture(scope="module")
def pix2pix(tmp_path_factory) -> Path:
    models = tmp_path_factory.mktemp("pix2pix") / "models"
    make_translator(models, "pix2pix")
    return models


def gray(size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)


def save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def translate(capsys, *args: str) -> tuple[int, str, str]:
    """Run `ganops translate ARGS` in process: (exit code, stdout, stderr)."""
    code = 0
    try:
        cli.main(["translate", *args])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_folder_with_subfolders_mirrors_paths_and_resizes_as_ingest(tmp_path, cyclegan, capsys):
    src = tmp_path / "in"
    small = save(src / "x.png", gray(32, 0))
    big = save(src / "sub" / "deeper" / "y.jpg", gray(50, 1))  # another size and format
    save(src / "sub" / "z.bmp", np.stack([gray(32, 2)] * 3, axis=-1))  # gray saved as RGB
    (src / "notes.txt").write_text("not an image: skipped")
    code, out, err = translate(
        capsys, "--model", str(cyclegan), "--direction", "a2b", str(src), str(tmp_path / "out")
    )
    assert code == 0, err
    assert "wrote 3 PNGs" in out
    written = sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*")
    )
    assert written == ["sub", "sub/deeper", "sub/deeper/y.png", "sub/z.png", "x.png"]
    for name in ("x.png", "sub/deeper/y.png", "sub/z.png"):
        with Image.open(tmp_path / "out" / name) as img:
            assert (img.format, img.mode, img.size) == ("PNG", "RGB", (32, 32))  # B is RGB

    # the 50 px input went through ingest's resize: same output as translating that by hand
    G = Translator(cyclegan)
    decoded = np.asarray(Image.open(big))[None]  # (1, 50, 50) as PIL decodes the JPEG
    expected = G(resize_center_crop(decoded, 32)[None], "a2b")[0].transpose(1, 2, 0)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out/sub/deeper/y.png")), expected)
    assert np.array_equal(  # and a model-sized input untouched
        np.asarray(Image.open(tmp_path / "out/x.png")),
        G(np.asarray(Image.open(small))[None, None], "a2b")[0].transpose(1, 2, 0),
    )


def test_zip_and_single_image_and_b2a(tmp_path, cyclegan, capsys):
    archive = tmp_path / "in.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, seed in (("a/1.png", 0), ("a/b/2.png", 1), ("3.png", 2)):
            buf = io.BytesIO()
            Image.fromarray(np.stack([gray(40, seed)] * 3, axis=-1)).save(buf, "PNG")
            zf.writestr(name, buf.getvalue())
    code, _, err = translate(
        capsys, "--model", str(cyclegan), "--direction", "b2a", str(archive), str(tmp_path / "out")
    )
    assert code == 0, err
    written = sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png")
    )
    assert written == ["3.png", "a/1.png", "a/b/2.png"]
    with Image.open(tmp_path / "out" / "a/b/2.png") as img:
        assert (img.mode, img.size) == ("L", (32, 32))  # b2a: RGB -> gray A

    one = save(tmp_path / "one.jpg", gray(32, 3))
    code, _, err = translate(
        capsys, "--model", str(cyclegan), "--direction", "a2b", str(one), str(tmp_path / "single")
    )
    assert code == 0, err
    assert [p.name for p in (tmp_path / "single").iterdir()] == ["one.png"]


@pytest.mark.parametrize(
    ("model", "direction", "message"),
    [
        ("cyclegan", "x2y", "error: --direction 'x2y': one of ('a2b', 'b2a')"),
        ("pix2pix", "b2a", "error: --direction b2a: a pix2pix model translates a2b only"),
        ("generator", "a2b", "not a translator (a noise generator; no translator.json)"),
    ],
)
def test_one_error_line_and_no_output(
    tmp_path, cyclegan, pix2pix, capsys, model, direction, message
):
    folders = {"cyclegan": cyclegan, "pix2pix": pix2pix, "generator": tmp_path / "gen"}
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "generator.json").write_text("{}")
    save(tmp_path / "in" / "x.png", gray(32, 0))
    dst = tmp_path / "out"
    code, _, err = translate(
        capsys,
        "--model",
        str(folders[model]),
        "--direction",
        direction,
        str(tmp_path / "in"),
        str(dst),
    )
    assert code != 0 and message in err
    assert len(err.strip().splitlines()) == 1, err
    assert not dst.exists()


def test_unreadable_file_is_named_and_dst_never_half_written(tmp_path, cyclegan, capsys):
    src = tmp_path / "in"
    for i in range(40):  # more than one batch, so some PNGs were written before the bad file
        save(src / f"{i:02d}.png", gray(32, i))
    (src / "zz" / "broken.png").parent.mkdir()
    (src / "zz" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    dst = tmp_path / "out"
    code, _, err = translate(
        capsys, "--model", str(cyclegan), "--direction", "a2b", str(src), str(dst)
    )
    assert code == 1
    assert (
        err.strip()
        == f"error: {src / 'zz' / 'broken.png'}: not a decodable image (PNG, JPEG, BMP, WebP ...)"
    )
    assert not dst.exists() and [p.name for p in tmp_path.iterdir()] == ["in"]  # no temp left


def test_colour_image_for_a_gray_model_is_one_error(tmp_path, cyclegan, capsys):
    colour = np.zeros((32, 32, 3), dtype=np.uint8)
    colour[..., 0] = 200  # red: R, G, B differ
    save(tmp_path / "in" / "red.png", colour)
    code, _, err = translate(
        capsys,
        "--model",
        str(cyclegan),
        "--direction",
        "a2b",
        str(tmp_path / "in"),
        str(tmp_path / "out"),
    )
    assert code == 1 and "red.png: a colour image, but this model's input is 1-channel" in err


def test_existing_dst_is_refused_and_help_says_how_inputs_are_resized(tmp_path, cyclegan, capsys):
    save(tmp_path / "in" / "x.png", gray(32, 0))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    code, _, err = translate(
        capsys,
        "--model",
        str(cyclegan),
        "--direction",
        "a2b",
        str(tmp_path / "in"),
        str(tmp_path / "out"),
    )
    assert code == 1 and "exists and is not an empty folder" in err
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"

    code, out, _ = translate(capsys, "--help")
    assert code == 0 and "resized as ingest does" in " ".join(out.split())


def test_dst_inside_src_and_a_damaged_model_or_archive_are_one_line(tmp_path, cyclegan, capsys):
    src = tmp_path / "in"
    save(src / "x.png", gray(32, 0))
    args = ("--model", str(cyclegan), "--direction", "a2b")
    code, _, err = translate(capsys, *args, str(src), str(src / "out"))
    assert code == 1 and "inside SRC" in err and not (src / "out").exists()

    (tmp_path / "bad.zip").write_bytes(b"PK but not a zip")
    code, _, err = translate(capsys, *args, str(tmp_path / "bad.zip"), str(tmp_path / "o1"))
    assert code == 1
    assert err.strip() == f"error: {tmp_path / 'bad.zip'}: not a readable archive (not a zip file)"

    broken = tmp_path / "broken"
    broken.mkdir()
    for f in cyclegan.iterdir():
        (broken / f.name).write_bytes(f.read_bytes()[: 40 if f.suffix == ".safetensors" else None])
    mine = ("--model", str(broken), "--direction", "a2b", str(src))
    code, _, err = translate(capsys, *mine, str(tmp_path / "o2"))
    assert code == 1 and "G_AB.safetensors: not loadable" in err and "Traceback" not in err
    (broken / "translator.json").write_text("{ damaged")
    code, _, err = translate(capsys, *mine, str(tmp_path / "o3"))
    assert code == 1 and "translator.json: damaged" in err


def test_export_to_a_folder_is_one_line(tmp_path, cyclegan, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["export", "--model", str(cyclegan), "--out", str(tmp_path)])
    assert done.value.code == 2
    assert "a folder; name the file to write" in capsys.readouterr().err


def test_export_says_when_the_suffix_is_not_the_formats(tmp_path, cyclegan, capsys):
    out = tmp_path / "G.onnx"
    with pytest.raises(SystemExit) as done:
        cli.main(["export", "--model", str(cyclegan), "--format", "torchscript", "--out", str(out)])
    assert done.value.code == 0
    assert "writing torchscript to" in capsys.readouterr().out and out.is_file()
