"""Writing exports atomically: a staging folder beside the destination, moved into place
only when everything succeeded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def staging_folder(destination: Path) -> Iterator[Path]:
    """A temporary folder next to ``destination`` (same file system: moves are renames),
    removed with whatever is left in it."""
    folder = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".export",
                                   dir=destination.parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def publish(files: list[Path], stage: Path, destination: Path) -> list[Path]:
    """Move the staged files next to ``destination``, the entry point last; returns every
    file written (the files inside folders included)."""
    written: list[Path] = []
    for staged in files:
        final = destination.parent / staged.name
        if final.is_dir():
            # os.replace cannot replace a folder that has files: move the old one into the
            # staging folder (which is deleted afterwards), then the new one into place.
            final.rename(stage / f"previous-{final.name}")
        os.replace(staged, final)
        written += sorted(f for f in final.rglob("*") if f.is_file()) if final.is_dir() \
            else [final]
    return written


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the converters' progress output and deprecation warnings."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore")
        yield
