"""Graph -> readable Python: a ``build_model()`` module, a training script, a notebook.

The code is what a Keras user would write by hand: ``keras.Input`` and ``keras.layers``
calls through the Functional API, with only the arguments that differ from Keras's
defaults, variables named after the layers, a shared layer defined once and called at each
use, and every block (nested model) in a function of its own. It never loads a file nor
deserializes a config, so it can be read, reviewed and edited; weights travel separately.

Which arguments are "default" is decided by Keras itself: a parameter is left out when its
value is the signature's default or the value ``get_config()`` reports for the default
(imported models carry full configs such as ``activation="linear"``), and the layer is then
built both ways to confirm that leaving them out gives the same configuration.

Output is deterministic: the same graph gives the same bytes.

The rooms: ``literals`` (values as source, ``CodegenError``), ``layer_args`` (layer
constructors with only the arguments that matter), ``model_code`` (the model module),
``training_plan`` (what a script or notebook does, decided once), ``training_script`` and
``notebook``; the data section, which prepares data exactly as a kbuilder run does:
``sources`` (generated functions kept as source text), ``data_common``, ``data_tables``,
``data_arrays`` (one registry each), ``rows`` (raw rows: ``encode_rows``, ``RowEncoding``),
``data_image_columns`` (a table's columns of image paths: ``InputBatches``) and
``data_section`` (which picks and orders them). This module keeps the public API in
one place.

Example:

>>> from kbuilder.graph.templates import get_template
>>> code = generate_model_code(get_template("mlp_classifier").build())
>>> print(code.split("def build_model():")[1].splitlines()[3])
    dense = layers.Dense(128, activation="relu", name="dense")(features)
"""

from kbuilder.graph.codegen.literals import CodegenError
from kbuilder.graph.codegen.model_code import generate_model_code
from kbuilder.graph.codegen.notebook import generate_notebook, write_notebook
from kbuilder.graph.codegen.rows import RowEncoding, trained_encoding
from kbuilder.graph.codegen.training_script import generate_training_script

__all__ = [
    "CodegenError",
    "RowEncoding",
    "generate_model_code",
    "generate_notebook",
    "generate_training_script",
    "trained_encoding",
    "write_notebook",
]
