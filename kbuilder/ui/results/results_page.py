"""The Results tab: every run of the project, their curves overlaid, evaluation and export.

The runs are the JSON records of ``kbuilder.runtime.runner.run_record`` in
``project.runs``. The list shows each run's settings and outcome; selecting several
overlays their curves (one colour per run, training solid, validation dashed). The run
under the cursor shows its evaluation (``evaluation_view``) and its reproducibility
details (HTML from ``run_details``); its trained model can be opened in the editor,
evaluated again on another split, run on a file of new rows or images
(``prediction_view``) or exported (``export_dialog``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from kbuilder.graph import runs as run_files
from kbuilder.graph.runs import RunRecord
from kbuilder.runtime import protocol as p
from kbuilder.ui.document import QtDocument
from kbuilder.ui.jobs.worker_job import QtWorkerJob
from kbuilder.ui.results import prediction_view
from kbuilder.ui.results.run_details import baseline_html, details_html, takes_images
from kbuilder.ui.results.run_format import (
    SPLIT_NAMES,
    duration_text,
    epochs_text,
    format_metric,
    key_metric,
    metric_name,
    model_path,
    run_label,
    when_text,
)
from kbuilder.ui.shell import icons, theme

if TYPE_CHECKING:  # pyqtgraph and the evaluation view load with the tab's first showing
    import pyqtgraph as pg

# One colour per run, distinct on light and dark backgrounds.
RUN_COLORS = ("#3b82f6", "#f97316", "#22c55e", "#ec4899", "#8b5cf6", "#14b8a6", "#eab308",
              "#ef4444", "#64748b", "#06b6d4")
COLUMNS = ("Run", "When", "Backend", "Epochs", "Status", "Test result", "Duration")
# History keys that are not curves of the model's quality.
NOT_CURVES = {"learning_rate", "lr"}


# ============================================================== record helpers
def curve_names(history: dict[str, Any]) -> list[str]:
    """The training curves of a history (``val_`` ones are drawn with them)."""
    return [k for k in history if not k.startswith("val_") and k not in NOT_CURVES]


# =================================================================== the page
class QtResultsPage(QWidget):
    """The runs of the open project, their curves, evaluation and details.

    Signals:
        open_model_requested(path): the user asked to open a run's trained ``.keras``.
        runs_changed(): ``project.runs`` changed (a run deleted, an evaluation added).
    """

    open_model_requested = Signal(str)
    runs_changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.doc: QtDocument | None = None
        self.dialogs: Any = None  # None: the window's dialogs (tests script those)
        self.export_dialog: Any = None
        self.curves: dict[tuple[str, str], pg.PlotDataItem] = {}
        self._evaluating: RunRecord | None = None
        self._built = False
        self._pending_run: str | None = None  # recorded while the tab was hidden
        self._selection_due = False  # the selection's curves and evaluation wait a turn
        self.job = QtWorkerJob(self)
        self.job.succeeded.connect(self._on_evaluated)
        self.job.failed.connect(self._on_evaluation_failed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.pages = QStackedWidget(self)
        layout.addWidget(self.pages)
        self.empty = QLabel("No runs yet.\n\nTrain the model in the Train tab: each run is "
                            "kept here with its settings, curves and evaluation.", self)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setObjectName("muted")
        self.pages.addWidget(self.empty)

    def ensure_built(self, fill: bool = True) -> None:
        """Build the tab's widgets (plots, evaluation view) on its first showing: they
        take a second to make, and the window must appear fast. ``fill``: show the
        runs in them at once."""
        if self._built:
            return
        self._built = True
        import pyqtgraph as pg

        from kbuilder.ui.results.evaluation_view import EpochAxis, QtEvaluationView

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.pages.addWidget(splitter)
        left = QSplitter(Qt.Orientation.Vertical, splitter)
        runs_box = QWidget(left)
        runs_layout = QVBoxLayout(runs_box)
        runs_layout.setContentsMargins(8, 8, 4, 4)
        title = QLabel("Runs — select several to compare their curves", runs_box)
        title.setObjectName("sectionTitle")
        runs_layout.addWidget(title)
        self.table = QTableWidget(0, len(COLUMNS), runs_box)
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.table.currentCellChanged.connect(lambda *_a: self._show_current())
        self.table.itemDoubleClicked.connect(lambda _item: self.open_model())
        runs_layout.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        self.open_button = QPushButton(icons.icon("open"), "Open Model", runs_box)
        self.open_button.clicked.connect(self.open_model)
        self.export_button = QPushButton(icons.icon("export"), "Export…", runs_box)
        self.export_button.clicked.connect(lambda: self.open_export_dialog(self.current_run_id()))
        self.predict_button = QPushButton(icons.icon("open"), "Predict on a file…", runs_box)
        self.predict_button.clicked.connect(lambda: self.predict_on_file())
        self.delete_button = QPushButton(icons.icon("delete"), "Delete", runs_box)
        self.delete_button.clicked.connect(self.delete_selected)
        for button in (self.open_button, self.predict_button, self.export_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.delete_button)
        runs_layout.addLayout(buttons)

        self.plots = pg.GraphicsLayoutWidget(left)
        self.loss_plot = self.plots.addPlot(row=0, col=0, title="Loss",
                                            axisItems={"bottom": EpochAxis("bottom")})
        self.metric_plot = self.plots.addPlot(row=1, col=0, title="Metrics",
                                              axisItems={"bottom": EpochAxis("bottom")})
        # Losses fall and metrics mostly rise: each legend where its curves are not.
        for plot, corner in ((self.loss_plot, (-8, 8)), (self.metric_plot, (-8, -8))):
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setLabel("bottom", "epoch")
            plot.addLegend(offset=corner, labelTextSize="8pt")
        self.metric_plot.setXLink(self.loss_plot)
        left.addWidget(runs_box)
        left.addWidget(self.plots)
        left.setSizes([300, 480])

        right = QWidget(splitter)
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        # The baselines above the evaluation: a 0.36 accuracy means something only next
        # to what always guessing and a linear model get on the same split.
        self.baseline = QLabel(right)
        self.baseline.setObjectName("baselines")
        self.baseline.setWordWrap(True)
        self.baseline.setTextFormat(Qt.TextFormat.RichText)
        self.baseline.setContentsMargins(8, 8, 8, 4)
        self.baseline.hide()
        right_layout.addWidget(self.baseline)
        self.tabs = QTabWidget(right)
        right_layout.addWidget(self.tabs, 1)
        self.evaluation = QtEvaluationView(self.tabs)
        self.evaluation.evaluate_requested.connect(self.evaluate_again)
        self.details = QTextBrowser(self.tabs)
        self.details.setOpenLinks(False)
        self.predictions = prediction_view.QtPredictionView(self._dialogs, self.tabs)
        from kbuilder.ui.results.insight_view import QtInsightView

        self.insight = QtInsightView(self.tabs)
        self.tabs.addTab(self.evaluation, "Evaluation")
        self.tabs.addTab(self.predictions, "Predictions")
        self.tabs.addTab(self.insight, "Inside")
        self.tabs.addTab(self.details, "Details")
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([560, 840])
        self.splitter = splitter
        theme.manager().changed.connect(self._refresh_theme)
        self._refresh_theme()
        if fill:
            self.refresh()

    # =============================================================== document
    @property
    def runs(self) -> list[RunRecord]:
        return self.doc.project.runs if self.doc is not None else []

    def set_document(self, doc: QtDocument | None) -> None:
        self.job.cancel()
        self._evaluating = None
        self._pending_run = None
        if self.doc is not None:
            self.doc.history_changed.disconnect(self._on_graph_edited)
        self.doc = doc
        if doc is not None:
            doc.history_changed.connect(self._on_graph_edited)
        if self.export_dialog is not None:
            self.export_dialog.set_document(doc)
        if self._built:
            self.evaluation.set_busy(False)
            self.predictions.stop()
            self.refresh()

    def show_run(self, run_id: str) -> None:
        """Select the run ``run_id`` (just recorded) in the list.

        While the tab is hidden (a run ends as the user watches the Train tab), this only
        remembers the run: the list, curves and evaluation are redone when the tab shows,
        so the end of a run never stalls the window for a page nobody looks at.
        """
        self._pending_run = run_id
        if self.isVisible():
            self._show_pending()

    def _show_pending(self) -> None:
        run_id, self._pending_run = self._pending_run, None
        first = not self._built
        self.ensure_built(fill=False)
        with QSignalBlocker(self.table):  # one redraw of the curves and evaluation below
            self.refresh(redraw=False)
            row = self._row_of(run_id)
            if row is not None:
                self.table.clearSelection()
                self.table.setCurrentCell(row, 0)
                self.table.selectRow(row)
        if first:
            # Building the tab took the time of a frame or more: let it paint with its
            # list, then draw the run's curves and evaluation in the next turn.
            self._selection_due = True
            QTimer.singleShot(0, self, self._on_selection_due)
        else:
            self._on_selection()

    def _on_selection_due(self) -> None:
        if self._selection_due:  # not already drawn by a selection in between
            self._on_selection()

    def showEvent(self, event) -> None:
        # Runs may have been added while the tab was hidden (the Train tab records them).
        if self._pending_run is not None:
            self._show_pending()
        elif not self._built:
            self.ensure_built()
        elif self.table.rowCount() != len(self.runs):
            self.refresh()
        super().showEvent(event)

    def shutdown_workers(self) -> None:
        """End the workers of evaluations and exports (the window is closing)."""
        self.job.shutdown()
        if self._built:
            self.predictions.shutdown()
            self.insight.shutdown()
        if self.export_dialog is not None:
            self.export_dialog.shutdown_workers()

    # ================================================================== table
    def refresh(self, redraw: bool = True) -> None:
        """Rebuild the list from ``project.runs``, keeping the selection (and, unless
        ``redraw`` is false, redraw the curves and the evaluation of the selection)."""
        if not self._built:
            return
        selected = set(self.selected_run_ids())
        current = self.current_run_id()
        runs = self.runs
        self.pages.setCurrentWidget(self.splitter if runs else self.empty)
        with QSignalBlocker(self.table):
            self.table.setRowCount(len(runs))
            # Newest first: the run just trained is the one the user looks for.
            for row, (index, record) in enumerate(reversed(list(enumerate(runs)))):
                self._fill_row(row, index, record)
            self.table.clearSelection()
            for row in range(len(runs)):
                if self._run_id_at(row) in selected:
                    self.table.selectRow(row)
            current_row = self._row_of(current) if current else None
            if current_row is not None:
                self.table.setCurrentCell(current_row, 0,
                                          self.table.selectionModel().SelectionFlag.NoUpdate)
        if runs and not self.selected_run_ids():
            with QSignalBlocker(self.table):
                self.table.selectRow(0)
        if redraw:
            self._on_selection()

    def _fill_row(self, row: int, index: int, record: RunRecord) -> None:
        metric = key_metric(record.test_metrics or {})
        status = str(record.status or "?")
        cells = (
            run_label(index), when_text(record.created),
            f"{record.backend or '?'} · {record.device or '?'}",
            epochs_text(record), status,
            f"{metric_name(metric[0])} {format_metric(metric[1])}" if metric else "—",
            duration_text(record.seconds),
        )
        color = QColor(RUN_COLORS[index % len(RUN_COLORS)])
        for column, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, record.run_id)
            if column == 0:
                item.setForeground(color)
                item.setToolTip(str(record.message or ""))
            if column == 4 and status == "failed":
                item.setForeground(theme.colors().error)
                item.setToolTip(str(record.message or ""))
            self.table.setItem(row, column, item)

    def _run_id_at(self, row: int) -> str | None:
        item = self.table.item(row, 0)
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _row_of(self, run_id: str | None) -> int | None:
        for row in range(self.table.rowCount()):
            if self._run_id_at(row) == run_id:
                return row
        return None

    def _project_path(self) -> Path | None:
        """The open project's file: run paths are stored relative to it."""
        return self.doc.project.path if self.doc is not None else None

    def record(self, run_id: str | None) -> RunRecord | None:
        for record in self.runs:
            if record.run_id == run_id:
                return record
        return None

    def _index_of(self, run_id: str | None) -> int:
        for i, record in enumerate(self.runs):
            if record.run_id == run_id:
                return i
        return -1

    def selected_run_ids(self) -> list[str]:
        if not self._built:
            return []
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [rid for rid in (self._run_id_at(r) for r in rows) if rid]

    def current_run_id(self) -> str | None:
        """The run whose evaluation and details show: the current row if selected, else
        the first selected one."""
        selected = self.selected_run_ids()
        if not selected:
            return None
        current = self._run_id_at(self.table.currentRow())
        if current in selected:
            return current
        return selected[0] if selected else None

    def select_runs(self, run_ids: list[str]) -> None:
        """Select these runs (what a user's Ctrl+click does)."""
        self.ensure_built()
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for run_id in run_ids:
            row = self._row_of(run_id)
            if row is not None:
                self.table.selectRow(row)
        self.table.setSelectionMode(mode)

    # ============================================================== selection
    def _on_selection(self) -> None:
        self._selection_due = False
        self._draw_curves()
        self._show_current()

    def _show_current(self) -> None:
        run_id = self.current_run_id()
        record = self.record(run_id)
        self.open_button.setEnabled(record is not None and model_path(record, self._project_path()) is not None)
        self.open_button.setToolTip(
            "Open the run's trained model in the editor" if record is None
            or model_path(record, self._project_path()) else "This run has no trained model on disk.")
        self.export_button.setEnabled(bool(self.doc is not None))
        trained = record is not None and model_path(record, self._project_path()) is not None
        self.predict_button.setEnabled(trained)
        self.predict_button.setToolTip(
            "Predict with the run's trained model on a file of rows (as in the training "
            "data) or a folder of images; the predictions show in the Predictions tab"
            if trained or record is None else "This run has no trained model on disk.")
        self.delete_button.setEnabled(bool(self.selected_run_ids()))
        self._show_insight(record)
        baselines = baseline_html(record) if record is not None else ""
        self.baseline.setText(baselines)
        self.baseline.setVisible(bool(baselines))
        if record is None:
            self.details.setHtml("")
            self.evaluation.clear("Select a run to see how its model does.")
            return
        label = run_label(self._index_of(run_id))
        self.details.setHtml(details_html(record, label, self._project_path()))
        self._show_evaluation(record, label)

    def _node_names(self) -> list[str]:
        """The nodes the Inside tab offers: the project's graph's (a node's name is its
        layer's name)."""
        graph = self.doc.project.graph if self.doc is not None else None
        return [n.name for n in graph.nodes if n.kind != "input"] if graph else []

    def _on_graph_edited(self) -> None:
        if self._built:
            self.insight.graph_edited(self._node_names())

    def _show_insight(self, record: RunRecord | None) -> None:
        """The Inside tab looks into the current run's model (or the project's)."""
        names = self._node_names()
        self.insight.set_run(record, model_path(record, self._project_path()) if record
                             else None, names, record is not None and takes_images(record),
                             self.doc.project if self.doc is not None else None)

    def _show_evaluation(self, record: RunRecord, label: str) -> None:
        evaluations = record.evaluations or []
        if evaluations:
            last = evaluations[-1]
            split = SPLIT_NAMES.get(last.get("split"), last.get("split"))
            self.evaluation.show_evaluation(
                f"Run {label} on the {split} split (evaluated "
                f"{when_text(last.get('created'))})", last.get("metrics") or {},
                last.get("results") or {}, last.get("samples"))
        else:
            results = record.results or {}
            matrix = results.get("confusion_matrix")
            samples = (sum(map(sum, matrix)) if matrix else
                       len((results.get("scatter") or {}).get("true", [])) or None)
            self.evaluation.show_evaluation(
                f"Run {label} on the test split", record.test_metrics or {},
                results, samples if results.get("task") == "classification" else None)
        busy = self._evaluating is not None
        self.evaluation.set_can_evaluate(
            model_path(record, self._project_path()) is not None and not busy,
            "" if model_path(record, self._project_path()) else "This run has no trained model to evaluate.")

    # ================================================================= curves
    def _draw_curves(self) -> None:
        import pyqtgraph as pg

        for plot in (self.loss_plot, self.metric_plot):
            plot.clear()
            if plot.legend is not None:
                plot.legend.clear()
        self.curves = {}
        for run_id in self.selected_run_ids():
            index = self._index_of(run_id)
            record = self.runs[index]
            history = record.history or {}
            color = QColor(RUN_COLORS[index % len(RUN_COLORS)])
            for name in curve_names(history):
                plot = self.loss_plot if "loss" in name else self.metric_plot
                for key, style in ((name, Qt.PenStyle.SolidLine),
                                   (f"val_{name}", Qt.PenStyle.DashLine)):
                    values = history.get(key)
                    if not values:
                        continue
                    x = [i + 1 for i, v in enumerate(values) if v is not None]
                    y = [v for v in values if v is not None]
                    what = metric_name(name)
                    label = f"{run_label(index)} {'validation ' if key != name else ''}{what}"
                    item = plot.plot(x, y, pen=pg.mkPen(color, width=2, style=style),
                                     symbol="o", symbolSize=5, symbolBrush=color,
                                     symbolPen=None, name=label)
                    self.curves[(run_id, key)] = item

    # ================================================================ actions
    def _dialogs(self) -> Any:
        if self.dialogs is not None:
            return self.dialogs
        window_dialogs = getattr(self.window(), "dialogs", None)
        if window_dialogs is not None:
            return window_dialogs
        from kbuilder.ui.shell.dialogs import QtDialogs

        return QtDialogs(self)

    def open_model(self) -> None:
        """Ask the window to open the current run's trained model."""
        record = self.record(self.current_run_id())
        path = model_path(record, self._project_path()) if record else None
        if path:
            self.open_model_requested.emit(path)

    def delete_selected(self) -> bool:
        """Remove the selected runs from the project's history, after asking."""
        run_ids = self.selected_run_ids()
        if not run_ids or self.doc is None:
            return False
        labels = ", ".join(run_label(self._index_of(r)) for r in run_ids)
        many = len(run_ids) > 1
        folders = {str(run_files.run_folder(r, self._project_path()).parent)
                   for r in map(self.record, run_ids) if r and r.run_dir}
        where = f" Their files in {', '.join(sorted(folders))} stay on disk." if folders else ""
        if not self._dialogs().ask_confirm(
                f"Delete run{'s' if many else ''}",
                f"Delete run{'s' if many else ''} {labels} from the project's history?{where}",
                "Delete"):
            return False
        doomed = set(run_ids)
        self.doc.project.runs[:] = [r for r in self.runs if r.run_id not in doomed]
        self.refresh()
        self.runs_changed.emit()
        return True

    def evaluate_again(self, split: str = "test") -> bool:
        """Evaluate the current run's model on ``split`` in a worker (no waiting)."""
        record = self.record(self.current_run_id())
        path = model_path(record, self._project_path()) if record else None
        if record is None or path is None or self.job.busy:
            return False
        request = p.StartEvaluation(str(record.run_id), path,
                                    dict(record.data or {}), split,
                                    int((record.training or {}).get("batch_size", 32)))
        backend = str(record.backend or "jax")
        self._evaluating = record
        self.evaluation.set_busy(True, f"Evaluating on the {SPLIT_NAMES.get(split, split)} "
                                       f"split in a {backend} worker…")
        self.job.start(request, backend)
        return True

    def _on_evaluated(self, result: Any) -> None:
        record, self._evaluating = self._evaluating, None
        self.evaluation.set_busy(False)
        self.job.shutdown()  # evaluations are occasional: no idle backend kept around
        if record is None or not isinstance(result, p.Evaluated):
            return
        evaluation = p.jsonable({
            "split": result.split, "samples": result.samples, "metrics": result.metrics,
            "results": result.results, "backend": record.backend,
            "created": dt.datetime.now().isoformat(timespec="seconds"),
        })
        runs = self.runs
        # Looked up again: the run may have been deleted (or its record replaced, as a
        # save that moves its folder does) while it was being evaluated.
        index = next((i for i, r in enumerate(runs) if r.run_id == record.run_id), None)
        if index is not None:
            runs[index] = runs[index].with_evaluation(evaluation)
            self.runs_changed.emit()
            if self.current_run_id() == record.run_id:
                self._show_current()

    def _on_evaluation_failed(self, reason: str) -> None:
        self._evaluating = None
        self.evaluation.set_busy(False)
        self.job.shutdown()
        self.evaluation.show_status(f"The evaluation failed: {reason}", error=True)
        self._show_current_buttons()

    def _show_current_buttons(self) -> None:
        record = self.record(self.current_run_id())
        self.evaluation.set_can_evaluate(record is not None and model_path(record, self._project_path()) is not None)

    def predict_on_file(self, inputs: str | None = None) -> bool:
        """Predict with the current run's model on ``inputs``, or on a file (a folder, for
        a model of images) the user chooses; the Predictions tab shows the outcome."""
        self.ensure_built()
        record = self.record(self.current_run_id())
        path = model_path(record, self._project_path()) if record else None
        if record is None or path is None:
            self._dialogs().show_info("Predict on a file", "Select a run with a trained "
                                      "model first (train one in the Train tab).")
            return False
        if self.predictions.busy:
            self.tabs.setCurrentWidget(self.predictions)
            return False
        if not inputs:
            inputs = self._ask_inputs(takes_images(record))
        if not inputs:
            return False
        self.tabs.setCurrentWidget(self.predictions)
        return self.predictions.predict(record, run_label(self._index_of(record.run_id)),
                                        path, inputs)

    def _ask_inputs(self, images: bool) -> str:
        """The file (or folder) to predict on, as the user picks it; "" when cancelled.
        A model of images predicts on a folder of them, one image, or an array file."""
        dialogs = self._dialogs()
        if not images:
            return dialogs.ask_open_path("Predict on a file", prediction_view.TABLE_FILTER)
        choice = dialogs.ask_choice("Predict on a file", "Predict on:",
                                    list(prediction_view.IMAGE_INPUT_CHOICES))
        if choice == 0:
            return dialogs.ask_folder("Predict on the images in a folder")
        if choice == 1:
            return dialogs.ask_open_path("Predict on an image", prediction_view.IMAGE_FILTER)
        if choice == 2:
            return dialogs.ask_open_path("Predict on an array file",
                                         prediction_view.ARRAY_FILTER)
        return ""

    def open_export_dialog(self, run_id: str | None = None) -> Any:
        """Show the export dialog (one per window, not modal) with ``run_id``'s model, or
        the current project's when ``run_id`` is None."""
        from kbuilder.ui.results.export_dialog import QtExportDialog

        if self.export_dialog is None:
            self.export_dialog = QtExportDialog(self.window(), dialogs=self._dialogs)
        self.export_dialog.set_document(self.doc)
        self.export_dialog.choose_source(run_id)
        self.export_dialog.show()
        self.export_dialog.raise_()
        self.export_dialog.activateWindow()
        return self.export_dialog

    # ================================================================== theme
    def _refresh_theme(self) -> None:
        import pyqtgraph as pg

        colors = theme.colors()
        self.plots.setBackground(colors.background)
        for plot in (self.loss_plot, self.metric_plot):
            plot.setTitle(plot.titleLabel.text, color=colors.text.name(), size="10pt")
            for axis in ("left", "bottom"):
                plot.getAxis(axis).setTextPen(colors.text)
                plot.getAxis(axis).setPen(colors.muted)
            if plot.legend is not None:
                plot.legend.setLabelTextColor(colors.text)
                plot.legend.setBrush(pg.mkBrush(colors.card.red(), colors.card.green(),
                                                colors.card.blue(), 200))
        if self.doc is not None:
            self._on_selection()
