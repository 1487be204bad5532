"""Trials per hour: ``kbuilder sweep`` against a plain Optuna script on the same model and data.

Both sweep the learning rate of the MLP template on iris (random sampler, no pruner, the
same number of trials and epochs), one trial at a time, each in a fresh process:
    kbuilder   ``kbuilder sweep P.kbproj --trials N`` (SQLite study beside the project;
               trials in one warm worker process, each trial also evaluated on the test
               split, compared with baselines and saved as a run, as kbuilder runs are)
    plain      the Optuna script ``kbuilder sweep --script`` writes for the same sweep
               (in-memory study; ``model.fit`` in the script's own process)
Each prints its wall time, trials per hour and the ratio (goal: kbuilder >= 0.9x plain).
The first trial of each pays for importing the backend and compiling; with few trials
that start-up dominates, so use --trials 10 or more for a figure worth quoting.

Run: .venv/bin/python bench/sweep_overhead.py [--trials 6] [--epochs 10] [--backend jax]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def kbuilder(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "kbuilder", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True)


def timed(command: list[str], cwd: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--backend", default="jax")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        made = kbuilder("new", "--template", "mlp_classifier", "--data", "iris", "-o",
                        "p.kbproj", cwd=cwd)
        assert made.returncode == 0, made.stderr
        sweep = ["p.kbproj", "--trials", str(args.trials), "--param",
                 "learning_rate=1e-3..3e-2:log", "--epochs", str(args.epochs),
                 "--backend", args.backend, "--sampler", "random", "--pruner", "none"]
        written = kbuilder("sweep", *sweep, "--script", "sweep.py", cwd=cwd)
        assert written.returncode == 0, written.stderr
        plain = timed([sys.executable, "sweep.py", "--trials", str(args.trials)], cwd)
        ours = timed([sys.executable, "-m", "kbuilder", "sweep", *sweep, "--no-record"], cwd)
    per_hour = {name: args.trials * 3600 / seconds for name, seconds in
                (("kbuilder", ours), ("plain", plain))}
    print(f"{args.trials} trials of {args.epochs} epochs on {args.backend}, one at a time:")
    print(f"  kbuilder sweep   {ours:7.1f} s   {per_hour['kbuilder']:8.0f} trials/hour")
    print(f"  plain Optuna     {plain:7.1f} s   {per_hour['plain']:8.0f} trials/hour")
    print(f"  ratio            {per_hour['kbuilder'] / per_hour['plain']:.2f}x (goal >= 0.9x)")


if __name__ == "__main__":
    main()
