"""The read-only view of a pretrained network's layers (a backbone node "opened").

A backbone stays one node: its hundreds of layers are Keras's, built by
``keras.applications``, so kbuilder shows them (name, type, output shape, parameters)
rather than copying them into the graph, which would turn the generated code back into
hundreds of layer calls. The names are the ones "unfreeze from layer X" refers to.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from kbuilder.ui.jobs.background_job import QtBackgroundJob


class QtNetworkLayers(QDialog):
    """Lists the layers of one backbone node; computed in the background."""

    def __init__(self, title: str, class_name: str, params: dict[str, Any],
                 input_shape: tuple[int | None, ...], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Layers of {title}")
        self.resize(780, 560)
        layout = QVBoxLayout(self)
        self.status = QLabel(f"Reading the layers of {title}…")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.tree = QTreeWidget()
        self.tree.setRootIsDecorated(False)
        self.tree.setHeaderLabels(["Layer", "Type", "Output shape", "Params"])
        layout.addWidget(self.tree, 1)
        self.job = QtBackgroundJob("network-layers", self)
        self.job.finished.connect(self._show)

        def work(_progress: Any) -> Any:
            from kbuilder.graph.backbone_build import network_layers

            return network_layers(class_name, params, input_shape)

        self.job.start(work)

    def _show(self, result: Any) -> None:
        if isinstance(result, Exception):
            self.status.setText(f"The layers could not be read: {result}")
            return
        for row in result:
            item = QTreeWidgetItem([row.name, row.class_name, row.output_shape,
                                    f"{row.params:,}"])
            item.setTextAlignment(3, Qt.AlignmentFlag.AlignRight)
            self.tree.addTopLevelItem(item)
        for column in range(4):
            self.tree.resizeColumnToContents(column)
        self.status.setText(
            f"{len(result)} layers, as keras.applications builds them (read-only: the "
            "network stays one node, and its code one keras.applications call).")
