"""The standalone training script of a project.
"""

from __future__ import annotations

import textwrap
from typing import Any

from kbuilder.graph.codegen.literals import LINE_LENGTH, docstring, quote_text
from kbuilder.graph.codegen.rows import RowEncoding
from kbuilder.graph.codegen.training_plan import TrainingPlan


def generate_training_script(project: Any, rows: RowEncoding | None = None) -> str:
    """A standalone script that loads the data, builds, trains, evaluates and saves the model.

    It follows the project's data and training settings and imports only keras, numpy and
    what its data source needs (scikit-learn for its datasets, ``csv`` for CSV files,
    Pillow for image folders), never kbuilder. Its ``load_data()`` prepares the data exactly
    as a kbuilder run does (see ``data_section``), so both train on the same arrays. Run it
    as ``python train.py [--epochs N] [--output M.keras]``. A table in "model" encoding
    also gives ``encode_rows``, ``predict_csv`` and ``--predict RAW.csv [-o OUT.csv]``:
    predictions on raw rows of the file (``rows``).

    Args:
        project: a ``kbuilder.graph.project.Project``; its ``DataSettings`` (``None``:
            the defaults) and ``TrainingSettings``.
        rows: the trained run's row encoder (a table in "model" encoding), written out as
            the settings of ``encode_rows``; ``None``: learned from the data.

    Returns:
        The source code, ending in a newline.

    Raises:
        CodegenError: the graph has problems.
        SettingsError: a data or training setting is not valid.
    """
    plan = TrainingPlan.of(project, rows)
    predicts = plan.data_section.predicts
    parts = [
        docstring(
            f"Train the Keras model {quote_text(project.graph.name)} as set up in kbuilder.",
            textwrap.fill(f"Data: {plan.data_description}.", LINE_LENGTH - 11) + "\n"
            "Usage: python THIS_FILE [--epochs N] [--output model.keras]"
            + (" [--data PATH]" if plan.data_path_kind else "")
            + ("\n       python THIS_FILE --predict RAW.csv [--model M.keras] [-o OUT.csv]"
               if predicts else ""),
        ),
        plan.setup_code(),
        plan.settings_code(),
        *plan.model.definitions,
        *plan.data_definitions(),
        *plan.distribution_definitions(),
        plan.callbacks_definition(),
        plan.main_definition(),
        'if __name__ == "__main__":\n    main()',
    ]
    # One blank line after the docstring and after the imports (as isort wants), two
    # between definitions.
    head = parts[0] + "\n\n" + parts[1] + "\n\n" + parts[2]
    return "\n\n\n".join([head, *parts[3:]]) + "\n"
