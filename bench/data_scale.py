"""Data at real size: image folders and large tables, kbuilder against the plain libraries.

Image part (``bench_images``), in one run:
  * peak RSS of the training worker (VmHWM, reset between runs through
    /proc/PID/clear_refs) while kbuilder trains one epoch on generated image folders of
    2k, 8k and 32k small PNGs (goal: flat within 10 %); the model is the MLP template on
    the flattened images, so the run is short and the memory measured is the data's;
  * training steps/s on an image folder, kbuilder (warm worker, the folder streamed) vs a
    plain `keras.utils.image_dataset_from_directory` + `model.fit` script
    (bench/plain_image_fit.py), alternated (goal: kbuilder >= 0.95x plain); kbuilder also
    with its on-disk cache of resized images (``cache_images``), second run onwards.

Table part (``bench_tables``): generated CSVs of 10^5 and 10^6 rows (20 numeric columns
with some missing values, one text column, a text label), each read in a fresh process by
    kbuilder   ``kbuilder.runtime.data.load_data`` (read, encode, split, fill)
    pandas     ``pandas.read_csv`` + ``pandas.get_dummies`` (read and one-hot only)
printing the ingest time (wall clock, and the child's CPU time, which a busy machine
distorts less), the child's peak RSS side by side, and their ratios.
Goals: time <= 1.2x pandas, peak RSS <= 1.5x pandas.

Stream part (``bench_stream``): the same CSVs, each in a fresh process, the libraries
imported first and the peak RSS reset then (/proc/self/clear_refs), so that the figures
are the data's:
    stream     ``load_data`` with ``stream_table`` (one pass of statistics) and one epoch
               of training batches (``table_feed.TableBatches``, 8 MB blocks, shuffled)
    pandas     ``pandas.read_csv`` + ``pandas.get_dummies`` (the table in memory)
printing the time and the peak RSS above the imports side by side. Streaming reads the
file twice (statistics, then the epoch) and encodes as it goes, so it is not faster than
pandas; its memory is a few blocks, whatever the file's size.

Run: .venv/bin/python bench/data_scale.py [--only tables|images|stream]
     [--rows 100000 1000000]
     [--backend jax] [--repeats 3] [--size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("KERAS_BACKEND", "numpy")

import numpy as np  # noqa: E402

from kbuilder.graph.settings import DataSettings, TrainingSettings  # noqa: E402
from kbuilder.runtime import protocol as p  # noqa: E402
from kbuilder.runtime.client import Worker  # noqa: E402
from kbuilder.runtime.preflight import new_project_for_data  # noqa: E402
from kbuilder.runtime.runner import start_run  # noqa: E402


# ======================================================================== image folders
def write_png(path: Path, array: np.ndarray) -> None:
    """An 8-bit RGB PNG (the encoder of tests/runtime/test_data.py)."""
    height, width, _ = array.shape
    raw = b"".join(b"\x00" + array[i].tobytes() for i in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def image_folder(root: Path, count: int, size: int, classes: int = 4) -> Path:
    """``count`` noisy PNGs in ``classes`` sub-folders, each class its own colour."""
    rng = np.random.default_rng(count)
    for k in range(classes):
        (root / f"class_{k}").mkdir(parents=True, exist_ok=True)
    colours = rng.integers(0, 256, (classes, 3))
    for i in range(count):
        k = i % classes
        noise = rng.integers(-60, 60, (size, size, 3))
        pixels = np.clip(colours[k] + noise, 0, 255).astype(np.uint8)
        write_png(root / f"class_{k}" / f"{i}.png", pixels)
    return root


def peak_rss(pid: int) -> int:
    """VmHWM of ``pid`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def reset_peak_rss(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # peak RSS := current RSS


def kbuilder_epochs(worker: Worker, folder: Path, size: int, epochs: int,
                    cache: bool = False, template: str = "cnn_classifier") -> tuple[float, int]:
    """Train the fitted CNN template on ``folder``; (steps/s over epochs 2.., steps)."""
    data = DataSettings(source=f"images:{folder}", image_size=(size, size),
                        validation_split=0.0, test_split=0.2, cache_images=cache)
    training = TrainingSettings(backend=worker.backend, epochs=epochs, batch_size=32)
    project = new_project_for_data(template, data, training)
    with tempfile.TemporaryDirectory() as tmp:
        run = start_run(project, data, training, worker=worker, run_dir=Path(tmp) / "run")
        ends: list[float] = []
        steps = 0
        for message in run.events():
            if isinstance(message, p.RunStarted):
                steps = message.steps_per_epoch
            elif isinstance(message, p.EpochEnd):
                ends.append(time.perf_counter())
        if not isinstance(run.result, p.Finished):
            raise RuntimeError(run.result.reason)
    rate = steps * (len(ends) - 1) / (ends[-1] - ends[0]) if len(ends) > 1 else 0.0
    return rate, steps


def plain_script_times(script: str, *args: object) -> dict:
    """What a plain Keras script in ``bench/`` prints as its last line, run in a fresh
    process: JSON with ``steps_per_epoch`` and ``epoch_ends`` (and what else it measures)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *map(str, args)],
        capture_output=True, text=True, check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def epochs_rate(times: dict) -> float:
    """Steps/s over epochs 2..N of ``plain_script_times`` (the first holds compilation)."""
    ends = times["epoch_ends"]
    return times["steps_per_epoch"] * (len(ends) - 1) / (ends[-1] - ends[0])


def plain_script_rate(script: str, *args: object) -> float:
    return epochs_rate(plain_script_times(script, *args))


def plain_epochs(backend: str, folder: Path, size: int, epochs: int) -> float:
    return plain_script_rate("plain_image_fit.py", backend, folder, size, epochs)


def bench_images(backend: str = "jax", repeats: int = 3, size: int = 32,
                 counts: tuple[int, ...] = (2000, 8000, 32000), epochs: int = 4,
                 speed_count: int = 2000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KBUILDER_CACHE_DIR"] = str(Path(tmp) / "cache")
        started = time.perf_counter()
        folders = {n: image_folder(Path(tmp) / f"images_{n}", n, size)
                   for n in sorted({*counts, speed_count})}
        print(f"images: generated folders of {', '.join(map(str, counts))} PNGs of "
              f"{size}x{size} in {time.perf_counter() - started:.1f} s")

        # --- peak worker RSS against the number of images
        worker = Worker(backend)
        pid = worker.wait_ready().pid
        for n in counts:  # compile every batch shape, warm every cache
            kbuilder_epochs(worker, folders[n], size, 1, template="mlp_classifier")
        peaks = {}
        for n in counts:
            reset_peak_rss(pid)
            kbuilder_epochs(worker, folders[n], size, 1, template="mlp_classifier")
            peaks[n] = peak_rss(pid)
        base = peaks[counts[0]]
        row = "  ".join(f"{n // 1000}k {peaks[n] / 2**20:7.1f} MiB" for n in counts)
        growth = max(peaks.values()) / base - 1
        print(f"images: peak worker RSS ({backend}, 1 epoch each): {row}; growth "
              f"{growth * 100:+.1f} % (goal within 10 %)")

        # --- steps/s against image_dataset_from_directory + model.fit, alternated
        folder = folders[speed_count]
        plain_rates, kb_rates, cached_rates = [], [], []
        for _ in range(repeats):
            plain_rates.append(plain_epochs(backend, folder, size, epochs))
            kb_rates.append(kbuilder_epochs(worker, folder, size, epochs)[0])
            cached_rates.append(kbuilder_epochs(worker, folder, size, epochs, cache=True)[0])
        worker.shutdown()
        pr = statistics.median(plain_rates)
        kr, cr = statistics.median(kb_rates), statistics.median(cached_rates)
        print(f"images: steps/s on {speed_count} {size}x{size} PNGs ({backend}, batch 32, "
              f"epochs 2..{epochs}, median of {repeats}): plain image_dataset_from_directory "
              f"{pr:6.1f}  kbuilder {kr:6.1f} (ratio {kr / pr:.3f}, goal >= 0.95)  kbuilder "
              f"with cache_images {cr:6.1f} (ratio {cr / pr:.3f})")
        print("images: runs  plain " + " ".join(f"{r:.1f}" for r in plain_rates)
              + " | kbuilder " + " ".join(f"{r:.1f}" for r in kb_rates)
              + " | cached " + " ".join(f"{r:.1f}" for r in cached_rates))


# ================================================================================ tables
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


_STREAM_CHILD = r"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
path, which = sys.argv[1], sys.argv[2]
if which == "stream":
    from kbuilder.graph.settings import DataSettings
    from kbuilder.runtime.data import load_data
    from kbuilder.runtime.data.table_feed import TableBatches
else:
    import pandas as pd

def status():
    text = Path("/proc/self/status").read_text()
    return {k: int(text.split(k + ":")[1].split()[0]) * 1024 for k in ("VmRSS", "VmHWM")}

base = status()["VmRSS"]
Path("/proc/self/clear_refs").write_text("5")  # the peak from here on
start = time.perf_counter()
if which == "stream":
    ds = load_data(DataSettings(source=f"csv:{path}", target="label", stream_table=True))
    scanned = time.perf_counter() - start
    batches = TableBatches(ds.x_train, ds.y_train, 256, shuffle=True)
    rows = sum(len(batches[i][1]) for i in range(len(batches)))
    shape = [rows, int(ds.x_train.shape[1])]
else:
    frame = pd.read_csv(path)
    x = pd.get_dummies(frame.drop(columns=["label"]), columns=["site"])
    scanned = time.perf_counter() - start
    shape = list(x.shape)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "first": scanned, "rss": status()["VmHWM"] - base,
                  "base": base, "shape": shape}))
"""


def bench_stream(rows_list: list[int], folder: Path, repeats: int = 2) -> list[dict]:
    """A streamed pass (statistics + one epoch of batches) vs pandas: time and peak RSS
    above the imports, side by side."""
    results = []
    env = child_env(folder / "pycache")
    print(f"{'rows':>9} {'MB':>6} | {'stream s':>8} {'(scan)':>7} {'pandas s':>8} "
          f"{'ratio':>6} | {'stream MB':>9} {'pandas MB':>9} {'ratio':>6}")
    for rows in rows_list:
        path = folder / f"table_{rows}.csv"
        if not path.exists():
            write_table(path, rows)
        size = path.stat().st_size / 1e6

        def run(which: str, path: Path = path) -> dict:
            done = subprocess.run([sys.executable, "-c", _STREAM_CHILD, str(path), which,
                                   str(ROOT)], capture_output=True, text=True, check=True,
                                  env=env)
            return json.loads(done.stdout.strip().splitlines()[-1])

        runs = [(run("stream"), run("pandas")) for _ in range(repeats)]
        ours = min((r[0] for r in runs), key=lambda r: r["seconds"])
        theirs = min((r[1] for r in runs), key=lambda r: r["seconds"])
        row = {"rows": rows, "file_mb": size, "stream": ours, "pandas": theirs,
               "time_ratio": ours["seconds"] / theirs["seconds"],
               "rss_ratio": ours["rss"] / max(1, theirs["rss"])}
        results.append(row)
        print(f"{rows:>9} {size:>6.0f} | {ours['seconds']:>8.2f} {ours['first']:>7.2f} "
              f"{theirs['seconds']:>8.2f} {row['time_ratio']:>5.2f}x | "
              f"{ours['rss'] / 2**20:>9.0f} {theirs['rss'] / 2**20:>9.0f} "
              f"{row['rss_ratio']:>5.2f}x", flush=True)
    print(f"(best of {repeats}, fresh processes; time and peak RSS counted after the "
          "imports; stream: the one-pass scan, then one shuffled epoch of batches of 256)")
    return results


def write_table(path: Path, rows: int, seed: int = 0) -> Path:
    """20 numeric columns (about 2 % missing), a text column, a text label."""
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


def child_env(pycache: Path) -> dict:
    """The children's environment: bytecode cached (in ``pycache``) as for an installed
    kbuilder, whose modules pip compiles; with PYTHONDONTWRITEBYTECODE set, as on some
    machines, every fresh process would compile kbuilder's sources again (0.15-0.4 s that
    pandas, compiled at installation, does not pay)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def measure(path: Path, which: str, env: dict | None = None) -> dict:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path), which, str(ROOT)],
                          capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_tables(rows_list: list[int], folder: Path, repeats: int = 3) -> list[dict]:
    """Ingest time and peak RSS of kbuilder vs pandas for each size; prints a table."""
    results = []
    env = child_env(folder / "pycache")
    subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                    "import kbuilder.runtime.data, kbuilder.graph.settings", str(ROOT)],
                   check=True, env=env)  # the bytecode, once
    print(f"{'rows':>9} {'MB':>6} | {'kbuilder s':>10} {'pandas s':>9} {'ratio':>6} | "
          f"{'cpu s':>6} {'cpu s':>6} {'ratio':>6} | "
          f"{'kbuilder MB':>11} {'pandas MB':>9} {'ratio':>6}")
    for rows in rows_list:
        path = folder / f"table_{rows}.csv"
        if not path.exists():
            write_table(path, rows)
        size = path.stat().st_size / 1e6
        runs = [(measure(path, "kbuilder", env), measure(path, "pandas", env))
                for _ in range(repeats)]  # alternated: a burst of load hits both
        ours = min((r[0] for r in runs), key=lambda r: r["seconds"])
        theirs = min((r[1] for r in runs), key=lambda r: r["seconds"])
        # CPU time: each side's least (a busy machine inflates it less than wall time).
        ours["cpu"] = min(r[0]["cpu"] for r in runs)
        theirs["cpu"] = min(r[1]["cpu"] for r in runs)
        row = {"rows": rows, "file_mb": size, "kbuilder": ours, "pandas": theirs,
               "time_ratio": ours["seconds"] / theirs["seconds"],
               "cpu_ratio": ours["cpu"] / theirs["cpu"],
               "rss_ratio": ours["rss"] / theirs["rss"]}
        results.append(row)
        print(f"{rows:>9} {size:>6.0f} | {ours['seconds']:>10.2f} {theirs['seconds']:>9.2f} "
              f"{row['time_ratio']:>5.2f}x | {ours['cpu']:>6.2f} {theirs['cpu']:>6.2f} "
              f"{row['cpu_ratio']:>5.2f}x | {ours['rss'] / 2**20:>11.0f} "
              f"{theirs['rss'] / 2**20:>9.0f} {row['rss_ratio']:>5.2f}x", flush=True)
    print(f"goals: time <= 1.20x, RSS <= 1.50x (each the best of {repeats} runs, fresh "
          "processes, bytecode compiled; "
          "time: the ingest's wall clock, cpu: the child's user+system time, imports "
          "included)")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="jax")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--counts", default="2000,8000,32000")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--speed-count", type=int, default=2000,
                        help="images in the folder of the steps/s comparison")
    parser.add_argument("--only", choices=("tables", "images", "stream"), default=None)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--folder", type=Path, default=None,
                        help="tables: where the generated CSVs go (default: a temporary "
                        "folder)")
    args = parser.parse_args()
    if args.only in (None, "tables"):
        if args.folder is not None:
            args.folder.mkdir(parents=True, exist_ok=True)
            bench_tables(args.rows, args.folder, args.repeats)
        else:
            with tempfile.TemporaryDirectory() as folder:
                bench_tables(args.rows, Path(folder), args.repeats)
    if args.only in (None, "stream"):
        if args.folder is not None:
            args.folder.mkdir(parents=True, exist_ok=True)
            bench_stream(args.rows, args.folder, min(args.repeats, 2))
        else:
            with tempfile.TemporaryDirectory() as folder:
                bench_stream(args.rows, Path(folder), min(args.repeats, 2))
    if args.only in (None, "images"):
        bench_images(args.backend, args.repeats, args.size,
                     tuple(int(c) for c in args.counts.split(",")), args.epochs,
                     args.speed_count)


if __name__ == "__main__":
    main()
