"""The entry point: the ``kbuilder`` parser with every subcommand registered, and ``main``.

The exit codes and how errors are reported: see ``kbuilder.cli``.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import NoReturn

from kbuilder.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_PROBLEMS, CliError
from kbuilder.cli.environment import add_doctor, add_gui, add_selftest, cmd_gui
from kbuilder.cli.explain import add_activations, add_explain
from kbuilder.cli.export import add_export
from kbuilder.cli.project import (
    add_build,
    add_check,
    add_codegen,
    add_import,
    add_layers,
    add_new,
    add_templates,
)
from kbuilder.cli.sweep import add_sweep, add_sweep_worker
from kbuilder.cli.training import add_evaluate, add_predict, add_runs, add_train


class _Parser(argparse.ArgumentParser):
    """Reports argument errors as one line and an exception instead of usage + exit."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message}. Run '{self.prog} --help' for usage.", prog=self.prog)

# A new subcommand adds an `add_<name>` / `_cmd_<name>` pair to the module of its group and
# an entry here, in the order `kbuilder --help` lists them.
COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    add_gui,
    add_doctor,
    add_layers,
    add_templates,
    add_new,
    add_check,
    add_import,
    add_codegen,
    add_build,
    add_train,
    add_runs,
    add_evaluate,
    add_predict,
    add_sweep,
    add_sweep_worker,
    add_export,
    add_explain,
    add_activations,
    add_selftest,
)

def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``kbuilder`` with every subcommand registered."""
    from kbuilder import __version__

    parser = _Parser(
        prog="kbuilder",
        description="Build, train and export Keras 3 models visually. "
        "Without a command, starts the desktop app.",
    )
    parser.add_argument("--version", action="version", version=f"kbuilder {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kbuilder`` command line.

    Args:
        argv: the arguments after the program name; ``None`` means ``sys.argv[1:]``.

    Returns:
        The process exit code (see ``kbuilder.cli``).
    """
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help and --version
            return int(exc.code or 0)
        if args.command != "doctor":
            # Before anything imports keras. The in-process work (shape inference, build)
            # is symbolic; Keras's numpy backend does it without JAX's per-shape
            # compilation of weight initialisers (~1 ms vs ~400 ms per new layer shape).
            # Training runs in workers on the user's backend. `doctor` reports the
            # user's own setting instead.
            os.environ.setdefault("KERAS_BACKEND", "numpy")
        run: Callable[[argparse.Namespace], int] = getattr(args, "run", cmd_gui)
        with warnings.catch_warnings():
            if not os.environ.get("KBUILDER_DEBUG"):
                # Raw library warnings (numpy's RuntimeWarning, zipfile's UserWarning) are
                # not for the user: what they mean for the data is checked and said in a
                # sentence (runtime.data); the workers' warnings go to their logs.
                warnings.simplefilter("ignore")
            return run(args)
    except CliError as exc:
        print(f"{exc.prog}: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kbuilder: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `kbuilder layers | head`: the reader left; not an error. Keep Python from
        # complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        if os.environ.get("KBUILDER_DEBUG"):
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        print(
            f"kbuilder: unexpected error ({type(exc).__name__}: {first}). "
            "Set KBUILDER_DEBUG=1 to see the traceback.",
            file=sys.stderr,
        )
        return EXIT_PROBLEMS
