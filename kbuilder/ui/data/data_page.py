"""The Data tab: choose the data, preview it and check it against the model (issue 7).

The page edits ``project.data`` (a ``DataSettings``). Each change of a control loads
the data the new settings describe in a background thread; only settings whose data loads
are written to the project, so a file with a bad column or a dataset that cannot be
downloaded leaves the previous data in place and shows what is wrong where (file, line,
column) above it. The pre-flight checks run in the background after the data loads and
after every edit of the model; their one-click fixes are one undoable edit each.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from kbuilder.graph.errors import GraphError
from kbuilder.graph.settings import DataSettings, SettingsError, TrainingSettings
from kbuilder.ui.data.data_preview import QtClassCounts, QtPreviewGrid, QtTableHead, summary_html
from kbuilder.ui.data.data_source import QtDataSourceForm
from kbuilder.ui.data.preflight_view import QtChecksPanel
from kbuilder.ui.document import QtDocument
from kbuilder.ui.jobs.background_job import QtBackgroundJob
from kbuilder.ui.shell import theme

if TYPE_CHECKING:
    from kbuilder.runtime.data import Dataset
    from kbuilder.runtime.data.preview import CsvPreview, LoadResult
    from kbuilder.runtime.preflight import Finding

_KEPT: Any = object()  # in an Undo state: these settings were not changed
LOAD_DELAY_MS = 350  # after the last change of a control
CHECK_DELAY_MS = 400  # after the last edit of the model


# The progress stage that carries a table's columns, read from its first rows.
COLUMNS_STAGE = "columns"

class QtDataPage(QWidget):
    """Choose the data source, split it, preview it and check it against the model.

    Signals:
        data_changed(): ``project.data`` (or ``project.training``, through a fix) was
            changed by the user.
        node_requested(node_id): the user wants to see this node in the model editor.
    """

    data_changed = Signal()
    node_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.doc: QtDocument | None = None
        self.dataset: Dataset | None = None  # the data of project.data, when loaded
        self.summary: dict[str, Any] | None = None
        self.error: Exception | None = None  # why the latest settings did not load
        self.findings: list[Finding] = []
        self._loaded_settings: DataSettings | None = None
        self._loaded_csv: CsvPreview | None = None
        self._data_stale = False
        self._checks_stale = False
        # What the page's Undo button reverts: (a model edit was pushed, the training
        # settings before, the data settings before); None when there is nothing to undo.
        # (a model edit was pushed, the training and data settings before: _KEPT if
        # unchanged) of the last fix, for its Undo button.
        self._undo_state: tuple[bool, Any, Any] | None = None

        self.loader = QtBackgroundJob("data", self)
        self.loader.finished.connect(self._on_loaded)
        self.loader.progressed.connect(self._on_progress)
        self.checker = QtBackgroundJob("preflight", self)
        self.checker.finished.connect(self._on_checked)
        # "Fit the model to this data" on a table reads it again with its preprocessing in
        # the model ("model" encoding), seconds for a big file: off the GUI thread too.
        self.fitter = QtBackgroundJob("fit", self)
        self.fitter.finished.connect(self._on_fit_loaded)
        self.fitter.progressed.connect(self._on_progress)
        self._fitting: DataSettings | None = None  # the settings a running fit started from
        self._load_timer = QTimer(self, singleShot=True, interval=LOAD_DELAY_MS)
        self._load_timer.timeout.connect(self.apply_controls)
        self._check_timer = QTimer(self, singleShot=True, interval=CHECK_DELAY_MS)
        self._check_timer.timeout.connect(self._run_checks_if_shown)

        self.source = QtDataSourceForm(self)
        self.source.edited.connect(self._on_edited)
        self.source.chosen.connect(self.apply_controls)
        self.source.reload_requested.connect(lambda: self.apply_controls(force=True))
        self.source.augment_check.toggled.connect(lambda _on: self._update_fit())
        preview = self._build_preview()
        self.checks = QtChecksPanel(self)
        self.checks.fix_requested.connect(self.apply_fix)
        self.checks.node_requested.connect(self.node_requested)
        self.checks.fit_requested.connect(self.fit_model)
        right = QSplitter(Qt.Orientation.Vertical, self)
        right.addWidget(preview)
        right.addWidget(self.checks)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        right.setChildrenCollapsible(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.source)
        layout.addWidget(right, 1)
        theme.manager().changed.connect(self._on_theme)
        self.source.setEnabled(False)

    # =============================================================== building
    def _build_preview(self) -> QWidget:
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.status = QLabel(self)
        self.status.setObjectName("muted")
        self.status.setWordWrap(True)
        # Undo right here after a fix: the user need not go to the Model tab for it.
        self.undo_button = QPushButton("Undo", self)
        self.undo_button.setToolTip("Undo the fix just applied (the model edit and the "
                                    "settings it changed)")
        self.undo_button.clicked.connect(self._undo_fix)
        self.undo_button.hide()
        status_row = QHBoxLayout()
        status_row.addWidget(self.progress)
        status_row.addWidget(self.status, 1)
        status_row.addWidget(self.undo_button)

        self.error_box = QFrame(self)
        self.error_box.setObjectName("errorBox")
        self.error_label = QLabel(self.error_box)
        self.error_label.setObjectName("errorLabel")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_where = QLabel(self.error_box)
        self.error_where.setObjectName("muted")
        self.error_where.setWordWrap(True)
        self.restore_button = QPushButton("Back to the previous data", self.error_box)
        self.restore_button.clicked.connect(self.restore_settings)
        error_layout = QVBoxLayout(self.error_box)
        error_layout.addWidget(self.error_label)
        error_layout.addWidget(self.error_where)
        error_layout.addWidget(self.restore_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.error_box.hide()

        self.samples_title = QLabel("Samples", self)
        self.samples_title.setObjectName("sectionTitle")
        self.grid = QtPreviewGrid(self)
        self.table = QtTableHead(self)
        self.no_preview = QLabel("Nothing to show yet.", self)
        self.no_preview.setObjectName("muted")
        self.no_preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.samples_view = QStackedWidget(self)
        for widget in (self.no_preview, self.grid, self.table):
            self.samples_view.addWidget(widget)
        samples = QWidget(self)
        column = QVBoxLayout(samples)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.samples_title)
        column.addWidget(self.samples_view, 1)

        summary_title = QLabel("Summary", self)
        summary_title.setObjectName("sectionTitle")
        self.summary_label = QLabel(self)
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextFormat(Qt.TextFormat.RichText)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary_label.setAlignment(Qt.AlignmentFlag.AlignTop)
        counts_title = QLabel("Samples per class", self)
        counts_title.setObjectName("sectionTitle")
        self.class_counts = QtClassCounts(self)
        info = QWidget(self)
        info_layout = QVBoxLayout(info)
        info_layout.setContentsMargins(0, 0, 6, 0)
        info_layout.addWidget(summary_title)
        info_layout.addWidget(self.summary_label)
        info_layout.addSpacing(6)
        info_layout.addWidget(counts_title)
        info_layout.addWidget(self.class_counts)
        info_layout.addStretch(1)
        info_scroll = QScrollArea(self)
        info_scroll.setWidget(info)
        info_scroll.setWidgetResizable(True)
        info_scroll.setFrameShape(QFrame.Shape.NoFrame)

        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(samples)
        split.addWidget(info_scroll)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        preview = QWidget(self)
        layout = QVBoxLayout(preview)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(status_row)
        layout.addWidget(self.error_box)
        layout.addWidget(split, 1)
        return preview

    # =============================================================== document
    def set_document(self, doc: QtDocument | None) -> None:
        """Show ``doc``'s data settings; the data loads when the page is shown."""
        if self.doc is not None:
            self.doc.history_changed.disconnect(self._on_history_changed)
        self.doc = doc
        self.undo_button.hide()
        self._undo_state = None
        self.loader.cancel()
        self.checker.cancel()
        self.fitter.cancel()  # a fit read for the previous project is dropped
        self._fitting = None
        self._load_timer.stop()
        self._check_timer.stop()
        self.dataset = self.summary = self._loaded_csv = None
        self._loaded_settings = None
        self.error = None
        self.findings = []
        self._show_dataset(None)
        self._show_error(None)
        self.checks.show_findings([], self._node_name)
        self.checks.set_status("Choose data to check it against the model.")
        self._set_busy(False, "")
        self.source.setEnabled(doc is not None)
        if doc is None:
            return
        doc.history_changed.connect(self._on_history_changed)
        self._show_model_nodes()
        settings = self.project_settings()
        self.source.set_settings(settings)
        self._data_stale = True
        if self.isVisible():
            self._load(settings)

    def project_settings(self) -> DataSettings:
        """The project's data settings (the defaults when none were chosen)."""
        if self.doc is None or self.doc.project.data is None:
            return DataSettings()
        return self.doc.project.data

    def training_settings(self) -> TrainingSettings:
        """The project's training settings (the defaults without a project)."""
        if self.doc is None:
            return TrainingSettings()
        return self.doc.project.training

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.doc is None:
            return
        if self._data_stale and not self.loader.busy:
            self._load(self.project_settings())
        elif self._checks_stale:
            self._run_checks()

    def wait(self, timeout: float = 60.0) -> bool:
        """Process events until loading and checking are done (tests, selftest)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._load_timer.isActive():
                self._load_timer.stop()
                self.apply_controls()
            if self._check_timer.isActive():
                self._check_timer.stop()
                self._run_checks()
            # A job's result can start another (a fit's data -> checks): each wait is
            # only a step, the loop ends when none is busy.
            for job in (self.loader, self.checker, self.fitter):
                job.wait(max(0.0, deadline - time.monotonic()))
            if not (self._load_timer.isActive() or self._check_timer.isActive()
                    or self.loader.busy or self.checker.busy or self.fitter.busy):
                return True
        return False

    # =============================================================== controls
    def _on_edited(self) -> None:
        if self.doc is not None:
            self._load_timer.start()

    def apply_controls(self, force: bool = False) -> None:
        """Load the data the controls describe (written to the project once it loads)."""
        self._load_timer.stop()
        if self.doc is None:
            return
        try:
            settings = self.source.settings()
        except SettingsError as exc:
            self.loader.cancel()
            self._set_busy(False, "")
            self.error = exc
            self._show_error(exc)
            return
        if settings is None:
            self.status.setText("Choose a file or folder to load.")
            return
        kept = self.project_settings()
        if settings.kind == "csv" and kept.kind == "csv" and kept.table_encoding == "model":
            # The controls do not show the encoding: a model fitted with the table's
            # preprocessing inside keeps taking its raw inputs when a control changes.
            settings = dataclasses.replace(settings, table_encoding="model")
        if not force and settings == self._loaded_settings:
            # Back to the data in use (e.g. a split undone): nothing to load or to show.
            self.loader.cancel()
            self._set_busy(False, "")
            self.error = None
            self._show_error(None)
            return
        self._load(settings)

    # ================================================================ loading
    def _load(self, settings: DataSettings) -> None:
        self._data_stale = False
        self._set_busy(True, f"Loading {_source_title(settings)}…")

        def work(progress):
            from kbuilder.runtime.data.preview import load_job

            # The columns, from the first rows, shown while the whole file is read.
            return load_job(settings, progress,
                            columns=lambda csv: progress(COLUMNS_STAGE, 0, csv))

        self.loader.start(work)

    def _set_busy(self, busy: bool, text: str) -> None:
        self.progress.setVisible(busy)
        self.progress.setRange(0, 0)  # busy until the loader reports a total
        self.status.setText(text)
        self.source.reload_button.setEnabled(not busy and self.doc is not None)

    def _on_progress(self, stage: str, done: int, total: object) -> None:
        if stage == COLUMNS_STAGE:
            if self.source.table.csv is None or self.source.table.csv.path != total.path:
                self.source.table.show_columns(total, self.source.settings_or_none())
            rows = f"{'about ' if not total.complete else ''}{total.rows:,}"
            self.status.setText(f"Reading all {rows} rows of {total.name}…")
            return
        if isinstance(total, int) and total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.status.setText(f"{stage}: {done:,} of {total:,}")
        else:
            self.status.setText(f"{stage}…")

    def _on_loaded(self, result: LoadResult | Exception) -> None:
        self._set_busy(False, "")
        if isinstance(result, Exception):  # a bug, not the data: say so plainly
            self.error = result
            self._show_error(result)
            return
        settings = result.settings
        if result.csv is not None:
            # A choice made while this file loaded (its load is pending) is not undone.
            shown = self.source.table.csv
            if not (self._load_timer.isActive() and shown is not None
                    and shown.path == result.csv.path):
                self.source.table.show_columns(result.csv, settings)
        if result.error is not None or result.dataset is None:
            self.error = result.error
            self._show_error(result.error)
            return
        self.error = None
        self._show_error(None)
        self.dataset, self.summary = result.dataset, result.summary
        self._loaded_settings, self._loaded_csv = settings, result.csv
        self._show_dataset(result)
        self.status.setText(f"Loaded {_source_title(settings)} in {result.seconds:.1f} s.")
        if self.doc is not None and settings != self.project_settings():
            self.doc.project.data = settings
            self.data_changed.emit()
        self._run_checks()

    def _show_error(self, error: Exception | None) -> None:
        if error is None:
            self.error_box.hide()
            return
        where = []
        for name, label in (("path", "File"), ("line", "line"), ("column", "column")):
            value = getattr(error, name, None)
            if value is not None:
                where.append(f"{label} '{value}'" if name == "column" else f"{label} {value}")
        self.error_label.setText(str(error) or type(error).__name__)
        self.error_where.setText(" · ".join(where))
        self.error_where.setVisible(bool(where))
        previous = self._loaded_settings
        self.restore_button.setVisible(previous is not None)
        if previous is not None:
            self.restore_button.setText(f"Back to {_source_title(previous)}")
            self.error_where.setText(" · ".join(where + [
                f"still using {_source_title(previous)}"]))
            self.error_where.setVisible(True)
        self.error_box.show()

    def restore_settings(self) -> None:
        """Show the settings of the data in use again (after a choice that failed)."""
        self._load_timer.stop()
        self.loader.cancel()
        self._set_busy(False, "")
        if self._loaded_settings is None:
            return
        self.error = None
        self._show_error(None)
        if self._loaded_csv is not None:
            self.source.table.show_columns(self._loaded_csv, self._loaded_settings)
        self.source.set_settings(self._loaded_settings)

    def _show_dataset(self, result: LoadResult | None) -> None:
        if result is None or result.summary is None:
            self.samples_view.setCurrentWidget(self.no_preview)
            self.summary_label.setText("")
            self.class_counts.set_counts(None)
            self.samples_title.setText("Samples")
            return
        self.summary_label.setText(summary_html(result.summary))
        self.class_counts.set_counts(result.summary)
        samples = result.samples
        if result.csv is not None:
            csv = result.csv
            target = result.settings.target or csv.header[-1]
            self.table.show_rows(csv.header, [list(r) for r in csv.head],
                                 [str(n) for n in csv.head_lines],
                                 csv.header.index(target) if target in csv.header else None)
            self.samples_title.setText(f"{csv.name}: first {len(csv.head)} of {csv.rows:,} "
                                       "rows as written (row numbers are lines)")
            self.samples_view.setCurrentWidget(self.table)
        elif samples is not None and samples.kind == "images":
            self.grid.show_samples(samples)
            self.samples_title.setText(f"{len(samples.labels)} training images with their "
                                       "labels")
            self.samples_view.setCurrentWidget(self.grid)
        elif samples is not None and samples.kind == "table":
            self.table.show_rows(samples.header, samples.rows, None, 0)
            self.samples_title.setText(f"First {len(samples.rows)} training samples")
            self.samples_view.setCurrentWidget(self.table)
        else:
            self.samples_view.setCurrentWidget(self.no_preview)

    # ================================================================= checks
    def refresh_checks(self) -> None:
        """Check again soon (the model or the training settings changed)."""
        self._schedule_checks()

    def _schedule_checks(self) -> None:
        self._checks_stale = True
        if self.dataset is not None:
            self._check_timer.start()

    def _run_checks_if_shown(self) -> None:
        if self.isVisible():
            self._run_checks()

    def _run_checks(self) -> None:
        self._check_timer.stop()
        if self.doc is None or self.dataset is None:
            return
        self._checks_stale = False
        graph = self.doc.graph.copy()  # the thread must not read a graph being edited
        dataset, training = self.dataset, self.training_settings()

        def work(_progress):
            from kbuilder.runtime.preflight import check

            return check(graph, dataset, training)

        self.checks.set_status("Checking the data against the model…")
        self.checker.start(work)

    def _on_checked(self, result: list[Finding] | Exception) -> None:
        if isinstance(result, Exception):
            self.findings = []
            self.checks.show_findings([], self._node_name)
            self.checks.set_status(f"The checks could not run: {result}", "error")
        else:
            self.findings = list(result)
            self.checks.show_findings(self.findings, self._node_name)
        self._update_fit()

    def _node_name(self, node_id: str) -> str:
        graph = self.doc.graph if self.doc is not None else None
        return graph.node(node_id).name if graph is not None and node_id in graph else node_id

    def apply_fix(self, finding: Finding) -> bool:
        """Apply a finding's fix: one undoable model edit and/or new settings."""
        if self.doc is None or finding.fix is None:
            return False
        from kbuilder.runtime.preflight import apply_fix

        training, data = self.training_settings(), self.project_settings()
        try:
            result = apply_fix(finding.fix, self.doc.graph, training, data)
        except (GraphError, ValueError, KeyError) as exc:
            self.status.setText(f"The fix could not be applied: {exc}")
            return False
        self._apply_change(result.command, result.training, result.data,
                           f"Applied: {_fix_text(finding, self._node_name)}.")
        return True

    def _apply_change(self, command: Any, training: TrainingSettings,
                      data: DataSettings | None, message: str, loaded: Any = None) -> bool:
        """Push ``command`` (one undoable edit) and store the new settings; the page's
        Undo button then reverts all of it. ``loaded``: the ``LoadResult`` of ``data``
        when it was read already (a fit), so it is shown instead of read again."""
        assert self.doc is not None
        project = self.doc.project
        before = (project.training, project.data)
        old_training, old_data = self.training_settings(), self.project_settings()
        if command is not None and self.doc.edit(lambda: command) is None:
            self.status.setText("The change could not be made to the model (see the "
                                "status bar); nothing was changed.")
            return False
        changed_training = training != old_training
        changed_data = data is not None and data != old_data
        if changed_training:
            project.training = training
        if changed_data:
            project.data = data
            self.source.set_settings(data)
            if loaded is not None:
                self._on_loaded(loaded)
            else:
                self._load(data)
        if changed_training or changed_data:
            self.data_changed.emit()
        self._undo_state = (command is not None,
                            before[0] if changed_training else _KEPT,
                            before[1] if changed_data else _KEPT)
        self.status.setText(message)
        self.undo_button.setVisible(command is not None or changed_training or changed_data)
        self._run_checks()
        return True

    def _undo_fix(self) -> None:
        """Undo the last fix or fit: its model edit and the settings it changed."""
        self.undo_button.hide()
        state, self._undo_state = self._undo_state, None
        if self.doc is None or state is None:
            return
        pushed, training, data = state
        if pushed and self.doc.history.can_undo:
            self.doc.undo()
        if training is not _KEPT:
            self.doc.project.training = training
        if data is not _KEPT:
            self.doc.project.data = data
            settings = self.project_settings()
            self.source.set_settings(settings)
            self._load(settings)
        if training is not _KEPT or data is not _KEPT:
            self.data_changed.emit()
            self._run_checks()
        self.status.setText("Undone.")

    def _on_history_changed(self) -> None:
        # An edit after a fix (or its undo elsewhere) makes the page's Undo meaningless.
        self.undo_button.hide()
        self._undo_state = None
        self._show_model_nodes()
        self._schedule_checks()

    def _show_model_nodes(self) -> None:
        """The model's Inputs and Outputs, for choosing the array of each."""
        if self.doc is not None:
            graph = self.doc.graph
            self.source.set_model_nodes([n.name for n in graph.input_nodes()],
                                        [n.name for n in graph.output_nodes()])

    def _fit_plan(self, dataset: Any = None) -> tuple[Any, str]:
        """(the ``DataFit`` or ``None``, why not / what it does)."""
        dataset = dataset if dataset is not None else self.dataset
        if self.doc is None or dataset is None:
            return None, "Load data first."
        from kbuilder.runtime.preflight import FitError, fit_template_to_data

        try:
            fit = fit_template_to_data(self.doc.graph, dataset,
                                       augment=self.source.augment_check.isChecked())
        except (FitError, GraphError) as exc:
            return None, str(exc)
        training = self.training_settings()
        if not fit.commands and (training.loss, training.metrics) == (fit.loss, fit.metrics):
            return None, "The model already fits this data."
        return fit, " ".join(fit.notes)

    def _update_fit(self) -> None:
        fit, text = self._fit_plan()
        if fit is not None:
            stage = self._planned_stage()
            if stage:  # the plan on the flat data is not what the fit will build
                text = " ".join([*stage, fit.notes[-1]])  # the last note: the output layer's
            text = f"{text} One undoable edit."
        self.checks.fit_button.setEnabled(fit is not None and not self.fitter.busy)
        self.checks.fit_button.setToolTip(text)

    def _planned_stage(self) -> list[str]:
        """What fitting will build when it reads the table again in "model" encoding
        (``table_inputs.planned_stage_notes``); empty when it will not."""
        csv = self._loaded_csv
        if self.doc is None or csv is None:
            return []
        from kbuilder.runtime.preflight import model_encoding_for
        from kbuilder.runtime.preflight.table_inputs import planned_stage_notes

        settings = self.project_settings()
        if model_encoding_for(self.doc.graph, settings) == settings:
            return []
        target = settings.table().target  # the preview's roles may predate its choice
        roles = [(c.name, c.role.role) for c in csv.columns
                 if c.role is not None and c.name != target]
        return planned_stage_notes(
            [n for n, r in roles if r in ("numeric", "boolean", "datetime")],
            [n for n, r in roles if r == "categorical"])

    def fit_model(self) -> bool:
        """Fit the model's input and output layer and the loss to the data, as one
        undoable edit; a table's preprocessing goes into the model
        (``table_encoding="model"``).

        That needs the table read again in "model" encoding: it is read in the background
        (the window stays usable, the page shows it is busy) and the fit is made when it
        is read. Returns whether the fit was made or started.
        """
        if self.fitter.busy:
            return False  # the button is disabled meanwhile
        if self.doc is not None and self.dataset is not None:
            from kbuilder.runtime.preflight import model_encoding_for

            settings = self.project_settings()
            wanted = model_encoding_for(self.doc.graph, settings)
            if wanted != settings:
                self._fitting = settings

                def work(progress):
                    from kbuilder.runtime.data.preview import load_job

                    return load_job(wanted, progress)

                self.checks.fit_button.setEnabled(False)
                self._set_busy(True, f"Reading {_source_title(wanted)} again with its "
                                     "preprocessing in the model, to fit the model to it…")
                self.fitter.start(work)
                return True
        return self._fit(None, None)

    def _on_fit_loaded(self, result: Any) -> None:
        self._set_busy(False, "")
        started, self._fitting = self._fitting, None
        if isinstance(result, Exception) or result.error is not None or result.dataset is None:
            error = result if isinstance(result, Exception) else result.error
            self.status.setText(f"The model was not fitted: {error}")
            self._update_fit()
            return
        if self.doc is None or started != self.project_settings():
            self.status.setText("The data settings changed while the data was read for the "
                                "fit; nothing was changed. Fit again to fit these.")
            self._update_fit()
            return
        self._fit(result.settings, result.dataset, result)

    def _fit(self, data: DataSettings | None, dataset: Any, loaded: Any = None) -> bool:
        """Make the fit to ``dataset`` (``None``: the loaded data), storing ``data``."""
        fit, text = self._fit_plan(dataset)
        if fit is None or self.doc is None:
            self.status.setText(text)
            self._update_fit()
            return False
        from kbuilder.graph.commands import MacroCommand

        command = MacroCommand("fit model to data", fit.commands) if fit.commands else None
        training = dataclasses.replace(self.training_settings(), loss=fit.loss,
                                       metrics=tuple(fit.metrics))
        return self._apply_change(command, training, data,
                                  f"Fitted the model to the data: {text}", loaded)

    # ================================================================== theme
    def _on_theme(self) -> None:
        self.class_counts.update()
        self.table.viewport().update()


def _source_title(settings: DataSettings) -> str:
    if settings.kind == "builtin":
        return settings.location
    return Path(settings.table().path if settings.kind == "csv" else settings.location).name


def _fix_text(finding: Finding, node_name) -> str:
    return finding.fix.label(node_name) if finding.fix is not None else "Fix"


__all__ = ["QtDataPage"]
