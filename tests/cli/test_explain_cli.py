"""`kbuilder explain` and `kbuilder activations` (issue 17): PNG heat maps and a JSON
saying what they are; a layer's output as NPY and PNG; mistakes in one sentence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kbuilder import cli
from tests.runtime.explain import learned


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return learned.models(tmp_path_factory)


@pytest.fixture
def images(models, tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.load(models.folder / "square.npz")["x"][:2])
    return path


@pytest.mark.slow
def test_explain_gradcam_writes_overlays_and_says_what_they_are(models, images, tmp_path,
                                                                capsys):
    out = tmp_path / "out"
    assert cli.main(["explain", str(models.folder / "square.keras"), "--input", str(images),
                     "--method", "gradcam", "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert "gradcam on jax, samples 1-2 of x.npy." in said and "Layer: last_conv." in said
    described = json.loads((out / "explanation.json").read_text())
    assert described["method"] == "gradcam" and described["layer"] == "last_conv"
    assert described["samples"] == 2 and len(described["targets"]) == 2
    from PIL import Image

    for i in range(2):
        with Image.open(out / f"gradcam_{i}.png") as picture:
            assert picture.mode == "RGB" and picture.width >= learned.SIZE
    assert np.load(out / "gradcam.npy").shape == (2, learned.SIZE, learned.SIZE)


@pytest.mark.slow
def test_activations_write_npy_and_png(models, images, tmp_path, capsys):
    out = tmp_path / "act"
    assert cli.main(["activations", str(models.folder / "square.keras"), "--layer", "conv",
                     "--input", str(images), "--samples", "2", "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert said.startswith("conv (Conv2D) on jax, samples 1-2 of x.npy: output "
                           f"[{learned.SIZE}, {learned.SIZE}, 8] per sample (image).")
    assert "zeros" in said and "units zero on every sample" in said
    assert np.load(out / "conv.npy").shape == (2, learned.SIZE, learned.SIZE, 8)
    assert (out / "conv.png").is_file() and (out / "conv.json").is_file()


def test_permutation_wants_labelled_data(tmp_path, capsys):
    model, rows = tmp_path / "m.keras", tmp_path / "rows.csv"
    model.write_bytes(b"not opened before the arguments are checked")
    rows.write_text("a,b\n1,2\n")
    code = cli.main(["explain", str(model), "--input", str(rows), "--method", "permutation",
                     "-o", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "needs the true labels" in err


@pytest.mark.slow
def test_activations_of_an_attention_layer_write_its_weights_per_head(tmp_path, capsys):
    import keras

    keras.utils.set_random_seed(2)
    inp = keras.Input((5, 4), name="tokens")
    h = keras.layers.Dense(8, name="embed")(inp)
    attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, name="attn")
    out = keras.layers.GlobalAveragePooling1D(name="pool")(attention(h, h))
    keras.Model(inp, keras.layers.Dense(2, name="head")(out)).save(tmp_path / "m.keras")
    x = np.random.default_rng(0).normal(size=(3, 5, 4)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    folder = tmp_path / "act"
    assert cli.main(["activations", str(tmp_path / "m.keras"), "--layer", "attn", "--input",
                     str(tmp_path / "x.npy"), "--samples", "3", "-o", str(folder)]) == 0
    said = capsys.readouterr().out
    assert "attention weights [2, 5, 5] per sample (heads, queries, keys)" in said, said
    scores = np.load(folder / "attn_attention.npy")
    # Keras's own: the same layer called with return_attention_scores=True.
    model = keras.saving.load_model(tmp_path / "m.keras")
    layer = model.get_layer("attn")
    embedded = keras.Model(model.inputs, model.get_layer("embed").output).predict(x, verbose=0)
    _, expected = layer(embedded, embedded, return_attention_scores=True)
    expected = keras.ops.convert_to_numpy(expected)
    assert scores.shape == (3, 2, 5, 5)
    assert np.abs(scores - expected).max() < 1e-5
    assert np.allclose(scores.sum(axis=-1), 1, atol=1e-5)
    assert (folder / "attn_attention.png").is_file()
    described = json.loads((folder / "attn.json").read_text())
    assert described["attention_shape"] == [2, 5, 5]
