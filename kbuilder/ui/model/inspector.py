"""The inspector: a form generated from the catalog for the selected node.

Each parameter gets the editor its ``ParamSpec.kind`` calls for; values are validated as
they are typed (the message shows under the field) and every accepted change is a command
on the project's history (``SetParamCommand``, ``RenameNodeCommand``...). The form follows
the graph: an undo updates the fields in place, without rebuilding the form.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QFrame,
    QLabel,
    QLineEdit,
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
    validate_input_param,
    validate_name,
)
from kbuilder.graph.errors import GraphError
from kbuilder.graph.freezing import in_inference_mode, is_frozen
from kbuilder.graph.model import UNSET, Graph, Node
from kbuilder.graph.text import plural
from kbuilder.ui.document import QtDocument
from kbuilder.ui.model.canvas.scene import count_text
from kbuilder.ui.model.inspector_freezing import FreezingSection
from kbuilder.ui.model.inspector_sweeps import SweepControls
from kbuilder.ui.model.param_editors import (
    QtChoice,
    QtLineEditor,
    editor_for,
    parse_shape,
    show_literal,
)
from kbuilder.ui.model.param_rows import (
    CALL_OPTION_CHOICES,
    QtNestedLayerEditor,
    QtParamRow,
    field_label,
    is_advanced,
)
from kbuilder.ui.shell.sweep_range import sweepable


class QtInspector(FreezingSection, SweepControls, QScrollArea):
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
        self.network_dialog: QDialog | None = None  # the last "Show its layers"
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
        form.addRow(field_label("name", "The Keras layer name; unique in the model."), holder)

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
                call_form.addRow(field_label(name, "An argument of this call of the layer."), combo)
                self.call_rows[name] = combo

    def _add_row(self, form: QFormLayout, row: QtParamRow, doc: str,
                 kind: str | None = None) -> None:
        label = field_label(row.name, doc)
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
