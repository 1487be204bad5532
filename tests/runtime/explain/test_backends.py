"""The same explanation on every backend (issue 17): one small CNN saved as .keras,
loaded by JAX, TensorFlow and PyTorch in their own processes (at once), gives the same
Grad-CAM map and the same integrated gradients within 1e-4; and after global pooling
the element-wise Grad-CAM is the paper's channel-mean one."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

BACKENDS = ("jax", "tensorflow", "torch")

SCRIPT = r"""
import os, sys
import numpy as np
from kbuilder.runtime.explain import attribution as a
from kbuilder.runtime.inference import load_trained_model
model = load_trained_model(sys.argv[1], compile=False)
x = np.load(sys.argv[2])
outputs = a._predict(model, [x])
targets = a.predicted_targets(outputs)
with a.output_logits(model, a.scoring_for(outputs)) as scoring:  # as the worker does
    raw, maps = a.gradcam(model, [x], targets, scoring, a.gradcam_layer(model, None))
    ig, error = a.integrated_gradients(model, [x], targets, scoring, 16)
    sal = a.saliency(model, [x], targets, scoring)
# After global pooling, the element-wise Grad-CAM is the channel-mean one of its paper.
import keras
from kbuilder.runtime.explain.gradients import value_and_grads
keras.utils.set_random_seed(1)
inp = keras.Input((8, 8, 1))
h = keras.layers.Conv2D(5, 3, activation="relu", name="last")(inp)
h = keras.layers.Dense(4, activation="relu")(keras.layers.GlobalAveragePooling2D()(h))
pooled = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(h))
t = a.predicted_targets(a._predict(pooled, [x]))
with a.output_logits(pooled, a.scoring_for(a._predict(pooled, [x]))) as scoring:
    gap, _ = a.gradcam(pooled, [x], t, scoring, pooled.get_layer("last"))
    layer = pooled.get_layer("last").output
    maps_of = keras.Model(pooled.inputs, layer)
    head = keras.Model([*pooled.inputs, layer], pooled.outputs[0])
    A = np.asarray(keras.ops.convert_to_numpy(maps_of(x)))
    _, (g,) = value_and_grads(lambda ts: scoring.score(head([*ts[1:], ts[0]]), t), [A], [x])
    mean_weighted = np.maximum((A * g.mean(axis=(1, 2))[:, None, None, :]).sum(-1), 0)
np.savez(sys.argv[3], raw=raw, maps=maps, ig=ig[0], sal=sal[0], error=error,
         targets=targets, outputs=outputs, gap=gap, mean_weighted=mean_weighted)
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    import keras

    folder = tmp_path_factory.mktemp("backends")
    keras.utils.set_random_seed(3)
    inp = keras.Input((8, 8, 1), name="image")
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(inp)
    h = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_b")(h)
    h = keras.layers.Flatten()(h)
    out = keras.layers.Dense(3, activation="softmax", name="classes")(h)
    keras.Model(inp, out).save(folder / "tiny.keras")
    x = np.random.default_rng(0).uniform(0, 1, (3, 8, 8, 1)).astype("float32")
    np.save(folder / "x.npy", x)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    running = {b: subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(folder / "tiny.keras"), str(folder / "x.npy"),
         str(folder / f"{b}.npz")], env={**env, "KERAS_BACKEND": b},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for b in BACKENDS}
    for backend, process in running.items():
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, (backend, err[-2000:])
    return {b: dict(np.load(folder / f"{b}.npz")) for b in BACKENDS}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["raw", "maps", "ig", "sal"])
def test_every_backend_gives_the_same_explanation(results, name):
    reference = results["jax"][name]
    assert np.abs(reference).max() > 1e-4  # not trivially equal (all zeros)
    for backend in BACKENDS[1:]:
        assert results[backend][name].shape == reference.shape
        assert np.abs(results[backend][name] - reference).max() <= 1e-4, (backend, name)


@pytest.mark.slow
def test_integrated_gradients_add_up_to_the_score_difference(results):
    for backend in BACKENDS:
        assert float(results[backend]["error"]) < 1e-3, backend
        assert (results[backend]["targets"] == results["jax"]["targets"]).all()


@pytest.mark.slow
def test_after_global_pooling_gradcam_is_the_papers_channel_mean_form(results):
    for backend in BACKENDS:
        gap, mean_weighted = results[backend]["gap"], results[backend]["mean_weighted"]
        assert mean_weighted.max() > 0, backend  # not trivially equal
        assert np.abs(gap - mean_weighted).max() <= 1e-5 * mean_weighted.max(), backend
