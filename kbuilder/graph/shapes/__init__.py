"""Shape inference: every node's output shapes, dtypes, parameter count and FLOPs.

Keras itself does the work: each layer is instantiated from its parameters and called on
symbolic ``keras.KerasTensor`` inputs inside a ``keras.StatelessScope``, so weights are
declared but never allocated, and the shapes agree with what ``keras.Model`` will build.

Updates are incremental. Graph events mark nodes dirty; ``update()`` recomputes dirty nodes
in topological order and passes the change on to a node's successors only when its outputs
actually changed (an "early cut-off": changing ``activation`` touches one node, changing
``units`` touches that node and the next).

The package: ``specs`` (``TensorSpec``, ``NodeResult``), ``inference`` (``ShapeInference``,
``order_with_sharing``, ``make_layer``), ``sizes`` (absurd sizes refused before anything
is allocated: ``SizeError``, ``declared_variables``, ``symbolic_call``) and ``messages``
(Keras's errors as sentences). The public names are re-exported here.
"""

from kbuilder.graph.shapes.inference import ShapeInference, make_layer, order_with_sharing
from kbuilder.graph.shapes.messages import explain_exception, explain_shape_error
from kbuilder.graph.shapes.sizes import (
    MAX_LAYER_PARAMS,
    MAX_TENSOR_ELEMENTS,
    SizeError,
    check_output_sizes,
    declared_variables,
    explain_size,
    symbolic_call,
)
from kbuilder.graph.shapes.specs import NodeResult, TensorSpec

__all__ = [
    "MAX_LAYER_PARAMS", "MAX_TENSOR_ELEMENTS", "NodeResult", "ShapeInference", "SizeError",
    "TensorSpec", "check_output_sizes", "declared_variables", "explain_exception",
    "explain_shape_error", "explain_size", "make_layer", "order_with_sharing", "symbolic_call",
]
