"""Run a self-test's steps in order and print one line per step.

Both self-tests (the GUI one in kbuilder/ui/shell/selftest.py and the bundle one in
kbuilder/runtime/smoke.py) are lists of (title, step) pairs; a step returns what it saw
or raises ``StepFailure`` saying what it did not see. The first failure ends the list,
because later steps build on earlier ones.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Sequence
from typing import TextIO


class StepFailure(AssertionError):
    """A step did not do what it should."""


def check(condition: object, message: str) -> None:
    if not condition:
        raise StepFailure(message)


def run_steps(steps: Sequence[tuple[str, Callable[[], str]]], out: TextIO,
              label: str = "") -> bool:
    """Print ``[label i/n] ok    title (seconds): detail`` per step; True if all passed.

    An unexpected exception (a bug rather than a failed check) also prints its traceback,
    as does any failure when KBUILDER_DEBUG is set."""
    prefix = f"{label} " if label else ""
    for i, (title, step) in enumerate(steps, 1):
        t0 = time.monotonic()
        try:
            detail = step()
        except Exception as exc:
            expected = isinstance(exc, StepFailure)
            kind = "" if expected else f"{type(exc).__name__}: "
            print(f"[{prefix}{i}/{len(steps)}] FAIL  {title}: {kind}{exc}", file=out)
            if not expected or os.environ.get("KBUILDER_DEBUG"):
                traceback.print_exc(file=out)
            out.flush()
            return False
        print(f"[{prefix}{i}/{len(steps)}] ok    {title} ({time.monotonic() - t0:.1f} s): "
              f"{detail}", file=out)
        out.flush()
    return True
