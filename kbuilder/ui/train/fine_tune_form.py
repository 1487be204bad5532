"""The Train tab's "Fine-tuning" group: a second phase that unfreezes and goes on slower.

It edits ``TrainingSettings.fine_tune_epochs``, ``fine_tune_from`` and
``fine_tune_learning_rate`` (the run itself: ``runtime/fine_tuning.py``); the page
validates and stores what it emits.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLineEdit, QSpinBox, QWidget

from kbuilder.graph.settings import TrainingSettings

EVERYTHING = "(everything frozen)"


class QtFineTuneGroup(QGroupBox):
    """Signals: changed(dict): settings to write, e.g. ``{"fine_tune_epochs": 5}``."""

    changed = Signal(dict)

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Fine-tuning (second phase)", parent)
        self.setToolTip("After the epochs above, unfreeze the pretrained part and go on "
                        "at a lower learning rate (the keras.io transfer-learning guide)")
        self._loading = False
        self.epochs = QSpinBox(self)
        self.epochs.setRange(0, 100_000)
        self.epochs.setKeyboardTracking(False)
        self.epochs.setSpecialValueText("off")
        self.epochs.setToolTip("Epochs of the second phase; 0: train in one phase")
        self.epochs.valueChanged.connect(lambda v: self._emit(fine_tune_epochs=v))
        self.start = QComboBox(self)
        self.start.setEditable(True)
        self.start.setToolTip("Unfreeze this layer or block and everything after it; "
                              "BatchNormalization stays frozen")
        self.start.activated.connect(lambda _i: self._on_start())
        self.start.lineEdit().editingFinished.connect(self._on_start)
        self.learning_rate = QLineEdit(self)
        self.learning_rate.setToolTip("Learning rate of the second phase; empty: the "
                                      "learning rate / 10")
        self.learning_rate.editingFinished.connect(self._on_learning_rate)
        self.form = QFormLayout(self)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form.addRow("Epochs", self.epochs)
        self.form.addRow("Unfreeze from", self.start)
        self.form.addRow("Learning rate", self.learning_rate)
        self._update_enabled()

    def load(self, settings: TrainingSettings, names: list[str]) -> None:
        """Show ``settings``; ``names``: the model's layers and blocks to choose from."""
        self._loading = True
        try:
            self.epochs.setValue(settings.fine_tune_epochs)
            self.start.clear()
            self.start.addItems([EVERYTHING, *names])
            self.start.setCurrentText(settings.fine_tune_from or EVERYTHING)
            rate = settings.fine_tune_learning_rate
            self.learning_rate.setText("" if rate is None else f"{rate:g}")
            self.learning_rate.setPlaceholderText(
                f"{settings.learning_rate / 10:g} (learning rate / 10)")
        finally:
            self._loading = False
        self._update_enabled()

    def _update_enabled(self) -> None:
        on = self.epochs.value() > 0
        self.start.setEnabled(on)
        self.learning_rate.setEnabled(on)

    def _emit(self, **changes: Any) -> None:
        self._update_enabled()
        if not self._loading:
            self.changed.emit(changes)

    def _on_start(self) -> None:
        text = self.start.currentText().strip()
        self._emit(fine_tune_from=None if text in ("", EVERYTHING) else text)

    def _on_learning_rate(self) -> None:
        text = self.learning_rate.text().strip()
        try:
            value = float(text) if text else None
        except ValueError:
            value = text  # refused by the settings' validation, with its message
        self._emit(fine_tune_learning_rate=value)
