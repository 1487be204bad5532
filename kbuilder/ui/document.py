"""The open project as the views see it: graph, history and shape inference, with Qt signals.

The document holds no state of its own about the model: it forwards the graph core's
events as Qt signals and runs shape inference after every change of the history, so each
view updates only the nodes whose results changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from kbuilder.graph.commands import Command, History
from kbuilder.graph.errors import GraphError
from kbuilder.graph.model import Graph
from kbuilder.graph.shapes import ShapeInference

if TYPE_CHECKING:  # the project module needs numpy: not on the start-up path
    from kbuilder.graph.project import Project


class QtDocument(QObject):
    """A project being edited.

    Args:
        project: the project; its graph and history are the truth the views show.

    Signals:
        results_changed(ids): shape-inference results of these top-level nodes changed.
        history_changed(): after every push, undo, redo or clean-point change.
        edit_failed(message): an edit was refused; the message says why.
    """

    results_changed = Signal(object)
    history_changed = Signal()
    edit_failed = Signal(str)

    def __init__(self, project: Project, parent: QObject | None = None):
        super().__init__(parent)
        self.project = project
        self.inference = ShapeInference(project.graph)
        self._closed = False
        project.history.events.changed.connect(self._on_history_changed)

    @property
    def graph(self) -> Graph:
        return self.project.graph

    @property
    def history(self) -> History:
        return self.project.history

    @property
    def modified(self) -> bool:
        return self.project.modified

    def close(self) -> None:
        """Stop observing the project (the document is being replaced)."""
        if not self._closed:
            self._closed = True
            self.project.history.events.changed.disconnect(self._on_history_changed)
            self.inference.close()

    # ------------------------------------------------------------------- edits
    def edit(self, make: Callable[[], Command]) -> Command | None:
        """Build a command and push it; on a refused edit, say why and return ``None``.

        ``make`` builds the command, because commands check their arguments (e.g. that a
        connection is allowed) when they are constructed.
        """
        try:
            command = make()
            return self.history.push(command)
        except GraphError as exc:
            self.edit_failed.emit(str(exc))
            return None

    def undo(self) -> None:
        if self.history.can_undo:
            self._guarded(self.history.undo)

    def redo(self) -> None:
        if self.history.can_redo:
            self._guarded(self.history.redo)

    def _guarded(self, action: Callable[[], None]) -> None:
        try:
            action()
        except GraphError as exc:
            self.edit_failed.emit(str(exc))

    # ----------------------------------------------------------------- results
    def update_shapes(self) -> set[str]:
        """Recompute what the last edits made dirty; emits ``results_changed``."""
        changed = self.inference.update()
        if changed:
            self.results_changed.emit(changed)
        return changed

    def inference_for(self, graph: Graph) -> ShapeInference | None:
        """The inference of ``graph``: the project's, or that of a (nested) block's."""
        if graph is self.graph:
            return self.inference
        if graph.parent is None:
            return None
        parent, block_id = graph.parent
        outer = self.inference_for(parent)
        return outer.block_inference(block_id) if outer is not None else None

    def _on_history_changed(self) -> None:
        if self._closed:
            return
        self.update_shapes()
        self.history_changed.emit()
