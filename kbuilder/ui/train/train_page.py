"""The Train tab: training settings, Train/Pause/Stop and the live dashboard (issue 7).

The form edits ``project.training`` (and the validation split in ``project.data``): each
change is validated by ``TrainingSettings``/``DataSettings`` first, and a value they
refuse is shown next to its field and never stored. Train runs the pre-flight check in a
background thread, then hands the run to ``QtRunController``, which reports the worker's
events as Qt signals for the dashboard; every run that ends is recorded in
``project.runs``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from kbuilder.graph.distribution import DISTRIBUTED_BACKENDS, batch_split, unsupported_backend
from kbuilder.graph.errors import GraphError
from kbuilder.graph.runs import RunRecord
from kbuilder.graph.settings import (
    BACKENDS,
    LOSSES,
    METRICS,
    OPTIMIZERS,
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
from kbuilder.ui.train.fine_tune_form import QtFineTuneGroup

WARM_DELAY_MS = 800
# What an ended run's heading says when its record has no message of its own.
STATUS_TEXT = {
    "completed": "Training completed.",
    "stopped": "Stopped; the model keeps what it learned so far.",
    "nan": "Training stopped: the loss became NaN (not a number).",
}


class QtTrainPage(QWidget):
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

    # ================================================================== form
    def _build_form(self) -> QWidget:
        form = QWidget(self)
        column = QVBoxLayout(form)
        column.setContentsMargins(10, 10, 6, 10)
        column.setSpacing(10)

        self.backend = QComboBox(form)
        for name in BACKENDS:
            installed = name in self.backends
            self.backend.addItem(BACKEND_LABELS[name] + ("" if installed else " (not installed)"),
                                 name)
            self.backend.model().item(self.backend.count() - 1).setEnabled(installed)
        self.backend.setToolTip("The library that runs the training (in its own process)")
        self.device = QComboBox(form)
        self.device.setToolTip("CPU, or a GPU the backend detected")
        self.backend.currentIndexChanged.connect(self._on_backend)
        self.device.currentIndexChanged.connect(self._on_device)
        column.addWidget(self._group("Where", [
            ("Backend", self.backend, "backend"), ("Device", self.device, "device"),
            ("Parallel", self._build_distribution(form), "distribute"),
        ]))

        self.optimizer = self._combo(form, OPTIMIZERS, "optimizer")
        self.learning_rate = QLineEdit(form)
        self.learning_rate.setPlaceholderText("e.g. 0.001")
        self.learning_rate.setToolTip("Step size of the optimizer, typically 1e-4 to 1e-2")
        self.learning_rate.editingFinished.connect(self._on_learning_rate)
        self.loss = self._combo(form, LOSSES, "loss")
        self.metrics = QListWidget(form)
        self.metrics.setToolTip("Metrics reported during training and on the test data")
        for name in METRICS:
            item = QListWidgetItem(name, self.metrics)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
        self.metrics.setFixedHeight(5 * self.metrics.sizeHintForRow(0)
                                    + 2 * self.metrics.frameWidth())
        self.metrics.itemChanged.connect(self._on_metrics)
        column.addWidget(self._group("Learning", [
            ("Optimizer", self.optimizer, "optimizer"),
            ("Learning rate", self.learning_rate, "learning_rate"),
            ("Loss", self.loss, "loss"), ("Metrics", self.metrics, "metrics"),
        ]))

        self.epochs = self._spin(form, 1, 100_000, "epochs", "Passes over the training data")
        self.batch_size = self._spin(form, 1, 1_000_000, "batch_size",
                                     "Samples per optimization step")
        self.validation_split = QDoubleSpinBox(form)
        self.validation_split.setRange(0.0, 0.95)
        self.validation_split.setSingleStep(0.05)
        self.validation_split.setDecimals(2)
        self.validation_split.setKeyboardTracking(False)
        self.validation_split.setToolTip(
            "Fraction of the data held out to validate after each epoch")
        self.validation_split.valueChanged.connect(self._on_validation_split)
        self.seed = self._spin(form, 0, 2**31 - 1, "seed",
                               "Random seed: the same seed repeats the same run")
        self.mixed_precision = QCheckBox("Mixed precision", form)
        self.mixed_precision.setToolTip(
            "Compute in 16-bit floats where safe (float16 on a GPU, bfloat16 on a CPU)")
        self.mixed_precision.toggled.connect(lambda on: self._write(mixed_precision=on))
        column.addWidget(self._group("Schedule", [
            ("Epochs", self.epochs, "epochs"), ("Batch size", self.batch_size, "batch_size"),
            ("Validation split", self.validation_split, "validation_split"),
            ("Seed", self.seed, "seed"), ("", self.mixed_precision, "mixed_precision"),
        ]))

        self.fine_tune = QtFineTuneGroup(form)
        self.fine_tune.changed.connect(lambda changes: self._write(**changes))
        for name in ("fine_tune_epochs", "fine_tune_from", "fine_tune_learning_rate"):
            self.fine_tune.form.addRow(self._error_label(name, self.fine_tune))
        column.addWidget(self.fine_tune)

        self.early_stopping = QCheckBox("Early stopping", form)
        self.early_stopping.setToolTip("Stop when the monitored loss stops improving, and "
                                       "keep the best weights")
        self.es_patience = self._plain_spin(form, 1, 1000, "Epochs without improvement "
                                            "before stopping")
        self.reduce_lr = QCheckBox("Reduce LR on plateau", form)
        self.reduce_lr.setToolTip("Lower the learning rate when the loss stops improving")
        self.rl_factor = QDoubleSpinBox(form)
        self.rl_factor.setRange(0.01, 0.99)
        self.rl_factor.setSingleStep(0.05)
        self.rl_factor.setKeyboardTracking(False)
        self.rl_factor.setToolTip("Multiply the learning rate by this factor")
        self.rl_patience = self._plain_spin(form, 1, 1000, "Epochs without improvement "
                                            "before lowering the learning rate")
        self.checkpoint = QCheckBox("Checkpoints", form)
        self.checkpoint.setToolTip("Save the model after epochs (checkpoint.keras in the run "
                                   "folder)")
        self.checkpoint_best = QCheckBox("best only", form)
        self.checkpoint_best.setToolTip("Save only when the monitored loss improved")
        self.tensorboard = QCheckBox("TensorBoard logs", form)
        self.tensorboard.setToolTip("Write logs for TensorBoard in the run folder")
        for widget in (self.early_stopping, self.reduce_lr, self.checkpoint,
                       self.checkpoint_best):
            widget.toggled.connect(lambda _on: self._write_callbacks())
        for widget in (self.es_patience, self.rl_patience, self.rl_factor):
            widget.valueChanged.connect(lambda _v: self._write_callbacks())
        self.tensorboard.toggled.connect(lambda on: self._write(tensorboard=on))
        callbacks = QGroupBox("Callbacks", form)
        grid = QGridLayout(callbacks)
        grid.setColumnStretch(3, 1)
        rows = ((self.early_stopping, "patience", self.es_patience),
                (self.reduce_lr, "factor", self.rl_factor),
                (None, "patience", self.rl_patience))
        for row, (check, caption, spin) in enumerate(rows):
            if check is not None:
                grid.addWidget(check, row, 0)
            label = QLabel(caption, callbacks)
            label.setObjectName("muted")
            grid.addWidget(label, row, 1, Qt.AlignmentFlag.AlignRight)
            grid.addWidget(spin, row, 2)
        grid.addWidget(self.checkpoint, 3, 0)
        grid.addWidget(self.checkpoint_best, 3, 1, 1, 2)
        grid.addWidget(self.tensorboard, 4, 0, 1, 3)
        for row, name in enumerate(("early_stopping", "reduce_lr_on_plateau", "checkpoint")):
            grid.addWidget(self._error_label(name, callbacks), 5 + row, 0, 1, 4)
        column.addWidget(callbacks)

        self.settings_error = QLabel(form)
        self.settings_error.setObjectName("errorLabel")
        self.settings_error.setWordWrap(True)
        self.settings_error.hide()
        column.addWidget(self.settings_error)
        column.addStretch(1)
        return form

    def _build_distribution(self, parent: QWidget) -> QWidget:
        """Data-parallel training: the choice, the number of devices and what it means."""
        box = QWidget(parent)
        stack = QVBoxLayout(box)
        stack.setContentsMargins(0, 0, 0, 0)
        stack.setSpacing(2)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        self.distribute = QComboBox(box)
        self.distribute.addItem("One device", "none")
        self.distribute.addItem("Data-parallel", "data-parallel")
        self.distribute.setToolTip("Data-parallel: a copy of the model on every device, each "
                                   "batch split between them (keras.distribution, JAX)")
        self.distribute.currentIndexChanged.connect(
            lambda _i: self._write(distribute=self.distribute.currentData()))
        self.parallel_devices = self._plain_spin(box, 0, 1024, "How many devices share each "
                                                 "batch (all: every device of the backend)")
        self.parallel_devices.setSpecialValueText("all devices")
        self.parallel_devices.setSuffix(" devices")
        self.parallel_devices.valueChanged.connect(
            lambda value: self._write(devices=value or None))
        row.addWidget(self.distribute, 1)
        row.addWidget(self.parallel_devices)
        stack.addLayout(row)
        self.distribute_note = QLabel(box)
        self.distribute_note.setObjectName("muted")
        self.distribute_note.setWordWrap(True)
        stack.addWidget(self.distribute_note)
        stack.addWidget(self._error_label("devices", box))
        return box

    def _update_distribution(self) -> None:
        """Offer data-parallel where the backend can and sees more than one device, and
        say what the batch size means then (it is the global batch)."""
        s = self.training_settings()
        gpus = [d for d in self._devices.get(s.backend, []) if d.startswith("gpu")]
        parallel = s.distribute != "none"
        note = unsupported_backend(s.backend)
        if note is None and len(gpus) < 2:
            note = ("Data-parallel training needs more than one device; the "
                    f"{BACKEND_LABELS.get(s.backend, s.backend)} backend sees "
                    f"{'one GPU' if gpus else 'no GPU'} here. (On the command line, "
                    "kbuilder train --distribute data-parallel --devices N splits the CPU.)")
            if not parallel:
                note = None  # nothing to offer: the row stays quiet
        elif note is None and parallel and s.device == "cpu":
            # The CPU split into N XLA devices (all: the one the backend sees).
            note = (batch_split(s.batch_size, s.devices or 1) + " Choose a GPU as the "
                    "device to spread the batch over the GPUs.")
        elif note is None and parallel:
            note = batch_split(s.batch_size, s.devices or len(gpus))
        elif note is not None and not parallel and len(gpus) < 2:
            note = None  # another backend on one device: nothing it would miss
        offered = s.backend in DISTRIBUTED_BACKENDS and len(gpus) >= 2
        # A setting made elsewhere (the CLI) stays visible and can be turned off here.
        self.distribute.setEnabled(offered or parallel)
        self.parallel_devices.setEnabled(parallel and offered)
        self.distribute_note.setText(note or "")
        self.distribute_note.setVisible(bool(note))

    def _group(self, title: str, rows: list[tuple[str, QWidget, str]]) -> QGroupBox:
        box = QGroupBox(title, self)
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for label, widget, param in rows:
            field = QWidget(box)
            stack = QVBoxLayout(field)
            stack.setContentsMargins(0, 0, 0, 0)
            stack.setSpacing(2)
            stack.addWidget(widget)
            stack.addWidget(self._error_label(param, field))
            form.addRow(label, field)
        return box

    def _error_label(self, param: str, parent: QWidget) -> QLabel:
        label = QLabel(parent)
        label.setObjectName("errorLabel")
        label.setWordWrap(True)
        label.hide()
        self.errors[param] = label
        return label

    def _combo(self, parent: QWidget, choices: tuple[str, ...], param: str) -> QComboBox:
        combo = QComboBox(parent)
        for choice in choices:
            combo.addItem(choice, choice)
        combo.currentIndexChanged.connect(
            lambda _i: self._write(**{param: combo.currentData()}))
        return combo

    def _spin(self, parent: QWidget, low: int, high: int, param: str, tip: str) -> QSpinBox:
        spin = self._plain_spin(parent, low, high, tip)
        spin.valueChanged.connect(lambda value: self._write(**{param: value}))
        return spin

    @staticmethod
    def _plain_spin(parent: QWidget, low: int, high: int, tip: str) -> QSpinBox:
        spin = QSpinBox(parent)
        spin.setRange(low, high)
        spin.setKeyboardTracking(False)  # a value per finished entry, not per keystroke
        spin.setToolTip(tip)
        return spin

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

    def training_settings(self) -> TrainingSettings:
        """The project's training settings (the defaults when it has none)."""
        if self.doc is None:
            return TrainingSettings()
        return self.doc.project.training

    def data_settings(self) -> DataSettings:
        if self.doc is None:
            return DataSettings()
        return self.doc.project.data or DataSettings()

    def _load_settings(self) -> None:
        """Show the project's settings in the form."""
        self._loading = True
        try:
            for label in self.errors.values():
                label.hide()
            self.settings_error.hide()
            s = self.training_settings()  # valid: checked when the project was read
            split = self.data_settings().validation_split
            self._select(self.backend, s.backend)
            self._fill_devices(s.backend, s.device)
            self._select(self.optimizer, s.optimizer)
            self.learning_rate.setText(f"{s.learning_rate:g}")
            self._select(self.loss, s.loss)
            for i in range(self.metrics.count()):
                item = self.metrics.item(i)
                item.setCheckState(Qt.CheckState.Checked if item.text() in s.metrics
                                   else Qt.CheckState.Unchecked)
            self.epochs.setValue(s.epochs)
            self.batch_size.setValue(s.batch_size)
            self.validation_split.setValue(split)
            self.seed.setValue(s.seed)
            self.mixed_precision.setChecked(s.mixed_precision)
            self._select(self.distribute, s.distribute)
            self.parallel_devices.setValue(s.devices or 0)
            self._update_distribution()
            es = s.early_stopping or {}
            self.early_stopping.setChecked(s.early_stopping is not None)
            self.es_patience.setValue(int(es.get("patience", 3)))
            rl = s.reduce_lr_on_plateau or {}
            self.reduce_lr.setChecked(s.reduce_lr_on_plateau is not None)
            self.rl_factor.setValue(float(rl.get("factor", 0.5)))
            self.rl_patience.setValue(int(rl.get("patience", 2)))
            ck = s.checkpoint or {}
            self.checkpoint.setChecked(s.checkpoint is not None)
            self.checkpoint_best.setChecked(bool(ck.get("save_best_only", True)))
            self.tensorboard.setChecked(s.tensorboard)
            self.fine_tune.load(s, self._layer_names())
            self._update_callback_fields()
            if self.dashboard.empty and not self.controller.busy:
                self.dashboard.reset(s.metrics, s.total_epochs)  # what Train will show
        finally:
            self._loading = False
        self.form.setEnabled(self.doc is not None)

    def _layer_names(self) -> list[str]:
        """The model's layers and blocks (inside blocks too), to fine-tune from."""
        if self.doc is None:
            return []
        return [n.name for _, n in self.doc.graph.walk() if n.kind in ("layer", "block")]

    @staticmethod
    def _select(combo: QComboBox, value: str) -> None:
        index = combo.findData(value)
        if index < 0:  # a stored value this build does not offer: show it anyway
            combo.addItem(f"{value} (unknown)", value)
            index = combo.count() - 1
        combo.setCurrentIndex(index)

    def _fill_devices(self, backend: str, selected: str) -> None:
        devices = list(dict.fromkeys(["cpu", *self._devices.get(backend, []), selected]))
        was = self._loading
        self._loading = True
        self.device.clear()
        for name in devices:
            label = "CPU" if name == "cpu" else name.upper().replace(":", " ")
            self.device.addItem(label, name)
        self.device.setCurrentIndex(devices.index(selected))
        self._loading = was

    # ============================================================== writing
    def _write(self, **changes: Any) -> bool:
        """Validate ``project.training`` with ``changes``; store it only when valid."""
        if self._loading or self.doc is None:
            return False
        project = self.doc.project
        candidate = {**project.training.to_dict(), **changes}
        try:
            settings = TrainingSettings.from_dict(candidate)
        except SettingsError as exc:
            self._show_error(exc.param or next(iter(changes)), str(exc))
            return False
        for name in changes:
            self._show_error(name, "")
        self.settings_error.hide()
        if settings != project.training:
            project.training = settings
            self._update_distribution()  # the batch, the backend or the devices changed
            self.settings_changed.emit()
        return True

    def _show_error(self, param: str, message: str) -> None:
        label = self.errors.get(param)
        if label is None:
            label = self.settings_error
        label.setText(message)
        label.setVisible(bool(message))

    def _on_backend(self, _index: int) -> None:
        backend = self.backend.currentData()
        if self._loading or backend is None:
            return
        self._fill_devices(backend, "cpu")
        if self._write(backend=backend, device="cpu"):
            self._warm_timer.start()

    def _on_device(self, _index: int) -> None:
        device = self.device.currentData()
        if not self._loading and device is not None and self._write(device=device):
            self._warm_timer.start()

    def _on_devices(self, backend: str, devices: list[str]) -> None:
        self._devices[backend] = devices
        if self.backend.currentData() == backend:
            self._fill_devices(backend, self.device.currentData() or "cpu")
            self._update_distribution()

    def _on_learning_rate(self) -> None:
        text = self.learning_rate.text().strip()
        try:
            value = float(text)
        except ValueError:
            self._show_error("learning_rate", (
                f"training: learning_rate must be a number such as 0.001; found {text!r}."))
            return
        self._write(learning_rate=value)

    def _on_metrics(self, _item: QListWidgetItem) -> None:
        chosen = [self.metrics.item(i).text() for i in range(self.metrics.count())
                  if self.metrics.item(i).checkState() == Qt.CheckState.Checked]
        self._write(metrics=chosen)

    def _on_validation_split(self, value: float) -> None:
        if self._loading or self.doc is None:
            return
        project = self.doc.project
        # Only this field: the Data tab owns the rest of project.data.
        settings = dataclasses.replace(project.data or DataSettings(), validation_split=value)
        try:
            settings.validate()
        except SettingsError as exc:
            self._show_error("validation_split", str(exc))
            return
        self._show_error("validation_split", "")
        if settings != project.data:
            project.data = settings
            self.settings_changed.emit()

    def _write_callbacks(self) -> None:
        self._update_callback_fields()
        if self._loading or self.doc is None:
            return
        s = self.doc.project.training
        self._write(
            early_stopping={**(s.early_stopping or {}), "patience": self.es_patience.value()}
            if self.early_stopping.isChecked() else None,
            reduce_lr_on_plateau={**(s.reduce_lr_on_plateau or {}),
                                  "factor": round(self.rl_factor.value(), 4),
                                  "patience": self.rl_patience.value()}
            if self.reduce_lr.isChecked() else None,
            checkpoint={**(s.checkpoint or {}),
                        "save_best_only": self.checkpoint_best.isChecked()}
            if self.checkpoint.isChecked() else None,
        )

    def _update_callback_fields(self) -> None:
        self.es_patience.setEnabled(self.early_stopping.isChecked())
        self.rl_factor.setEnabled(self.reduce_lr.isChecked())
        self.rl_patience.setEnabled(self.reduce_lr.isChecked())
        self.checkpoint_best.setEnabled(self.checkpoint.isChecked())

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
