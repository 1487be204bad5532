"""Autosave to a recovery file, and finding the recovery files of sessions that crashed.

While a project has unsaved changes, it is written (atomically, ``write_recovery``) to
``<dir>/autosave-<pid>.kbproj`` at least every minute, with a small JSON note beside it
(which file it belongs to, when, which process). A clean exit or a save removes both. At
start-up, notes whose process is gone mean a crash: the start page offers to recover.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

from kbuilder.processes import process_alive

if TYPE_CHECKING:  # the project module needs numpy: not on the start-up path
    from kbuilder.graph.project import Project

INTERVAL_MS = 60_000


def _start_time(pid: int) -> str:
    """The process's start time (Linux), so a reused pid is not mistaken for ours."""
    if not sys.platform.startswith("linux"):
        return ""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def _alive(pid: int, started: str) -> bool:
    """Whether the session that wrote an autosave still runs (the same process: its pid
    and start time); unknown (Windows) counts as gone, so its work is offered back."""
    if not process_alive(pid, unknown=False):
        return False
    return pid == os.getpid() or not started or _start_time(pid) == started


@dataclass(frozen=True)
class RecoveryEntry:
    """The autosave of a session that did not exit cleanly."""

    path: Path
    note: Path
    original: str | None
    title: str
    saved_at: float
    pid: int

    @property
    def saved_at_text(self) -> str:
        return time.strftime("%H:%M on %d %b", time.localtime(self.saved_at))

    def discard(self) -> None:
        for p in (self.path, self.note):
            try:
                p.unlink()
            except FileNotFoundError:
                pass


def pending_recoveries(directory: Path) -> list[RecoveryEntry]:
    """Autosaves left by sessions that are no longer running, newest first."""
    entries = []
    if not directory.is_dir():
        return entries
    for note in directory.glob("autosave-*.json"):
        try:
            data = json.loads(note.read_text())
            pid = int(data["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        path = note.with_suffix(".kbproj")
        if not path.exists() or _alive(pid, str(data.get("started", ""))):
            continue
        entries.append(RecoveryEntry(path, note, data.get("original"),
                                     str(data.get("title") or "an unsaved model"),
                                     float(data.get("saved_at", note.stat().st_mtime)), pid))
    return sorted(entries, key=lambda e: e.saved_at, reverse=True)


class QtAutosave(QObject):
    """Writes the open project to its recovery file while it has unsaved changes.

    Args:
        directory: where recovery files live (created when first needed).
        interval_ms: how often to write, at most (default one minute).

    Signals:
        saved(path), failed(message).
    """

    saved = Signal(str)
    failed = Signal(str)

    def __init__(self, directory: Path, interval_ms: int = INTERVAL_MS,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.directory = Path(directory)
        self.project: Project | None = None
        self._changed = False
        self._pid = os.getpid()
        self._started = _start_time(self._pid)
        self.path = self.directory / f"autosave-{self._pid}.kbproj"
        self.note = self.path.with_suffix(".json")
        self.timer = QTimer(self, interval=interval_ms)
        self.timer.timeout.connect(self.autosave)
        self.timer.start()

    def set_project(self, project: Project | None) -> None:
        """Follow another project (its recovery replaces the previous one's)."""
        self.clear()
        self.project = project
        self._changed = project is not None and project.modified

    def mark_changed(self) -> None:
        self._changed = True

    def autosave(self) -> bool:
        """Write the recovery file now if there is something new to keep."""
        project = self.project
        if project is None or not self._changed:
            return False
        if not project.modified:  # saved since: nothing to recover
            self.clear()
            self._changed = False
            return False
        from kbuilder.graph.project import write_recovery

        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_recovery(project, self.path)
            self.note.write_text(json.dumps({
                "pid": self._pid,
                "started": self._started,
                "original": str(project.path) if project.path else None,
                "title": project.path.name if project.path else project.name,
                "saved_at": time.time(),
            }))
        except Exception as exc:  # an autosave must never take the editor down
            self.failed.emit(f"Autosave failed: {exc}")
            return False
        self._changed = False
        self.saved.emit(str(self.path))
        return True

    def clear(self) -> None:
        """Remove this session's recovery file (saved, closed, or replaced)."""
        for p in (self.path, self.note):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError:
                pass
