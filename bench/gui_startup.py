"""Time from launching ``kbuilder gui`` to its window being shown (goal: <= 1.0 s).

Each run is a fresh process (``python -m kbuilder gui``, offscreen) that quits at its first
paint (``KBUILDER_EXIT_AFTER_SHOWN``). Two figures per run:
    shown    launch -> first paint of the window (reported by the app, the figure that
             matters to the user);
    process  launch -> process exit (adds interpreter teardown; an upper bound).
Keras is not part of either: the layer catalog loads in the background after the paint.

Run: .venv/bin/python bench/gui_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def one_run(shown_file: Path) -> tuple[float, float]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", KBUILDER_EXIT_AFTER_SHOWN="1",
               KBUILDER_SHOWN_FILE=str(shown_file))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    # Private settings: a user's saved window state must not change the figure.
    env["XDG_CONFIG_HOME"] = str(shown_file.parent / "config")
    env["XDG_DATA_HOME"] = str(shown_file.parent / "data")
    # Python caches compiled modules (.pyc) unless told not to; a user's machine does, an
    # installed app ships them. Some sandboxes set this variable, which would add the
    # compilation of every module (~0.3 s here) to each launch.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    shown_file.unlink(missing_ok=True)
    start = time.time()
    proc = subprocess.run([sys.executable, "-m", "kbuilder", "gui"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    process = time.time() - start
    if proc.returncode != 0:
        raise SystemExit(f"kbuilder gui failed ({proc.returncode}):\n{proc.stderr}")
    shown = float(shown_file.read_text()) - start
    return shown, process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        marker = Path(tmp) / "shown"
        one_run(marker)  # warm the file and bytecode caches, as a user's second launch

        results = [one_run(marker) for _ in range(args.runs)]
    shown = [r[0] for r in results]
    process = [r[1] for r in results]
    print(f"gui start-up over {args.runs} fresh processes (offscreen):")
    print(f"  launch -> window shown : median {statistics.median(shown):.3f} s "
          f"(min {min(shown):.3f}, max {max(shown):.3f})   goal <= 1.0 s")
    print(f"  launch -> process exit : median {statistics.median(process):.3f} s")


if __name__ == "__main__":
    main()
