"""Data at real size: image folders (this part) and large tables.

Image part (``bench_images``), in one run:
  * peak RSS of the training worker (VmHWM, reset between runs through
    /proc/PID/clear_refs) while kbuilder trains one epoch on generated image folders of
    2k, 8k and 32k small PNGs (goal: flat within 10 %); the model is the MLP template on
    the flattened images, so the run is short and the memory measured is the data's;
  * training steps/s on an image folder, kbuilder (warm worker, the folder streamed) vs a
    plain `keras.utils.image_dataset_from_directory` + `model.fit` script
    (bench/plain_image_fit.py), alternated (goal: kbuilder >= 0.95x plain); kbuilder also
    with its on-disk cache of resized images (``cache_images``), second run onwards.

Run: .venv/bin/python bench/data_scale.py [--backend jax] [--repeats 3] [--size 32]
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


def plain_epochs(backend: str, folder: Path, size: int, epochs: int) -> float:
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "plain_image_fit.py"), backend, str(folder),
         str(size), str(epochs)],
        capture_output=True, text=True, check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    times = json.loads(out.stdout.strip().splitlines()[-1])
    ends = times["epoch_ends"]
    return times["steps_per_epoch"] * (len(ends) - 1) / (ends[-1] - ends[0])


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
    args = parser.parse_args()
    bench_images(args.backend, args.repeats, args.size,
                 tuple(int(c) for c in args.counts.split(",")), args.epochs, args.speed_count)


if __name__ == "__main__":
    main()
