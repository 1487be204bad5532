"""Time from launching the bundled app to its window being shown (the README's figure).

Like bench/gui_startup.py, but for an installed or built bundle: each run is a fresh
process (``APP gui``, offscreen) that quits at its first paint
(``KBUILDER_EXIT_AFTER_SHOWN``) and writes the time of that paint
(``KBUILDER_SHOWN_FILE``). The first run is reported on its own: right after installing,
the bundle's files are not yet in the page cache, which is what a user's first start
costs. With ``--drop-caches`` (root, Linux) the kernel's page cache is emptied before that
first run, for a truly cold start.

Usage: python packaging/measure_startup.py [APP] [--runs N] [--drop-caches]
       APP defaults to dist/kbuilder/kbuilder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def one_run(app: Path, folder: Path) -> float:
    shown_file = folder / "shown"
    shown_file.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "KERAS_"))}
    env.update(QT_QPA_PLATFORM="offscreen", KBUILDER_EXIT_AFTER_SHOWN="1",
               KBUILDER_SHOWN_FILE=str(shown_file), HOME=str(folder),
               XDG_CONFIG_HOME=str(folder / "config"), XDG_DATA_HOME=str(folder / "data"))
    start = time.time()
    proc = subprocess.run([str(app), "gui"], env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SystemExit(f"{app} gui failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return float(shown_file.read_text()) - start


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app", nargs="?", type=Path, default=REPO / "dist/kbuilder/kbuilder")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--drop-caches", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cold = "first"
        if args.drop_caches:
            cold = "cold (page cache dropped)" if drop_caches() else "first (could not drop " \
                "the page cache)"
        first = one_run(args.app, Path(tmp))
        warm = [one_run(args.app, Path(tmp)) for _ in range(args.runs)]
    print(f"{args.app}: launch -> window shown (offscreen)")
    print(f"  {cold} start: {first:.2f} s")
    print(f"  warm starts: median {statistics.median(warm):.2f} s "
          f"(min {min(warm):.2f}, max {max(warm):.2f}, {args.runs} runs)")


if __name__ == "__main__":
    main()
