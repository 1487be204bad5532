"""The Train tab: training settings, Train/Pause/Stop and the live dashboard (issue 7).

The form (``settings_form.TrainSettingsForm``) edits ``project.training`` (and the
validation split in ``project.data``): each change is validated by
``TrainingSettings``/``DataSettings`` first, and a value they refuse is shown next to its
field and never stored. Train runs the pre-flight check in a
background thread, then hands the run to ``QtRunController``, which reports the worker's
events as Qt signals for the dashboard; every run that ends is recorded in
``project.runs``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from kbuilder.graph.distribution import batch_split
from kbuilder.graph.errors import GraphError
from kbuilder.graph.runs import RunRecord
from kbuilder.graph.settings import (
    DataSettings,
    SettingsError,
    TrainingSettings,
)
from kbuilder.ui.document import QtDocument
from kbuilder.ui.jobs.background_job import QtBackgroundJob
from kbuilder.ui.jobs.run_controller import (
    IDLE,
    PAUSED,
    RUNNING,
    STARTING,
    STOPPING,
    QtRunController,
    installed_backends,
)
from kbuilder.ui.shell import icons, theme
from kbuilder.ui.train.dashboard import BACKEND_LABELS, QtDashboard, training_heading
from kbuilder.ui.train.setting_sweeps import QtSettingSweeps
from kbuilder.ui.train.settings_form import TrainSettingsForm

WARM_DELAY_MS = 800
# What an ended run's heading says when its record has no message of its own.
STATUS_TEXT = {
    "completed": "Training completed.",
    "stopped": "Stopped; the model keeps what it learned so far.",
    "nan": "Training stopped: the loss became NaN (not a number).",
}


class QtTrainPage(QWidget, TrainSettingsForm):
    """Training settings, run controls and the live dashboard.

    Signals:
        settings_changed(): ``project.training`` (or the validation split in
            ``project.data``) was changed by the user.
        run_recorded(record): a run ended; its record was appended to ``project.runs``.
        data_tab_requested(): the user wants to fix the data (after a failed pre-flight).
        running_changed(running): a run started (or is being checked) / is over.
    """

    settings_changed = Signal()
    run_recorded = Signal(object)
    data_tab_requested = Signal()
    running_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.doc: QtDocument | None = None
        self.controller = QtRunController(self)
        self.backends = installed_backends()
        self._loading = False
        self._checking = False
        self._pending: tuple[Any, DataSettings, TrainingSettings] | None = None
        self._run_project: Any = None  # where the running run will be recorded
        self._run_metrics: tuple[str, ...] = ()
        self._run_backend = ""  # the backend of the run being started or trained
        self._actions: tuple[QAction, QAction] | None = None
        self._devices: dict[str, list[str]] = {}
        self.errors: dict[str, QLabel] = {}
        self.findings: list[Any] = []

        self.sweeps = QtSettingSweeps(self)
        self.form = self._build_form()
        scroll = QScrollArea(self)
        scroll.setWidget(self.form)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setMinimumWidth(self.form.sizeHint().width()
                               + scroll.verticalScrollBar().sizeHint().width())
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        self.dashboard = QtDashboard(self)
        self._no_run_text = self.dashboard.status.text()  # shown again for a new project
        right = QWidget(self)
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(8, 8, 8, 8)
        right_layout.addLayout(self._build_controls())
        right_layout.addWidget(self._build_banner())
        right_layout.addWidget(self.dashboard, 1)

        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(scroll)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([scroll.minimumWidth(), 1100])
        split.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

        c = self.controller
        c.state_changed.connect(self._on_state)
        c.run_started.connect(self._on_run_started)
        c.batch_ended.connect(self.dashboard.on_batch)
        c.epoch_ended.connect(self.dashboard.on_epoch)
        c.phase_started.connect(self.dashboard.on_phase)
        c.log_received.connect(self.dashboard.log)
        c.progress_received.connect(self._on_progress)
        c.run_finished.connect(self._on_finished)
        c.run_failed.connect(self._on_failed)
        c.devices_found.connect(self._on_devices)
        c.worker_silent.connect(self._on_worker_silent)
        self._check_job = QtBackgroundJob("preflight", self)
        self._check_job.finished.connect(self._on_checked)
        # Warming waits a moment: a project opened only to switch its backend (or a user
        # scrolling through the backends) must not start imports that are thrown away.
        self._warm_timer = QTimer(self, singleShot=True, interval=WARM_DELAY_MS)
        self._warm_timer.timeout.connect(self._warm)
        theme.manager().changed.connect(self._update_controls)  # icons in the theme's ink
        self._load_settings()
        self._update_controls()

    # ============================================================ controls
    def _build_controls(self) -> QHBoxLayout:
        self.train_button = self._button("Train", "play", self.train,
                                         "Check the data against the model, then train")
        self.train_button.setDefault(True)
        self.pause_button = self._button("Pause", "pause", self.toggle_pause,
                                         "Hold the training after the current batch")
        self.stop_button = self._button("Stop", "stop", self.stop,
                                        "End after the current batch and keep the model")
        self.kill_button = self._button("Kill", "delete", self.kill,
                                        "End the worker process now (the last resort when "
                                        "Stop does not end the run)")
        self.state_label = QLabel(self)
        self.state_label.setObjectName("muted")
        self.state_label.setWordWrap(True)  # a long hint wraps, never widens the window
        row = QHBoxLayout()
        row.setSpacing(6)
        for button in (self.train_button, self.pause_button, self.stop_button,
                       self.kill_button):
            row.addWidget(button)
        row.addSpacing(12)
        row.addWidget(self.state_label, 1)
        return row

    def _button(self, text: str, icon: str, slot, tip: str) -> QPushButton:
        button = QPushButton(icons.icon(icon), text, self)
        button.setToolTip(tip)
        button.clicked.connect(lambda _checked=False: slot())
        return button

    def _build_banner(self) -> QFrame:
        self.banner = QFrame(self)
        self.banner.setObjectName("errorBox")
        row = QHBoxLayout(self.banner)
        row.setContentsMargins(10, 8, 10, 8)
        self.banner_text = QLabel(self.banner)
        self.banner_text.setWordWrap(True)
        self.banner_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.data_button = QPushButton("Open the Data tab", self.banner)
        self.data_button.setToolTip("Fix the data or apply the suggested fixes there")
        self.data_button.clicked.connect(self.data_tab_requested)
        close = QPushButton("Dismiss", self.banner)
        close.clicked.connect(self.banner.hide)
        row.addWidget(self.banner_text, 1)
        row.addWidget(self.data_button, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.banner.hide()
        return self.banner

    def _show_banner(self, text: str, data_button: bool = False) -> None:
        self.banner_text.setText(text)
        self.data_button.setVisible(data_button)
        self.banner.show()

    def bind_actions(self, train: QAction, stop: QAction) -> None:
        """The window's Train and Stop actions: enabled as the page's buttons are."""
        self._actions = (train, stop)
        self._update_controls()

    # ============================================================ document
    def set_document(self, doc: QtDocument | None) -> None:
        changed = doc is not self.doc
        self.doc = doc
        self.sweeps.set_document(doc)
        self.banner.hide()
        if changed and not self.controller.busy:
            # The run shown (curves, log, outcome) was the previous project's.
            self.dashboard.reset()
            self.dashboard.console.clear()
            self._say(self._no_run_text)
        self._load_settings()
        self._update_controls()
        if doc is not None and not self.controller.busy:
            self._warm_timer.start()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        # The Data tab's pre-flight fixes may have changed the loss or the batch size.
        self._load_settings()

    def shutdown(self) -> None:
        """The window closes: end the run and the warm worker."""
        self._warm_timer.stop()
        self.controller.shutdown()

    def _warm(self) -> None:
        if self.doc is None:
            return
        try:
            s = self.training_settings()
        except SettingsError:
            return
        self.controller.warm(s.backend, s.device)

    # ============================================================== running
    @property
    def running(self) -> bool:
        return self._checking or self.controller.busy

    def train(self) -> bool:
        """Check the data against the model in the background, then start the run.

        Returns:
            Whether the check started (``False``: no project, a run is active, or the
            settings are not valid — the page says which).
        """
        if self.doc is None or self.running:
            return False
        self._load_settings()  # the form shows exactly what is trained
        try:
            training, data = self.training_settings(), self.data_settings()
        except SettingsError as exc:
            self._show_banner(f"The settings are not valid: {exc}")
            return False
        if training.backend not in self.backends:
            self._show_banner(f"{BACKEND_LABELS[training.backend]} is not installed here; "
                              "choose another backend.")
            return False
        self.banner.hide()
        self._checking = True
        graph = self.doc.graph.copy()  # the thread must not read a graph being edited
        self._pending = (self.doc.project, data, training)
        self._say("Checking the data against the model…")
        self._update_controls()
        self.running_changed.emit(True)

        def work(progress) -> tuple[list, str]:
            try:
                from kbuilder.runtime.data import load_data
                from kbuilder.runtime.preflight import check

                return check(graph, load_data(data), training), ""
            except (GraphError, OSError, ValueError) as exc:
                return [], str(exc) or type(exc).__name__
            except Exception as exc:  # the data module's own errors, and anything else
                return [], f"{type(exc).__name__}: {exc}"

        self._check_job.start(work)
        return True

    def _on_checked(self, result: tuple[list, str]) -> None:
        if not self._checking:
            return
        findings, error = result
        self._checking = False
        pending, self._pending = self._pending, None
        from kbuilder.runtime.preflight import errors as preflight_errors

        problems = preflight_errors(findings)
        self.findings = findings
        if error or problems:
            lines = [error] if error else [f"• {f.message}" for f in problems]
            title = ("The data could not be read" if error else
                     f"Training did not start: {len(problems)} problem"
                     f"{'s' if len(problems) != 1 else ''} between the data and the model")
            self._show_banner(f"<b>{title}</b><br>" + "<br>".join(_html(x) for x in lines),
                              data_button=True)
            self._say("Not started — see the problems above.")
            self._update_controls()
            self.running_changed.emit(False)
            return
        if pending is None or self.doc is None or pending[0] is not self.doc.project:
            self._update_controls()
            self.running_changed.emit(False)
            return
        project, data, training = pending
        self.dashboard.reset(training.metrics, training.total_epochs)
        self._run_backend = training.backend
        for finding in findings:  # warnings only by now
            self.dashboard.log("warning", finding.message)
        self._run_project = project
        self._run_metrics = training.metrics
        self.controller.start(project, data, training)

    def toggle_pause(self) -> None:
        if self.controller.state == PAUSED:
            self.controller.resume()
        else:
            self.controller.pause()

    def stop(self) -> None:
        if self._checking:  # nothing runs yet: forget the check
            self._checking = False
            self._check_job.cancel()
            self._say("Cancelled.")
            self._update_controls()
            self.running_changed.emit(False)
            return
        self.controller.stop()

    def kill(self) -> None:
        self.controller.kill()

    # ---------------------------------------------------------------- events
    def _say(self, heading: str, hint: str = "") -> None:
        """The one writer of the page's state text: the heading above the curves and the
        hint beside the buttons, so the two never disagree."""
        self.dashboard.status.setText(heading)
        self.state_label.setText(hint)

    def _state_words(self, state: str) -> tuple[str, str]:
        """The heading and hint of an active run in ``state``."""
        backend = BACKEND_LABELS.get(self._run_backend, self._run_backend)
        started = self.controller.started
        if state == STARTING:
            return f"Starting a {backend} worker…", "Importing the backend takes a moment."
        if state == RUNNING and started is None:  # the worker reads the data, builds
            return f"Preparing the data and the model on {backend}…", ""
        if state == RUNNING:
            return training_heading(started.backend, started.device), ""
        if state == PAUSED:
            return "Paused", "Press Resume to go on."
        if state == STOPPING:
            return ("Stopping after the current batch…",
                    "Kill ends the worker at once if it does not stop.")
        return self.dashboard.status.text(), self.state_label.text()

    def _on_state(self, state: str) -> None:
        self.dashboard.set_paused(state == PAUSED)
        if state != IDLE:  # an ended run's outcome is said by _on_finished/_on_failed
            self._say(*self._state_words(state))
        self._update_controls()
        if state in (STARTING, IDLE):
            self.running_changed.emit(state != IDLE)

    def _on_progress(self, message: Any) -> None:
        """Work before the first batch, e.g. a pretrained network's weights downloading."""
        done = f"{message.done / 2**20:.1f}"
        total = f" of {message.total / 2**20:.1f}" if message.total else ""
        self._say(f"{message.stage[:1].upper()}{message.stage[1:]}…", f"{done}{total} MB")

    def _on_worker_silent(self, seconds: float) -> None:
        if seconds:
            self._say(self.dashboard.status.text(),
                      f"The worker has not answered for {seconds:.0f} s — it may be stopped "
                      "or hung. Press Stop, or Kill to end it now (its model is then lost).")
            self._update_controls()
        else:
            self._on_state(self.controller.state)

    def _on_run_started(self, message) -> None:
        self.dashboard.on_run_started(message, self._run_metrics)
        if message.devices * message.processes > 1:  # data-parallel: say the batch's split
            split = batch_split(self.training_settings().batch_size, message.devices,
                                message.processes)
            self.dashboard.log("info", f"Data-parallel: {split}")
        self._say(*self._state_words(self.controller.state))

    def _on_finished(self, record: RunRecord) -> None:
        status = record.status or "completed"
        heading, hint = outcome_text(record)
        model = record.model_file
        self.dashboard.on_ended(status, heading, "\n".join(
            line for line in (hint, f"Model saved to {model}" if model else "") if line))
        self._say(heading, hint)
        self._record(record)

    def _on_failed(self, reason: str, record: RunRecord | None) -> None:
        # The banner shows the reason: the heading names the outcome only.
        self.dashboard.on_ended("failed", "Training failed", reason, failed=True)
        self._say("Training failed")
        self._show_banner(f"<b>Training failed</b><br>{_html(reason)}")
        dialogs = getattr(self.window(), "dialogs", None)
        if dialogs is not None:
            dialogs.show_error("Training failed", reason)
        else:
            QMessageBox.warning(self, "Training failed", reason)
        if record is not None:
            self._record(record)

    def _record(self, record: RunRecord) -> None:
        project, self._run_project = self._run_project, None
        if project is None:
            return
        project.runs.append(record)
        if self.doc is not None and project is self.doc.project:
            self.run_recorded.emit(record)
        else:
            project.dirty = True  # another project is open now; that one keeps its run

    def _update_controls(self) -> None:
        state = self.controller.state
        has_doc = self.doc is not None
        idle = state == IDLE and not self._checking
        self.train_button.setEnabled(has_doc and idle)
        self.pause_button.setEnabled(state in (RUNNING, PAUSED))
        self.pause_button.setText("Resume" if state == PAUSED else "Pause")
        for button, icon in ((self.train_button, "play"), (self.stop_button, "stop"),
                             (self.kill_button, "delete"),
                             (self.pause_button, "play" if state == PAUSED else "pause")):
            button.setIcon(icons.icon(icon))
        self.stop_button.setEnabled(self._checking or state in (RUNNING, PAUSED, STARTING))
        # Kill only once Stop was asked for (a stop keeps the model, a kill does not), or
        # when the worker does not answer (a stopped or hung process never stops itself).
        self.kill_button.setEnabled(state == STOPPING or self.controller.unresponsive)
        if self._actions is not None:
            train, stop = self._actions
            train.setEnabled(self.train_button.isEnabled())
            stop.setEnabled(self.stop_button.isEnabled())


def outcome_text(record: RunRecord) -> tuple[str, str]:
    """An ended run's heading and hint: the record's message (the worker's own sentence
    about the outcome) split into its first sentence and the rest, with the test results
    after the first."""
    status = record.status or "completed"
    message = str(record.message or STATUS_TEXT.get(status, status)).strip()
    first, sep, rest = message.partition(". ")
    heading = first + ("." if sep else "")
    tests = record.test_metrics or {}
    summary = ", ".join(f"test {k} {v:.4g}" for k, v in tests.items()
                        if isinstance(v, int | float))
    if summary:
        heading = f"{heading.rstrip('.')} — {summary}"
    return heading, rest.strip()


def _html(text: str) -> str:
    from html import escape

    return escape(text).replace("\n", "<br>")
