"""File › Save Model as .keras, off the GUI thread and atomically.

A trained run's model is already a ``.keras`` file: saving it is a plain copy (in a
thread, through ``kbuilder.files.atomic_path``). The model being edited has to be built
by Keras, which the window never imports: a snapshot of the project goes to a worker as
a ``keras`` export (``kbuilder.runtime.export``), which writes through a staging folder
as every export does.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from kbuilder.files import atomic_path
from kbuilder.runtime import protocol as p
from kbuilder.ui.jobs.background_job import QtBackgroundJob
from kbuilder.ui.jobs.worker_job import QtWorkerJob


class QtModelSaver(QObject):
    """Saves one model at a time as ``.keras``.

    Signals:
        saved(path, what): the file is written; ``what`` says which model it holds.
        failed(reason): nothing was written at the target.
    """

    saved = Signal(str, str)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._copy = QtBackgroundJob("save-model", self)
        self._copy.finished.connect(self._on_copied)
        self._build = QtWorkerJob(self)
        self._build.succeeded.connect(self._on_built)
        self._build.failed.connect(self._on_build_failed)
        self._pending: tuple[str, str] | None = None  # (target, what) of the running job
        self._snapshot: Path | None = None

    @property
    def busy(self) -> bool:
        return self._pending is not None

    def save_copy(self, model: Path, target: Path, what: str) -> None:
        """Copy the trained model file ``model`` to ``target``."""
        self._pending = (str(target), what)

        def copy(_progress: Any) -> Path:
            with atomic_path(target, ".tmp.keras") as tmp:
                shutil.copyfile(model, tmp)
            return target

        self._copy.start(copy)

    def save_built(self, project: Any, target: Path, what: str) -> None:
        """Build ``project``'s model (with its weights) in a worker and save it."""
        from kbuilder.graph.project import write_recovery
        from kbuilder.runtime.export import export_backend

        # The worker reads a project file: a snapshot of the project as it is now.
        self._snapshot = Path(tempfile.mkdtemp(prefix="kbuilder-save-model-"))
        snapshot = self._snapshot / "project.kbproj"
        write_recovery(project, snapshot)
        self._pending = (str(target), what)
        request = p.StartExport("save-model", None, "keras", str(target), False,
                                str(snapshot))
        self._build.start(request, export_backend("keras") or "tensorflow")

    def _finish(self) -> tuple[str, str]:
        pending, self._pending = self._pending, None
        if self._snapshot is not None:
            shutil.rmtree(self._snapshot, ignore_errors=True)
            self._snapshot = None
        assert pending is not None
        return pending

    def _on_copied(self, result: Any) -> None:
        target, what = self._finish()
        if isinstance(result, BaseException):
            reason = getattr(result, "strerror", None) or str(result)
            self.failed.emit(f"{Path(target).name} could not be written: {reason}.")
        else:
            self.saved.emit(target, what)

    def _on_built(self, result: Any) -> None:
        target, what = self._finish()
        self._build.shutdown()  # saving a model is occasional: no idle backend kept
        self.saved.emit(target, what)

    def _on_build_failed(self, reason: str) -> None:
        self._finish()
        self._build.shutdown()
        self.failed.emit(reason)

    def shutdown(self) -> None:
        self._build.shutdown()
