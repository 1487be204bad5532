"""The inspector: a form generated from the catalog for the selected node.

Each parameter gets the editor its ``ParamSpec.kind`` calls for; values are validated as
they are typed (the message shows under the field) and every accepted change is a command
on the project's history (``SetParamCommand``, ``RenameNodeCommand``...). The form follows
the graph: an undo updates the fields in place, without rebuilding the form.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from kbuilder.graph.commands import (
    DTYPES,
    RenameNodeCommand,
    SetCallOptionCommand,
    SetParamCommand,
    required_placeholders,
    validate_input_param,
    validate_name,
)
from kbuilder.graph.errors import GraphError
from kbuilder.graph.freezing import (
    SetBlockOptionCommand,
    in_inference_mode,
    is_frozen,
    set_trainable,
)
from kbuilder.graph.model import UNSET, Graph, Node
from kbuilder.graph.text import plural
from kbuilder.ui.document import QtDocument
from kbuilder.ui.model.canvas.scene import count_text, layer_count
from kbuilder.ui.model.param_editors import (
    QtChoice,
    QtLineEditor,
    QtParamEditor,
    editor_for,
    parse_shape,
    show_literal,
)
from kbuilder.ui.shell.sweep_range import SWEPT_COLOR, sweepable

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
                                      if _wraps_one_tensor(s))
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
            self._form.addRow(_label(p.name, p.doc), row)
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


def _wraps_one_tensor(spec: Any) -> bool:
    main = [p for p in spec.inputs if p.required]
    return len(main) == 1 and not main[0].variadic


def _label(name: str, doc: str = "") -> QLabel:
    label = QLabel(name)
    if doc:
        label.setToolTip(f"<div style='max-width: 380px'>{html.escape(doc)}</div>")
    return label


class QtInspector(QScrollArea):
    """The form of the selected node.

    Signals:
        open_block_requested(node_id).
    """

    open_block_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        # The form follows the dock's width; only long forms scroll (vertically).
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.doc: QtDocument | None = None
        self.graph: Graph | None = None
        self.node_id: str | None = None
        self._signature: tuple | None = None
        self.rows: dict[str, QtParamRow] = {}
        self.call_rows: dict[str, QComboBox] = {}
        self.name_edit: QLineEdit | None = None
        self.name_error: QLabel | None = None
        self._problem: QLabel | None = None
        self._problem_box: QFrame | None = None
        self._result_label: QLabel | None = None
        self._advanced: QWidget | None = None
        self.show_node(None, None)

    # -------------------------------------------------------------- document
    def set_document(self, doc: QtDocument | None) -> None:
        if self.doc is not None:
            self.doc.history_changed.disconnect(self.sync)
            self.doc.results_changed.disconnect(self._on_results)
        self.doc = doc
        if doc is not None:
            doc.history_changed.connect(self.sync)
            doc.results_changed.connect(self._on_results)
        self.show_node(None, None)

    def show_node(self, graph: Graph | None, node_id: str | None, count: int = 1) -> None:
        """Show the form of ``node_id`` in ``graph`` (``None``: a hint instead)."""
        self.graph, self.node_id = graph, node_id
        self._signature = None
        self._rebuild(count)

    def _node(self) -> Node | None:
        if self.graph is None or self.node_id is None or self.node_id not in self.graph:
            return None
        return self.graph.node(self.node_id)

    def _node_signature(self, node: Node) -> tuple:
        owner = self.graph.layer_owner(node.id) if self.graph is not None else node
        return (node.id, node.kind, owner.class_name, node.shared_with)

    # ------------------------------------------------------------------ build
    def _rebuild(self, count: int = 1) -> None:
        self.rows.clear()
        self.call_rows.clear()
        self.name_edit = self.name_error = None
        self._problem = self._problem_box = self._result_label = self._advanced = None
        self.trainable_box = self.inference_box = None
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.setSpacing(8)
        node = self._node()
        if node is None:
            text = (f"{count} nodes selected.\nSelect one node to edit it."
                    if count > 1 else "Select a node on the canvas to edit its settings.")
            hint = QLabel(text, content)
            hint.setObjectName("muted")
            hint.setWordWrap(True)
            hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
            layout.addStretch(1)
            layout.addWidget(hint)
            layout.addStretch(2)
            self.setWidget(content)
            return
        self._signature = self._node_signature(node)
        self._build_header(layout, node)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        layout.addLayout(form)
        self._build_name(form, node)
        if node.kind in ("layer", "block"):
            self._build_freezing(form, node)
        if node.kind == "input":
            self._build_input(form)
        elif node.kind == "layer":
            self._build_layer(layout, form, node)
            if (node.class_name or "").startswith("applications."):
                self._build_network(layout, node)
        elif node.kind == "block":
            self._build_block(layout, node)
        layout.addStretch(1)
        self.setWidget(content)
        self.sync()

    def _build_header(self, layout: QVBoxLayout, node: Node) -> None:
        from kbuilder.graph import catalog

        title = QLabel(node.label if node.kind != "layer" else
                       self.graph.layer_owner(node.id).class_name or "Layer")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() + 3)
        font.setBold(True)
        title.setFont(font)
        layout.addWidget(title)
        summary = {
            "input": "A model input: the shape of one sample, without the batch size.",
            "output": "Marks a model output.",
            "block": "A nested model, shown as one node.",
        }.get(node.kind, "")
        if node.kind == "layer":
            spec = catalog.get(self.graph.layer_owner(node.id).class_name or "")
            summary = f"{spec.category} · {spec.summary}"
            if node.shared_with:
                owner = self.graph.node(node.shared_with)
                summary += (f"\nCalls the layer of '{owner.name}' again (shared weights): "
                            "its settings are edited there and here alike.")
        sub = QLabel(summary)
        sub.setObjectName("muted")
        sub.setWordWrap(True)
        layout.addWidget(sub)
        self._result_label = QLabel()
        self._result_label.setWordWrap(True)
        self._result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self._result_label)
        self._problem_box = QFrame()
        self._problem_box.setObjectName("errorBox")
        box = QVBoxLayout(self._problem_box)
        box.setContentsMargins(8, 6, 8, 6)
        self._problem = QLabel()
        self._problem.setObjectName("errorLabel")
        self._problem.setWordWrap(True)
        self._problem.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.addWidget(self._problem)
        self._problem_box.hide()
        layout.addWidget(self._problem_box)

    def _build_name(self, form: QFormLayout, node: Node) -> None:
        holder = QWidget()
        box = QVBoxLayout(holder)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        self.name_edit = QLineEdit(node.name)
        self.name_error = QLabel()
        self.name_error.setObjectName("errorLabel")
        self.name_error.setWordWrap(True)
        self.name_error.hide()
        box.addWidget(self.name_edit)
        box.addWidget(self.name_error)
        self.name_edit.textEdited.connect(self._name_edited)
        self.name_edit.editingFinished.connect(self._name_committed)
        form.addRow(_label("name", "The Keras layer name; unique in the model."), holder)

    def _name_problem(self, name: str) -> str | None:
        message = validate_name(name)
        if message is None and self.graph is not None and any(
            n.name == name for n in self.graph.nodes if n.id != self.node_id
        ):
            message = f"Another layer is already named '{name}'; names must be unique."
        return message

    def _name_edited(self, text: str) -> None:
        message = self._name_problem(text)
        assert self.name_error is not None
        self.name_error.setText(message or "")
        self.name_error.setVisible(bool(message))

    def _name_committed(self) -> None:
        node = self._node()
        if node is None or self.name_edit is None or self.doc is None:
            return
        name = self.name_edit.text()
        if name == node.name or self._name_problem(name):
            return
        graph, nid = self.graph, node.id
        self.doc.edit(lambda: RenameNodeCommand(graph, nid, name))

    def _build_input(self, form: QFormLayout) -> None:
        shape = QtParamRow("shape", QtLineEditor(parse_shape, show_literal, "e.g. 28, 28, 1"),
                           lambda v: validate_input_param("shape", v))
        self._add_row(form, shape, "Sizes of one sample, without the batch size; None for a "
                      "size that varies (e.g. sequence length).")
        dtype = QtParamRow("dtype", QtChoice(DTYPES, False),
                           lambda v: validate_input_param("dtype", v))
        self._add_row(form, dtype, "The data type of the input values.")

    def _build_layer(self, layout: QVBoxLayout, form: QFormLayout, node: Node) -> None:
        from kbuilder.graph import catalog

        assert self.graph is not None
        spec = catalog.get(self.graph.layer_owner(node.id).class_name or "")
        # `trainable` has its own check box (_build_freezing).
        advanced = [p for p in spec.params if is_advanced(p) and p.name != "trainable"]
        for p in spec.params:
            if is_advanced(p) or p.name == "trainable":
                continue
            editor = (QtNestedLayerEditor(p) if p.kind == "layer" else editor_for(p))
            row = QtParamRow(p.name, editor,
                             lambda v, p=p: catalog.validate_param(spec, p.name, v),
                             resettable=not p.required)
            self._add_row(form, row, p.doc, p.kind)
        if advanced:
            toggle = QToolButton()
            toggle.setText("Advanced settings")
            toggle.setCheckable(True)
            toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            toggle.setArrowType(Qt.ArrowType.RightArrow)
            toggle.setAutoRaise(True)
            layout.addWidget(toggle)
            self._advanced = QWidget()
            adv_form = QFormLayout(self._advanced)
            adv_form.setContentsMargins(0, 0, 0, 0)
            adv_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            for p in advanced:
                row = QtParamRow(p.name, editor_for(p),
                                 lambda v, p=p: catalog.validate_param(spec, p.name, v),
                                 resettable=not p.required)
                self._add_row(adv_form, row, p.doc, p.kind)
            self._advanced.hide()
            layout.addWidget(self._advanced)

            def flip(on: bool) -> None:
                toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
                assert self._advanced is not None
                self._advanced.setVisible(on)

            toggle.toggled.connect(flip)
        options = catalog.call_option_names(spec)
        if options:
            title = QLabel("Call options")
            title.setObjectName("sectionTitle")
            layout.addWidget(title)
            call_form = QFormLayout()
            call_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            layout.addLayout(call_form)
            for name in options:
                combo = QComboBox()
                for text, value in CALL_OPTION_CHOICES:
                    combo.addItem(text, value)
                combo.activated.connect(lambda _i, n=name, c=combo: self._call_option(n, c))
                call_form.addRow(_label(name, "An argument of this call of the layer."), combo)
                self.call_rows[name] = combo

    def _build_freezing(self, form: QFormLayout, node: Node) -> None:
        """Trainable on/off (graph/freezing.py) and, for a block, its inference mode."""
        self.trainable_box = QCheckBox("its weights learn")
        self.trainable_box.setToolTip("Off: frozen (layer.trainable = False); the weights "
                                      "stay as they are, e.g. a pretrained network's.")
        self.trainable_box.toggled.connect(self._trainable_toggled)
        form.addRow(_label("trainable", "Whether training changes these weights."),
                    self.trainable_box)
        if node.kind == "block":
            self.inference_box = QCheckBox("called with training=False")
            self.inference_box.setToolTip(
                "Its BatchNormalization layers use their moving statistics, also while the "
                "rest of the model trains (the keras.io transfer-learning guide's rule).")
            self.inference_box.toggled.connect(self._inference_toggled)
            form.addRow(_label("inference mode", "How the block is called."),
                        self.inference_box)

    def _trainable_toggled(self, on: bool) -> None:
        node = self._node()
        if node is None or self.doc is None or on != is_frozen(self.graph, node.id):
            return
        command = set_trainable(self.graph, [node.id], on)
        if command is not None:
            self.doc.edit(lambda: command)

    def _inference_toggled(self, on: bool) -> None:
        node = self._node()
        if node is None or self.doc is None or on == in_inference_mode(node):
            return
        graph, nid = self.graph, node.id
        self.doc.edit(lambda: SetBlockOptionCommand(graph, nid, "training",
                                                    False if on else UNSET))

    def _build_block(self, layout: QVBoxLayout, node: Node) -> None:
        assert node.subgraph is not None
        n = layer_count(node.subgraph)
        info = QLabel(f"{n} layer{'s' if n != 1 else ''} inside. Open the block to edit them; "
                      "Ungroup (right-click) puts them back in the model.")
        info.setWordWrap(True)
        layout.addWidget(info)
        button = QPushButton("Open block")
        button.clicked.connect(lambda: self.open_block_requested.emit(node.id))
        layout.addWidget(button, 0, Qt.AlignmentFlag.AlignLeft)

    def _build_network(self, layout: QVBoxLayout, node: Node) -> None:
        """A pretrained network: its layers are listed (read-only), not put in the graph."""
        button = QPushButton("Show its layers")
        button.setToolTip("The network's layers as keras.applications builds them.")
        button.clicked.connect(lambda: self.show_network_layers(node.id))
        layout.addWidget(button, 0, Qt.AlignmentFlag.AlignLeft)

    def show_network_layers(self, node_id: str) -> QDialog | None:
        from kbuilder.ui.model.network_layers import QtNetworkLayers

        result = self._result()
        if self.graph is None or result is None or not result.inputs:
            return None
        node = self.graph.node(node_id)
        dialog = QtNetworkLayers(node.name, node.class_name or "", node.params,
                                 result.inputs[0].shape[1:], self)
        dialog.show()
        self.network_dialog = dialog
        return dialog

    def _add_row(self, form: QFormLayout, row: QtParamRow, doc: str,
                 kind: str | None = None) -> None:
        label = _label(row.name, doc)
        row.label = label
        label.setProperty("doc", doc)
        if kind is not None and sweepable(kind):
            # Right-click the name: sweep this parameter (a range in the project's sweep).
            label.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
            label.customContextMenuRequested.connect(
                lambda pos, n=row.name, lab=label: self._sweep_menu(n, lab.mapToGlobal(pos)))
        if isinstance(row.editor, QtNestedLayerEditor):
            # A wrapped layer's own form needs the whole width: label above, form below.
            form.addRow(label)
            form.addRow(row)
        else:
            form.addRow(label, row)
        row.committed.connect(self._param_committed)
        row.reset_requested.connect(self._param_reset)
        self.rows[row.name] = row

    # ------------------------------------------------------------------ edits
    def _param_committed(self, name: str, value: Any) -> None:
        node = self._node()
        if node is None or self.doc is None:
            return
        try:
            command = SetParamCommand(self.graph, node.id, name, value)
        except GraphError as exc:
            # Refused by a rule the field alone cannot check: say so under the field.
            self.rows[name].show_error(str(exc))
            return
        self.doc.edit(lambda: command)

    def _param_reset(self, name: str) -> None:
        node = self._node()
        if node is None or self.doc is None:
            return
        graph, nid = self.graph, node.id
        self.doc.edit(lambda: SetParamCommand(graph, nid, name, UNSET))

    # ------------------------------------------------------------------ sweeps
    def _sweep_menu(self, name: str, where: Any) -> None:
        from PySide6.QtWidgets import QMenu

        node = self._node()
        if node is None or self.doc is None:
            return
        menu = QMenu(self)
        menu.addAction("Sweep this parameter…", lambda: self.ask_sweep(name))
        if self._swept(name) is not None:
            menu.addAction("Stop sweeping it", lambda: self.set_sweep(name, None))
        menu.popup(where)

    def _swept(self, name: str) -> Any:
        node = self._node()
        sweep = self.doc.project.sweep if self.doc is not None else None
        if node is None or sweep is None:
            return None
        return sweep.find(self.graph.layer_owner(node.id).id if self.graph else node.id, name)

    def ask_sweep(self, name: str) -> bool:
        """Ask the range of parameter ``name`` and put it in the project's sweep."""
        from kbuilder.graph import catalog
        from kbuilder.ui.shell import sweep_range

        node = self._node()
        if node is None or self.graph is None:
            return False
        owner = self.graph.layer_owner(node.id)
        spec = catalog.get(owner.class_name or "")
        param = next(p for p in spec.params if p.name == name)
        made = sweep_range.ask_range(self, owner.id, param,
                                     owner.params.get(name, self._default(name)),
                                     self._swept(name))
        return made is not None and self.set_sweep(name, made)

    def set_sweep(self, name: str, param: Any) -> bool:
        """Sweep parameter ``name`` with the range ``param`` (``None``: stop sweeping it),
        as one undoable edit of the project's sweep."""
        from kbuilder.graph.sweeps import SetSweepCommand, SweepSpec

        node = self._node()
        if node is None or self.doc is None or self.graph is None:
            return False
        owner = self.graph.layer_owner(node.id)
        project = self.doc.project
        sweep = project.sweep or SweepSpec()
        if param is None:
            new, text = sweep.without(owner.id, name), f"stop sweeping {name} of {node.name}"
        else:
            new, text = sweep.with_param(param), f"sweep {name} of {node.name}"
        return self.doc.edit(lambda: SetSweepCommand(project, new, text)) is not None

    def _mark_swept(self) -> None:
        """Swept parameters' names in violet, their ranges in the tooltip."""
        from kbuilder.graph.sweeps import range_text

        for name, row in self.rows.items():
            if row.label is None:
                continue
            swept = self._swept(name)
            doc = row.label.property("doc") or ""
            if swept is None:
                row.label.setText(name)
                row.label.setStyleSheet("")
                tip = html.escape(doc)
            else:
                row.label.setText(f"{name} ⟳")
                row.label.setStyleSheet(f"color: {SWEPT_COLOR}; font-weight: 600")
                tip = (f"<b>Swept: {html.escape(range_text(swept))}</b> (right-click to "
                       f"change)<br>{html.escape(doc)}")
            row.label.setToolTip(f"<div style='max-width: 380px'>{tip}</div>" if tip else "")

    def _call_option(self, name: str, combo: QComboBox) -> None:
        node = self._node()
        if node is None or self.doc is None:
            return
        value = combo.currentData()
        if node.call_options.get(name, UNSET) == value:
            return
        graph, nid = self.graph, node.id
        self.doc.edit(lambda: SetCallOptionCommand(graph, nid, name, value))

    # ------------------------------------------------------------------- sync
    def sync(self) -> None:
        """Show the graph's current values (after any change of the history)."""
        node = self._node()
        if node is None:
            if self.node_id is not None:
                self.show_node(None, None)
            return
        if self._node_signature(node) != self._signature:
            self._rebuild()
            return
        assert self.graph is not None
        if self.name_edit is not None and not self.name_edit.hasFocus():
            if self.name_edit.text() != node.name:
                self.name_edit.setText(node.name)
            if self.name_error is not None:
                self.name_error.hide()
        for box, checked in ((self.trainable_box, not is_frozen(self.graph, node.id)),
                             (self.inference_box, in_inference_mode(node))):
            if box is not None:
                blocked = box.blockSignals(True)
                box.setChecked(checked)
                box.blockSignals(blocked)
        owner = self.graph.layer_owner(node.id)
        params = owner.params
        result = self._result()
        for name, row in self.rows.items():
            explicit = name in params
            value = params.get(name, self._default(name))
            external = result.error if result is not None and result.error_param == name \
                else None
            row.sync(value, explicit, external)
        for name, combo in self.call_rows.items():
            index = combo.findData(node.call_options.get(name, UNSET))
            blocked = combo.blockSignals(True)
            combo.setCurrentIndex(max(index, 0))
            combo.blockSignals(blocked)
        self._mark_swept()
        self._show_result(result)

    def _default(self, name: str) -> Any:
        node = self._node()
        if node is None or node.kind != "layer" or self.graph is None:
            return None
        from kbuilder.graph import catalog

        spec = catalog.get(self.graph.layer_owner(node.id).class_name or "")
        return catalog.default_params(spec).get(name)

    def _result(self):
        if self.doc is None or self.graph is None or self.node_id is None:
            return None
        inference = self.doc.inference_for(self.graph)
        return inference.result(self.node_id) if inference is not None else None

    def _on_results(self, _ids: set) -> None:
        if self._node() is not None:
            self.sync()

    def _show_result(self, result) -> None:
        if self._result_label is None or self._problem_box is None or self._problem is None:
            return
        if result is None:
            self._result_label.clear()
            self._problem_box.hide()
            return
        parts = []
        specs = result.outputs or result.inputs
        if specs:
            label = "Output" if result.outputs else "Receives"
            parts.append(f"{label} <b>{html.escape('  '.join(str(s) for s in specs))}</b>")
        if result.params:
            parts.append(plural(result.params, 'parameter', grouped=True))
        if result.flops:
            parts.append(f"{count_text(result.flops)} FLOPs")
        self._result_label.setText(" · ".join(parts))
        problem = result.error or result.blocked
        self._problem.setText(problem or "")
        self._problem_box.setVisible(bool(problem))
