"""Results of an evaluation, without a backend: sample images and the regression scatter."""

from __future__ import annotations

import json

import numpy as np

from kbuilder.runtime.evaluation import (
    SAMPLE_IMAGE_BYTES,
    classification_results,
    decode_image,
    regression_results,
    sample_images,
)


def test_small_images_travel_with_their_predictions():
    rng = np.random.default_rng(0)
    x = rng.random((30, 8, 8, 1)).astype("float32") * 16 - 3  # any scale
    y = rng.integers(0, 3, 30)
    outputs = np.eye(3)[(y + (np.arange(30) % 4 == 0)) % 3]
    results = classification_results(y, outputs, ["a", "b", "c"], x=x)
    json.dumps(results)  # JSON-safe, for the project file
    samples = results["samples"]
    assert len(samples) == 20 and all("image" in s for s in samples)
    image = decode_image(samples[3]["image"])
    assert image.shape == (8, 8, 1) and image.dtype == np.uint8
    assert image.min() == 0 and image.max() == 255
    # The picture is the sample's, stretched to 0..255.
    expected = (x[3] - x[3].min()) / (x[3].max() - x[3].min()) * 255
    assert np.abs(image.astype(float) - expected).max() <= 0.5 + 1e-6
    assert samples[0]["true"] == ["a", "b", "c"][y[0]]


def test_images_stay_within_their_budget_and_other_inputs_have_none():
    big = np.zeros((40, 32, 32, 3), dtype="float32")
    assert len(sample_images(big, 20)) == SAMPLE_IMAGE_BYTES // (32 * 32 * 3)
    assert sample_images(np.zeros((10, 64), dtype="float32"), 5) == []  # tabular
    assert sample_images(np.zeros((10, 20, 7), dtype="float32"), 5) == []  # sequences
    results = classification_results(np.array([0, 1]), np.array([[0.9], [0.8]]), ["n", "y"])
    assert all("image" not in s for s in results["samples"])


def test_regression_keeps_points_for_a_scatter():
    y = np.linspace(0, 300, 700)
    results = regression_results(y, y * 1.01 + 2)
    scatter = results["scatter"]
    assert len(scatter["true"]) == len(scatter["predicted"]) == 500
    assert np.allclose(scatter["predicted"], y[:500] * 1.01 + 2, rtol=1e-4)
