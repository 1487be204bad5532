"""The subcommands about kbuilder itself: ``gui`` (the default), ``doctor``, ``selftest``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from kbuilder.cli.common import EXIT_OK, EXIT_PROBLEMS, CliError, readable_file


# ------------------------------------------------------------------------------ gui
def add_gui(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="start the desktop app (the default)")
    p.add_argument("project", nargs="?", type=Path, help="a .kbproj project to open")
    p.set_defaults(run=cmd_gui)


def cmd_gui(args: argparse.Namespace) -> int:
    project = getattr(args, "project", None)
    if project is not None:
        readable_file(project)
    from kbuilder.ui import app

    try:
        return app.run(project)
    except app.AppStartError as exc:
        raise CliError(str(exc), EXIT_PROBLEMS) from exc


# --------------------------------------------------------------------------- doctor
def add_doctor(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="versions, installed backends and their devices")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECONDS",
        help="how long each backend may take to import (default: 60)",
    )
    p.set_defaults(run=_cmd_doctor)


def _cmd_doctor(args: argparse.Namespace) -> int:
    from kbuilder.runtime import doctor

    if args.timeout <= 0:
        raise CliError(f"--timeout must be a positive number of seconds; got {args.timeout:g}.")
    report = doctor.collect_report(timeout=args.timeout)
    print(json.dumps(report, indent=2) if args.json else doctor.format_report(report))
    return EXIT_OK

# ------------------------------------------------------------------------- selftest
def add_selftest(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "selftest", help="drive the real GUI offscreen end to end; exit 0 when all works"
    )
    p.add_argument(
        "--bundle", action="store_true",
        help="then also train one epoch on the installed backend in a worker and export the "
        "model to ONNX, OpenVINO and LiteRT with the parity check (what a packaged app must "
        "do offline; see packaging/README.md)",
    )
    p.set_defaults(run=_cmd_selftest)


def _cmd_selftest(args: argparse.Namespace) -> int:
    # Offscreen whatever the desktop: the self-test must run on servers and in CI alike.
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from kbuilder.ui.shell import selftest

    if selftest.run() != 0:
        return EXIT_PROBLEMS
    if not getattr(args, "bundle", False):
        return EXIT_OK
    import tempfile

    from kbuilder.runtime import smoke

    with tempfile.TemporaryDirectory(prefix="kbuilder-bundle-selftest-") as folder:
        failed = smoke.run(Path(folder), sys.stdout)
    print("selftest --bundle: FAILED" if failed else "selftest --bundle: all steps passed")
    return EXIT_PROBLEMS if failed else EXIT_OK
