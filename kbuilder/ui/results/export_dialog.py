"""The Export dialog: a trained run's model (or the current model) to any format of
``kbuilder.runtime.export``, checked against Keras, with the parity table shown after.

The export runs in a worker process on the backend that serves the format (TensorFlow for
the converted formats, see ``export_backend``), so the window stays responsive; the worker
is kept while the dialog is open, so a second format of the same model skips TensorFlow's
import and the model's conversion. The dialog is not modal: the user may go on working.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kbuilder.graph.runs import trained_runs
from kbuilder.runtime import protocol as p
from kbuilder.runtime.export import ExportError, check_output, export_backend
from kbuilder.runtime.export_formats import FORMATS
from kbuilder.ui.document import QtDocument
from kbuilder.ui.jobs.worker_job import QtWorkerJob
from kbuilder.ui.results.run_format import key_metric, model_path, run_label, when_text
from kbuilder.ui.shell import theme

PARITY_COLUMNS = ("format", "runtime", "max abs diff", "tolerance", "verdict")
# Folder exports get the format's name as a suffix, so two of them never collide.
FOLDER_TAILS = tuple(f"_{name}" for name, spec in FORMATS.items() if not spec.suffix)


def suggested_output(folder: Path, stem: str, format: str) -> Path:
    """Where an export of ``stem`` to ``format`` goes by default."""
    spec = FORMATS[format]
    return folder / (stem + spec.suffix if spec.suffix else f"{stem}_{format}")


def output_stem(path: Path) -> str:
    """The name of an output without its format's suffix or folder tail."""
    name = path.name
    for suffix in {f.suffix for f in FORMATS.values() if f.suffix}:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    for tail in FOLDER_TAILS:
        if name.endswith(tail):
            return name[: -len(tail)]
    return name


def _number(value: Any) -> str:
    return "—" if value is None else f"{value:.2e}"


