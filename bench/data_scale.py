"""Data at real size: kbuilder's loaders against the plain libraries.

Tables (``bench_tables``): generated CSVs of 10^5 and 10^6 rows (20 numeric columns with
some missing values, one text column, a text label), each read in a fresh process by
    kbuilder   ``kbuilder.runtime.data.load_data`` (read, encode, split, fill)
    pandas     ``pandas.read_csv`` + ``pandas.get_dummies`` (read and one-hot only)
printing the ingest time (wall clock, and the child's CPU time, which a busy machine
distorts less), the child's peak RSS side by side, and their ratios.
Goals: time <= 1.2x pandas, peak RSS <= 1.5x pandas.

Run: .venv/bin/python bench/data_scale.py [--rows 100000 1000000] [--folder DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[3])
path, which = sys.argv[1], sys.argv[2]
start = time.perf_counter()
if which == "kbuilder":
    from kbuilder.graph.settings import DataSettings
    from kbuilder.runtime.data import load_data
    ds = load_data(DataSettings(source=f"csv:{path}", target="label"))
    shape = [int(ds.x_train.shape[0] + ds.x_val.shape[0] + ds.x_test.shape[0]),
             int(ds.x_train.shape[1])]
else:
    import pandas as pd
    frame = pd.read_csv(path)
    x = pd.get_dummies(frame.drop(columns=["label"]), columns=["site"])
    shape = list(x.shape)
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime  # imports included, for both
try:  # the child's own peak (ru_maxrss could include what it inherited)
    status = open("/proc/self/status").read()
    rss = int(status.split("VmHWM:")[1].split()[0]) * 1024
except OSError:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "cpu": cpu, "rss": rss, "shape": shape}))
"""


def write_table(path: Path, rows: int, seed: int = 0) -> Path:
    """20 numeric columns (about 2 % missing), a text column, a text label."""
    import numpy as np

    rng = np.random.default_rng(seed)
    chunk = 100_000
    with open(path, "w", encoding="utf-8") as f:
        f.write(",".join([f"x{i}" for i in range(20)] + ["site", "label"]) + "\n")
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            values = rng.normal(50, 20, size=(n, 20)).round(3).astype(str)
            values[rng.random((n, 20)) < 0.02] = ""
            site = np.asarray(["north", "south", "east", "west", "centre"])[
                rng.integers(0, 5, n)]
            label = np.asarray(["low", "mid", "high"])[rng.integers(0, 3, n)]
            lines = [",".join(row) for row in np.column_stack([values, site, label])]
            f.write("\n".join(lines) + "\n")
    return path


def measure(path: Path, which: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path), which, str(ROOT)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_tables(rows_list: list[int], folder: Path) -> list[dict]:
    """Ingest time and peak RSS of kbuilder vs pandas for each size; prints a table."""
    results = []
    print(f"{'rows':>9} {'MB':>6} | {'kbuilder s':>10} {'pandas s':>9} {'ratio':>6} | "
          f"{'cpu s':>6} {'cpu s':>6} {'ratio':>6} | "
          f"{'kbuilder MB':>11} {'pandas MB':>9} {'ratio':>6}")
    for rows in rows_list:
        path = folder / f"table_{rows}.csv"
        if not path.exists():
            write_table(path, rows)
        size = path.stat().st_size / 1e6
        ours = min((measure(path, "kbuilder") for _ in range(2)), key=lambda r: r["seconds"])
        theirs = min((measure(path, "pandas") for _ in range(2)), key=lambda r: r["seconds"])
        row = {"rows": rows, "file_mb": size, "kbuilder": ours, "pandas": theirs,
               "time_ratio": ours["seconds"] / theirs["seconds"],
               "cpu_ratio": ours["cpu"] / theirs["cpu"],
               "rss_ratio": ours["rss"] / theirs["rss"]}
        results.append(row)
        print(f"{rows:>9} {size:>6.0f} | {ours['seconds']:>10.2f} {theirs['seconds']:>9.2f} "
              f"{row['time_ratio']:>5.2f}x | {ours['cpu']:>6.2f} {theirs['cpu']:>6.2f} "
              f"{row['cpu_ratio']:>5.2f}x | {ours['rss'] / 2**20:>11.0f} "
              f"{theirs['rss'] / 2**20:>9.0f} {row['rss_ratio']:>5.2f}x", flush=True)
    print("goals: time <= 1.20x, RSS <= 1.50x (each the best of two runs, fresh processes; "
          "time: the ingest's wall clock, cpu: the child's user+system time, imports "
          "included)")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--folder", type=Path, default=None,
                        help="where the generated files go (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.folder is not None:
        args.folder.mkdir(parents=True, exist_ok=True)
        bench_tables(args.rows, args.folder)
        return 0
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        bench_tables(args.rows, Path(folder))
        print(f"tables: {time.perf_counter() - start:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
