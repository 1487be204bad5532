"""The inspector's freezing section (trainable, a block's inference mode) and, for a
pretrained network, "Show its layers".

A mixin of ``QtInspector``: it uses the inspector's ``doc``, ``graph`` and ``_node()``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFormLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
)

from kbuilder.graph.freezing import (
    SetBlockOptionCommand,
    in_inference_mode,
    is_frozen,
    set_trainable,
)
from kbuilder.graph.model import UNSET, Node
from kbuilder.ui.model.canvas.scene import layer_count
from kbuilder.ui.model.param_rows import field_label


class FreezingSection:
    """Freezing controls and the pretrained network's layers, for ``QtInspector``."""

    def _build_freezing(self, form: QFormLayout, node: Node) -> None:
        """Trainable on/off (graph/freezing.py) and, for a block, its inference mode."""
        self.trainable_box = QCheckBox("its weights learn")
        self.trainable_box.setToolTip("Off: frozen (layer.trainable = False); the weights "
                                      "stay as they are, e.g. a pretrained network's.")
        self.trainable_box.toggled.connect(self._trainable_toggled)
        form.addRow(field_label("trainable", "Whether training changes these weights."),
                    self.trainable_box)
        if node.kind == "block":
            self.inference_box = QCheckBox("called with training=False")
            self.inference_box.setToolTip(
                "Its BatchNormalization layers use their moving statistics, also while the "
                "rest of the model trains (the keras.io transfer-learning guide's rule).")
            self.inference_box.toggled.connect(self._inference_toggled)
            form.addRow(field_label("inference mode", "How the block is called."),
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

        if self.doc is None or self.graph is None or node_id not in self.graph:
            return None
        inference = self.doc.inference_for(self.graph)
        result = inference.result(node_id) if inference is not None else None
        if result is None or not result.inputs:
            return None
        node = self.graph.layer_owner(node_id)  # a shared call shows its network's layers
        dialog = QtNetworkLayers(node.name, node.class_name or "", node.params,
                                 result.inputs[0].shape[1:], self)
        dialog.show()
        self.network_dialog = dialog
        return dialog
