"""The Results tab's Predictions: a run's trained model on a file the user chooses.

"Predict on a file…" sends the runtime's ``StartPrediction`` — the request
``kbuilder predict`` sends, run by the same ``runtime.inference.run_prediction`` — to a
worker of the run's backend, so the app and the CLI give the same predictions. Raw rows of
a table the model was fitted to in "model" encoding go through the run's
``row_encoder.json`` there; a folder gives its images. The worker writes every prediction
to a CSV in a temporary folder; the view shows the first ``MAX_SHOWN`` rows (each row's
line and first input columns beside its prediction) and "Save as CSV…" copies the whole
file where the user says, atomically (``kbuilder.files.atomic_write``).

No numpy or keras here: the worker reads the file and runs the model.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kbuilder import files
from kbuilder.graph.runs import RunRecord
from kbuilder.graph.settings import IMAGE_EXTENSIONS
from kbuilder.graph.text import plural
from kbuilder.runtime import protocol as p
from kbuilder.ui.jobs.worker_job import QtWorkerJob
from kbuilder.ui.shell import icons

# Rows shown in the table; the saved CSV has all of them.
MAX_SHOWN = 1000
# The input's first columns shown beside each prediction (after its line number).
INPUT_COLUMNS = 4
TABLE_FILTER = ("Tables and arrays (*.csv *.tsv *.tab *.txt *.parquet *.pq *.xlsx *.xlsm "
                "*.xls *.npy *.npz);;All files (*)")
IMAGE_FILTER = (f"Images ({' '.join('*' + e for e in IMAGE_EXTENSIONS)});;All files (*)")
ARRAY_FILTER = "NumPy arrays (*.npy *.npz);;All files (*)"
# What a model of images can predict on, in the order results_page asks.
IMAGE_INPUT_CHOICES = ("The images in a folder", "One image file",
                       "A NumPy array of images (.npy, .npz)")


def cell_text(column: str, value: str) -> str:
    """A prediction file's cell as the table shows it: probabilities to 4 decimals,
    other outputs to 6 significant digits, anything else as written."""
    if column == "confidence" or column.startswith("p_"):
        try:
            return f"{float(value):.4f}"
        except ValueError:
            return value
    if column.startswith("output_"):
        try:
            return f"{float(value):.6g}"
        except ValueError:
            return value
    return value


class QtPredictionView(QWidget):
    """Predictions of one run's model on a file, shown as a table and saved as CSV.

    Args:
        dialogs: a callable giving the window's dialogs (tests script them).
    """

    def __init__(self, dialogs: Callable[[], Any], parent: QWidget | None = None):
        super().__init__(parent)
        self._dialogs = dialogs
        self.job = QtWorkerJob(self)
        self.job.event_received.connect(self._on_event)
        self.job.succeeded.connect(self._on_predicted)
        self.job.failed.connect(self._on_failed)
        self.header: list[str] = []
        self.rows: list[list[str]] = []  # the shown rows, as the CSV has them
        self.samples = 0
        self.output: Path | None = None  # the latest predictions' CSV
        self.inputs: Path | None = None
        self._folder: Path | None = None
        self._count = 0

        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        bar = QHBoxLayout()
        self.title = QLabel("Predict with the selected run's model on a file of rows "
                            "(CSV, TSV, Parquet, Excel, NumPy) or a folder of images: "
                            "“Predict on a file…” under the list of runs.", self)
        self.title.setObjectName("muted")
        self.title.setWordWrap(True)
        bar.addWidget(self.title, 1)
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(160)
        self.progress.setTextVisible(False)
        self.progress.hide()
        bar.addWidget(self.progress)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop predicting (its worker process is ended)")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        bar.addWidget(self.cancel_button)
        self.save_button = QPushButton(icons.icon("save"), "Save as CSV…", self)
        self.save_button.setToolTip("Save every prediction (not only the rows shown) as "
                                    "a CSV file")
        self.save_button.clicked.connect(self.save_as)
        self.save_button.setEnabled(False)
        bar.addWidget(self.save_button)
        outer.addLayout(bar)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.hide()
        outer.addWidget(self.status)
        self.table = QTableWidget(0, 0, self)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        outer.addWidget(self.table, 1)

    # ================================================================ predict
    @property
    def busy(self) -> bool:
        return self.job.busy

    def predict(self, record: RunRecord, label: str, model: str, inputs: str) -> bool:
        """Predict with ``model`` (the run ``record``'s trained file, shown as run
        ``label``) on ``inputs`` (a table or array file, or a folder of images), in a
        worker of the run's backend; the outcome shows when it arrives."""
        if self.busy:
            return False
        self.inputs = Path(inputs)
        self._clear()
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="kbuilder-predictions-"))
        self._count += 1
        output = self._folder / f"predictions-{self._count}.csv"
        backend = str(record.backend or "jax")
        request = p.StartPrediction(
            str(record.run_id), model, str(output), inputs,
            dict(record.data or {}) or None,
            int((record.training or {}).get("batch_size", 32)),
            input_columns=INPUT_COLUMNS)
        self.title.setText(f"Run {label} on {self.inputs.name}")
        self.title.setObjectName("sectionTitle")
        self._repolish(self.title)
        self.progress.setRange(0, 0)  # until the first batch says how many there are
        self.progress.show()
        self.cancel_button.show()
        self.show_status(f"Predicting on {self.inputs.name} in a {backend} worker…")
        self.job.start(request, backend)
        return True

    def cancel(self) -> None:
        if self.busy:
            self.job.cancel()
            self._idle()
            self.show_status("Cancelled; no predictions were made.")

    def stop(self) -> None:
        """Cancel a running prediction and end the kept worker (another project)."""
        self.cancel()
        self.job.shutdown()

    def _on_event(self, message: Any) -> None:
        if isinstance(message, p.Progress):
            if message.total:
                self.progress.setRange(0, int(message.total))
                self.progress.setValue(min(int(message.done), int(message.total)))
            self.show_status(f"Predicting on {self.inputs.name if self.inputs else 'the file'}"
                             f": {plural(int(message.done), 'batch', 'batches', grouped=True)}"
                             + (f" of {int(message.total):,}" if message.total else "")
                             + " done…")

    def _on_predicted(self, result: Any) -> None:
        self._idle()
        if not isinstance(result, p.Predicted):
            return
        self.output, self.samples = Path(result.output_path), int(result.samples)
        try:
            self.header, self.rows = read_predictions(self.output, MAX_SHOWN)
        except (OSError, csv.Error) as exc:
            self.output = None
            self.show_status(f"The predictions could not be read back: {exc}", error=True)
            return
        self._fill_table()
        shown = (f"; the first {len(self.rows):,} are shown, “Save as CSV…” writes all "
                 "of them" if self.samples > len(self.rows) else "")
        count = plural(self.samples, "prediction", grouped=True)
        self.show_status(f"{count} for {result.split or 'the file'}{shown}.")
        self.save_button.setEnabled(True)

    def _on_failed(self, reason: str) -> None:
        self._idle()
        self.show_status(f"The prediction failed: {reason}", error=True)

    def _idle(self) -> None:
        # The worker is kept (QtWorkerJob): predicting on the next file skips importing
        # the backend; ``shutdown`` (the window closing, another project) ends it.
        self.progress.hide()
        self.cancel_button.hide()

    # ================================================================= table
    def _clear(self) -> None:
        self.header, self.rows, self.samples, self.output = [], [], 0, None
        self.table.clear()
        self.table.setRowCount(0)
        self.table.setColumnCount(0)
        self.save_button.setEnabled(False)

    def _fill_table(self) -> None:
        self.table.setColumnCount(len(self.header))
        self.table.setHorizontalHeaderLabels(self.header)
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            for c, (column, value) in enumerate(zip(self.header, row, strict=False)):
                item = QTableWidgetItem(cell_text(column, value))
                item.setData(Qt.ItemDataRole.UserRole, value)
                if column == "predicted":
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(r, c, item)

    def column(self, name: str) -> list[str]:
        """The shown values of column ``name``, as the table shows them."""
        c = self.header.index(name)
        return [self.table.item(r, c).text() for r in range(self.table.rowCount())]

    def show_status(self, text: str, error: bool = False) -> None:
        self.status.setObjectName("errorLabel" if error else "muted")
        self._repolish(self.status)
        self.status.setText(text)
        self.status.setVisible(bool(text))

    @staticmethod
    def _repolish(widget: QWidget) -> None:
        widget.style().unpolish(widget)
        widget.style().polish(widget)

    # ================================================================== save
    def save_as(self) -> bool:
        """Ask where, then write every prediction there as CSV (atomically)."""
        if self.output is None:
            return False
        stem = self.inputs.stem if self.inputs is not None else "predictions"
        path = self._dialogs().ask_save_path("Save the predictions", "CSV files (*.csv)",
                                             f"{stem}_predictions.csv")
        if not path:
            return False
        if Path(path).suffix.lower() != ".csv":
            path = f"{path}.csv"
        source = self.output

        def copy(target: Any) -> None:
            with source.open("rb") as handle:
                shutil.copyfileobj(handle, target)

        try:
            files.atomic_write(path, copy)
        except OSError as exc:
            self.show_status(f"The predictions could not be saved to {path}: "
                             f"{exc.strerror or exc}.", error=True)
            return False
        self.show_status(f"Saved {plural(self.samples, 'prediction', grouped=True)} to {path}.")
        return True

    def shutdown(self) -> None:
        """End a running prediction's worker and remove the temporary predictions."""
        self.job.shutdown()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
            self.output = None
            self.save_button.setEnabled(False)


def read_predictions(path: Path, limit: int) -> tuple[list[str], list[list[str]]]:
    """The header and the first ``limit`` rows of a predictions' CSV."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        rows = []
        for row in reader:
            if len(rows) >= limit:
                break
            rows.append(row)
    return header, rows


__all__ = ["QtPredictionView", "cell_text", "read_predictions"]