class QtExportDialog(QDialog):
    """Export a model and show how the export compares with Keras.

    Args:
        parent: the window.
        dialogs: returns the window's dialogs (file choosers; tests script them).

    Signals:
        exported(message): an export finished (``protocol.Exported``).
    """

    exported = Signal(object)

    def __init__(self, parent: QWidget | None = None,
                 dialogs: Callable[[], Any] | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export the model")
        self.setModal(False)
        self.setMinimumWidth(680)
        self.doc: QtDocument | None = None
        self._dialogs = dialogs
        self.result: p.Exported | None = None
        self.error: str = ""
        self._snapshot: Path | None = None  # the project file the running export reads
        self._started = 0.0
        self.job = QtWorkerJob(self)
        self.job.succeeded.connect(self._on_exported)
        self.job.failed.connect(self._on_failed)

        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.source_combo = QComboBox(self)
        self.source_combo.setToolTip("The trained model of a run, or the model being edited "
                                     "(with the project's weights)")
        form.addRow("Model:", self.source_combo)
        self.format_combo = QComboBox(self)
        for name, spec in FORMATS.items():
            self.format_combo.addItem(f"{spec.title} ({self._what(name)})", name)
        self.format_combo.currentIndexChanged.connect(self._on_format_changed)
        form.addRow("Format:", self.format_combo)
        path_row = QHBoxLayout()
        self.output_edit = QLineEdit(self)
        self.output_edit.setPlaceholderText("Where to write the export")
        self.output_edit.textChanged.connect(lambda _t: self._update_buttons())
        self.browse_button = QPushButton("Browse…", self)
        self.browse_button.clicked.connect(self.browse)
        path_row.addWidget(self.output_edit, 1)
        path_row.addWidget(self.browse_button)
        form.addRow("Output:", path_row)
        layout.addLayout(form)
        self.check_note = QLabel(self)
        self.check_note.setObjectName("muted")
        self.check_note.setWordWrap(True)
        layout.addWidget(self.check_note)

        status_row = QHBoxLayout()
        self.busy = QProgressBar(self)
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.busy.setMaximumWidth(140)
        self.busy.hide()
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        status_row.addWidget(self.busy)
        status_row.addWidget(self.status, 1)
        layout.addLayout(status_row)

        self.parity_title = QLabel("Parity with Keras", self)
        self.parity_title.setObjectName("sectionTitle")
        layout.addWidget(self.parity_title)
        self.parity = QTableWidget(0, len(PARITY_COLUMNS), self)
        self.parity.setHorizontalHeaderLabels(list(PARITY_COLUMNS))
        self.parity.verticalHeader().hide()
        self.parity.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.parity.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.parity.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.parity.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.parity)
        self.files_title = QLabel("Files written", self)
        self.files_title.setObjectName("sectionTitle")
        layout.addWidget(self.files_title)
        self.files = QListWidget(self)
        layout.addWidget(self.files)
        self.notes = QLabel(self)
        self.notes.setWordWrap(True)
        layout.addWidget(self.notes)
        for widget in (self.parity_title, self.parity, self.files_title, self.files,
                       self.notes):
            widget.hide()

        buttons = QDialogButtonBox(self)
        self.folder_button = buttons.addButton("Open Folder",
                                               QDialogButtonBox.ButtonRole.ActionRole)
        self.folder_button.clicked.connect(self._open_folder)
        self.folder_button.hide()
        self.export_button = buttons.addButton("Export",
                                               QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.export)
        self.close_button = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.close_button.clicked.connect(self.close)
        layout.addWidget(buttons)

        self._clock = QTimer(self)
        self._clock.setInterval(500)
        self._clock.timeout.connect(self._tick)
        self._on_format_changed()

    # ================================================================ choices
    @staticmethod
    def _what(format: str) -> str:
        spec = FORMATS[format]
        if format == "openvino":
            return ".xml + .bin"
        return spec.suffix or "folder"

    @property
    def format(self) -> str:
        return str(self.format_combo.currentData())

    def set_format(self, format: str) -> None:
        self.format_combo.setCurrentIndex(self.format_combo.findData(format))

    def set_output(self, path: str | Path) -> None:
        self.output_edit.setText(str(path))

    def set_document(self, doc: QtDocument | None) -> None:
        if doc is not self.doc:
            self.doc = doc
            self.output_edit.clear()
        self._fill_sources()

    def _fill_sources(self) -> None:
        chosen = self.source_combo.currentData()
        self.source_combo.clear()
        runs = self.doc.project.runs if self.doc is not None else []
        project_path = self.doc.project.path if self.doc is not None else None
        for index, record in trained_runs(runs, project_path):
            metric = key_metric(record.test_metrics or {})
            score = f", {metric[0]} {metric[1]:.3f}" if metric and isinstance(
                metric[1], float) else ""
            self.source_combo.addItem(
                f"Run {run_label(index)} — {when_text(record.created)}, "
                f"{record.backend}, {record.status}{score}",
                record.run_id)
        if self.doc is not None:
            weights = ("with the project's weights" if self.doc.project.weights
                       else "untrained")
            self.source_combo.addItem(f"The model being edited ({weights})", None)
        index = self.source_combo.findData(chosen)
        self.source_combo.setCurrentIndex(max(index, 0))
        self._update_buttons()

    def choose_source(self, run_id: str | None) -> None:
        """Export the model of run ``run_id``, or the model being edited (``None``)."""
        self._fill_sources()
        index = self.source_combo.findData(run_id)
        if index < 0 and run_id is None:
            index = self.source_combo.count() - 1
        self.source_combo.setCurrentIndex(max(index, 0))
        if not self.output_edit.text():
            self.set_output(suggested_output(self._default_folder(), self._default_stem(),
                                             self.format))

    def _default_folder(self) -> Path:
        project = self.doc.project if self.doc is not None else None
        if project is not None and project.path is not None:
            return Path(project.path).parent
        return Path.home()

    def _default_stem(self) -> str:
        project = self.doc.project if self.doc is not None else None
        return (project.name if project is not None else "model") or "model"

    def _on_format_changed(self, _index: int = 0) -> None:
        spec = FORMATS[self.format]
        if not self.job.busy:  # the last outcome (its parity table) was another format's
            self._clear_outcome()
        text = self.output_edit.text().strip()
        if text:
            path = Path(text)
            self.set_output(suggested_output(path.parent, output_stem(path), self.format))
        runtime = spec.runtime
        backend = export_backend(self.format)
        made = (" It is converted by a TensorFlow worker, whatever backend trained the model."
                if backend == "tensorflow" else "")
        self.check_note.setText(
            f"After writing, the export is loaded in {runtime} and compared with Keras on a "
            f"random batch; an export that does not match is not kept.{made}")
        self._update_buttons()

    def browse(self) -> None:
        spec = FORMATS[self.format]
        current = self.output_edit.text().strip() or str(
            suggested_output(self._default_folder(), self._default_stem(), self.format))
        dialogs = self._dialogs() if self._dialogs else None
        if dialogs is None:
            from kbuilder.ui.shell.dialogs import QtDialogs

            dialogs = QtDialogs(self)
        if spec.suffix:
            path = dialogs.ask_save_path(f"Export to {spec.title}",
                                         f"{spec.title} (*{spec.suffix})", current)
        else:
            folder = dialogs.ask_folder(f"The folder to put the {spec.title} export in",
                                        str(Path(current).parent))
            path = str(Path(folder) / Path(current).name) if folder else ""
        if path:
            if spec.suffix and not path.lower().endswith(spec.suffix):
                path += spec.suffix
            self.set_output(path)

    # ================================================================= export
    def export(self) -> bool:
        """Start the export (in a worker); the outcome shows in the dialog."""
        if self.job.busy or self.doc is None:
            return False
        self._clear_outcome()
        try:
            output = check_output(self.format, self.output_edit.text().strip())
        except ExportError as exc:
            self._show_error(str(exc))
            return False
        try:
            model, project = self._source_paths()
        except (OSError, ValueError) as exc:
            self._show_error(f"The model to export could not be prepared: {exc}")
            return False
        request = p.StartExport("export", model, self.format, str(output), True, project)
        # The converted formats need TensorFlow; Keras runs the others eagerly fastest on
        # TensorFlow too (JAX compiles every operation on first use), as the CLI does.
        backend = export_backend(self.format) or "tensorflow"
        self._set_busy(True)
        self.job.start(request, backend)
        return True

    def _source_paths(self) -> tuple[str | None, str | None]:
        """``(model_path, project_path)`` of the request."""
        from kbuilder.graph.project import write_recovery
        from kbuilder.graph.settings import DataSettings, SettingsError, TrainingSettings

        assert self.doc is not None
        project = self.doc.project
        run_id = self.source_combo.currentData()
        record = next((r for r in project.runs if r.run_id == run_id), None)
        model = model_path(record, project.path) if record is not None else None
        if record is not None and model is None:
            raise ValueError("the run's trained model is no longer on disk")
        if model is not None and self.format not in ("python", "notebook"):
            return model, None
        # The worker reads a project file: a snapshot of the project as it is now (saved
        # or not), with the run's data and training settings when a run is exported, so
        # the generated training script reproduces that run.
        snapshot = Path(tempfile.mkdtemp(prefix="kbuilder-export-")) / "project.kbproj"
        self._snapshot = snapshot
        saved = project.data, project.training
        try:
            if record is not None and record.data:
                project.data = DataSettings.from_dict(record.data)
            if record is not None and record.training:
                project.training = TrainingSettings.from_dict(record.training)
            write_recovery(project, snapshot)
        except SettingsError as exc:
            raise ValueError(f"the settings of the run are not valid here ({exc})") from exc
        finally:
            project.data, project.training = saved
        return model, str(snapshot)

    def _on_exported(self, result: Any) -> None:
        self._set_busy(False)
        self._drop_snapshot()
        if not isinstance(result, p.Exported):
            return
        self.result = result
        spec = FORMATS.get(result.format)
        count = len(result.files)
        verdict = ""
        if result.report:
            worst = max((r.get("max_abs_diff") or 0.0 for r in result.report), default=0.0)
            verdict = (f" It matches Keras: largest difference {worst:.2e}."
                       if all(r.get("verdict") == "pass" for r in result.report) else "")
        self.status.setObjectName("")
        self._restyle(self.status)
        self.status.setText(f"Exported to {spec.title if spec else result.format}: "
                            f"{result.output} ({count} file{'s' if count != 1 else ''}) "
                            f"in {time.monotonic() - self._started:.0f} s.{verdict}")
        self._show_parity(result.report)
        self.files.clear()
        self.files.addItems(result.files)
        rows = max(1, min(len(result.files), 6))
        self.files.setFixedHeight(rows * max(self.files.sizeHintForRow(0), 18)
                                  + 2 * self.files.frameWidth() + 4)
        self.notes.setText("\n".join(result.notes))
        for widget in (self.files_title, self.files, self.folder_button):
            widget.show()
        self.notes.setVisible(bool(result.notes))
        self.exported.emit(result)
        self.adjustSize()

    def _on_failed(self, reason: str) -> None:
        self._set_busy(False)
        self._drop_snapshot()
        self._show_error(reason)

    def _show_parity(self, rows: list[dict[str, Any]]) -> None:
        colors = theme.colors()
        self.parity.setRowCount(len(rows))
        for i, row in enumerate(rows):
            verdict = str(row.get("verdict", ""))
            cells = (row.get("format", ""), row.get("runtime", ""),
                     _number(row.get("max_abs_diff")), _number(row.get("tolerance")),
                     verdict + (f" ({row['note']})" if row.get("note") else ""))
            for j, text in enumerate(cells):
                item = QTableWidgetItem(str(text))
                if j == 4:
                    item.setForeground(colors.valid if verdict == "pass" else colors.error)
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.parity.setItem(i, j, item)
        self.parity.setFixedHeight(  # the rows, without empty space below them
            self.parity.horizontalHeader().height() + 2 * self.parity.frameWidth()
            + sum(self.parity.rowHeight(i) for i in range(len(rows))) + 2)
        self.parity_title.setVisible(bool(rows))
        self.parity.setVisible(bool(rows))

    def parity_rows(self) -> list[list[str]]:
        """The parity table as shown, one list of cell texts per row."""
        return [[self.parity.item(i, j).text() for j in range(self.parity.columnCount())]
                for i in range(self.parity.rowCount())]

    # ================================================================ helpers
    def _set_busy(self, busy: bool) -> None:
        self.busy.setVisible(busy)
        for widget in (self.export_button, self.source_combo, self.format_combo,
                       self.output_edit, self.browse_button):
            widget.setEnabled(not busy)
        if busy:
            self._started = time.monotonic()
            self._clock.start()
            self._tick()
        else:
            self._clock.stop()
            self._update_buttons()

    def _tick(self) -> None:
        spec = FORMATS[self.format]
        where = ("a TensorFlow worker (its first export loads TensorFlow)"
                 if self.job.worker is None or not self.job.worker.ready
                 else "the TensorFlow worker")
        self.status.setObjectName("muted")
        self._restyle(self.status)
        self.status.setText(f"Exporting to {spec.title} and checking it against Keras in "
                            f"{where}… {time.monotonic() - self._started:.0f} s")

    def _clear_outcome(self) -> None:
        self.result, self.error = None, ""
        self.status.clear()
        self.parity.setRowCount(0)
        self.files.clear()
        for widget in (self.parity_title, self.parity, self.files_title, self.files,
                       self.notes, self.folder_button):
            widget.hide()

    def _show_error(self, message: str) -> None:
        self.error = message
        self.status.setObjectName("errorLabel")
        self._restyle(self.status)
        self.status.setText(f"The export failed: {message}\nNothing was written; change "
                            "the format, the output or the model and try again.")

    @staticmethod
    def _restyle(widget: QWidget) -> None:
        widget.style().unpolish(widget)
        widget.style().polish(widget)

    def _update_buttons(self) -> None:
        self.export_button.setEnabled(
            not self.job.busy and self.doc is not None and self.source_combo.count() > 0
            and bool(self.output_edit.text().strip()))

    def _open_folder(self) -> None:
        if self.result is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(self.result.output).parent)))

    def shutdown_workers(self) -> None:
        self.job.shutdown()

    def closeEvent(self, event) -> None:
        # Closing cancels a running export (its worker is killed; nothing is written) and
        # ends the kept worker: an idle TensorFlow is a lot of memory.
        self.job.shutdown()
        self._set_busy(False)
        self._drop_snapshot()
        super().closeEvent(event)

    def done(self, result: int) -> None:  # Escape
        self.job.shutdown()
        self._set_busy(False)
        self._drop_snapshot()
        super().done(result)

    def _drop_snapshot(self) -> None:
        if self._snapshot is not None:
            shutil.rmtree(self._snapshot.parent, ignore_errors=True)
            self._snapshot = None
