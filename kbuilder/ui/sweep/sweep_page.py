"""The Sweep tab: the project's search space, a sweep started in the background, and what
the study holds so far — the trials (sortable), the optimization history, the parameters'
importances, parallel coordinates and the curves of the trial picked.

A sweep runs as its own process (``kbuilder sweep`` on the saved project), so it goes on
when the window closes or crashes; the tab reads the study from its storage every few
seconds in a background job (``runtime.sweep_results.read_snapshot``), and reopening the project
shows the trials finished meanwhile. "Apply these values" gives the model and the training
settings the picked trial's values as one undoable command.
"""

from __future__ import annotations

import importlib.util
import math
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kbuilder.graph.sweeps import PRUNERS, SAMPLERS, SweepSpec, describe
from kbuilder.graph.text import plural
from kbuilder.ui.document import QtDocument
from kbuilder.ui.jobs.background_job import QtBackgroundJob
from kbuilder.ui.sweep import sweep_plots

if TYPE_CHECKING:
    import pyqtgraph as pg

    from kbuilder.runtime.sweep_results import SweepSnapshot, TrialRow

REFRESH_MS = 3000
STATE_COLORS = {"complete": "#22c55e", "pruned": "#eab308", "failed": "#ef4444",
                "running": "#3b82f6", "waiting": "#94a3b8"}


def start_process(argv: list[str], **options) -> subprocess.Popen:
    """Start the sweep's own process (a function of its own, which tests replace without
    replacing every ``subprocess.Popen`` of the window, its workers' included)."""
    return subprocess.Popen(argv, **options)


class _NumberItem(QTableWidgetItem):
    """A cell that sorts by its number (empty cells last)."""

    def __init__(self, text: str, value: float | None):
        super().__init__(text)
        self.value = value

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine = self.value if self.value is not None else math.inf
        theirs = getattr(other, "value", None)
        return mine < (theirs if theirs is not None else math.inf)


