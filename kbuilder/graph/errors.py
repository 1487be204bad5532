"""Typed errors of the graph core.

Every error that concerns one node carries its id (and the parameter, where there is one)
so that a view can put the message on the node instead of in a dialog.
"""

from __future__ import annotations


class GraphError(Exception):
    """Base class of every error the graph core raises on purpose.

    Args:
        message: one sentence a domain expert can act on.
        node_id: the node the error is about, if any.
        param: the parameter the error is about, if any.
    """

    def __init__(self, message: str, node_id: str | None = None, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.node_id = node_id
        self.param = param

    def __str__(self) -> str:
        return self.message


class UnknownLayerError(GraphError, KeyError):
    """A layer type that is not in the catalog."""

    def __init__(self, class_name: str, node_id: str | None = None):
        super().__init__(
            f"Unknown layer type '{class_name}'. Use `kbuilder layers` to list the available layers.",
            node_id,
        )
        self.class_name = class_name


class NodeNotFoundError(GraphError, KeyError):
    """An edit names a node that is not in the graph."""


class CycleError(GraphError):
    """A connection would make data flow in a circle."""


class PortError(GraphError):
    """A connection to a port that does not exist or is already taken."""


class IncompatiblePortError(PortError):
    """A connection between ports whose tensors cannot meet."""


class MissingInputError(GraphError):
    """A required input port is not connected."""


class ParamError(GraphError):
    """A parameter value that the layer does not accept."""


class NameConflictError(GraphError):
    """Two layers of one model would have the same name."""


class SharedLayerError(GraphError):
    """An edit that does not make sense for a node sharing another node's layer."""


class HistoryError(GraphError):
    """Undo/redo used re-entrantly or with nothing to undo."""


class ProjectFileError(GraphError):
    """A project file that cannot be read; nothing was loaded."""
