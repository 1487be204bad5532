"""The inspector's sweep controls: right-click a parameter's name to sweep it (a range in
the project's sweep, one undoable edit); swept names are drawn in violet.

A mixin of ``QtInspector``: it uses the inspector's ``doc``, ``graph``, ``rows``,
``_node()`` and ``_default()``.
"""

from __future__ import annotations

import html
from typing import Any

from kbuilder.ui.shell.sweep_range import SWEPT_COLOR


class SweepControls:
    """Sweeping a parameter from its name in the form, for ``QtInspector``."""

    def _sweep_menu(self, name: str, where: Any) -> None:
        from PySide6.QtWidgets import QMenu

        node = self._node()
        if node is None or self.doc is None:
            return
        menu = QMenu(self)
        menu.addAction("Sweep this parameter…", lambda: self.ask_sweep(name))
        if self._swept(name) is not None:
            menu.addAction("Stop sweeping it", lambda: self.set_sweep(name, None))
        menu.popup(where)

    def _swept(self, name: str) -> Any:
        node = self._node()
        sweep = self.doc.project.sweep if self.doc is not None else None
        if node is None or sweep is None:
            return None
        return sweep.find(self.graph.layer_owner(node.id).id if self.graph else node.id, name)

    def ask_sweep(self, name: str) -> bool:
        """Ask the range of parameter ``name`` and put it in the project's sweep."""
        from kbuilder.graph import catalog
        from kbuilder.ui.shell import sweep_range

        node = self._node()
        if node is None or self.graph is None:
            return False
        owner = self.graph.layer_owner(node.id)
        spec = catalog.get(owner.class_name or "")
        param = next(p for p in spec.params if p.name == name)
        made = sweep_range.ask_range(self, owner.id, param,
                                     owner.params.get(name, self._default(name)),
                                     self._swept(name))
        return made is not None and self.set_sweep(name, made)

    def set_sweep(self, name: str, param: Any) -> bool:
        """Sweep parameter ``name`` with the range ``param`` (``None``: stop sweeping it),
        as one undoable edit of the project's sweep."""
        from kbuilder.graph.sweeps import SetSweepCommand, SweepSpec

        node = self._node()
        if node is None or self.doc is None or self.graph is None:
            return False
        owner = self.graph.layer_owner(node.id)
        project = self.doc.project
        sweep = project.sweep or SweepSpec()
        if param is None:
            new, text = sweep.without(owner.id, name), f"stop sweeping {name} of {node.name}"
        else:
            new, text = sweep.with_param(param), f"sweep {name} of {node.name}"
        return self.doc.edit(lambda: SetSweepCommand(project, new, text)) is not None

    def _mark_swept(self) -> None:
        """Swept parameters' names in violet, their ranges in the tooltip."""
        from kbuilder.graph.sweeps import range_text

        for name, row in self.rows.items():
            if row.label is None:
                continue
            swept = self._swept(name)
            doc = row.label.property("doc") or ""
            if swept is None:
                row.label.setText(name)
                row.label.setStyleSheet("")
                tip = html.escape(doc)
            else:
                row.label.setText(f"{name} ⟳")
                row.label.setStyleSheet(f"color: {SWEPT_COLOR}; font-weight: 600")
                tip = (f"<b>Swept: {html.escape(range_text(swept))}</b> (right-click to "
                       f"change)<br>{html.escape(doc)}")
            row.label.setToolTip(f"<div style='max-width: 380px'>{tip}</div>" if tip else "")
