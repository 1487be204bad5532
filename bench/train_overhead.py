"""kbuilder's training runtime against a plain `model.fit` script, side by side.

For each backend, alternately (several repeats): the plain script (bench/plain_fit.py) in
a fresh process, and a kbuilder run of the CNN template fitted to digits on a warm worker.
Both train the same model on the same 80 % of digits (batch 32, no validation).

Prints per backend the median of:
  * steps/s over epochs 2..N (epoch-end times; the first epoch holds compilation), and
    the ratio kbuilder / plain (goal >= 0.98);
  * time to the first batch: plain = launch of the script to the end of its first batch
    (interpreter, imports, data, build, compile, step); kbuilder = pressing Train (the
    request sent to a warm worker) to the first batch reported. Ratio goal <= 0.5.
    kbuilder is timed twice per repeat, each time on a fresh warm worker: with an empty
    compilation cache (the first run of a model ever) and with the cache that run left
    (training the model again, the usual edit-and-retrain loop). Only JAX uses the cache.

The workers are the CLI's (the app's priority, like the plain script); ``--window`` uses
the window's instead, which yield the CPU to it (niceness 10, torch spinning less; see
docs/ARCHITECTURE.md "Workers yield to the window") and are slower when the CPU is busy.

Run: .venv/bin/python bench/train_overhead.py [--backends jax,torch] [--repeats 3] [--window]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KERAS_BACKEND", "numpy")

from kbuilder.graph.settings import DataSettings, TrainingSettings  # noqa: E402
from kbuilder.runtime import protocol as p  # noqa: E402
from kbuilder.runtime.client import Worker  # noqa: E402
from kbuilder.runtime.preflight import new_project_for_data  # noqa: E402
from kbuilder.runtime.runner import start_run  # noqa: E402


def plain(backend: str, epochs: int) -> tuple[float, float]:
    launched = time.time()
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "plain_fit.py"), backend, str(epochs),
         repr(launched)],
        capture_output=True, text=True, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    times = json.loads(out.stdout.strip().splitlines()[-1])
    ends = times["epoch_ends"]
    rate = times["steps_per_epoch"] * (len(ends) - 1) / (ends[-1] - ends[0])
    return rate, times["first_batch"]


def kbuilder_run(project, backend: str, epochs: int, worker: Worker) -> tuple[float, float]:
    data = DataSettings(source="digits", validation_split=0.0, test_split=0.2, seed=0)
    training = TrainingSettings(backend=backend, epochs=epochs, batch_size=32)
    with tempfile.TemporaryDirectory() as tmp:
        sent = time.perf_counter()
        run = start_run(project, data, training, worker=worker, run_dir=Path(tmp) / "run")
        first = None
        ends: list[float] = []
        steps = 0
        for message in run.events():
            now = time.perf_counter()
            if isinstance(message, p.RunStarted):
                steps = message.steps_per_epoch
            elif isinstance(message, p.BatchEnd) and first is None:
                first = now - sent
            elif isinstance(message, p.EpochEnd):
                ends.append(now)
        if not isinstance(run.result, p.Finished):
            raise RuntimeError(run.result.reason)
    rate = steps * (len(ends) - 1) / (ends[-1] - ends[0])
    return rate, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="jax,tensorflow,torch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--window", action="store_true",
                        help="measure the window's workers instead of the CLI's")
    args = parser.parse_args()
    project = new_project_for_data("cnn_classifier", DataSettings(source="digits"))
    for backend in args.backends.split(","):
        plain_rates, plain_first, kb_rates, kb_cold, kb_cached = [], [], [], [], []
        for _ in range(args.repeats):
            rate, first = plain(backend, args.epochs)
            plain_rates.append(rate)
            plain_first.append(first)
            with tempfile.TemporaryDirectory() as cache:
                os.environ["KBUILDER_CACHE_DIR"] = cache
                for firsts in (kb_cold, kb_cached):
                    # Warm: its backend is imported before Train.
                    worker = Worker(backend, yield_to_window=args.window)
                    worker.wait_ready()
                    rate, first = kbuilder_run(project, backend, args.epochs, worker)
                    worker.shutdown()
                    firsts.append(first)
                kb_rates.append(rate)
        pr, kr = statistics.median(plain_rates), statistics.median(kb_rates)
        pf = statistics.median(plain_first)
        cold, cached = statistics.median(kb_cold), statistics.median(kb_cached)
        print(f"{backend:>10}: steps/s plain {pr:7.1f}  kbuilder {kr:7.1f}  ratio {kr / pr:.3f}"
              f" (goal >= 0.98) | first batch plain {pf:5.2f} s, kbuilder warm worker"
              f" {cold:5.2f} s (ratio {cold / pf:.2f}), again with its compilation cache"
              f" {cached:5.2f} s (ratio {cached / pf:.2f}; goal <= 0.5) | {args.repeats}"
              f" repeats, {args.epochs} epochs")


if __name__ == "__main__":
    main()
