"""Editors for one parameter value, chosen by the catalog's ``ParamSpec.kind``.

Each editor emits ``edited`` on every keystroke (the inspector validates and shows the
error next to the field) and ``committed`` when the user is done (Enter, focus out, a
choice picked), when the inspector pushes a command if the value is valid. ``value()``
parses what is shown and raises ``ValueError`` with a message when it cannot.
"""

from __future__ import annotations

import ast
import json
import math
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QWidget,
)

INT_LIMIT = 2**31 - 1
NONE_TEXT = "None"
# Explicit minimum widths: a spin box's own size hint makes room for 2**31 and a combo's
# for its longest choice, which would widen the inspector past its dock.
MIN_FIELD_WIDTH = 56


class QtParamEditor(QWidget):
    """Base class: a row's value widget."""

    edited = Signal()
    committed = Signal()

    def value(self) -> Any:
        raise NotImplementedError

    def set_value(self, value: Any) -> None:
        raise NotImplementedError

    def focus_widget(self) -> QWidget:
        """The widget that takes the keyboard (tests type into it)."""
        return self

    def _narrow(self, widget: QWidget) -> QWidget:
        widget.setMinimumWidth(MIN_FIELD_WIDTH)
        if isinstance(widget, QComboBox):
            widget.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            widget.setMinimumContentsLength(6)
        return widget

    def _layout(self) -> QHBoxLayout:
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        return layout


def _silently(widget: QWidget, action) -> None:
    blocked = widget.blockSignals(True)
    try:
        action()
    finally:
        widget.blockSignals(blocked)


class QtIntSpin(QtParamEditor):
    """An integer in a range (not nullable): a spin box."""

    def __init__(self, minimum: float | None, maximum: float | None, parent=None):
        super().__init__(parent)
        self.spin = QSpinBox(self)
        lo = -INT_LIMIT if minimum is None else max(-INT_LIMIT, math.ceil(minimum))
        hi = INT_LIMIT if maximum is None else min(INT_LIMIT, math.floor(maximum))
        self.spin.setRange(int(lo), int(hi))
        self.spin.setKeyboardTracking(False)  # valueChanged on Enter, focus out, arrows
        self.spin.setAccelerated(True)
        self.spin.valueChanged.connect(self._changed)
        self.spin.lineEdit().textEdited.connect(lambda _t: self.edited.emit())
        self._layout().addWidget(self._narrow(self.spin))

    def _changed(self, _value: int) -> None:
        self.edited.emit()
        self.committed.emit()

    def value(self) -> Any:
        return self.spin.value()

    def set_value(self, value: Any) -> None:
        if isinstance(value, int) and not isinstance(value, bool):
            _silently(self.spin, lambda: self.spin.setValue(value))

    def focus_widget(self) -> QWidget:
        return self.spin


class QtLineEditor(QtParamEditor):
    """A text field whose text is parsed by ``parse`` (numbers, tuples, JSON...)."""

    def __init__(self, parse, show, placeholder: str = "", parent=None):
        super().__init__(parent)
        self._parse, self._show = parse, show
        self.line = QLineEdit(self)
        self.line.setPlaceholderText(placeholder)
        self.line.textEdited.connect(lambda _t: self.edited.emit())
        self.line.editingFinished.connect(self.committed)
        self._layout().addWidget(self._narrow(self.line))

    def value(self) -> Any:
        return self._parse(self.line.text())

    def set_value(self, value: Any) -> None:
        text = self._show(value)
        if text != self.line.text():
            _silently(self.line, lambda: self.line.setText(text))
            self.line.setCursorPosition(0)

    def focus_widget(self) -> QWidget:
        return self.line


class QtCheck(QtParamEditor):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.box = QCheckBox(self)
        self.box.toggled.connect(self._changed)
        self._layout().addWidget(self.box)

    def _changed(self, _checked: bool) -> None:
        self.edited.emit()
        self.committed.emit()

    def value(self) -> Any:
        return self.box.isChecked()

    def set_value(self, value: Any) -> None:
        _silently(self.box, lambda: self.box.setChecked(bool(value)))

    def focus_widget(self) -> QWidget:
        return self.box


class QtChoice(QtParamEditor):
    """One of a closed set of values (``None`` shown as "None (default)" when allowed)."""

    def __init__(self, choices: tuple, nullable: bool, parent=None):
        super().__init__(parent)
        self.combo = QComboBox(self)
        if nullable:
            self.combo.addItem("None (default)", None)
        for choice in choices:
            self.combo.addItem(str(choice), choice)
        self.combo.currentIndexChanged.connect(self._changed)
        self._layout().addWidget(self._narrow(self.combo))

    def _changed(self, _index: int) -> None:
        self.edited.emit()
        self.committed.emit()

    def value(self) -> Any:
        return self.combo.currentData()

    def set_value(self, value: Any) -> None:
        index = self.combo.findData(value)
        if index < 0 and value is not None:
            self.combo.addItem(str(value), value)  # an imported value outside the list
            index = self.combo.count() - 1
        _silently(self.combo, lambda: self.combo.setCurrentIndex(max(index, 0)))

    def focus_widget(self) -> QWidget:
        return self.combo


