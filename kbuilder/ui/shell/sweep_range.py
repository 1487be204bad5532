"""The range of a swept value, asked from the inspector ("Sweep this parameter…"), the
Train tab (the sweep button beside a training setting) and the Sweep tab.

Numbers get a low and a high end (and a log scale); choices and activations a list of
values. The record made is checked (``SweepParam.validate``) before the dialog closes, so
an impossible range says why where it was typed.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from kbuilder.graph.sweeps import SweepError, SweepParam

SWEPT_COLOR = "#8b5cf6"  # the mark of swept values (canvas, inspector, Train tab)
# Parameter kinds that can be swept, and the kind of range each takes.
SWEEPABLE = {"int": "int", "float": "float", "choice": "choice", "activation": "choice",
             "str": "choice", "bool": "choice"}


def sweepable(kind: str) -> bool:
    return kind in SWEEPABLE


class QtRangeDialog(QDialog):
    """Asks the range of one parameter of one node."""

    def __init__(self, node_id: str, param: Any, current: Any, existing: SweepParam | None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Sweep {param.name}")
        self.node_id, self.param = node_id, param
        self.kind = SWEEPABLE[param.kind]
        form = QFormLayout(self)
        self.error = QLabel(self)
        self.error.setObjectName("errorLabel")
        self.error.setWordWrap(True)
        self.error.hide()
        if self.kind == "choice":
            self.choices = QLineEdit(self)
            values = (existing.choices if existing else
                      tuple(param.choices) or ((current,) if current is not None else ()))
            self.choices.setText(", ".join(str(v) for v in values))
            self.choices.setPlaceholderText("relu, tanh, gelu")
            form.addRow("Values (comma-separated):", self.choices)
        else:
            spin = QSpinBox if self.kind == "int" else QDoubleSpinBox
            self.low, self.high = spin(self), spin(self)
            for box in (self.low, self.high):
                if isinstance(box, QDoubleSpinBox):
                    box.setDecimals(6)
                    box.setRange(-1e9, 1e9)
                else:
                    box.setRange(-2**31 + 1, 2**31 - 1)
            base = current if isinstance(current, int | float) else 1
            self.low.setValue(existing.low if existing else base / 2 if self.kind == "float"
                              else max(1, int(base) // 2))
            self.high.setValue(existing.high if existing else base * 2)
            self.log = QCheckBox("log scale", self)
            self.log.setChecked(bool(existing and existing.log))
            form.addRow("Low:", self.low)
            form.addRow("High:", self.high)
            form.addRow("", self.log)
        form.addRow(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.result_param: SweepParam | None = None

    def made(self) -> SweepParam:
        """The range as typed; raises ``SweepError``."""
        if self.kind == "choice":
            from kbuilder.graph.sweeps import _scalar

            values = tuple(_scalar(v.strip()) for v in self.choices.text().split(",")
                           if v.strip())
            made = SweepParam(self.param.name, self.node_id, "choice", choices=values)
        else:
            made = SweepParam(self.param.name, self.node_id, self.kind, self.low.value(),
                              self.high.value(), self.log.isChecked())
        made.validate()
        return made

    def _accept(self) -> None:
        try:
            self.result_param = self.made()
        except SweepError as exc:
            self.error.setText(str(exc))
            self.error.show()
            return
        self.accept()


def ask_range(parent: QWidget, node_id: str, param: Any, current: Any,
              existing: SweepParam | None) -> SweepParam | None:
    """The range the user gives, or ``None`` when cancelled."""
    dialog = QtRangeDialog(node_id, param, current, existing, parent)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return dialog.result_param


def setting_value(training: Any, name: str) -> Any:
    """The current value of training setting ``name`` (``early_stopping.patience`` reads
    the callback's patience; 3 when the callback is off)."""
    if "." in name:
        section, key = name.split(".", 1)
        return (getattr(training, section) or {}).get(key, 3)
    return getattr(training, name)


def ask_setting_range(parent: QWidget, name: str, training: Any,
                      existing: SweepParam | None) -> SweepParam | None:
    """The range the user gives to training setting ``name`` (one of
    ``graph.sweeps.TRAINING_TARGETS``), or ``None`` when cancelled; the Train and Sweep
    tabs both ask through it."""
    from kbuilder.graph.catalog.specs import ParamSpec
    from kbuilder.graph.settings import OPTIMIZERS
    from kbuilder.graph.sweeps import TRAINING_TARGETS

    kind = TRAINING_TARGETS[name][0]
    choices = OPTIMIZERS if name == "optimizer" else ()
    current = setting_value(training, name)
    return ask_range(parent, None, ParamSpec(name, kind, current, False, False,
                                             tuple(choices)), current, existing)
