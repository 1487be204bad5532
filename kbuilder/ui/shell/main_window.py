"""The main window: menus, toolbar, the canvas, dockable panels and the project's life.

The window owns the open project (through a ``QtDocument``) and wires the panels to it;
panels and canvas observe the graph and push commands, never keep a copy of the model.
Everything that needs the layer catalog (hence keras) waits for the engine loader, so
the window itself appears in about a second.

The actions, menus and toolbar are in ``window_actions``; opening, importing and saving
files in ``window_files`` (both mixins of ``MainWindow``, so its API is one object's).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings, QStandardPaths, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import (
    QApplication,
    QMainWindow,
    QStackedWidget,
    QTabWidget,
    QWidget,
)

from kbuilder.graph.runs import RunRecord
from kbuilder.graph.text import plural
from kbuilder.ui.data.data_page import QtDataPage
from kbuilder.ui.document import QtDocument
from kbuilder.ui.jobs.engine import QtEngineLoader
from kbuilder.ui.model.canvas.editor import QtCanvasEditor
from kbuilder.ui.model.code_view import QtCodeView
from kbuilder.ui.model.inspector import QtInspector
from kbuilder.ui.model.model_page import QtModelPage
from kbuilder.ui.model.palette import QtPalette
from kbuilder.ui.model.summary import QtSummaryPanel
from kbuilder.ui.results.model_saver import QtModelSaver
from kbuilder.ui.results.results_page import QtResultsPage
from kbuilder.ui.shell import icons, theme
from kbuilder.ui.shell.autosave import INTERVAL_MS, QtAutosave, pending_recoveries
from kbuilder.ui.shell.dialogs import (
    QtDialogs,
)
from kbuilder.ui.shell.gallery import QtGallery
from kbuilder.ui.shell.window_actions import WindowActions
from kbuilder.ui.shell.window_files import WindowFiles
from kbuilder.ui.sweep.sweep_page import QtSweepPage
from kbuilder.ui.train.train_page import QtTrainPage

APP_NAME = "kbuilder"
ORGANIZATION = "kbuilder"
# Closing during a run stops it first; a run that has not ended by then is killed.
STOP_BEFORE_CLOSE_MS = 30_000
# How often the project's file is looked at for changes by other programs (a stat).
DISK_CHECK_MS = 2000


class QtFirstPaint(QObject):
    """Calls ``callback`` once, right after ``widget`` has painted for the first time."""

    def __init__(self, widget: QWidget, callback: Callable[[], None]):
        super().__init__(widget)
        self._callback: Callable[[], None] | None = callback
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and self._callback is not None:
            callback, self._callback = self._callback, None
            watched.removeEventFilter(self)
            QTimer.singleShot(0, callback)
        return False


def default_recovery_dir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".kbuilder") / "recovery"


class MainWindow(WindowActions, WindowFiles, QMainWindow):
    """The kbuilder window.

    Args:
        settings: where window state, theme and recent files are kept (default: the
            user's kbuilder settings).
        recovery_dir: where autosaves go (default: the app data folder).
        loader: the engine loader (default: a new one, started at once).
        autosave_ms: autosave interval.
    """

    def __init__(self, settings: QSettings | None = None, recovery_dir: Path | None = None,
                 loader: QtEngineLoader | None = None, autosave_ms: int = INTERVAL_MS):
        super().__init__()
        self.settings = settings if settings is not None else QSettings(ORGANIZATION, APP_NAME)
        self.theme = theme.manager()
        # KBUILDER_THEME=light|dark|system overrides the saved choice (screenshots, tests).
        mode = os.environ.get("KBUILDER_THEME") or str(self.settings.value("theme", "system"))
        self.theme.set_mode(mode if mode in theme.MODES else "system")
        self.dialogs = QtDialogs(self)
        self.loader = loader if loader is not None else QtEngineLoader(self)
        self.doc: QtDocument | None = None
        self._waiting_engine = False
        self._close_when_stopped = False  # the user closed during a run: close at its end
        self._help: QWidget | None = None  # the getting-started window, once opened
        self.recovery_dir = Path(recovery_dir) if recovery_dir else default_recovery_dir()
        self.autosave = QtAutosave(self.recovery_dir, autosave_ms, self)
        self.autosave.failed.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.model_saver = QtModelSaver(self)
        self.model_saver.saved.connect(self._on_model_saved)
        self.model_saver.failed.connect(self._on_model_save_failed)
        # Another program (`kbuilder train`, another window) may write the project's file:
        # its runs are merged in, and a save asks before overwriting its model.
        self._disk_timer = QTimer(self)
        self._disk_timer.setInterval(DISK_CHECK_MS)
        self._disk_timer.timeout.connect(self.check_disk)
        self._disk_timer.start()
        self._disk_seen: object = None  # the state of the file last looked at

        self.setWindowTitle(APP_NAME)
        self.setAcceptDrops(True)
        # The start page, or the workspace: one tab per stage of the work (as in MATLAB's
        # Deep Network Designer); the editing panels are docked in the Model tab's page.
        self.stack = QStackedWidget(self)
        self.gallery = QtGallery(self)
        self.editor = QtCanvasEditor(self)
        self.palette = QtPalette(self)
        self.inspector = QtInspector(self)
        self.summary = QtSummaryPanel(self)
        self.code_view = QtCodeView(self)
        A = Qt.DockWidgetArea
        self.model_page = QtModelPage(self.editor, [
            ("Layers", "palette", self.palette, A.LeftDockWidgetArea),
            ("Inspector", "inspector", self.inspector, A.RightDockWidgetArea),
            ("Model summary", "summary", self.summary, A.BottomDockWidgetArea),
            ("Code", "code", self.code_view, A.BottomDockWidgetArea),
        ], self)
        self.palette_dock = self.model_page.docks["palette"]
        self.inspector_dock = self.model_page.docks["inspector"]
        self.summary_dock = self.model_page.docks["summary"]
        self.code_dock = self.model_page.docks["code"]
        self.model_page.tabifyDockWidget(self.summary_dock, self.code_dock)
        self.summary_dock.raise_()
        self.data_page = QtDataPage(self)
        self.train_page = QtTrainPage(self)
        self.results_page = QtResultsPage(self)
        self.sweep_page = QtSweepPage(self)
        self.workspace = QTabWidget(self)
        self.workspace.setObjectName("workspace")
        self.workspace.setDocumentMode(True)
        for page, label, tip in (
            (self.model_page, "Model", "Design the model"),
            (self.data_page, "Data", "Choose the data and check it against the model"),
            (self.train_page, "Train", "Train the model and watch it learn"),
            (self.results_page, "Results", "Compare runs, evaluate and export"),
            (self.sweep_page, "Sweep", "Search the best settings (Optuna trials)"),
        ):
            index = self.workspace.addTab(page, label)
            self.workspace.setTabToolTip(index, tip)
        self.stack.addWidget(self.gallery)
        self.stack.addWidget(self.workspace)
        self.setCentralWidget(self.stack)

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self._connect()
        self._restore_settings()
        self._show_page(self.gallery)
        self._update_actions()
        self._refresh_start_page()

        self.loader.loaded.connect(self._on_engine_loaded)
        self.loader.failed.connect(self._on_engine_failed)
        if self.loader.is_ready:
            QTimer.singleShot(0, self._on_engine_loaded)
        else:
            self._engine_label.setText("Loading Keras…")
            # After the first paint: importing keras must not delay the window.
            QtFirstPaint(self, self.loader.start)

    def _connect(self) -> None:
        e = self.editor
        e.status_message.connect(self._show_status)
        e.selection_changed.connect(self._on_selection)
        e.graph_changed.connect(self._on_selection)
        e.graph_changed.connect(self._update_actions)
        e.graph_changed.connect(self._mark_swept)  # a block opened: its nodes are new items
        e.view.zoom_changed.connect(lambda z: self._zoom_label.setText(f"{z * 100:.0f}%"))
        self.palette.add_requested.connect(self._add_from_palette)
        self.inspector.open_block_requested.connect(e.enter_block)
        e.network_activated.connect(self._show_network_layers)
        self.summary.node_selected.connect(self._select_from_summary)
        g = self.gallery
        g.template_chosen.connect(self.new_from_template)
        g.open_requested.connect(lambda p: self.open_project(p) if p else self.ask_open())
        g.import_requested.connect(self.import_model)
        g.recover_requested.connect(self.recover)
        g.discard_requested.connect(self._discard_recovery)
        g.back_requested.connect(self._back_to_editor)
        self.workspace.currentChanged.connect(self._on_tab_changed)
        self.data_page.data_changed.connect(self._on_settings_changed)
        self.data_page.node_requested.connect(self._show_node)
        # A training setting (loss, batch size...) can make or settle a pre-flight finding.
        self.train_page.settings_changed.connect(self.data_page.refresh_checks)
        self.train_page.settings_changed.connect(self._on_settings_changed)
        self.train_page.run_recorded.connect(self._on_run_recorded)
        self.train_page.data_tab_requested.connect(lambda: self._show_page(self.data_page))
        self.results_page.open_model_requested.connect(self.import_model)
        self.results_page.runs_changed.connect(self._on_settings_changed)
        self.theme.changed.connect(self._on_theme_changed)

    def current_page(self) -> QWidget:
        """What the window shows: the start page or the workspace's current tab (the
        Model tab is ``editor``)."""
        if self.stack.currentWidget() is self.gallery:
            return self.gallery
        page = self.workspace.currentWidget()
        return self.editor if page is self.model_page else page

    def _show_page(self, page: QWidget) -> None:
        """Show the start page or a workspace tab (``editor``, ``data_page``, ...)."""
        if page is self.gallery:
            self.stack.setCurrentWidget(self.gallery)
        else:
            self.stack.setCurrentWidget(self.workspace)
            self.workspace.setCurrentWidget(self.model_page if page is self.editor else page)

    def _on_tab_changed(self) -> None:
        self._update_actions()  # editing actions belong to the Model tab

    # ================================================================ settings
    def _restore_settings(self) -> None:
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray | bytes) and self.restoreGeometry(geometry):
            pass
        else:
            screen = QApplication.primaryScreen()
            size = screen.availableSize() if screen else None
            if size is not None and size.width() > 0:
                self.resize(min(1440, int(size.width() * 0.9)),
                            min(900, int(size.height() * 0.9)))
            else:
                self.resize(1440, 900)
        self.model_page.restore_state(self.settings.value("model_state"),
                                      self.settings.value("dock_sizes"))

    def _save_settings(self) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        state, sizes = self.model_page.save_state()
        self.settings.setValue("model_state", state)
        self.settings.setValue("dock_sizes", sizes)
        self.settings.setValue("theme", self.theme.mode)
        self.settings.sync()

    def set_theme(self, mode: str) -> None:
        self.theme.set_mode(mode)
        self.settings.setValue("theme", mode)
        for action in self.theme_actions.actions():
            action.setChecked(action.data() == mode)

    def _on_theme_changed(self) -> None:
        for action in self.findChildren(QAction):
            name = action.data()
            if isinstance(name, str) and name in icons.names():
                action.setIcon(icons.icon(name))
        self.editor.view.refresh_theme()
        self.editor.scene.refresh_theme()
        self._update_model_label()

    # ================================================================= engine
    def _on_engine_loaded(self) -> None:
        self._engine_label.setText("")
        self.palette.populate()
        self.gallery.show_previews()

    def _on_engine_failed(self, message: str) -> None:
        self._engine_label.setText("Keras could not be loaded")
        self.palette.show_error(message)
        self.dialogs.show_error("Keras could not be loaded",
                                f"kbuilder needs Keras to edit models: {message}\n"
                                "Run 'kbuilder doctor' to check the installation.")

    def ensure_engine(self) -> bool:
        """Wait (keeping the window responsive) until the layer catalog is loaded."""
        if self.loader.is_ready:
            return True
        if self._waiting_engine:
            return False  # a second request while waiting: the first one goes on
        self._waiting_engine = True
        self.statusBar().showMessage("Loading Keras… (the first time takes a few seconds)")
        QApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)
        try:
            ready = self.loader.wait()
        finally:
            QApplication.restoreOverrideCursor()
            self._waiting_engine = False
        self.statusBar().clearMessage()
        return ready

    # ================================================================ projects
    @property
    def node_list(self) -> QtSummaryPanel:
        """The list of the model's nodes (the summary panel; ``count()`` rows)."""
        return self.summary

    @property
    def project(self):
        return self.doc.project if self.doc is not None else None

    def set_project(self, project) -> None:
        """Show ``project`` in the editor (the previous one is closed without asking)."""
        old = self.doc
        self.doc = QtDocument(project, self)
        self.doc.history_changed.connect(self._on_history_changed)
        self.doc.history_changed.connect(self.autosave.mark_changed)
        self.doc.results_changed.connect(self._update_model_label)
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            self.doc.update_shapes()
        finally:
            QApplication.restoreOverrideCursor()
        for view in (self.editor, self.inspector, self.summary, self.code_view,
                     self.data_page, self.train_page, self.results_page, self.sweep_page):
            view.set_document(self.doc)
        if old is not None:
            old.close()
            old.deleteLater()
        self.autosave.set_project(project)
        self._show_page(self.editor)
        # Lay the page out first (the panels may have just appeared): the model is fitted
        # to the canvas the user will see, not to the size it had while hidden.
        self.model_page.settle()
        self.editor.restore_view(project.view)
        self._mark_swept()
        self.gallery.set_can_go_back(True)
        self._update_title()
        self._update_actions()
        self._update_model_label()
        self.editor.view.setFocus()

    def show_start_page(self) -> None:
        """File > New: the gallery (the open model stays until another is chosen, which
        asks about unsaved changes)."""
        self._refresh_start_page()
        self._show_page(self.gallery)
        self._update_actions()

    def _back_to_editor(self) -> None:
        if self.doc is not None:
            self._show_page(self.editor)
            self._update_actions()

    def _refresh_start_page(self) -> None:
        self.gallery.set_recent(self.recent_files())
        entries = pending_recoveries(self.recovery_dir)
        self.gallery.set_recovery(entries[0] if entries else None)

    def _predict_on_file(self) -> bool:
        """Train > Predict on a File…: the Results tab, predicting with its current run."""
        self._show_page(self.results_page)
        return self.results_page.predict_on_file()

    # =================================================================== edits
    def _undo(self) -> None:
        if self.doc is not None:
            self.doc.undo()

    def _redo(self) -> None:
        if self.doc is not None:
            self.doc.redo()

    def _add_from_palette(self, payload: dict) -> None:
        if self.doc is None:
            self.statusBar().showMessage("Open or create a model first.", 5000)
            return
        self._show_page(self.editor)
        self.editor.add_node_at_center(payload)

    def _ungroup(self) -> None:
        graph = self.editor.graph
        for nid in self.editor.selected_node_ids():
            if graph is not None and nid in graph and graph.node(nid).kind == "block":
                self.editor.ungroup(nid)
                return

    def _open_block(self) -> None:
        graph = self.editor.graph
        for nid in self.editor.selected_node_ids():
            if graph is not None and graph.node(nid).kind == "block":
                self.editor.enter_block(nid)
                return

    def _save_code(self) -> None:
        if self.doc is None:
            return
        self.code_dock.show()
        self.code_dock.raise_()
        if self.code_view.wait():
            self.code_view.save_as()
        else:
            self._show_status(self.code_view.error or "The code could not be generated.")

    def show_first_problem(self) -> None:
        """Select (and show) the first node, in data-flow order, that has a problem."""
        if self.doc is None:
            return
        errors = dict(self.doc.inference.errors())
        # The graph's own order, not the summary's rows: the summary refreshes lazily and
        # may not list a node added a moment ago.
        for nid in self.doc.graph.topological_order():
            if nid in errors:
                self._select_from_summary(nid)
                self._show_status(errors[nid])
                return

    def _show_node(self, node_id: str) -> None:
        """Switch to the Model tab with ``node_id`` selected (e.g. from a data check)."""
        if self.doc is None or node_id not in self.doc.graph:
            return
        self._show_page(self.editor)
        self._select_from_summary(node_id)
        self._update_actions()

    def _select_from_summary(self, node_id: str) -> None:
        while self.editor.block_path:
            self.editor.leave_block()
        self.editor.scene.select_nodes([node_id])
        item = self.editor.scene.nodes.get(node_id)
        if item is not None:
            self.editor.view.ensureVisible(item, 60, 60)

    # ================================================================ feedback
    def _show_status(self, text: str) -> None:
        if text:
            self.statusBar().showMessage(text, 12000)
        else:
            self.statusBar().clearMessage()

    def _on_selection(self) -> None:
        ids = self.editor.selected_node_ids()
        graph = self.editor.graph
        if len(ids) == 1:
            self.inspector.show_node(graph, ids[0])
        else:
            self.inspector.show_node(None, None, len(ids))
        self._update_actions()

    def _show_network_layers(self, node_id: str) -> None:
        """A double-clicked pretrained network: selected, and its layers shown."""
        self.editor.scene.select_nodes([node_id])  # the inspector shows it too
        self.inspector.show_network_layers(node_id)

    def _mark_swept(self) -> None:
        """Mark the nodes with swept parameters on the canvas (the sweep is an edit)."""
        from kbuilder.graph.sweeps import swept_by_node

        if self.doc is not None:
            self.editor.scene.set_swept(swept_by_node(self.doc.project.sweep, self.doc.graph))

    def _on_history_changed(self) -> None:
        self._mark_swept()
        self._update_title()
        self._update_actions()
        self._update_model_label()

    def _project_title(self) -> str:
        project = self.project
        if project is None:
            return APP_NAME
        return project.path.name if project.path else f"{project.name} (unsaved)"

    def _train(self) -> None:
        """Train > Train: show the Train tab and start a run there."""
        if self.doc is not None:
            self._show_page(self.train_page)
            self.train_page.train()

    def _on_settings_changed(self) -> None:
        """A data or training setting changed (not an undoable graph edit)."""
        if self.doc is not None:
            self.doc.project.dirty = True
            self.autosave.mark_changed()
            self._update_title()

    def _on_run_recorded(self, record: RunRecord) -> None:
        """A run ended and was added to ``project.runs``: show it among the results."""
        self._on_settings_changed()
        self.results_page.show_run(record.run_id)

    def _update_title(self) -> None:
        if self.doc is None:
            self.setWindowTitle(APP_NAME)
            self.setWindowModified(False)
            return
        self.setWindowTitle(f"{self._project_title()}[*] — {APP_NAME}")
        self.setWindowModified(self.doc.modified)

    def _update_model_label(self, *_args) -> None:
        if self.doc is None:
            self._model_label.clear()
            self._problems_label.clear()
            return
        inf = self.doc.inference
        layers = sum(1 for n in self.doc.graph.nodes if n.kind in ("layer", "block"))
        self._model_label.setText(f"{plural(layers, 'layer')} · "
                                  f"{plural(inf.total_params(), 'param', grouped=True)}")
        errors = len(inf.errors())
        color = theme.colors().error.name()
        self._problems_label.setText(
            f"<a href='problems' style='color:{color}'>⚠ {errors} problem"
            f"{'s' if errors != 1 else ''}</a>" if errors else "")

    def show_help(self, section: str = "") -> QWidget:
        """Help › Getting Started (at ``section``: ``build``, ``data``, ``train``,
        ``judge``, ``export`` or ``keys``); one window, raised when already open."""
        from kbuilder.ui.shell.help import QtHelpWindow, menu_actions

        if self._help is None:
            self._help = QtHelpWindow(menu_actions(self.menuBar()), self)
        self._help.show_section(section)
        return self._help

    def show_about(self) -> QWidget:
        """Help › About kbuilder."""
        from kbuilder.ui.shell.help import QtAboutDialog

        dialog = QtAboutDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()  # window-modal without blocking (an offscreen run never waits)
        return dialog

    # ============================================================== window
    def closeEvent(self, event: QCloseEvent) -> None:
        if self.train_page.running:
            if self._close_when_stopped or not self.dialogs.ask_stop_training():
                event.ignore()  # already stopping for this close, or the user kept it
                return
            if self.train_page.controller.run is not None:  # a model to keep: stop first
                self._stop_then_close()
                event.ignore()
                return
            # Still checking the data or starting the worker: nothing trained to keep.
        if not self.maybe_save():
            event.ignore()
            return
        self._save_settings()
        self.autosave.timer.stop()
        self._disk_timer.stop()
        self.train_page.shutdown()
        self.results_page.shutdown_workers()
        self.model_saver.shutdown()
        self.autosave.clear()
        event.accept()

    def _stop_then_close(self) -> None:
        """Stop the run (its model and record are kept), then close the window."""
        self._close_when_stopped = True
        self.statusBar().showMessage("Stopping the training run; the window closes once "
                                     "the run is recorded…")
        self.train_page.running_changed.connect(self._close_if_stopped)
        self.train_page.stop()
        QTimer.singleShot(STOP_BEFORE_CLOSE_MS, self, self._kill_if_still_running)

    def _close_if_stopped(self, running: bool) -> None:
        if not running and self._close_when_stopped:
            self._close_when_stopped = False
            # After the run's record is added: the run ends (idle) before it is recorded.
            QTimer.singleShot(0, self, self.close)

    def _kill_if_still_running(self) -> None:
        if self._close_when_stopped and self.train_page.running:
            self.train_page.kill()  # the run ends failed, then the window closes

    def dragEnterEvent(self, event) -> None:
        if self._dropped_file(event.mimeData()) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        path = self._dropped_file(event.mimeData())
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        # After the drop returns: the source application must not wait for the import.
        QTimer.singleShot(0, lambda: self.open_project(path))

