"""The start page: templates to start from, recent projects, and crash recovery.

Shown at start-up and by File > New. Template cards get a small drawing of their graph
once the layer catalog is loaded (building a template needs it); until then they show
their title and description only.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from kbuilder.graph.model import Graph
from kbuilder.ui.shell import theme
from kbuilder.ui.shell.autosave import RecoveryEntry

PREVIEW = QSize(232, 118)
EMPTY = ""  # the "empty model" card's template name


def draw_preview(graph: Graph | None, size: QSize = PREVIEW) -> QPixmap:
    """A thumbnail of ``graph``: nodes as category-coloured boxes, edges as lines."""
    c = theme.colors()
    ratio = 2.0
    pixmap = QPixmap(size * ratio)
    pixmap.setDevicePixelRatio(ratio)
    pixmap.fill(c.background)
    p = QPainter(pixmap)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    if graph is None or not len(graph):
        # The empty model: a dashed drop zone with a plus.
        p.setPen(QPen(c.muted, 1.2, Qt.PenStyle.DashLine))
        p.drawRoundedRect(QRectF(size.width() / 2 - 40, size.height() / 2 - 26, 80, 52), 6, 6)
        p.setPen(QPen(c.muted, 2.0))
        center = QPointF(size.width() / 2, size.height() / 2)
        p.drawLine(center - QPointF(10, 0), center + QPointF(10, 0))
        p.drawLine(center - QPointF(0, 10), center + QPointF(0, 10))
        p.end()
        return pixmap
    # Drawn sideways (data flows left to right): cards are wide, models are tall.
    xs = [n.position[1] for n in graph.nodes]
    ys = [n.position[0] for n in graph.nodes]
    w, h = 62.0, 184.0
    left, top = min(xs) - w / 2, min(ys) - h / 2
    width, height = max(xs) - min(xs) + w, max(ys) - min(ys) + h
    margin = 10
    scale = min((size.width() - 2 * margin) / width, (size.height() - 2 * margin) / height,
                0.35)
    ox = (size.width() - width * scale) / 2
    oy = (size.height() - height * scale) / 2

    def at(x: float, y: float) -> QPointF:
        return QPointF(ox + (y - left) * scale, oy + (x - top) * scale)

    p.setPen(QPen(c.edge, 1.0))
    for e in graph.edges:
        a, b = graph.node(e.src).position, graph.node(e.dst).position
        p.drawLine(at(a[0], a[1] + w / 2), at(b[0], b[1] - w / 2))
    from kbuilder.graph import catalog

    for node in graph.nodes:
        if node.kind == "layer":
            try:
                category = catalog.get(node.class_name or "").category
            except Exception:
                category = "Other"
        else:
            category = {"input": "Input", "output": "Output"}.get(node.kind, "Block")
        color = theme.category_color(category)
        center = at(*node.position)
        rect = QRectF(center.x() - w * scale / 2, center.y() - h * scale / 2, w * scale,
                      h * scale)
        p.setPen(QPen(color.darker(115), 1.0))
        fill = QColor(color)
        fill.setAlpha(200 if node.kind != "block" else 120)
        p.setBrush(fill)
        p.drawRoundedRect(rect, 3, 3)
    p.end()
    return pixmap


class QtTemplateCard(QFrame):
    """A clickable card: preview, title and description."""

    clicked = Signal(str)

    def __init__(self, name: str, title: str, description: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.name = name
        self.setObjectName("card")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setFixedWidth(PREVIEW.width() + 20)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Minimum)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.setSpacing(4)
        self.preview = QLabel(self)
        self.preview.setFixedSize(PREVIEW)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel(title, self)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.description = QLabel(description, self)
        self.description.setObjectName("muted")
        self.description.setWordWrap(True)
        self.description.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.description.setMinimumHeight(self.description.fontMetrics().lineSpacing() * 3)
        layout.addWidget(self.preview)
        layout.addWidget(self.title)
        layout.addWidget(self.description, 1)
        self.setToolTip(f"Start from: {title}")

    def set_preview(self, pixmap: QPixmap) -> None:
        self.preview.setPixmap(pixmap)

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(
            event.position().toPoint()
        ):
            self.clicked.emit(self.name)
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.clicked.emit(self.name)
            return
        super().keyPressEvent(event)


class QtGallery(QScrollArea):
    """The start page.

    Signals:
        template_chosen(name): "" for an empty model.
        open_requested(path): "" to ask for a file.
        import_requested().
        recover_requested(entry) / discard_requested(entry).
        back_requested(): return to the open model.
    """

    template_chosen = Signal(str)
    open_requested = Signal(str)
    import_requested = Signal()
    recover_requested = Signal(object)
    discard_requested = Signal(object)
    back_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        from kbuilder.graph.templates import TEMPLATES

        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        page = QWidget()
        page.setObjectName("galleryPage")
        self.setWidget(page)
        outer = QVBoxLayout(page)
        outer.setContentsMargins(32, 24, 32, 24)
        outer.setSpacing(14)

        head = QHBoxLayout()
        title = QLabel("Start a new model")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() + 8)
        font.setBold(True)
        title.setFont(font)
        head.addWidget(title)
        head.addStretch(1)
        self.back_button = QPushButton("Back to the open model")
        self.back_button.clicked.connect(self.back_requested)
        self.back_button.hide()
        head.addWidget(self.back_button)
        outer.addLayout(head)
        subtitle = QLabel("Pick a template to adapt, start from an empty canvas, or open "
                          "a project or an existing Keras model.")
        subtitle.setObjectName("muted")
        outer.addWidget(subtitle)

        self.recovery = QFrame()
        self.recovery.setObjectName("errorBox")
        rec = QHBoxLayout(self.recovery)
        self.recovery_label = QLabel()
        self.recovery_label.setWordWrap(True)
        self.recover_button = QPushButton("Recover")
        self.discard_button = QPushButton("Discard")
        rec.addWidget(self.recovery_label, 1)
        rec.addWidget(self.recover_button)
        rec.addWidget(self.discard_button)
        self.recovery.hide()
        self._recovery_entry: RecoveryEntry | None = None
        self.recover_button.clicked.connect(
            lambda: self.recover_requested.emit(self._recovery_entry))
        self.discard_button.clicked.connect(
            lambda: self.discard_requested.emit(self._recovery_entry))
        outer.addWidget(self.recovery)

        body = QHBoxLayout()
        body.setSpacing(24)
        outer.addLayout(body, 1)
        grid_holder = QWidget()
        self.grid = QGridLayout(grid_holder)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(12)
        self.cards: dict[str, QtTemplateCard] = {}
        entries = [(EMPTY, "Empty model", "An empty canvas: drag an Input, layers and an "
                    "Output from the palette.")]
        entries += [(t.name, t.title, t.description) for t in TEMPLATES.values()]
        for name, card_title, description in entries:
            card = QtTemplateCard(name, card_title, description)
            card.clicked.connect(self.template_chosen)
            self.cards[name] = card
        self._columns = 0
        self._layout_cards(3)
        left = QVBoxLayout()
        left.addWidget(grid_holder, 0, Qt.AlignmentFlag.AlignTop)
        left.addWidget(self._pretrained_section())
        left.addStretch(1)
        body.addLayout(left)

        side = QVBoxLayout()
        recent_title = QLabel("Recent projects")
        recent_title.setObjectName("sectionTitle")
        side.addWidget(recent_title)
        self.recent = QListWidget()
        self.recent.setFixedWidth(300)
        self.recent.itemActivated.connect(
            lambda item: self.open_requested.emit(item.data(Qt.ItemDataRole.UserRole)))
        side.addWidget(self.recent, 1)
        open_button = QPushButton("Open project…")
        open_button.clicked.connect(lambda: self.open_requested.emit(""))
        import_button = QPushButton("Import Keras model…")
        import_button.clicked.connect(self.import_requested)
        side.addWidget(open_button)
        side.addWidget(import_button)
        body.addLayout(side)
        body.addStretch(1)
        self._apply_style()
        theme.manager().changed.connect(self._apply_style)

    def _pretrained_section(self) -> QWidget:
        """"Start from a pretrained network": each family with its size, parameters,
        ImageNet top-1 and input; choosing one opens the pretrained-classifier template."""
        from kbuilder.graph.backbones import BACKBONES
        from kbuilder.graph.templates import PRETRAINED

        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 8, 0, 0)
        title = QLabel("Start from a pretrained network")
        title.setObjectName("sectionTitle")
        layout.addWidget(title)
        hint = QLabel("ImageNet weights, downloaded once and cached (or from a weights file); "
                      "the network is frozen under a new head. Double-click to start.")
        hint.setObjectName("muted")
        hint.setWordWrap(True)
        layout.addWidget(hint)
        table = QTreeWidget()
        table.setObjectName("pretrainedNetworks")
        table.setRootIsDecorated(False)
        table.setHeaderLabels(["Network", "Parameters", "Size", "ImageNet top-1", "Input"])
        for family in BACKBONES:
            item = QTreeWidgetItem([
                family.name, f"{family.parameters / 1e6:.1f}M", f"{family.size_mb:.0f} MB",
                f"{family.top1:.1f}%", f"{family.input_size}×{family.input_size}×3",
            ])
            item.setData(0, Qt.ItemDataRole.UserRole, f"{PRETRAINED}:{family.name}")
            item.setToolTip(0, family.summary())
            for column in range(1, 4):  # numbers, right-aligned
                item.setTextAlignment(column, Qt.AlignmentFlag.AlignRight)
            table.addTopLevelItem(item)
        for column in range(5):
            table.resizeColumnToContents(column)
        rows = table.sizeHintForRow(0) * (len(BACKBONES) + 1) + 8
        table.setMinimumHeight(min(rows, 420))
        table.itemActivated.connect(
            lambda item, _column: self.template_chosen.emit(
                item.data(0, Qt.ItemDataRole.UserRole)))
        self.pretrained = table
        layout.addWidget(table)
        return box

    def _layout_cards(self, columns: int) -> None:
        if columns == self._columns:
            return
        self._columns = columns
        for card in self.cards.values():
            self.grid.removeWidget(card)
        for i, card in enumerate(self.cards.values()):
            self.grid.addWidget(card, i // columns, i % columns)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        room = self.viewport().width() - 64 - 324
        self._layout_cards(max(1, min(4, room // (PREVIEW.width() + 32))))

    def _apply_style(self) -> None:
        self.widget().setStyleSheet(theme.style_sheet("gallery"))
        if self._previews_ready:
            self.show_previews()

    _previews_ready = False

    def show_previews(self) -> None:
        """Draw each template's graph on its card (needs the layer catalog)."""
        from kbuilder.graph.templates import TEMPLATES

        self._previews_ready = True
        for name, card in self.cards.items():
            graph = TEMPLATES[name].build() if name else None
            card.set_preview(draw_preview(graph))

    def set_recent(self, paths: list[str]) -> None:
        self.recent.clear()
        for path in paths:
            p = Path(path)
            item = QListWidgetItem(f"{p.name}\n{p.parent}")
            item.setData(Qt.ItemDataRole.UserRole, path)
            item.setToolTip(path)
            if not p.exists():
                item.setForeground(theme.colors().muted)
                item.setToolTip(f"{path} (not found)")
            self.recent.addItem(item)
        if not paths:
            item = QListWidgetItem("No recent projects yet.")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.recent.addItem(item)

    def set_recovery(self, entry: RecoveryEntry | None) -> None:
        self._recovery_entry = entry
        if entry is None:
            self.recovery.hide()
            return
        self.recovery_label.setText(
            f"<b>kbuilder did not close properly.</b> Unsaved work on "
            f"<b>{entry.title}</b> was autosaved at {entry.saved_at_text}. Recover it?"
        )
        self.recovery.show()

    def set_can_go_back(self, can: bool) -> None:
        self.back_button.setVisible(can)
