"""The ``kbuilder`` command: the same engine as the desktop app, without a window.

Each subcommand is a pair of small functions, ``add_<name>(subparsers)`` declaring its
arguments and ``_cmd_<name>(args) -> int`` doing the work, in the module of its group:
``project`` (layers, templates, new, check, import, build, codegen), ``training`` (train,
evaluate, predict, runs), ``export``, ``environment`` (gui, doctor, selftest).
``entry.COMMANDS`` lists them in the order ``kbuilder --help`` shows them; ``common`` holds
the exit codes, ``CliError`` and the file checks every group shares; ``jobs`` waits for a
worker process. Modules are imported inside the ``_cmd_`` functions so that ``kbuilder
--help`` and the GUI's start stay fast and keras is imported only by the commands that need
it (``tests/test_layering.py`` checks it in a fresh process).

Exit codes: 0 success; 1 the project or model has problems (``check``, ``build``) or an
unexpected error; 2 bad arguments or a file that cannot be read or written; 130 interrupted;
143 ``train`` was terminated (SIGTERM) — after stopping the run and recording it.
Errors are one sentence on stderr. Set ``KBUILDER_DEBUG=1`` to get the traceback of an
unexpected error instead, and Python's warnings (otherwise silenced).
"""

from kbuilder.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_TERMINATED,
    EXIT_USAGE,
    CliError,
)
from kbuilder.cli.entry import COMMANDS, build_parser, main

__all__ = [
    "COMMANDS",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "CliError",
    "build_parser",
    "main",
]
