"""The Train tab's settings form: its fields, what they show and how an edit is stored.

``TrainSettingsForm`` is a part of ``QtTrainPage`` (a mixin: the fields are the page's
attributes, which its tests and the window use). Each change is validated by
``TrainingSettings``/``DataSettings`` first; a value they refuse is shown next to its
field and never stored. The page itself (``train_page``) runs, stops and records runs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from kbuilder.graph.distribution import DISTRIBUTED_BACKENDS, batch_split, unsupported_backend
from kbuilder.graph.settings import (
    BACKENDS,
    LOSSES,
    METRICS,
    OPTIMIZERS,
    DataSettings,
    SettingsError,
    TrainingSettings,
)
from kbuilder.graph.sweeps import TRAINING_TARGETS
from kbuilder.ui.document import QtDocument
from kbuilder.ui.train.dashboard import BACKEND_LABELS
from kbuilder.ui.train.fine_tune_form import QtFineTuneGroup
from kbuilder.ui.train.setting_sweeps import QtSettingSweeps


class TrainSettingsForm:
    """The settings form of ``QtTrainPage`` (which provides ``doc``, ``controller``,
    ``dashboard``, ``settings_changed`` and the warm-up timer)."""

    doc: QtDocument | None
    backends: list[str]
    errors: dict[str, QLabel]
    _loading: bool
    _devices: dict[str, list[str]]
    sweeps: QtSettingSweeps  # the "sweep this" buttons beside the fields

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
        grid.setColumnStretch(4, 1)
        rows = ((self.early_stopping, "patience", self.es_patience, "early_stopping.patience"),
                (self.reduce_lr, "factor", self.rl_factor, None),
                (None, "patience", self.rl_patience, "reduce_lr_on_plateau.patience"))
        for row, (check, caption, spin, swept) in enumerate(rows):
            if check is not None:
                grid.addWidget(check, row, 0)
            label = QLabel(caption, callbacks)
            label.setObjectName("muted")
            grid.addWidget(label, row, 1, Qt.AlignmentFlag.AlignRight)
            grid.addWidget(spin, row, 2)
            if swept is not None:  # a sweep may vary the patience
                grid.addWidget(self.sweeps.button(swept, callbacks), row, 3)
                self.sweeps.mark_label(swept, label)
        grid.addWidget(self.checkpoint, 3, 0)
        grid.addWidget(self.checkpoint_best, 3, 1, 1, 2)
        grid.addWidget(self.tensorboard, 4, 0, 1, 3)
        for row, name in enumerate(("early_stopping", "reduce_lr_on_plateau", "checkpoint")):
            grid.addWidget(self._error_label(name, callbacks), 5 + row, 0, 1, 5)
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
            if param in TRAINING_TARGETS:  # a sweep may vary it: its "sweep this" button
                line = QHBoxLayout()
                line.setContentsMargins(0, 0, 0, 0)
                line.setSpacing(2)
                line.addWidget(widget, 1)
                line.addWidget(self.sweeps.button(param, field))
                stack.addLayout(line)
            else:
                stack.addWidget(widget)
            stack.addWidget(self._error_label(param, field))
            form.addRow(label, field)
            if param in TRAINING_TARGETS:
                caption = form.labelForField(field)
                self.sweeps.mark_label(param, caption if isinstance(caption, QLabel) else None)
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
