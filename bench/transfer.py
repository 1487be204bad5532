"""A frozen pretrained network trained through kbuilder against the plain Keras script.

MobileNetV3Small (include_top=False, average pooling, frozen, called with
training=False) with its weights read from a local ``.weights.h5`` file (saved here from a
random initialisation: no network needed), dropout and a softmax head, on generated 96×96
RGB images (3 classes). Side by side per backend: the plain script
(bench/plain_transfer.py) in a fresh process, and a kbuilder run of the
"pretrained_classifier" template fitted to the same arrays, on a warm CLI worker.

Prints per backend the peak RSS of each process (imports included) and steps/s over epochs 2..N (epoch-end times; the first epoch holds
compilation) and the ratio kbuilder / plain (goal >= 0.95).

Run: .venv/bin/python bench/transfer.py [--backends jax,tensorflow] [--images 960] [--epochs 4]

960 images (30 steps an epoch, 90 timed): with 320 (30 timed steps) two runs on a quiet
machine gave ratios 0.87 and 1.00 (JAX), 1.14 and 0.67 (TensorFlow), noise rather than a
difference. 2026-12-04, quiet 2-core machine, 960 images: JAX 3.84 vs plain 3.64 steps/s
(1.06), TensorFlow 21.47 vs 21.46 (1.00).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KERAS_BACKEND", "numpy")

import numpy as np  # noqa: E402

from bench.data_scale import epochs_rate, peak_rss, plain_script_times  # noqa: E402
from kbuilder.graph.commands import SetParamCommand  # noqa: E402
from kbuilder.graph.settings import DataSettings, TrainingSettings  # noqa: E402
from kbuilder.runtime import protocol as p  # noqa: E402
from kbuilder.runtime.client import Worker  # noqa: E402
from kbuilder.runtime.preflight import new_project_for_data  # noqa: E402
from kbuilder.runtime.runner import start_run  # noqa: E402

SIZE = 96


def make_data(folder: Path, images: int) -> tuple[Path, Path]:
    """Generated images whose class shows in their colour, and a weights file."""
    import keras

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, images)
    x = rng.uniform(0, 255, (images, SIZE, SIZE, 3)).astype("float32")
    x[np.arange(images), :, :, y] *= 0.5
    data = folder / "images.npz"
    np.savez(data, x=x, y=y)
    weights = folder / "mobilenet_v3_small_random.weights.h5"
    keras.applications.MobileNetV3Small(
        include_top=False, weights=None, pooling="avg", input_shape=(SIZE, SIZE, 3),
    ).save_weights(weights)
    return data, weights


def plain(backend: str, data: Path, weights: Path, epochs: int) -> tuple[float, int]:
    """Steps/s and peak RSS (bytes) of the plain script."""
    times = plain_script_times("plain_transfer.py", backend, data, weights, epochs)
    return epochs_rate(times), times["rss"]


def kbuilder_rate(backend: str, data: Path, weights: Path, epochs: int) -> tuple[float, int]:
    """Steps/s and the training worker's peak RSS (bytes, imports included)."""
    settings = DataSettings(source=f"npz:{data}", validation_split=0.0, test_split=0.2,
                            seed=0)
    project = new_project_for_data("pretrained_classifier", settings)
    network = next(n for n in project.graph.nodes
                   if (n.class_name or "").startswith("applications."))
    SetParamCommand(project.graph, network.id, "weights", str(weights)).do()
    training = TrainingSettings(backend=backend, epochs=epochs, batch_size=32)
    worker = Worker(backend)
    worker.wait_ready()  # warm, as the app keeps it
    try:
        with tempfile.TemporaryDirectory() as tmp:
            run = start_run(project, settings, training, worker=worker,
                            run_dir=Path(tmp) / "run")
            ends: list[float] = []
            steps = 0
            for message in run.events():
                if isinstance(message, p.RunStarted):
                    steps = message.steps_per_epoch
                elif isinstance(message, p.EpochEnd):
                    ends.append(time.perf_counter())
            if not isinstance(run.result, p.Finished):
                raise RuntimeError(run.result.reason)
            rss = peak_rss(worker.process.pid)
    finally:
        worker.shutdown()
    return steps * (len(ends) - 1) / (ends[-1] - ends[0]), rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="jax,tensorflow")
    parser.add_argument("--images", type=int, default=960)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data, weights = make_data(Path(tmp), args.images)
        for backend in args.backends.split(","):
            pr, p_rss = plain(backend, data, weights, args.epochs)
            kr, k_rss = kbuilder_rate(backend, data, weights, args.epochs)
            print(f"{backend:>10}: steps/s plain {pr:6.2f}  kbuilder {kr:6.2f}  ratio "
                  f"{kr / pr:.3f} (goal >= 0.95) | peak RSS plain {p_rss / 2**20:.0f} MB, "
                  f"kbuilder worker {k_rss / 2**20:.0f} MB | MobileNetV3Small frozen, "
                  f"{SIZE}×{SIZE}, {args.images} images, batch 32, {args.epochs} epochs",
                  flush=True)


if __name__ == "__main__":
    main()
