"""Keras models and model files in and out of kbuilder: import, file safety, file reading.

``import_model(model)`` turns a built Functional or Sequential ``keras.Model`` into a graph
and its weights; ``import_file(path, trust=False)`` opens a ``.keras`` or legacy ``.h5``
file as a project. Every model file kbuilder opens (import, predict, evaluate, export) goes
through ``open_model_file``: its configuration is read and checked before Keras
deserializes anything, so a refused file runs no code.

The rooms: ``problems`` (``ModelImportError``, ``NeedsTrustError``, one record per layer in
the way), ``safety`` (the refusal of code-carrying objects such as Lambda layers and of
unknown classes), ``reading`` (the configuration without loading, archive member sizes,
``open_model_file``), ``calls`` (one call of a Functional graph sorted into ports and call
options), ``params`` (a layer's config as node params) and ``importer`` (the graph records,
``import_model``, ``import_file``). This module keeps the public API in one place.
"""

from kbuilder.graph.keras_io.importer import import_file, import_model
from kbuilder.graph.keras_io.problems import ModelImportError, NeedsTrustError
from kbuilder.graph.keras_io.reading import (
    MODEL_SUFFIXES,
    check_archive_sizes,
    open_model_file,
    read_model_config,
)
from kbuilder.graph.keras_io.safety import (
    CODE_LAYERS,
    SAFE_MODE_REMEDY,
    TRUST_REMEDY,
    check_model_config,
)

__all__ = [
    "CODE_LAYERS",
    "MODEL_SUFFIXES",
    "SAFE_MODE_REMEDY",
    "TRUST_REMEDY",
    "ModelImportError",
    "NeedsTrustError",
    "check_archive_sizes",
    "check_model_config",
    "import_file",
    "import_model",
    "open_model_file",
    "read_model_config",
]
