"""Serving, text -> image: the smoke-trained ganops-text2image@champion behind a real
`mlflow models serve` process answers a REST {"dataframe_split": {text, seed}} request with
uint8 images identical to the Python pyfunc's, and an empty caption with one clear HTTP 400."""

from __future__ import annotations

import json
import urllib.error

import numpy as np
import pandas as pd
import pytest

from tests.conftest import post_frame, serve_model
from tests.text2image_fixtures import NAME

pytestmark = pytest.mark.slow

URI = f"models:/{NAME}@champion"


def test_rest_answers_with_the_pyfunc_images_and_names_an_empty_caption(t2i_registered):
    import mlflow

    frame = pd.DataFrame(
        {
            "text": ["a small red circle on the left", "a large blue square at the top"] * 2,
            "seed": [3, 3, 4, 4],
        }
    )
    with serve_model(URI) as url:
        images = np.asarray(post_frame(url, frame)["predictions"])
        again = np.asarray(post_frame(url, frame.iloc[[2]])["predictions"])
        with pytest.raises(urllib.error.HTTPError) as err:
            post_frame(url, pd.DataFrame({"text": ["a red circle", "   "], "seed": [0, 1]}))
        status, answer = err.value.code, json.loads(err.value.read())
    assert images.shape == (4, 3, 32, 32) and images.min() >= 0 and images.max() <= 255
    assert np.array_equal(images, images.astype(np.uint8))  # whole numbers in 0..255: uint8
    local = mlflow.pyfunc.load_model(URI).predict(frame)
    assert local.dtype == np.uint8
    np.testing.assert_array_equal(images.astype(np.uint8), local)  # the pyfunc's, bit for bit
    np.testing.assert_array_equal(again[0], images[2])  # the same (text, seed), the same image
    assert not np.array_equal(images[0], images[1])  # another caption, another image
    assert not np.array_equal(images[0], images[2])  # another seed, another image
    assert status == 400, answer
    assert answer["message"].endswith("Error: row 1: empty caption; give some words"), answer
