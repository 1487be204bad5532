"""Explanations of models that really learned (issue 17), computed by a JAX worker as the
app and the CLI ask for them: Grad-CAM points at the bright square whose position decides
the class;
permutation importance ranks first the one column that decides the label; a node's output
is Keras's own sub-model output; every result says what it is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kbuilder.runtime import protocol as p
from tests.runtime.explain import learned


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return learned.models(tmp_path_factory)


@pytest.fixture(scope="module")
def worker():
    from kbuilder.runtime.client import Worker

    worker = Worker("jax")
    yield worker
    worker.shutdown()


def ask(worker, request):
    from kbuilder.runtime.client import TrainingRun

    result = TrainingRun(worker, request).wait()
    assert not isinstance(result, p.Failed), result.reason
    return result


@pytest.mark.slow
def test_gradcam_puts_its_mass_on_the_square(models, worker, tmp_path):
    folder = models.folder
    arrays = np.load(folder / "square.npz")
    np.save(tmp_path / "x.npy", arrays["x"])
    result = ask(worker, p.StartExplanation("gc", str(folder / "square.keras"), "gradcam",
                                            str(tmp_path / "out"), str(tmp_path / "x.npy"),
                                            samples=len(arrays["x"])))
    e = result.explanation
    assert e["method"] == "gradcam" and e["layer"] == "last_conv" and e["backend"] == "jax"
    assert e["targets"] == arrays["y"].tolist()  # it predicts them all right
    maps = np.load(e["files"]["maps"])
    # Most of the mass on the square (grown by a pixel each side, 25 of 256 pixels: 10 %)
    # over the batch, in a map made at the layer's half resolution and upsampled; and
    # nearly all of it in the square's quadrant, the class.
    shares = learned.square_shares(maps, arrays["where"])
    assert shares.mean() > 0.5 and np.median(shares) > 0.5, shares
    assert (shares > 0.25).all(), shares  # not a few maps carrying the others
    assert learned.quadrant_shares(maps, arrays["where"]).mean() > 0.8
    assert (tmp_path / "out" / "gradcam_0.png").is_file()
    described = json.loads((tmp_path / "out" / "explanation.json").read_text())
    assert described["layer"] == "last_conv" and "Grad-CAM" in described["description"]


@pytest.mark.slow
def test_permutation_ranks_the_deciding_column_first(models, worker, tmp_path):
    folder = models.folder
    result = ask(worker, p.StartExplanation(
        "perm", str(folder / "table.keras"), "permutation", str(tmp_path),
        data={"source": f"csv:{folder / 'table.csv'}", "target": "y"}, samples=0))
    e = result.explanation
    ranked = sorted(zip(e["features"], e["importance"], strict=True), key=lambda r: -r[1])
    assert ranked[0][0] == "c2", ranked
    assert ranked[0][1] > 0.3 and all(v < 0.05 for _, v in ranked[1:]), ranked
    assert e["metric"] == "accuracy" and e["metric_value"] > 0.9
    assert e["data"].startswith("samples 1-") and "validation split" in e["data"]
    assert e["repeats"] == 5 and e["seed"] == 0
    assert (tmp_path / "importance.csv").read_text().splitlines()[1].startswith("c2,")


@pytest.mark.slow
def test_integrated_gradients_of_a_table_state_baseline_and_steps(models, worker, tmp_path):
    folder = models.folder
    result = ask(worker, p.StartExplanation(
        "ig", str(folder / "table.keras"), "integrated-gradients", str(tmp_path),
        data={"source": f"csv:{folder / 'table.csv'}", "target": "y"}, samples=4, steps=64))
    e = result.explanation
    assert e["baseline"].startswith("zeros") and e["steps"] == 64
    assert e["completeness_error"] < 0.05
    assert e["features"] == ["c0", "c1", "c2", "c3", "c4"]
    assert int(np.argmax(np.abs(e["importance"]))) == 2 or \
        abs(e["importance"][2]) == max(abs(v) for v in e["importance"])


@pytest.mark.slow
def test_a_nodes_output_is_keras_sub_model_output(models, worker, tmp_path):
    import keras

    folder = models.folder
    x = np.load(folder / "square.npz")["x"][:3]
    np.save(tmp_path / "x.npy", x)
    result = ask(worker, p.StartActivations("act", "conv", str(tmp_path / "out"),
                                            str(folder / "square.keras"),
                                            inputs_path=str(tmp_path / "x.npy"), samples=3))
    stats = result.activations
    assert stats["shape"] == [learned.SIZE, learned.SIZE, 8] and stats["kind"] == "image"
    model = keras.saving.load_model(folder / "square.keras")
    expected = keras.Model(model.inputs, model.get_layer("conv").output).predict(x, verbose=0)
    values = np.load(stats["files"]["values"])
    assert np.abs(values - expected).max() < 1e-5
    assert stats["zero_fraction"] == pytest.approx(float((expected == 0).mean()), abs=1e-6)
    assert stats["mean"] == pytest.approx(float(expected.mean()), rel=1e-4)
    assert Path(stats["files"]["picture"]).is_file()
    assert stats["weights"] == "the trained model square.keras"
