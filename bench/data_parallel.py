"""Data-parallel steps/s on 2 simulated CPU devices vs 1 (issue 16), through kbuilder.

The CNN template fitted to digits trains in kbuilder workers on JAX, once on one device
and once data-parallel over N devices (the host split by
``--xla_force_host_platform_device_count``, as ``kbuilder train --distribute data-parallel
--devices N`` does), with the same global batch. Reported: training steps per second of
the epochs after the first (the first compiles), and the final training loss of each (the
two should agree). Simulated devices share the same cores, so this measures the cost of
splitting, not a speed-up; on GPUs each device is its own chip.

Run: .venv/bin/python bench/data_parallel.py [--epochs N] [--batch-size N] [--devices N]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "numpy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kbuilder import cli  # noqa: E402
from kbuilder.graph.project import load_project  # noqa: E402
from kbuilder.runtime import protocol as p  # noqa: E402
from kbuilder.runtime.runner import start_run  # noqa: E402


def steps_per_second(project, training) -> tuple[float, float]:
    run = start_run(project, project.data, training)
    epochs: list[p.EpochEnd] = []
    started: list[p.RunStarted] = []

    def note(message):
        if isinstance(message, p.EpochEnd):
            epochs.append(message)
        elif isinstance(message, p.RunStarted):
            started.append(message)

    result = run.wait(note)
    run.worker.shutdown()
    if not isinstance(result, p.Finished):
        raise SystemExit(f"The run failed: {getattr(result, 'reason', result)}")
    steps = started[0].steps_per_epoch
    later = epochs[1:] or epochs
    return steps * len(later) / sum(e.seconds for e in later), epochs[-1].logs["loss"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--devices", type=int, default=2)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="kbuilder-dp-bench-"))
    path = folder / "cnn.kbproj"
    assert cli.main(["new", "--template", "cnn_classifier", "--data", "digits",
                     "-o", str(path)]) == 0
    project = load_project(path)
    base = dataclasses.replace(project.training, backend="jax", device="cpu",
                               epochs=args.epochs, batch_size=args.batch_size,
                               early_stopping=None, reduce_lr_on_plateau=None,
                               checkpoint=None)
    one, loss_one = steps_per_second(project, base)
    many, loss_many = steps_per_second(project, dataclasses.replace(
        base, distribute="data-parallel", devices=args.devices))
    print(f"CNN template, digits, JAX, global batch {args.batch_size}, {os.cpu_count()} cores")
    print(f"  1 device:             {one:7.1f} steps/s  final loss {loss_one:.4f}")
    print(f"  {args.devices} simulated devices:  {many:7.1f} steps/s  final loss "
          f"{loss_many:.4f}  ({many / one:.2f}x)")


if __name__ == "__main__":
    main()