class QtSuggest(QtParamEditor):
    """Free text with suggestions (activations, initializers, dtypes...).

    A Keras object configuration (a dict, e.g. an imported initializer with arguments) is
    shown and edited as JSON.
    """

    def __init__(self, suggestions: tuple, nullable: bool, parent=None):
        super().__init__(parent)
        self.nullable = nullable
        self.combo = QComboBox(self)
        self.combo.setEditable(True)
        self.combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        if nullable:
            self.combo.addItem(NONE_TEXT)
        self.combo.addItems([str(s) for s in suggestions])
        line = self.combo.lineEdit()
        line.textEdited.connect(lambda _t: self.edited.emit())
        line.editingFinished.connect(self.committed)
        self.combo.activated.connect(lambda _i: (self.edited.emit(), self.committed.emit()))
        self._layout().addWidget(self._narrow(self.combo))

    def value(self) -> Any:
        text = self.combo.currentText().strip()
        if text in ("", NONE_TEXT):
            if self.nullable:
                return None
            raise ValueError("A value is needed here.")
        if text.startswith("{"):
            return parse_literal(text)
        return text

    def set_value(self, value: Any) -> None:
        text = NONE_TEXT if value is None else (
            json.dumps(value) if isinstance(value, dict | list) else str(value)
        )
        if text != self.combo.currentText():
            _silently(self.combo, lambda: self.combo.setCurrentText(text))

    def focus_widget(self) -> QWidget:
        return self.combo.lineEdit()


class QtTupleSpins(QtParamEditor):
    """A fixed-length tuple of integers (``kernel_size``, ``strides``): one spin box each."""

    def __init__(self, length: int, minimum: float | None, maximum: float | None, parent=None):
        super().__init__(parent)
        layout = self._layout()
        self.spins: list[QSpinBox] = []
        lo = -INT_LIMIT if minimum is None else max(-INT_LIMIT, math.ceil(minimum))
        hi = INT_LIMIT if maximum is None else min(INT_LIMIT, math.floor(maximum))
        for i in range(length):
            spin = QSpinBox(self)
            spin.setRange(int(lo), int(hi))
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(self._changed)
            spin.lineEdit().textEdited.connect(lambda _t: self.edited.emit())
            spin.setMinimumWidth(44)
            layout.addWidget(spin, 1)
            if i < length - 1:
                sep = QWidget(self)
                sep.setFixedWidth(2)
                layout.addWidget(sep)
            self.spins.append(spin)

    def _changed(self, _value: int) -> None:
        self.edited.emit()
        self.committed.emit()

    def value(self) -> Any:
        return [s.value() for s in self.spins]

    def set_value(self, value: Any) -> None:
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value] * len(self.spins)
        if isinstance(value, list | tuple) and len(value) == len(self.spins):
            for spin, v in zip(self.spins, value, strict=True):
                if isinstance(v, int) and not isinstance(v, bool):
                    _silently(spin, lambda s=spin, v=v: s.setValue(v))

    def focus_widget(self) -> QWidget:
        return self.spins[0]


# ------------------------------------------------------------------------- parsing
def _lists(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value


def parse_literal(text: str) -> Any:
    """A Python/JSON literal: ``3, 3`` and ``(3, 3)`` are ``[3, 3]``; ``None``/``null``."""
    text = text.strip()
    if not text:
        raise ValueError("A value is needed here.")
    if text in ("null", "None"):
        return None
    normalized = text.replace("null", "None").replace("true", "True").replace("false", "False")
    try:
        value = ast.literal_eval(normalized)
    except (ValueError, SyntaxError):
        raise ValueError(f"'{text}' is not a value kbuilder can read; write e.g. 3, 3 or "
                         "[28, 28, 1].") from None
    return _lists(value)


def _show_item(value: Any) -> str:
    if value is None:
        return NONE_TEXT
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def show_literal(value: Any) -> str:
    """The text ``parse_literal`` reads back as ``value``: ``[3, 3]`` -> ``3, 3``."""
    if isinstance(value, list):
        inner = ", ".join(_show_item(v) for v in value)
        return inner if len(value) > 1 else f"[{inner}]"
    return _show_item(value)


def parse_int(nullable: bool):
    def parse(text: str) -> Any:
        text = text.strip()
        if text in ("", NONE_TEXT, "null"):
            if nullable:
                return None
            raise ValueError("A whole number is needed here.")
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"'{text}' is not a whole number.") from None
    return parse


def parse_float(nullable: bool):
    def parse(text: str) -> Any:
        text = text.strip()
        if text in ("", NONE_TEXT, "null"):
            if nullable:
                return None
            raise ValueError("A number is needed here.")
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"'{text}' is not a number (write e.g. 0.5 or 1e-3).") from None
        if not math.isfinite(value):
            raise ValueError("The number must be finite.")
        return value
    return parse


def show_number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def parse_shape(text: str) -> Any:
    """An Input's shape: ``28, 28, 1`` or ``None, 8`` -> a list."""
    value = parse_literal(text if text.strip() else "[]")
    if isinstance(value, int) or value is None:
        value = [value]
    return value


def editor_for(spec: Any, parent: QWidget | None = None) -> QtParamEditor:
    """The editor for one catalog ``ParamSpec``."""
    kind = spec.kind
    if kind == "int":
        if not spec.nullable:
            return QtIntSpin(spec.minimum, spec.maximum, parent)
        return QtLineEditor(parse_int(True), show_number, "None", parent)
    if kind == "float":
        return QtLineEditor(parse_float(spec.nullable), show_number,
                            "None" if spec.nullable else "", parent)
    if kind == "bool":
        return QtCheck(parent)
    if kind == "choice":
        return QtChoice(spec.choices, spec.nullable, parent)
    if kind in ("str", "activation", "initializer", "regularizer", "constraint", "dtype"):
        return QtSuggest(spec.choices, spec.nullable, parent)
    if (kind == "tuple" and spec.tuple_len and spec.tuple_len <= 4 and spec.item_kind == "int"
            and not spec.nullable):
        return QtTupleSpins(spec.tuple_len, spec.minimum, spec.maximum, parent)
    placeholder = {"tuple": "e.g. 3, 3", "shape": "e.g. 28, 28, 1", "axis": "e.g. -1"}
    return QtLineEditor(parse_literal, show_literal, placeholder.get(kind, "JSON value"), parent)

