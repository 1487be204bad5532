"""The training script as a Jupyter notebook (``nbformat`` version 4).
"""

from __future__ import annotations

import os
from typing import Any

from kbuilder.graph.codegen.rows import RowEncoding
from kbuilder.graph.codegen.training_plan import TrainingPlan


def generate_notebook(project: Any, rows: RowEncoding | None = None) -> Any:
    """The training script as a Jupyter notebook (``nbformat`` version 4).

    Cells: an introduction, setup (backend, imports, settings), data, model, training, and
    evaluation with saving (and, for a table in "model" encoding, predictions on raw rows).
    Running the code cells in order reproduces the script's run.

    Args:
        project: a ``kbuilder.graph.project.Project``.
        rows: the trained run's row encoder, as for ``generate_training_script``.

    Returns:
        An ``nbformat.NotebookNode``.

    Raises:
        CodegenError: the graph has problems.
        SettingsError: a data or training setting is not valid.
    """
    import nbformat.v4 as nbf

    plan = TrainingPlan.of(project, rows)
    cells = [
        nbf.new_markdown_cell(source) if kind == "markdown" else nbf.new_code_cell(source)
        for kind, source in plan.notebook_cells()
    ]
    for index, cell in enumerate(cells):
        cell["id"] = f"cell-{index}"  # nbformat makes random ids; same project, same file
    notebook = nbf.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def write_notebook(project: Any, path: str | os.PathLike[str],
                   rows: RowEncoding | None = None) -> None:
    """Write ``generate_notebook(project, rows)`` to ``path`` atomically.

    Raises:
        CodegenError: the graph has problems.
        OSError: the file could not be written; a previous file at ``path`` is intact.
    """
    import nbformat

    from kbuilder.files import atomic_write

    text = nbformat.writes(generate_notebook(project, rows), version=4)
    atomic_write(path, text if text.endswith("\n") else text + "\n")
