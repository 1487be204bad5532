"""Running an exported ``model.py`` or notebook: its ``build_model()``, the trained weights
copied in layer by layer.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kbuilder.runtime.export.report import ExportError


def module_from_file(path: Path) -> Any:
    """Import a generated file as a fresh module (not registered in ``sys.modules``)."""
    name = f"kbuilder_export_{abs(hash((str(path), os.getpid())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def notebook_build_model(path: Path) -> Callable[[], Any]:
    """``build_model`` from a notebook: its imports and function and class definitions
    (layer classes it defines, such as FillMissing), nothing else (the other cells load
    data and train)."""
    import ast

    import nbformat

    notebook = nbformat.read(str(path), as_version=4)
    nbformat.validate(notebook)
    kept: list[ast.stmt] = []
    for cell in notebook.cells:
        if cell.cell_type == "code":
            tree = ast.parse(cell.source)
            kept += [node for node in tree.body
                     if isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef
                                   | ast.ClassDef)]
    namespace: dict[str, Any] = {"__name__": "kbuilder_notebook_check"}
    exec(compile(ast.Module(body=kept, type_ignores=[]), str(path), "exec"), namespace)
    if "build_model" not in namespace:
        raise ExportError(f"The notebook '{path.name}' defines no build_model().")
    return namespace["build_model"]


def _layers_by_path(model: Any, prefix: str = "") -> dict[str, Any]:
    """Every layer with weights under its name path (``block/dense``), blocks opened."""
    import keras

    found: dict[str, Any] = {}
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        if isinstance(layer, keras.Model) and hasattr(layer, "layers"):
            found.update(_layers_by_path(layer, path + "/"))
        elif layer.weights:
            found[path] = layer
    return found


def copy_weights(source: Any, target: Any) -> None:
    """Copy weights layer by layer, matched by name (the generated code keeps the names)."""
    targets = _layers_by_path(target)
    for path, layer in _layers_by_path(source).items():
        twin = targets.get(path)
        if twin is None:
            raise ExportError(f"The generated code has no layer '{path}' to take the "
                              "trained weights.")
        try:
            twin.set_weights(layer.get_weights())
            if hasattr(twin, "finalize_state"):
                # Adapted preprocessing (Normalization) derives its working values from
                # the weights here, as Keras's own loading does.
                twin.finalize_state()
        except ValueError as exc:
            raise ExportError(f"The trained weights of '{path}' do not fit the generated "
                              f"layer: {exc}") from exc
