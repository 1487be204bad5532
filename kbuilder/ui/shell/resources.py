"""Where kbuilder's resource files are: the icons, the style sheets, the application icon.

The files live in the repository's top-level ``resources/`` folder. An installed wheel holds
them as the package folder ``kbuilder/resources/`` (setup.py maps the one onto the other), and
the PyInstaller bundle as ``kbuilder/resources/`` under ``sys._MEIPASS``
(packaging/kbuilder.spec). This module is the one place that knows those layouts; everything
else asks it for a path or a text by its name relative to ``resources/``
(``"icons/save.svg"``, ``"styles/app.qss"``). No Qt here: the packaging scripts use it too.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[2]  # the kbuilder package (kbuilder/ui/shell/..)
FOLDER = "resources"
# A file every complete resources folder has: another package's "resources" folder beside
# kbuilder in site-packages must not be taken for ours.
MARKER = "kbuilder.svg"


class ResourceError(FileNotFoundError):
    """A resource file kbuilder needs is not where it was installed."""


def candidates(package_dir: Path = PACKAGE_DIR, bundle: str | None = None) -> list[Path]:
    """The folders that may hold the resources, in the order they are tried.

    Args:
        package_dir: the ``kbuilder`` package folder.
        bundle: the PyInstaller bundle's folder (``sys._MEIPASS``), if running from one.
    """
    found = []
    if bundle:
        found.append(Path(bundle) / "kbuilder" / FOLDER)
    found.append(package_dir / FOLDER)  # an installed wheel
    found.append(package_dir.parent / FOLDER)  # a checkout (or an editable install of one)
    return found


def find_root(package_dir: Path = PACKAGE_DIR, bundle: str | None = None) -> Path:
    """The first of ``candidates`` that holds kbuilder's resources.

    Raises:
        ResourceError: none does (the installation is incomplete).
    """
    places = candidates(package_dir, bundle)
    for place in places:
        if (place / MARKER).is_file():
            return place
    raise ResourceError(
        "kbuilder's resource files (icons, style sheets) are missing: none of "
        + ", ".join(str(p) for p in places)
        + f" holds {MARKER}. Reinstall kbuilder; in a checkout, restore the top-level "
        f"{FOLDER}/ folder (git checkout -- {FOLDER})."
    )


@functools.cache
def root() -> Path:
    """The folder this kbuilder's resources are in (looked up once)."""
    return find_root(bundle=getattr(sys, "_MEIPASS", None))


def path(name: str) -> Path:
    """The file ``name`` (relative to ``resources/``, with ``/``).

    Raises:
        ResourceError: there is no such file.
    """
    file = root().joinpath(*name.split("/"))
    if not file.is_file():
        raise ResourceError(f"kbuilder has no resource file {name} (looked in {root()}).")
    return file


def names(folder: str, suffix: str) -> list[str]:
    """The stems of the files in ``folder`` ending in ``suffix``, sorted
    (``names("icons", ".svg")``: every icon's name)."""
    return sorted(p.name.removesuffix(suffix) for p in (root() / folder).glob("*" + suffix))


@functools.cache
def text(name: str) -> str:
    """The contents of the text file ``name`` (read once: resources do not change while
    kbuilder runs)."""
    return path(name).read_text(encoding="utf-8")


@functools.cache
def data(name: str) -> bytes:
    """The contents of the file ``name``, read once."""
    return path(name).read_bytes()
