"""Tiny models that really learned, for the explanation tests: trained once per session
in a JAX subprocess (a few seconds) and saved as ``.keras`` with their data.

- ``square``: 16x16 grey images of noise, each with exactly one bright 3x3 square; the
  class is the quadrant the square is in (0 top left, 1 top right, 2 bottom left, 3
  bottom right), so its position is the only cue (no "the other side is dark"). A small
  CNN (a convolution, a strided one, ``last_conv`` at half the resolution, Flatten,
  softmax: global pooling would throw the position away).
- ``table``: a CSV of five numeric columns ``c0``..``c4`` and a label ``y`` decided by
  ``c2`` alone (``y = c2 > 0``). An MLP on the five columns.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SIZE = 16
SQUARE = 3

SCRIPT = r"""
import os, sys
os.environ["KERAS_BACKEND"] = "jax"
import numpy as np, keras
out, size, s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)

def squares(n):
    # the class is the quadrant of the one bright square
    x = rng.uniform(0, 0.3, (n, size, size, 1)).astype("float32")
    y = rng.integers(0, 4, n)
    half = size // 2
    rows = rng.integers(0, half - s + 1, n) + (y // 2) * half
    cols = rng.integers(0, half - s + 1, n) + (y % 2) * half
    for i in range(n):
        x[i, rows[i]:rows[i] + s, cols[i]:cols[i] + s, 0] = 1.0
    return x, y, np.stack([rows, cols], axis=1)

x, y, where = squares(1500)
inp = keras.Input((size, size, 1), name="image")
h = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inp)
h = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="down")(h)
h = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="last_conv")(h)
h = keras.layers.Flatten(name="flat")(h)
o = keras.layers.Dense(4, activation="softmax", name="classes")(h)
model = keras.Model(inp, o)
model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
              metrics=["accuracy"])
model.fit(x[:1200], y[:1200], epochs=8, batch_size=32, verbose=0)
acc = model.evaluate(x[1200:], y[1200:], verbose=0)[1]
model.save(os.path.join(out, "square.keras"))
keep = np.arange(1200, 1232)  # a batch of test images
np.savez(os.path.join(out, "square.npz"), x=x[keep], where=where[keep], y=y[keep])

t = rng.normal(size=(800, 5)).astype("float32")
label = (t[:, 2] > 0).astype("int64")
with open(os.path.join(out, "table.csv"), "w") as f:
    f.write("c0,c1,c2,c3,c4,y\n")
    for row, l in zip(t, label):
        f.write(",".join(f"{v:.5f}" for v in row) + f",{l}\n")
inp = keras.Input((5,), name="features")
h = keras.layers.Dense(16, activation="relu", name="hidden")(inp)
o = keras.layers.Dense(2, activation="softmax", name="classes")(h)
mlp = keras.Model(inp, o)
mlp.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
            metrics=["accuracy"])
mlp.fit(t, label, epochs=8, batch_size=32, verbose=0)
mlp.save(os.path.join(out, "table.keras"))
print(acc, mlp.evaluate(t, label, verbose=0)[1])
"""


def train(folder: Path) -> tuple[float, float]:
    """Train and save both models into ``folder``; their test and train accuracy."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(folder), str(SIZE), str(SQUARE)],
                          env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    square, table = (float(v) for v in done.stdout.split()[-2:])
    return square, table


class Models:
    def __init__(self, folder: Path, accuracies: tuple[float, float]):
        self.folder, self.accuracies = folder, accuracies


_trained: dict[str, Models] = {}


def models(tmp_path_factory) -> Models:
    """The trained models of this session (trained on first use)."""
    if "models" not in _trained:
        folder = tmp_path_factory.mktemp("learned")
        accuracies = train(folder)
        assert min(accuracies) > 0.95, accuracies  # they learned the rule
        _trained["models"] = Models(folder, accuracies)
    return _trained["models"]


def square_shares(maps, where):
    """Per map, the share of its mass on its square (grown by one pixel each side, the
    resolution of a 3x3 convolution's evidence)."""
    import numpy as np

    shares = []
    for m, (r, c) in zip(maps, where, strict=True):
        total = float(m.sum())
        box = m[max(r - 1, 0):r + SQUARE + 1, max(c - 1, 0):c + SQUARE + 1]
        shares.append(float(box.sum()) / total if total > 0 else 0.0)
    return np.array(shares)


def quadrant_shares(maps, where):
    """Per map, the share of its mass in the quadrant its square is in (the class)."""
    import numpy as np

    half = SIZE // 2
    return np.array([float(m[(r // half) * half:(r // half + 1) * half,
                             (c // half) * half:(c // half + 1) * half].sum())
                     / max(float(m.sum()), 1e-12) for m, (r, c) in zip(maps, where, strict=True)])
