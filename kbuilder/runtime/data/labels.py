"""Task inference and class labels: which targets are classes, numbered how."""


from __future__ import annotations

from typing import Any

import numpy as np

from kbuilder.runtime.data.dataset import DataError, is_zero_one

TASKS = ("classification", "regression")
CLASS_LABEL_LIMIT = 20


# ===================================================================== task and labels
def infer_task(values: np.ndarray) -> str:
    """``"classification"`` for text or few whole-number values, else ``"regression"``.

    See the module docstring for the rule.
    """
    values = np.asarray(values)
    if values.dtype.kind in "USOb":
        return "classification"
    if values.ndim == 2 and values.shape[1] > 1:
        return "classification" if is_zero_one(values) else "regression"
    flat = values.reshape(-1)
    if flat.dtype.kind == "f":
        flat = flat[~np.isnan(flat)]
        if not np.all(flat == np.round(flat)):
            return "regression"
    distinct = len(np.unique(flat))
    if distinct <= 2 or (distinct <= CLASS_LABEL_LIMIT and distinct < len(flat) / 2):
        return "classification"
    return "regression"


def encode_labels(values: np.ndarray, source: str) -> tuple[np.ndarray, list[str], list[str]]:
    """Map class labels of any kind to ids 0..K-1 (sorted); returns ids, names, notes."""
    if values.dtype.kind in "biuf":
        classes = np.unique(values)
        names = [_number_text(v) for v in classes]
    else:
        names = sorted({str(v) for v in values})
        classes = np.asarray(names)
        values = values.astype(str)
    ids = np.searchsorted(classes, values).astype(np.int32)
    notes = []
    if len(classes) < 2:
        raise DataError(
            f"The target of {source} has only one class ({names[0]!r}); a classifier needs "
            "at least two."
        )
    if names != [str(i) for i in range(len(names))]:
        shown = ", ".join(f"{name}→{i}" for i, name in enumerate(names[:6]))
        notes.append(f"Class labels were numbered 0..{len(names) - 1} in sorted order: "
                     f"{shown}{', ...' if len(names) > 6 else ''}.")
    return ids, names, notes


def _number_text(value: Any) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"


