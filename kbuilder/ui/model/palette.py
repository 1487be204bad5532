"""The layer palette: every catalog layer by category, searchable, draggable onto the canvas.

Filled from the catalog once it is loaded (``populate``). Dragging an entry carries a
``NODE_MIME`` payload the canvas understands; double-clicking (or Enter) asks to add it.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kbuilder.ui.model.canvas.view import NODE_MIME, node_mime
from kbuilder.ui.shell import theme

PAYLOAD_ROLE = Qt.ItemDataRole.UserRole + 1
SEARCH_ROLE = Qt.ItemDataRole.UserRole + 2
ORDER_ROLE = Qt.ItemDataRole.UserRole + 3  # position in the catalog's order
MODEL_CATEGORY = "Model inputs and outputs"
TOOLTIP_DOC_CHARS = 700


def _swatch(color: QColor) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(Qt.GlobalColor.transparent)
    p = QPainter(pixmap)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(color)
    p.drawRoundedRect(1, 1, 10, 10, 3, 3)
    p.end()
    return QIcon(pixmap)


def doc_tooltip(title: str, summary: str, doc: str) -> str:
    """Rich text: the summary, then the start of the Keras documentation."""
    body = doc.strip()
    if body.startswith(summary):
        body = body[len(summary):].strip()
    # The argument list is long and shown in the inspector; keep the prose.
    for marker in ("\nArgs:", "\nArguments:", "\nInput shape:", "\nCall arguments:"):
        cut = body.find(marker)
        if cut >= 0:
            body = body[:cut]
    body = body.strip()
    if len(body) > TOOLTIP_DOC_CHARS:
        body = body[:TOOLTIP_DOC_CHARS].rsplit(" ", 1)[0] + " …"
    paragraphs = "".join(
        f"<p>{html.escape(p.strip())}</p>" for p in body.split("\n\n") if p.strip()
    )
    return (f"<div style='max-width: 420px'><b>{html.escape(title)}</b>"
            f"<p>{html.escape(summary)}</p>{paragraphs}</div>")


class QtLayerTree(QTreeWidget):
    """The tree; its drags carry the node payload of the dragged entry."""

    def mimeTypes(self) -> list[str]:
        return [NODE_MIME]

    def mimeData(self, items: Sequence[QTreeWidgetItem]) -> QMimeData:
        for item in items:
            payload = item.data(0, PAYLOAD_ROLE)
            if payload:
                return node_mime(payload["kind"], payload.get("class_name"))
        return QMimeData()


class QtPalette(QWidget):
    """Signals: add_requested(payload) on double-click or Enter."""

    add_requested = Signal(dict)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search layers (name or description)…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.filter)
        self.search.returnPressed.connect(self._add_first_match)
        self.tree = QtLayerTree(self)
        self.tree.setHeaderHidden(True)
        self.tree.setDragEnabled(True)
        self.tree.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setUniformRowHeights(True)
        self.tree.itemActivated.connect(self._on_activated)
        self.placeholder = QLabel("Loading the layer catalog…", self)
        self.placeholder.setObjectName("muted")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.search)
        layout.addWidget(self.placeholder)
        layout.addWidget(self.tree, 1)
        self.tree.hide()
        self._categories: dict[str, QTreeWidgetItem] = {}
        self._items: dict[str, QTreeWidgetItem] = {}

    # ---------------------------------------------------------------- content
    def populate(self) -> None:
        """Fill the tree from the catalog (call once the catalog is loaded)."""
        from kbuilder.graph import catalog

        self.tree.clear()
        self._categories.clear()
        self._items.clear()
        model = self._category(MODEL_CATEGORY, theme.category_color("Input"))
        self._add(model, "Input", {"kind": "input"},
                  "A model input: the shape and dtype of one sample (batch size excluded).",
                  "Every model starts from one or more Inputs. Set the shape in the "
                  "inspector, e.g. 28, 28, 1 for a small greyscale image.", "input")
        self._add(model, "Output", {"kind": "output"},
                  "Marks a model output: connect the layer whose result the model returns.",
                  "A model may have several outputs (multi-task models).", "output")
        for name in catalog.categories():
            self._category(name, theme.category_color(name))
        for spec in (*catalog.all_layers(), *catalog.pretrained_networks()):
            parent = self._categories.get(spec.category)
            if parent is None:
                parent = self._category(spec.category, theme.category_color(spec.category))
            words = " ".join((spec.class_name, *spec.aliases, spec.summary))
            # A pretrained network is listed by its family's name (MobileNetV3Small).
            title = spec.aliases[0] if spec.category == "Pretrained network" else spec.class_name
            self._add(parent, title, {"kind": "layer", "class_name": spec.class_name},
                      spec.summary, spec.doc, words)
        model.setExpanded(True)
        self._categories.get("Core", model).setExpanded(True)
        self.placeholder.hide()
        self.tree.show()
        self.filter(self.search.text())

    def show_error(self, message: str) -> None:
        self.placeholder.setText(f"The layer catalog could not be loaded:\n{message}")
        self.placeholder.show()
        self.tree.hide()

    def _category(self, name: str, color: QColor) -> QTreeWidgetItem:
        item = QTreeWidgetItem(self.tree, [name])
        font = item.font(0)
        font.setBold(True)
        item.setFont(0, font)
        item.setIcon(0, _swatch(color))
        item.setFlags(Qt.ItemFlag.ItemIsEnabled)
        item.setData(0, ORDER_ROLE, len(self._categories))
        self._categories[name] = item
        return item

    def _add(self, parent: QTreeWidgetItem, title: str, payload: dict, summary: str,
             doc: str, words: str) -> None:
        item = QTreeWidgetItem(parent, [title])
        item.setData(0, PAYLOAD_ROLE, payload)
        item.setData(0, SEARCH_ROLE, words.lower())
        item.setData(0, ORDER_ROLE, parent.childCount() - 1)
        item.setToolTip(0, doc_tooltip(title, summary, doc))
        item.setStatusTip(0, summary)
        item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                      | Qt.ItemFlag.ItemIsDragEnabled)
        self._items[title] = item

    def item(self, title: str) -> QTreeWidgetItem | None:
        """The entry of a layer class (or "Input"/"Output")."""
        return self._items.get(title)

    def mime_for(self, title: str) -> QMimeData:
        """What dragging the entry ``title`` carries (as the tree builds it for a drag)."""
        item = self._items[title]
        return self.tree.mimeData([item])

    # ---------------------------------------------------------------- search
    def filter(self, text: str) -> None:
        """Show the entries whose name or description contains ``text``, best match first.

        The catalog ranks the matches (exact and prefix names first); entries and categories
        are reordered by that rank, so the first entry shown (the one Enter adds) is the
        best. An empty search restores the catalog's order.
        """
        needle = text.strip().lower()
        rank: dict[str, int] | None = None
        if needle:
            from kbuilder.graph import catalog

            rank = {s.class_name: i for i, s in enumerate(catalog.search(needle))}
        unranked = len(rank or ())
        category_keys: dict[str, int] = {}
        for name, category in self._categories.items():
            keys: dict[int, int | None] = {}  # catalog position -> rank; None: hidden
            for i in range(category.childCount()):
                child = category.child(i)
                payload = child.data(0, PAYLOAD_ROLE) or {}
                position = child.data(0, ORDER_ROLE)
                if rank is None:
                    key = position
                elif payload.get("kind") == "layer":
                    key = rank.get(payload.get("class_name"))
                elif needle in (child.data(0, SEARCH_ROLE) or ""):
                    # Input/Output: as good as an exact layer name when the title starts so.
                    key = -2 if child.text(0).lower().startswith(needle) else unranked
                else:
                    key = None
                child.setHidden(key is None)
                keys[position] = key
            shown = [k for k in keys.values() if k is not None]
            category.setHidden(not shown)
            category_keys[name] = min(shown) if rank is not None and shown else \
                category.data(0, ORDER_ROLE)
            self._sort_children(category, keys)
            if needle:
                category.setExpanded(bool(shown))
        self._sort_categories(category_keys)

    def _sort_children(self, category: QTreeWidgetItem,
                       keys: dict[int, int | None]) -> None:
        children = [category.child(i) for i in range(category.childCount())]
        def key(child: QTreeWidgetItem) -> tuple[int, int]:
            position = child.data(0, ORDER_ROLE)
            rank = keys[position]
            return (rank if rank is not None else len(keys) + 10**6, position)

        wanted = sorted(children, key=key)
        if wanted != children:
            category.takeChildren()
            category.addChildren(wanted)

    def _sort_categories(self, keys: dict[str, int]) -> None:
        tree = self.tree
        current = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
        wanted = sorted(current, key=lambda c: (keys[c.text(0)], c.data(0, ORDER_ROLE)))
        if wanted == current:
            return
        expanded = {c.text(0): c.isExpanded() for c in current}
        while tree.topLevelItemCount():
            tree.takeTopLevelItem(0)
        tree.addTopLevelItems(wanted)
        for item in wanted:  # taking an item out of the tree collapses it
            item.setExpanded(expanded[item.text(0)])

    def ordered_titles(self) -> list[str]:
        """The visible entries in the order shown, top to bottom."""
        titles = []
        for i in range(self.tree.topLevelItemCount()):
            category = self.tree.topLevelItem(i)
            if category.isHidden():
                continue
            titles += [category.child(j).text(0) for j in range(category.childCount())
                       if not category.child(j).isHidden()]
        return titles

    def visible_titles(self) -> list[str]:
        return [t for t, item in self._items.items()
                if not item.isHidden() and not item.parent().isHidden()]

    def _add_first_match(self) -> None:
        first = next(iter(self.ordered_titles()), None)
        if first is not None:
            self._on_activated(self._items[first])

    def _on_activated(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        payload = item.data(0, PAYLOAD_ROLE)
        if payload:
            self.add_requested.emit(dict(payload))
