"""Training settings turned into ranges from the Train tab (the "sweep this" buttons).

Beside each training setting a sweep can vary (``graph.sweeps.TRAINING_TARGETS``: learning
rate, batch size, epochs, optimizer, the callbacks' patience) sits a small button. Clicking
it asks the range with the dialog the inspector uses for a node's parameter
(``ui/shell/sweep_range``); on a swept setting it offers to change the range or stop
sweeping it. The range goes into the project's sweep through ``SetSweepCommand``, so it
undoes like any edit, and a swept setting's name is shown in the sweep's colour with its
range in the tooltip (re-marked after every change of the history: undo, redo, the Sweep
tab's edits).
"""

from __future__ import annotations

import html

from PySide6.QtCore import QObject, QPoint
from PySide6.QtWidgets import QLabel, QMenu, QToolButton, QWidget

from kbuilder.graph.sweeps import TRAINING_TARGETS, SweepParam, SweepSpec, range_text
from kbuilder.ui.document import QtDocument
from kbuilder.ui.shell.sweep_range import SWEPT_COLOR

MARK = " ⟳"


class QtSettingSweeps(QObject):
    """The sweep buttons of the Train tab's fields, and the marks of swept settings."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.host = parent
        self.doc: QtDocument | None = None
        self.buttons: dict[str, QToolButton] = {}
        self.labels: dict[str, tuple[QLabel, str]] = {}  # name -> (label, its plain text)
        self.menu: QMenu | None = None

    # ------------------------------------------------------------------ building
    def button(self, name: str, parent: QWidget) -> QToolButton:
        """The button beside the field of training setting ``name``."""
        assert name in TRAINING_TARGETS, name
        button = QToolButton(parent)
        button.setObjectName(f"sweep_{name}")
        button.setText("⟳")
        button.setAutoRaise(True)
        button.setToolTip(f"Sweep {name}: try a range of values in a sweep (Sweep tab)")
        button.clicked.connect(lambda _checked=False, n=name: self.clicked(n))
        self.buttons[name] = button
        return button

    def mark_label(self, name: str, label: QLabel | None) -> None:
        """``label`` names the field of ``name``: it shows whether the setting is swept."""
        if label is not None:
            self.labels[name] = (label, label.text())

    # ------------------------------------------------------------------ document
    def set_document(self, doc: QtDocument | None) -> None:
        if self.doc is not None:
            try:
                self.doc.history_changed.disconnect(self.refresh)
            except (RuntimeError, TypeError):  # already gone with its document
                pass
        self.doc = doc
        if doc is not None:
            doc.history_changed.connect(self.refresh)
        self.refresh()

    @property
    def spec(self) -> SweepSpec | None:
        return self.doc.project.sweep if self.doc is not None else None

    def swept(self, name: str) -> SweepParam | None:
        spec = self.spec
        return spec.find(None, name) if spec is not None else None

    # ------------------------------------------------------------------ actions
    def clicked(self, name: str) -> None:
        """A setting not swept yet: ask its range. A swept one: change or stop it."""
        if self.doc is None:
            return
        if self.swept(name) is None:
            self.ask(name)
            return
        menu = QMenu(self.host)
        menu.addAction(f"Change the range of {name}…", lambda: self.ask(name))
        menu.addAction(f"Stop sweeping {name}", lambda: self.set_range(name, None))
        button = self.buttons[name]
        self.menu = menu
        menu.popup(button.mapToGlobal(QPoint(0, button.height())))

    def ask(self, name: str) -> bool:
        """Ask the range of ``name`` (the inspector's dialog) and put it in the sweep."""
        from kbuilder.ui.shell import sweep_range

        if self.doc is None:
            return False
        made = sweep_range.ask_setting_range(self.host, name, self.doc.project.training,
                                             self.swept(name))
        return made is not None and self.set_range(name, made)

    def set_range(self, name: str, param: SweepParam | None) -> bool:
        """Sweep ``name`` over ``param`` (``None``: stop sweeping it): one undoable edit."""
        from kbuilder.graph.sweeps import SetSweepCommand

        if self.doc is None:
            return False
        project, spec = self.doc.project, self.spec or SweepSpec()
        if param is None:
            new, text = spec.without(None, name), f"stop sweeping {name}"
        else:
            new, text = spec.with_param(param), f"sweep {name}"
        done = self.doc.edit(lambda: SetSweepCommand(project, new, text)) is not None
        self.refresh()
        return done

    def refresh(self) -> None:
        """Mark the swept settings: the label in the sweep's colour, the range in the
        tooltips of the label and the button."""
        for name, button in self.buttons.items():
            swept = self.swept(name)
            label, plain = self.labels.get(name, (None, ""))
            if swept is None:
                button.setStyleSheet("")
                button.setToolTip(f"Sweep {name}: try a range of values in a sweep "
                                  "(Sweep tab)")
                if label is not None:
                    label.setText(plain)
                    label.setStyleSheet("")
                    label.setToolTip("")
                continue
            where = html.escape(range_text(swept))
            button.setStyleSheet(f"color: {SWEPT_COLOR}; font-weight: 600")
            button.setToolTip(f"Swept: {where}. Click to change the range or stop "
                              "sweeping it.")
            if label is not None:
                label.setText(plain + MARK)
                label.setStyleSheet(f"color: {SWEPT_COLOR}; font-weight: 600")
                label.setToolTip(f"<b>Swept: {where}</b> (the Sweep tab runs the sweep)")

