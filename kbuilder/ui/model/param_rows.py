"""The inspector's fields: one row per parameter (its editor and the error under it), and
the form of a layer given as a parameter (a wrapped layer, e.g. ``Bidirectional``'s).

Each row validates as the user types and reports an accepted value with ``committed``;
the inspector turns that into a command on the project's history.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from kbuilder.graph.commands import required_placeholders
from kbuilder.graph.model import UNSET
from kbuilder.ui.model.param_editors import QtParamEditor, editor_for

ADVANCED_KINDS = frozenset({"initializer", "regularizer", "constraint", "dtype"})
ADVANCED_NAMES = frozenset({"trainable", "lora_rank", "lora_alpha", "quantization_config"})
CALL_OPTION_CHOICES = (("default", UNSET), ("true", True), ("false", False))

Validator = Callable[[Any], "str | None"]


def is_advanced(spec: Any) -> bool:
    return spec.kind in ADVANCED_KINDS or spec.name in ADVANCED_NAMES


class QtParamRow(QWidget):
    """One field: the editor and, below it, the error message.

    Signals:
        committed(name, value): a valid value different from the current one.
        reset_requested(name): go back to the layer's default.
    """

    committed = Signal(str, object)
    reset_requested = Signal(str)

    def __init__(self, name: str, editor: QtParamEditor, validate: Validator,
                 resettable: bool = False, parent: QWidget | None = None,
                 reserve_reset: bool = True):
        super().__init__(parent)
        self.name = name
        self.editor = editor
        self._validate = validate
        self._current: Any = UNSET
        self._local_error = False
        self.error = QLabel(self)
        self.error.setObjectName("errorLabel")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        line = QHBoxLayout()
        line.setContentsMargins(0, 0, 0, 0)
        line.setSpacing(2)
        line.addWidget(editor, 1)
        layout.addLayout(line)
        layout.addWidget(self.error)
        editor.setParent(self)
        editor.edited.connect(self._on_edited)
        editor.committed.connect(self._on_committed)
        self.label: QLabel | None = None
        # Every row keeps the reset button's room (hidden when there is nothing to reset),
        # so the fields of all rows line up.
        self.resettable = resettable
        self.reset_button = QToolButton(self)
        self.reset_button.setText("↺")
        self.reset_button.setToolTip("Reset to the default")
        self.reset_button.setAutoRaise(True)
        self.reset_button.clicked.connect(lambda: self.reset_requested.emit(self.name))
        policy = self.reset_button.sizePolicy()
        policy.setRetainSizeWhenHidden(reserve_reset)
        self.reset_button.setSizePolicy(policy)
        self.reset_button.hide()
        line.addWidget(self.reset_button, 0, Qt.AlignmentFlag.AlignTop)

    def _check(self) -> tuple[Any, str | None]:
        try:
            value = self.editor.value()
        except ValueError as exc:
            return UNSET, str(exc)
        return value, self._validate(value)

    def _on_edited(self) -> None:
        _, message = self._check()
        self._local_error = bool(message)
        self.show_error(message)

    def _on_committed(self) -> None:
        value, message = self._check()
        self._local_error = bool(message)
        self.show_error(message)
        if message is None and value != self._current:
            self.committed.emit(self.name, value)

    def show_error(self, message: str | None) -> None:
        self.error.setText(message or "")
        self.error.setVisible(bool(message))

    def sync(self, value: Any, explicit: bool = True, external_error: str | None = None) -> None:
        """Show the graph's value (after an edit, undo or redo)."""
        changed = value != self._current
        self._current = value
        if changed or not self._local_error:
            self.editor.set_value(value)
            self._local_error = False
            self.show_error(external_error)
        elif external_error and not self._local_error:
            self.show_error(external_error)
        self.reset_button.setVisible(explicit and self.resettable)


class QtNestedLayerEditor(QtParamEditor):
    """The layer a wrapper wraps (Bidirectional, TimeDistributed): its class and settings."""

    def __init__(self, spec: Any, parent: QWidget | None = None):
        super().__init__(parent)
        from kbuilder.graph import catalog

        self.spec = spec
        self._value: dict | None = None
        self._rows: dict[str, QtParamRow] = {}
        self._inner: Any = None
        box = QFrame(self)
        box.setFrameShape(QFrame.Shape.StyledPanel)
        outer = self._layout()
        outer.addWidget(box)
        self._form = QFormLayout(box)
        self._form.setContentsMargins(8, 6, 8, 6)
        self._form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.combo = QComboBox(box)
        if spec.nullable:
            self.combo.addItem("None", None)
        names = spec.choices or tuple(s.class_name for s in catalog.all_layers()
                                      if wraps_one_tensor(s))
        for name in names:
            self.combo.addItem(str(name), name)
        self.combo.currentIndexChanged.connect(self._class_changed)
        self._narrow(self.combo)
        self._form.addRow("Layer", self.combo)

    def _class_changed(self, _index: int) -> None:
        from kbuilder.graph import catalog

        name = self.combo.currentData()
        if name is None:
            self._value = None
        else:
            self._value = {"class_name": name,
                           "config": required_placeholders(catalog.get(name))}
        self._build_rows()
        self.edited.emit()
        self.committed.emit()

    def _build_rows(self) -> None:
        from kbuilder.graph import catalog

        for row in self._rows.values():
            self._form.removeRow(row)
        self._rows.clear()
        if self._value is None:
            self._inner = None
            return
        self._inner = catalog.get(self._value["class_name"])
        config = self._value.get("config", {})
        for p in self._inner.params:
            if is_advanced(p) or p.kind == "layer":
                continue
            row = QtParamRow(p.name, editor_for(p),
                             lambda v, p=p: catalog.validate_param(self._inner, p.name, v),
                             reserve_reset=False)
            row.setToolTip(p.doc)
            row.committed.connect(self._inner_committed)
            self._form.addRow(field_label(p.name, p.doc), row)
            row.sync(config.get(p.name, p.default))
            self._rows[p.name] = row

    def _inner_committed(self, name: str, value: Any) -> None:
        assert self._value is not None
        config = dict(self._value.get("config", {}))
        config[name] = value
        self._value = {**self._value, "config": config}
        self.edited.emit()
        self.committed.emit()

    def value(self) -> Any:
        return self._value

    def set_value(self, value: Any) -> None:
        old_class = (self._value or {}).get("class_name")
        self._value = value if isinstance(value, dict) else None
        new_class = (self._value or {}).get("class_name")
        index = self.combo.findData(new_class)
        if index < 0 and new_class is not None:
            self.combo.addItem(str(new_class), new_class)
            index = self.combo.count() - 1
        blocked = self.combo.blockSignals(True)
        self.combo.setCurrentIndex(max(index, 0))
        self.combo.blockSignals(blocked)
        if new_class != old_class or len(self._rows) == 0:
            self._build_rows()
        elif self._inner is not None and self._value is not None:
            config = self._value.get("config", {})
            for name, row in self._rows.items():
                row.sync(config.get(name, self._inner.param(name).default))

    def focus_widget(self) -> QWidget:
        return self.combo


def wraps_one_tensor(spec: Any) -> bool:
    main = [p for p in spec.inputs if p.required]
    return len(main) == 1 and not main[0].variadic


def field_label(name: str, doc: str = "") -> QLabel:
    label = QLabel(name)
    if doc:
        label.setToolTip(f"<div style='max-width: 380px'>{html.escape(doc)}</div>")
    return label