class QtSweepPage(QWidget):
    """The Sweep tab.

    Signals:
        values_applied(): a trial's values were applied (the window marks the project
            modified and the Train tab shows the new settings).
    """

    values_applied = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.doc: QtDocument | None = None
        self.snapshot: SweepSnapshot | None = None
        self.process: subprocess.Popen | None = None
        self._shown_where: tuple[str, str] | None = None  # the study the table shows
        self._built = False
        self.job = QtBackgroundJob("read the sweep", self)
        self.job.finished.connect(self._on_snapshot)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        layout = QVBoxLayout(self)
        layout.addLayout(self._build_settings())
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        layout.addWidget(self.splitter, 1)
        self.table = QTableWidget(0, 0, self.splitter)
        self.table.setObjectName("sweep_trials")
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.itemSelectionChanged.connect(self._on_trial_picked)
        self.plots_host = QWidget(self.splitter)
        self.plots_layout = QGridLayout(self.plots_host)
        self.plots_layout.setContentsMargins(0, 0, 0, 0)
        self.splitter.setSizes([420, 780])
        self.set_document(None)

    # ------------------------------------------------------------------ building
    def _build_settings(self) -> QHBoxLayout:
        row = QHBoxLayout()
        form = QFormLayout()
        self.space_label = QLabel(self)
        self.space_label.setObjectName("sweep_space")
        self.space_label.setWordWrap(True)
        self.space_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Search space:", self.space_label)
        controls = QHBoxLayout()
        self.trials = QSpinBox(self)
        self.trials.setRange(1, 100_000)
        self.trials.setToolTip("Finished trials to aim at, all workers together")
        self.parallel = QSpinBox(self)
        self.parallel.setRange(1, 64)
        self.parallel.setToolTip("Trials at a time on this machine, each in its own worker "
                                 "process (one per GPU where there are GPUs)")
        self.sampler = QComboBox(self)
        self.sampler.addItems(SAMPLERS)
        self.pruner = QComboBox(self)
        self.pruner.addItems(PRUNERS)
        self.metric = QLineEdit(self)
        self.metric.setPlaceholderText("val_loss")
        self.metric.setMaximumWidth(140)
        for label, widget in (("Trials", self.trials), ("Parallel", self.parallel),
                              ("Sampler", self.sampler), ("Pruner", self.pruner),
                              ("Metric", self.metric)):
            controls.addWidget(QLabel(label, self))
            controls.addWidget(widget)
        for widget in (self.trials, self.sampler, self.pruner):
            signal = widget.valueChanged if isinstance(widget, QSpinBox) else (
                widget.currentIndexChanged)
            signal.connect(self._write_spec)
        self.metric.editingFinished.connect(self._write_spec)
        controls.addStretch(1)
        form.addRow("Settings:", controls)
        form.addRow("Storage:", self._build_storage())
        self.status = QLabel(self)
        self.status.setObjectName("sweep_status")
        self.status.setWordWrap(True)
        form.addRow("Study:", self.status)
        row.addLayout(form, 1)
        buttons = QVBoxLayout()
        self.start_button = QPushButton("Start sweep", self)
        self.start_button.setToolTip("Run the sweep in the background on the saved project "
                                     "(kbuilder sweep); it goes on if the window closes")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.clicked.connect(self.stop)
        self.apply_button = QPushButton("Apply these values to the model", self)
        self.apply_button.setToolTip("Give the model and the training settings the picked "
                                     "trial's values (undo with Ctrl+Z)")
        self.apply_button.clicked.connect(self.apply_picked)
        self.settings_button = QPushButton("Sweep a training setting…", self)
        self.settings_button.setToolTip("Turn a training setting (learning rate, batch size, "
                                        "optimizer, epochs, patience) into a range, or stop "
                                        "sweeping a value")
        self.settings_button.clicked.connect(self._settings_menu)
        self.dashboard_button = QPushButton("Open in optuna-dashboard", self)
        self.dashboard_button.clicked.connect(self._open_dashboard)
        self.dashboard_button.setVisible(dashboard_installed())
        for button in (self.start_button, self.stop_button, self.apply_button,
                       self.settings_button, self.dashboard_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        row.addLayout(buttons)
        return row

    def _build_storage(self) -> QHBoxLayout:
        """Where the study lives: the SQLite file beside the project by default, a
        database server's URL or an Optuna journal file (remembered in the project)."""
        row = QHBoxLayout()
        self.storage_edit = QLineEdit(self)
        self.storage_edit.setObjectName("sweep_storage")
        self.storage_edit.setPlaceholderText("default: an SQLite file beside the project")
        self.storage_edit.setToolTip(
            "Where the sweep's trials are kept, for trials on several machines: "
            "postgresql+psycopg2://USER@HOST/DB, mysql+pymysql://USER@HOST/DB, or "
            "journal:PATH (Optuna's journal file on a shared file system). Saved in the "
            "project: keep passwords out of it (PostgreSQL reads ~/.pgpass).")
        self.study_edit = QLineEdit(self)
        self.study_edit.setObjectName("sweep_study")
        self.study_edit.setMaximumWidth(160)
        self.study_edit.setToolTip("The study's name in that storage (default: the "
                                   "project's name)")
        self.journal_button = QPushButton("Journal file…", self)
        self.journal_button.setToolTip("Keep the sweep in an Optuna journal file (or follow "
                                       "one that another machine writes)")
        self.journal_button.clicked.connect(self._choose_journal)
        for edit in (self.storage_edit, self.study_edit):
            edit.editingFinished.connect(self._write_spec)
        row.addWidget(self.storage_edit, 1)
        row.addWidget(QLabel("Study", self))
        row.addWidget(self.study_edit)
        row.addWidget(self.journal_button)
        return row

    def _choose_journal(self) -> None:
        dialogs = getattr(self.window(), "dialogs", None)
        if dialogs is None or self.doc is None:
            return
        path = dialogs.ask_open_path("Optuna journal file",
                                     "Journal files (*.log *.journal *.jsonl);;All files (*)")
        if path:
            self.storage_edit.setText(f"journal:{path}")
            self._write_spec()

    def ensure_built(self) -> None:
        """The plots (pyqtgraph loads with the tab's first showing)."""
        if self._built:
            return
        import pyqtgraph as pg

        self._built = True

        def plot(title: str, left: str, bottom: str) -> pg.PlotWidget:
            widget = pg.PlotWidget(self.plots_host, background=None)
            widget.setTitle(title)
            widget.setLabel("left", left)
            widget.setLabel("bottom", bottom)
            widget.showGrid(x=True, y=True, alpha=0.2)
            for side in ("left", "bottom"):  # metrics read as they are, not "x0.001"
                widget.getAxis(side).enableAutoSIPrefix(False)
            return widget

        self.history_plot = plot("Optimization history", "metric", "trial")
        self.importance_plot = plot("Parameter importances", "", "importance (fANOVA)")
        self.parallel_plot = plot("Parallel coordinates", "position in range", "")
        self.curves_plot = plot("Curves of the picked trial", "", "epoch")
        self.curves_plot.addLegend(offset=(-10, 10))
        for i, widget in enumerate((self.history_plot, self.importance_plot,
                                    self.parallel_plot, self.curves_plot)):
            self.plots_layout.addWidget(widget, i // 2, i % 2)
        if self.snapshot is not None:
            self._draw(self.snapshot)

    # ------------------------------------------------------------------ document
    def set_document(self, doc: QtDocument | None) -> None:
        if self.doc is not None:
            try:
                self.doc.history_changed.disconnect(self._on_history)
            except (RuntimeError, TypeError):  # already gone with its document
                pass
        self.doc = doc
        if doc is not None:
            doc.history_changed.connect(self._on_history)
        self._shown_where = self.storage()
        self.snapshot = None
        self.table.setRowCount(0)
        self._load_spec()
        self._update_controls()
        if doc is not None and self.isVisible():
            self.refresh()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.ensure_built()
        self._load_spec()
        self.refresh()
        self.timer.start()

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        self.timer.stop()

    def _on_history(self) -> None:
        """An edit, undo or redo: show the sweep as it is now; another storage or study
        (its choice undone, say) is read afresh."""
        self._load_spec()
        self._update_controls()
        where = self.storage()
        if where != self._shown_where:
            self._shown_where = where
            self.snapshot = None
            self.table.setRowCount(0)
            self.status.setText("")
            if self.isVisible():
                self.refresh()

    @property
    def spec(self) -> SweepSpec | None:
        return self.doc.project.sweep if self.doc is not None else None

    def _load_spec(self) -> None:
        spec = self.spec or SweepSpec()
        widgets = (self.trials, self.sampler, self.pruner, self.metric, self.storage_edit,
                   self.study_edit)
        for widget in widgets:
            widget.blockSignals(True)
        self.trials.setValue(spec.trials)
        self.sampler.setCurrentText(spec.sampler)
        self.pruner.setCurrentText(spec.pruner)
        # A field being typed in keeps its text (another edit may arrive meanwhile).
        for edit, text in ((self.metric, spec.metric), (self.storage_edit, spec.storage),
                           (self.study_edit, spec.study)):
            if not edit.hasFocus():
                edit.setText(text or "")
        path = self.doc.project.path if self.doc is not None else None
        self.study_edit.setPlaceholderText(path.stem if path is not None else "the project's")
        for widget in widgets:
            widget.blockSignals(False)
        if self.doc is None:
            self.space_label.setText("No project.")
        elif not spec.params:
            self.space_label.setText(
                "Nothing is swept yet: in the Model tab, right-click a parameter in the "
                "inspector and choose “Sweep this parameter…”; in the Train tab, click ⟳ "
                "beside a training setting; or run "
                "kbuilder sweep P.kbproj --param NODE.PARAM=LOW..HIGH --save-space.")
        else:
            self.space_label.setText("; ".join(describe(spec, self.doc.graph)))

    def _write_spec(self) -> None:
        """A sweep setting changed: one undoable edit of the project's sweep."""
        if self.doc is None:
            return
        from kbuilder.graph.sweeps import SetSweepCommand

        spec = replace(self.spec or SweepSpec(), trials=self.trials.value(),
                       sampler=self.sampler.currentText(), pruner=self.pruner.currentText(),
                       metric=self.metric.text().strip() or "val_loss",
                       storage=self.storage_edit.text().strip() or None,
                       study=self.study_edit.text().strip() or None)
        if spec != self.spec:  # another storage or study is read afresh (_on_history)
            project = self.doc.project
            self.doc.edit(lambda: SetSweepCommand(project, spec, "change the sweep settings"))

    def _settings_menu(self) -> None:
        from PySide6.QtGui import QCursor
        from PySide6.QtWidgets import QMenu

        from kbuilder.graph.sweeps import TRAINING_TARGETS

        if self.doc is None:
            return
        menu = QMenu(self)
        spec = self.spec or SweepSpec()
        for name in TRAINING_TARGETS:
            menu.addAction(f"Sweep {name}…" if spec.find(None, name) is None
                           else f"Change the range of {name}…",
                           lambda n=name: self.ask_setting(n))
        if spec.params:
            menu.addSeparator()
            for p in spec.params:
                label = p.label(self.doc.graph)
                menu.addAction(f"Stop sweeping {label}",
                               lambda p=p: self.set_param(p.node_id, p.param, None))
        menu.popup(QCursor.pos())

    def ask_setting(self, name: str) -> bool:
        """Ask the range of training setting ``name`` and put it in the sweep."""
        from kbuilder.ui.shell import sweep_range  # the range dialog of the inspector too

        if self.doc is None:
            return False
        made = sweep_range.ask_setting_range(self, name, self.doc.project.training,
                                             (self.spec or SweepSpec()).find(None, name))
        return made is not None and self.set_param(None, name, made)

    def set_param(self, node_id: str | None, name: str, param: Any) -> bool:
        """Sweep a value with the range ``param`` (``None``: stop sweeping it); one
        undoable edit."""
        from kbuilder.graph.sweeps import SetSweepCommand

        if self.doc is None:
            return False
        project, spec = self.doc.project, self.spec or SweepSpec()
        new = spec.with_param(param) if param is not None else spec.without(node_id, name)
        text = f"sweep {name}" if param is not None else f"stop sweeping {name}"
        done = self.doc.edit(lambda: SetSweepCommand(project, new, text)) is not None
        self._load_spec()
        self._update_controls()
        return done

    # ------------------------------------------------------------------ the study
    def storage(self) -> tuple[str, str] | None:
        """The storage URL and study name of the project's sweep (the defaults of
        ``kbuilder sweep``), or ``None`` for a project not saved yet."""
        return self._where(self.spec)

    def _where(self, spec: SweepSpec | None) -> tuple[str, str] | None:
        if self.doc is None or self.doc.project.path is None:
            return None
        from kbuilder.runtime.sweep import project_study

        return project_study(self.doc.project.path, spec)

    def refresh(self) -> None:
        where = self.storage()
        if where is None or self.job.busy:
            self._update_controls()
            return
        url, name = where
        from kbuilder.runtime.sweep import storage_missing

        missing = storage_missing(url)
        if missing:
            self.status.setText(f"No sweep has run in this storage yet ({missing}).")
            self._update_controls()
            return

        def work(progress) -> Any:
            from kbuilder.graph.sweeps import SweepError
            from kbuilder.runtime.sweep_results import read_snapshot

            try:
                return (url, name), read_snapshot(url, name)
            except SweepError as exc:
                return (url, name), str(exc)

        self.job.start(work)

    def _on_snapshot(self, answer: tuple[tuple[str, str], Any]) -> None:
        where, result = answer
        if where != self.storage():  # read before the user chose another study
            self.refresh()
            return
        if isinstance(result, str):
            self.status.setText(result)
            return
        self.snapshot = result
        counts = result.counts()
        parts = [plural(counts["complete"], "complete trial")]
        parts += [f"{counts[k]} {k}" for k in ("pruned", "failed", "running") if counts[k]]
        best = next((r for r in result.trials if r.number == result.best), None)
        best_text = (f"; best: trial {best.number}, {result.metric} {best.value:.4f}"
                     if best is not None and best.value is not None else "")
        self.status.setText(f"{result.study}: {', '.join(parts)} of {result.target}"
                            f"{best_text}.")
        self._fill_table(result)
        if self._built:
            self._draw(result)
        self._update_controls()

    def _fill_table(self, snap: SweepSnapshot) -> None:
        picked = self.picked()
        names = sorted({k for row in snap.trials for k in row.params})
        headers = ["Trial", "State", snap.metric, "Seconds", *names]
        self.table.setSortingEnabled(False)
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setRowCount(len(snap.trials))
        from PySide6.QtGui import QColor

        for r, row in enumerate(snap.trials):
            cells = [
                _NumberItem(str(row.number), row.number),
                QTableWidgetItem(row.state),
                _NumberItem("" if row.value is None else f"{row.value:.4f}", row.value),
                _NumberItem("" if row.seconds is None else f"{row.seconds:.1f}", row.seconds),
                *[_param_item(row.params.get(n)) for n in names],
            ]
            cells[1].setForeground(QColor(STATE_COLORS.get(row.state, "#94a3b8")))
            if row.error:
                cells[1].setToolTip(row.error)
            if row.number == snap.best:
                cells[0].setText(f"{row.number} ★")
            for c, cell in enumerate(cells):
                cell.setData(Qt.ItemDataRole.UserRole, row.number)
                self.table.setItem(r, c, cell)
        self.table.setSortingEnabled(True)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        if picked is not None:
            self.pick(picked.number)

    def picked(self) -> TrialRow | None:
        items = self.table.selectedItems()
        if not items or self.snapshot is None:
            return None
        number = items[0].data(Qt.ItemDataRole.UserRole)
        return next((r for r in self.snapshot.trials if r.number == number), None)

    def pick(self, number: int) -> None:
        for r in range(self.table.rowCount()):
            item = self.table.item(r, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == number:
                self.table.blockSignals(True)
                self.table.selectRow(r)
                self.table.blockSignals(False)
                self._on_trial_picked()
                return

    def _on_trial_picked(self) -> None:
        self._update_controls()
        if self._built:
            self._draw_curves(self.picked())

    # ------------------------------------------------------------------ plots
    def _draw(self, snap: SweepSnapshot) -> None:
        import pyqtgraph as pg

        done = [r for r in snap.trials if r.state == "complete" and r.value is not None]
        self.history_plot.clear()
        self.history_plot.setLabel("left", snap.metric)
        if done:
            xs = [r.number for r in done]
            ys = [r.value for r in done]
            self.history_plot.plot(xs, ys, pen=None, symbol="o", symbolSize=7,
                                   symbolBrush="#3b82f6", name="trial")
            best, bests = None, []
            for y in ys:
                better = best is None or (y < best if snap.direction == "minimize" else y > best)
                best = y if better else best
                bests.append(best)
            self.history_plot.plot(xs, bests, pen=pg.mkPen("#f97316", width=2),
                                   stepMode=None, name="best so far")
        sweep_plots.draw_importances(self.importance_plot, snap)
        sweep_plots.draw_parallel(self.parallel_plot, snap, done, self._is_log)
        self._draw_curves(self.picked())

    def _draw_curves(self, row: TrialRow | None) -> None:
        sweep_plots.draw_curves(self.curves_plot, row)

    def _is_log(self, label: str) -> bool:
        spec = self.spec
        if spec is None or self.doc is None:
            return False
        return any(p.log and p.label(self.doc.graph) == label for p in spec.params)

    # ------------------------------------------------------------------ actions
    def _update_controls(self) -> None:
        running = self.process is not None and self.process.poll() is None
        saved = self.doc is not None and self.doc.project.path is not None
        has_space = bool(self.spec and self.spec.params)
        self.start_button.setEnabled(saved and has_space and not running)
        if not saved:
            self.start_button.setToolTip("Save the project first: the sweep runs from the "
                                         "saved file")
        self.stop_button.setEnabled(running)
        picked = self.picked()
        self.apply_button.setEnabled(picked is not None and bool(picked.params)
                                     and self.spec is not None)

    def command_line(self) -> list[str]:
        """The ``kbuilder sweep`` command the Start button runs."""
        assert self.doc is not None and self.doc.project.path is not None
        return [sys.executable, "-m", "kbuilder", "sweep", str(self.doc.project.path),
                "--trials", str(self.trials.value()), "--parallel", str(self.parallel.value())]

    def start(self) -> bool:
        """Run the sweep on the saved project in a process of its own."""
        if self.doc is None or self.doc.project.path is None:
            return False
        if self.doc.modified:
            self.status.setText("Save the project first (Ctrl+S): the sweep runs on the saved "
                                "file, with its ranges.")
            return False
        from kbuilder.graph.sweeps import check_space

        problems = check_space(self.spec or SweepSpec(), self.doc.graph,
                               self.doc.project.training)
        if problems:  # flagged here, before any process starts
            self.status.setText(problems[0].message)
            return False
        log = Path(self.doc.project.path).with_suffix(".sweep.log")
        with open(log, "ab") as out:
            # Its own session: the sweep is not ended by the window's end (nor its Ctrl+C).
            self.process = start_process(self.command_line(), stdout=out,
                                            stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        self.status.setText(f"Sweep started (log: {log.name}); trials appear as they finish.")
        self._update_controls()
        return True

    def stop(self) -> None:
        """Stop the sweep this window started: its trials end after their current batch;
        the finished ones stay in the study (start again to resume)."""
        import signal

        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        self._update_controls()

    def apply_picked(self) -> bool:
        row = self.picked()
        spec = self.spec
        if row is None or spec is None or self.doc is None:
            return False
        from kbuilder.graph.settings import SettingsError
        from kbuilder.graph.sweeps import apply_trial_command

        project = self.doc.project
        try:
            done = self.doc.edit(lambda: apply_trial_command(project, spec, row.params,
                                                             row.number))
        except SettingsError as exc:
            self.status.setText(str(exc))
            return False
        if done is not None:
            self.values_applied.emit()
        return done is not None

    def _open_dashboard(self) -> None:
        where = self.storage()
        if where is None:
            return
        command = shutil.which("optuna-dashboard")
        argv = [command] if command else [sys.executable, "-m", "optuna_dashboard"]
        url = where[0]  # optuna-dashboard takes a journal file by its path
        subprocess.Popen([*argv, url.removeprefix("journal:")], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def dashboard_installed() -> bool:
    return (shutil.which("optuna-dashboard") is not None
            or importlib.util.find_spec("optuna_dashboard") is not None)


def _param_item(value: Any) -> QTableWidgetItem:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return QTableWidgetItem("" if value is None else str(value))
    return _NumberItem(f"{value:.4g}" if isinstance(value, float) else str(value), value)
