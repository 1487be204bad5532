"""Writing files safely: the one atomic write, and the lock every writer of a project takes.

``atomic_write`` writes through a temporary file in the destination's folder (flushed and
fsynced), renames it over the destination with ``os.replace`` and fsyncs the folder, so a
reader — or a crash at any moment — sees the old file or the new one, never a mix.

``project_lock`` is an advisory lock (the ``filelock`` package) beside a project file:
kbuilder processes that write the same project (the window, ``kbuilder train``, another
CLI) take it around read-merge-write, so no writer loses another's change. Under the
lock, ``remove_stale_temporaries`` deletes what interrupted saves of that file left
behind: a save in progress holds the lock, so its temporary file is never touched.

Pure Python, no Qt and no keras: every layer may use it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

# How long a writer waits for another to finish with a project before giving up.
LOCK_TIMEOUT = 60.0
TEMP_SUFFIX = ".tmp"


class FileLockedError(OSError):
    """Another process held the project's lock for longer than ``LOCK_TIMEOUT``."""


def output_folder_problem(path: Path) -> str | None:
    """Why a file cannot be written at ``path`` (its folder is missing or read-only), as a
    sentence, or ``None``: checked before any work, so a long job never fails at its end."""
    folder = path.parent
    if not folder.is_dir():
        return f"The folder '{folder}' does not exist."
    if not os.access(folder, os.W_OK):
        return f"The folder '{folder}' is not writable."
    return None


def temporary_name(path: Path, suffix: str = TEMP_SUFFIX) -> Path:
    """``.<name>.<random>.tmp`` beside ``path``: hidden, unique, and recognisable as ours."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}{suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = TEMP_SUFFIX) -> Iterator[Path]:
    """A temporary path to write to; it replaces ``path`` when the block ends without error.

    For writers that want a file name rather than a stream (``model.save`` needs the
    ``.keras`` suffix: pass ``suffix=".tmp.keras"``). The mode of an existing ``path`` is
    kept; on any error (also ``KeyboardInterrupt``) the temporary file is removed and
    ``path`` is untouched.

    Raises:
        OSError: the file could not be written.
    """
    # Write through a symlink rather than replacing the link with a file.
    path = Path(os.path.realpath(path))
    tmp = temporary_name(path, suffix)
    try:
        yield tmp
        if tmp.is_file():
            _fsync_file(tmp)
        with contextlib.suppress(OSError):
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_directory(path.parent)


def atomic_write(path: str | os.PathLike[str],
                 content: bytes | str | Callable[[IO[bytes]], None]) -> None:
    """Write ``content`` (bytes, UTF-8 text, or a function writing to a binary stream) to
    ``path`` atomically.

    Raises:
        OSError: the file could not be written; a previous file at ``path`` is intact.
    """
    with atomic_path(path) as tmp:
        # os.open with 0o666 lets the umask decide the mode, as for any new file (mkstemp
        # would leave the file readable by its owner only).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o666)
        with os.fdopen(fd, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content.encode("utf-8") if isinstance(content, str) else content)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); not possible or needed on Windows."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def lock_path(path: Path) -> Path:
    """The lock file of ``path``: ``.<name>.lock`` beside it."""
    path = Path(os.path.realpath(path))
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def project_lock(path: str | os.PathLike[str], timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the advisory lock of the project file ``path`` (re-entrant in one thread).

    Raises:
        FileLockedError: another process held it for ``timeout`` seconds.
        OSError: the lock file cannot be created (e.g. the folder is not writable).
    """
    from filelock import FileLock, Timeout

    # One instance per lock file in this process, so that a thread holding it can take it
    # again (saving inside a read-merge-write).
    lock = FileLock(lock_path(Path(path)), is_singleton=True)
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise FileLockedError(
            f"{Path(path).name} is being written by another kbuilder process (it has held "
            f"{lock.lock_file} for {timeout:.0f} s); try again when it has finished."
        ) from None
    try:
        yield
    finally:
        lock.release()


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporary files interrupted saves of ``path`` left (``.<name>.*.tmp``).

    Call it holding ``project_lock(path)``: a save in progress holds the lock too, so
    only leftovers of saves that died are removed. Returns the files removed.
    """
    path = Path(os.path.realpath(path))
    removed = []
    prefix = f".{path.name}."
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            if (entry.name.startswith(prefix) and entry.name.endswith(TEMP_SUFFIX)
                    and entry.is_file(follow_symlinks=False)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def check_writable(path: Path) -> str | None:
    """Why ``path`` cannot be replaced by a save (a phrase: "P is read-only"), or ``None``.

    A read-only file is the user's word that it must not change — even for root, for whom
    ``os.access`` says yes to everything, and although a rename would replace it.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        return f"{path} cannot be examined ({exc.strerror or exc})"
    if mode is not None:
        if not stat.S_ISREG(mode):
            return f"{path} is not a regular file"
        if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(
                path, os.W_OK):
            return f"{path} is read-only"
    folder = Path(os.path.realpath(path)).parent
    if not folder.is_dir():
        return f"the folder {folder} does not exist"
    if not os.access(folder, os.W_OK):
        return f"the folder {folder} is not writable"
    return None


# A folder's claim: held by the process that will record what is made in it (a training
# run's folder), released by the OS if that process dies. Others can tell a folder still
# in use from one left behind.
CLAIM_FILE = ".in-use.lock"


def claim_folder(folder: Path) -> object:
    """Claim ``folder`` for this process; pass what it returns to ``release_claim``."""
    from filelock import FileLock

    lock = FileLock(Path(folder) / CLAIM_FILE, is_singleton=False, thread_local=False)
    lock.acquire(timeout=0)
    return lock


def release_claim(claim: object) -> None:
    claim.release()  # type: ignore[attr-defined]


def is_claimed(folder: Path) -> bool:
    """Whether a live process (this one included) holds ``folder``'s claim."""
    from filelock import FileLock, Timeout

    if not (Path(folder) / CLAIM_FILE).exists():
        return False
    lock = FileLock(Path(folder) / CLAIM_FILE, is_singleton=False, thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:
        return False
    lock.release()
    return False
