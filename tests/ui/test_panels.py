"""Smoke tests every panel inherits (Orange's ``WidgetTest`` idea).

Each panel class gets, for free: it shows a document, follows an edit made elsewhere,
survives having no document and being given another one, and repaints in the dark theme.
A subclass says how to make the panel and what it should show.
"""

from __future__ import annotations

import pytest

from kbuilder.graph.commands import SetParamCommand
from kbuilder.graph.project import Project
from kbuilder.graph.templates import get_template
from kbuilder.ui.document import QtDocument
from kbuilder.ui.shell import theme


def make_doc(template: str = "cnn_classifier") -> QtDocument:
    doc = QtDocument(Project.new(get_template(template).build()))
    doc.update_shapes()
    return doc


class PanelTest:
    """Base class: subclasses define ``make_panel`` and the ``check_*`` hooks."""

    def make_panel(self):
        raise NotImplementedError

    def attach(self, panel, doc: QtDocument | None) -> None:
        panel.set_document(doc)

    def check_shows(self, qtbot, panel, doc: QtDocument) -> None:
        """What the panel must show for the CNN template."""

    def check_after_edit(self, qtbot, panel, doc: QtDocument) -> None:
        """What the panel must show after conv2d's filters became 8."""

    @pytest.fixture
    def panel(self, qtbot, engine):
        panel = self.make_panel()
        qtbot.addWidget(panel)
        panel.resize(900, 600)
        panel.show()
        qtbot.waitExposed(panel)
        return panel

    @pytest.fixture
    def doc(self, engine):
        doc = make_doc()
        yield doc
        doc.close()

    def test_shows_a_document(self, qtbot, panel, doc):
        self.attach(panel, doc)
        qtbot.wait(1)
        image = panel.grab().toImage()
        assert not image.isNull() and image.width() > 0
        self.check_shows(qtbot, panel, doc)

    def test_follows_an_edit(self, qtbot, panel, doc):
        self.attach(panel, doc)
        conv = doc.graph.find("conv2d").id
        doc.edit(lambda: SetParamCommand(doc.graph, conv, "filters", 8))
        self.check_after_edit(qtbot, panel, doc)

    def test_survives_no_document_and_another(self, qtbot, panel, doc):
        self.attach(panel, doc)
        self.attach(panel, None)
        other = make_doc("mlp_classifier")
        try:
            self.attach(panel, other)
            panel.grab()
        finally:
            self.attach(panel, None)
            other.close()

    def test_repaints_in_the_dark_theme(self, qtbot, panel, doc):
        self.attach(panel, doc)
        manager = theme.manager()
        try:
            manager.set_mode("dark")
            assert theme.colors().dark
            assert not panel.grab().toImage().isNull()
        finally:
            manager.set_mode("system")


class TestCanvas(PanelTest):
    def make_panel(self):
        from kbuilder.ui.model.canvas.editor import QtCanvasEditor

        return QtCanvasEditor()

    def check_shows(self, qtbot, panel, doc):
        assert set(panel.scene.nodes) == set(doc.graph.node_ids)
        assert len(panel.scene.edges) == len(doc.graph.edges)
        conv = panel.scene.nodes[doc.graph.find("conv2d").id]
        assert conv.shape_text == "(None, 28, 28, 32)"
        assert conv.params_text == "320 params"

    def check_after_edit(self, qtbot, panel, doc):
        conv = panel.scene.nodes[doc.graph.find("conv2d").id]
        assert conv.shape_text == "(None, 28, 28, 8)"
        assert conv.params_text == "80 params"


class TestInspector(PanelTest):
    def make_panel(self):
        from kbuilder.ui.model.inspector import QtInspector

        return QtInspector()

    def attach(self, panel, doc):
        panel.set_document(doc)
        if doc is not None:
            first_layer = next(n for n in doc.graph.nodes if n.kind == "layer")
            panel.show_node(doc.graph, first_layer.id)

    def check_shows(self, qtbot, panel, doc):
        assert panel.rows["filters"].editor.value() == 32
        assert panel.rows["padding"].editor.value() == "same"
        assert panel.name_edit.text() == "conv2d"

    def check_after_edit(self, qtbot, panel, doc):
        assert panel.rows["filters"].editor.value() == 8


class TestSummary(PanelTest):
    def make_panel(self):
        from kbuilder.ui.model.summary import QtSummaryPanel

        return QtSummaryPanel()

    def _texts(self, panel) -> list[list[str]]:
        model = panel.model
        return [[model.data(model.index(r, c)) for c in range(model.columnCount())]
                for r in range(model.rowCount())]

    def check_shows(self, qtbot, panel, doc):
        rows = self._texts(panel)
        assert len(rows) == len(doc.graph)
        assert ["conv2d", "Conv2D", "(None, 28, 28, 32)", "320"] == rows[1][:4]
        assert f"{doc.inference.total_params():,}" in panel.totals.text()

    def check_after_edit(self, qtbot, panel, doc):
        qtbot.waitUntil(lambda: self._texts(panel)[1][3] == "80", timeout=2000)


class TestCodeView(PanelTest):
    def make_panel(self):
        from kbuilder.ui.model.code_view import QtCodeView

        return QtCodeView(delay_ms=10)

    def check_shows(self, qtbot, panel, doc):
        assert panel.wait(120)
        text = panel.editor.toPlainText()
        assert "def build_model" in text
        assert "layers.Conv2D(" in text

    def check_after_edit(self, qtbot, panel, doc):
        qtbot.waitUntil(lambda: "layers.Conv2D(8," in "".join(panel.code.split()),
                        timeout=120_000)

    def test_save_as_replaces_the_file_whole(self, qtbot, panel, doc, tmp_path):
        self.attach(panel, doc)
        assert panel.wait(120)
        target = tmp_path / "model.py"
        target.write_text("old code\n")
        assert panel.save_as(str(target))
        assert target.read_text() == panel.editor.toPlainText()
        assert [f.name for f in tmp_path.iterdir()] == ["model.py"]  # no temporary left
        assert not panel.save_as(str(tmp_path / "missing" / "model.py"))
        assert "Could not save" in panel.status.text()


class TestPalette(PanelTest):
    def make_panel(self):
        from kbuilder.ui.model.palette import QtPalette

        return QtPalette()

    def attach(self, panel, doc):
        panel.populate()  # the palette shows the catalog, whatever the document

    def check_shows(self, qtbot, panel, doc):
        titles = panel.visible_titles()
        assert {"Input", "Output", "Dense", "Conv2D", "LSTM"} <= set(titles)
        assert len(titles) == len(panel._items)


class TestGallery(PanelTest):
    def make_panel(self):
        from kbuilder.ui.shell.gallery import QtGallery

        return QtGallery()

    def attach(self, panel, doc):
        panel.show_previews()

    def check_shows(self, qtbot, panel, doc):
        from kbuilder.graph.templates import TEMPLATES

        assert set(TEMPLATES) <= set(panel.cards)
        from kbuilder.ui.shell.gallery import EMPTY

        # QLabel.pixmap() is never None in PySide6: an unset one is a null pixmap.
        previews = {name: panel.cards[name].preview.pixmap().toImage()
                    for name in (EMPTY, "mlp_classifier", "cnn_classifier")}
        assert not any(image.isNull() for image in previews.values())
        # Each card shows its own model: the templates' drawings differ from each other and
        # from the empty model's drop zone.
        assert previews["mlp_classifier"] != previews[EMPTY]
        assert previews["mlp_classifier"] != previews["cnn_classifier"]
