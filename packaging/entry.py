"""The bundled app's entry point: the ``kbuilder`` command, and a stand-in for ``python``.

In a PyInstaller bundle ``sys.executable`` is the bundle's own program, not a Python
interpreter. kbuilder starts helper processes with ``sys.executable`` as if it were Python:
training workers as ``python -X faulthandler -m kbuilder.runtime.worker ...``
(kbuilder/runtime/client.py) and backend probes as ``python -c CODE``
(kbuilder/runtime/doctor.py). So this entry understands exactly those forms of Python's
command line — ``-X OPTION``, ``-m MODULE ARGS`` and ``-c CODE ARGS`` — and otherwise runs
the ``kbuilder`` command. A user never types them; a ``kbuilder`` subcommand never starts
with a dash followed by one of these letters, so the two cannot be confused.

It also runs unbundled, which is how the tests check the dispatch quickly:
``python packaging/entry.py -m kbuilder.runtime.worker ...``.
"""

from __future__ import annotations

import multiprocessing
import runpy
import sys

# Python options kbuilder's own helper processes are started with; the bundle ignores
# them (faulthandler is turned on below for every process instead).
_IGNORED_OPTIONS = {"-X": 1, "-u": 0, "-B": 0}


def python_command(argv: list[str]) -> tuple[str, str, list[str]] | None:
    """``(kind, target, args)`` when ``argv`` is a Python command line, else ``None``.

    ``kind`` is ``"module"`` (``-m``) or ``"code"`` (``-c``); ``args`` become ``sys.argv[1:]``.
    """
    i = 0
    while i < len(argv) and argv[i] in _IGNORED_OPTIONS:
        i += 1 + _IGNORED_OPTIONS[argv[i]]
    if i + 1 < len(argv) and argv[i] in ("-m", "-c"):
        kind = "module" if argv[i] == "-m" else "code"
        return kind, argv[i + 1], argv[i + 2:]
    return None


def main() -> int:
    # A child made by multiprocessing's spawn start method re-runs this program; this
    # turns it into that child (a no-op in every other case).
    multiprocessing.freeze_support()
    import faulthandler
    import os

    # A windowed bundle (Windows, macOS) may start with no stdout/stderr at all; give them
    # somewhere to go so that printing (the self-test, the command line) cannot fail.
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))  # open until exit
    faulthandler.enable()
    command = python_command(sys.argv[1:])
    if command is None:
        from kbuilder.cli import main as kbuilder_main

        return kbuilder_main()
    kind, target, args = command
    if kind == "module":
        sys.argv = [target, *args]
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.argv = ["-c", *args]
        exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
