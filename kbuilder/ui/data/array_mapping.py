"""Which array of a NumPy file feeds which Input node, and which is the target of which
Output (``DataSettings.input_arrays`` / ``output_arrays``).

Shown on the NumPy page of the Data tab. Each Input and Output node of the model gets a
row with the file's arrays to choose from; "automatic" keeps the rule of the loader (the
array named after the Input; the target ``y``, ``label``, ``labels`` or ``target``), so a
file named after the model needs no choice at all.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLabel, QWidget

AUTOMATIC = "automatic"


class QtArrayMapping(QGroupBox):
    """One combo box per Input and Output node, listing the arrays of the file.

    Signals:
        edited(): the user chose another array for a node.
    """

    edited = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Arrays of the model", parent)
        self.setToolTip("Which array of the file each Input takes, and which array each "
                        "Output learns to predict")
        self._form = QFormLayout(self)
        self._arrays: list[str] = []
        self._inputs: list[str] = []
        self._outputs: list[str] = []
        self._chosen: dict[str, dict[str, str]] = {"input": {}, "output": {}}
        self.combos: dict[tuple[str, str], QComboBox] = {}  # (role, node name) -> combo
        self._updating = False
        self._rebuild()

    # ----------------------------------------------------------------- state
    def set_nodes(self, inputs: list[str], outputs: list[str]) -> None:
        """The model's Input and Output node names, in graph order."""
        if (inputs, outputs) != (self._inputs, self._outputs):
            self._inputs, self._outputs = list(inputs), list(outputs)
            self._rebuild()

    def set_arrays(self, names: list[str]) -> None:
        """The arrays of the chosen file (their training names: no ``_test``/``_val``)."""
        if names != self._arrays:
            self._arrays = list(names)
            self._rebuild()

    def set_mapping(self, inputs: tuple[tuple[str, str], ...],
                    outputs: tuple[tuple[str, str], ...]) -> None:
        """Show a mapping from the settings (nodes not named stay automatic)."""
        self._chosen = {"input": dict(inputs), "output": dict(outputs)}
        self._rebuild()

    def mapping(self) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
        """``(input_arrays, output_arrays)`` for ``DataSettings``: the nodes given an array
        by hand (of the nodes the model has now)."""
        def pairs(role: str, nodes: list[str]) -> tuple[tuple[str, str], ...]:
            chosen = self._chosen[role]
            return tuple((n, chosen[n]) for n in nodes if n in chosen)

        return pairs("input", self._inputs), pairs("output", self._outputs)

    # ----------------------------------------------------------------- view
    def _rebuild(self) -> None:
        self._updating = True
        try:
            while self._form.rowCount():
                self._form.removeRow(0)
            self.combos = {}
            if not self._arrays:
                note = QLabel("Choose a file to see its arrays.", self)
                note.setObjectName("muted")
                self._form.addRow(note)
                return
            for role, nodes, title in (("input", self._inputs, "Input"),
                                       ("output", self._outputs, "Output")):
                for node in nodes:
                    combo = QComboBox(self)
                    combo.addItem(AUTOMATIC, None)
                    for array in self._arrays:
                        combo.addItem(array, array)
                    chosen = self._chosen[role].get(node)
                    if chosen is not None and chosen not in self._arrays:
                        combo.addItem(f"{chosen} (not in the file)", chosen)
                    combo.setCurrentIndex(max(0, combo.findData(chosen)) if chosen else 0)
                    combo.setToolTip(_automatic_tip(role, node))
                    combo.currentIndexChanged.connect(
                        lambda _i, r=role, n=node, c=combo: self._on_chosen(r, n, c))
                    self.combos[(role, node)] = combo
                    self._form.addRow(f"{title} '{node}'", combo)
        finally:
            self._updating = False

    def _on_chosen(self, role: str, node: str, combo: QComboBox) -> None:
        if self._updating:
            return
        array = combo.currentData()
        if array is None:
            self._chosen[role].pop(node, None)
        else:
            self._chosen[role][node] = array
        self.edited.emit()


def _automatic_tip(role: str, node: str) -> str:
    if role == "input":
        return f"automatic: the array named '{node}'"
    return "automatic: the array named y (or label, labels, target)"


__all__ = ["QtArrayMapping"]
