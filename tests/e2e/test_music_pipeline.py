"""The music family end to end: the Prefect flow on the smoke profile (24 bundled chorales)
registers `ganops-music`; its pyfunc gives MIDI bytes and rolls (the same seed, the same
window; the MIDI reads back to the roll), `generate` writes .mid + .png + .wav +
metadata.jsonl, `mlflow models serve` answers over REST with the pyfunc's output, and export
matches G."""

from __future__ import annotations

import base64
import json
import shutil
import urllib.request

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SMOKE_BY_FAMILY, start_server, use_store

pytestmark = pytest.mark.slow
URI = "models:/ganops-music@champion"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, prefect_harness):
    """The flow run once: (project root, its result, the store URI)."""
    import mlflow

    from flows.pipeline import ganops_pipeline

    root = tmp_path_factory.mktemp("music")
    shutil.copy(SMOKE_BY_FAMILY["music"], root / "params.yaml")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    uri = use_store(mp, f"sqlite:///{root / 'mlflow.db'}")
    result = ganops_pipeline(params_file="params.yaml")
    yield root, result, uri
    mp.undo()
    mlflow.set_tracking_uri(None)


def _roll_of(midi: bytes, spec: dict) -> np.ndarray:
    from components.datakinds.scores.roll import midi_to_roll

    return midi_to_roll(midi, spec["tracks"], spec["window_steps"], spec["steps_per_beat"],
                        spec["pitch_low"], spec["pitch_high"])  # fmt: skip


def test_flow_registers_a_music_champion(pipeline):
    import mlflow

    root, _, uri = pipeline
    mlflow.set_tracking_uri(uri)
    version = mlflow.MlflowClient().get_model_version_by_alias("ganops-music", "champion")
    assert version.tags["family"] == "music" and version.tags["arch"] == "musegan"
    metrics = json.loads((root / "reports" / "metrics.json").read_text())
    for key in ("fd", "c2st", "stats_gap", "pc_hist_tv", "ioi_hist_tv", "duration_hist_tv"):
        for sfx in ("", "_floor", "_random", "_shuffled"):
            assert np.isfinite(metrics[f"{key}{sfx}"]), f"{key}{sfx}"
    assert 0.0 <= metrics["copy_rate"] <= 1.0 and "empty_bar_rate_t3_real" in metrics
    assert (root / "reports" / "evaluation" / "generated.png").is_file()
    assert (root / "data" / "processed" / "preview.png").is_file()


def test_pyfunc_gives_midi_that_reads_back_to_its_roll(pipeline):
    import mlflow

    _, _, uri = pipeline
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(URI)
    spec = model.metadata.metadata
    out = model.predict(pd.DataFrame({"seed": [3, 3, 4]}))
    assert list(out.columns) == ["seed", "midi", "roll"]
    assert out["midi"][0] == out["midi"][1]  # the same seed, the same window
    for midi, roll in zip(out["midi"], out["roll"], strict=True):
        roll = np.asarray(roll, dtype=np.uint8)
        assert roll.shape == (4, 64, 48)
        np.testing.assert_array_equal(_roll_of(midi, spec), roll)
    with pytest.raises(Exception, match=r"row 1: seed -2 is not a whole number >= 0"):
        model.predict(pd.DataFrame({"seed": [1, -2]}))


def test_generate_writes_midi_pictures_audio_and_metadata(pipeline, tmp_path):
    import wave

    import mlflow

    from components.generate import generate

    _, _, uri = pipeline
    mlflow.set_tracking_uri(uri)
    out = tmp_path / "songs"
    manifest = generate(URI, 3, out, seed=5)
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert manifest["n_midi"] == 3 and [r["file_name"] for r in rows] == [
        "0000.mid", "0001.mid", "0002.mid",
    ]  # fmt: skip
    model = mlflow.pyfunc.load_model(URI)
    again = model.predict(pd.DataFrame({"seed": [r["seed"] for r in rows]}))
    for row, roll in zip(rows, again["roll"], strict=True):
        midi = (out / row["file_name"]).read_bytes()
        np.testing.assert_array_equal(_roll_of(midi, model.metadata.metadata), np.asarray(roll))
        with wave.open(str(out / row["audio"])) as w:
            assert w.getframerate() == 22050 and w.getnframes() > 22050
        assert (out / row["picture"]).read_bytes()[:4] == b"\x89PNG"


def test_rest_serving_answers_with_the_pyfunc_output(pipeline, monkeypatch):
    import mlflow

    from tests.e2e.test_register import _free_port

    _, _, uri = pipeline
    use_store(monkeypatch, uri)
    port = _free_port()
    args = ["mlflow", "models", "serve", "-m", URI, "--env-manager", "local",
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    server = start_server(args, f"http://127.0.0.1:{port}/ping")
    try:
        body = json.dumps({"dataframe_split": {"columns": ["seed"], "data": [[7], [8]]}})
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())["predictions"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    local = mlflow.pyfunc.load_model(URI).predict(pd.DataFrame({"seed": [7, 8]}))
    assert [row["seed"] for row in answer] == [7, 8]
    for row, midi, roll in zip(answer, local["midi"], local["roll"], strict=True):
        assert base64.b64decode(row["midi"]) == midi
        np.testing.assert_array_equal(np.asarray(row["roll"]), np.asarray(roll))


def test_export_matches_g(pipeline, tmp_path):
    from components.export import export
    from components.layout import Layout

    root, _, _ = pipeline
    assert export(Layout(root).models, "torchscript", tmp_path / "G.pt") < 1e-4
