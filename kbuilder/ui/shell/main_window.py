"""The main window: menus, toolbar, the canvas, dockable panels and the project's life.

The window owns the open project (through a ``QtDocument``) and wires the panels to it;
panels and canvas observe the graph and push commands, never keep a copy of the model.
Everything that needs the layer catalog (hence keras) waits for the engine loader, so
the window itself appears in about a second.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings, QStandardPaths, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QMainWindow,
    QStackedWidget,
    QTabWidget,
    QToolBar,
    QWidget,
)

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
from kbuilder.ui.shell.autosave import INTERVAL_MS, QtAutosave, RecoveryEntry, pending_recoveries
from kbuilder.ui.shell.dialogs import (
    KERAS_FILTER,
    MODEL_FILTER,
    OPEN_FILTER,
    PROJECT_FILTER,
    QtDialogs,
)
from kbuilder.ui.shell.gallery import QtGallery
from kbuilder.ui.train.train_page import QtTrainPage

APP_NAME = "kbuilder"
ORGANIZATION = "kbuilder"
MAX_RECENT = 10
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
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


class MainWindow(QMainWindow):
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
        self.workspace = QTabWidget(self)
        self.workspace.setObjectName("workspace")
        self.workspace.setDocumentMode(True)
        for page, label, tip in (
            (self.model_page, "Model", "Design the model"),
            (self.data_page, "Data", "Choose the data and check it against the model"),
            (self.train_page, "Train", "Train the model and watch it learn"),
            (self.results_page, "Results", "Compare runs, evaluate and export"),
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

    # ================================================================== layout
    def _action(self, text: str, slot: Callable, shortcut=None, icon: str | None = None,
                tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            if isinstance(shortcut, list):
                action.setShortcuts(shortcut)
            else:
                action.setShortcut(shortcut)
        if icon:
            action.setIcon(icons.icon(icon))
            action.setData(icon)
        shortcut_text = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        label = text.replace("&", "").replace("…", "")
        action.setToolTip(f"{tip or label}" + (f" ({shortcut_text})" if shortcut_text else ""))
        action.setStatusTip(tip or label)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def _build_actions(self) -> None:
        S = QKeySequence.StandardKey
        K = QKeySequence
        e = self.editor
        self.new_action = self._action("&New…", self.show_start_page, S.New, "new",
                                       "New model from a template")
        self.open_action = self._action("&Open…", self.ask_open, S.Open, "open",
                                        "Open a project or a Keras model")
        self.save_action = self._action("&Save", self.save, S.Save, "save", "Save the project")
        self.save_as_action = self._action("Save &As…", self.save_as, S.SaveAs)
        self.import_action = self._action("&Import Keras Model…", self.import_model,
                                          K("Ctrl+I"), "import",
                                          "Import a .keras or .h5 model")
        self.export_action = self._action("Save Model as .&keras…", self.export_keras,
                                          K("Ctrl+E"), "export",
                                          "Build the model and save it as a .keras file")
        self.export_code_action = self._action("Save Model &Code…", self._save_code,
                                               K("Ctrl+Shift+E"))
        self.export_formats_action = self._action(
            "E&xport…", lambda: self.results_page.open_export_dialog(
                self.results_page.current_run_id()), K("Ctrl+Alt+E"),
            tip="Export a trained model to ONNX, SavedModel, OpenVINO, LiteRT, .keras, "
            "Python or a notebook, checked against Keras")
        self.predict_file_action = self._action(
            "&Predict on a File…", self._predict_on_file,
            tip="Predict with the selected run's trained model on a file of rows or a "
            "folder of images (Results tab)")
        self.quit_action = self._action("&Quit", self.close, S.Quit)
        self.undo_action = self._action("&Undo", self._undo, S.Undo, "undo")
        # The platform's Redo (Ctrl+Shift+Z here) and Ctrl+Y, which Windows users expect.
        redo_keys = list(dict.fromkeys([*QKeySequence.keyBindings(S.Redo), K("Ctrl+Y")]))
        self.redo_action = self._action("&Redo", self._redo, redo_keys, "redo")
        self.cut_action = self._action("Cu&t", e.cut_selection, S.Cut, "cut")
        self.copy_action = self._action("&Copy", e.copy_selection, S.Copy, "copy")
        self.paste_action = self._action("&Paste", e.paste, S.Paste, "paste")
        self.delete_action = self._action("&Delete", e.delete_selection,
                                          [K(S.Delete), K("Backspace")], "delete",
                                          "Delete the selected nodes and connections")
        self.select_all_action = self._action("Select &All", e.select_all, S.SelectAll)
        self.group_action = self._action("&Group into Block", e.group_selection,
                                         K("Ctrl+G"), "group",
                                         "Group the selected layers into a block")
        self.ungroup_action = self._action("U&ngroup Block", self._ungroup, K("Ctrl+Shift+G"))
        self.open_block_action = self._action("&Open Block", self._open_block, K("Ctrl+Down"))
        self.leave_block_action = self._action("Back &Up to Enclosing Model", e.leave_block,
                                               K("Ctrl+Up"), "up")
        self.zoom_in_action = self._action("Zoom &In", e.zoom_in, [K(S.ZoomIn), K("Ctrl+=")],
                                           "zoom_in")
        self.zoom_out_action = self._action("Zoom &Out", e.zoom_out, S.ZoomOut, "zoom_out")
        self.fit_action = self._action("&Fit to View", e.fit, K("Ctrl+0"), "fit",
                                       "Show the whole model")
        self.arrange_action = self._action("Auto-&arrange", e.arrange, K("Ctrl+L"), "arrange",
                                           "Arrange the layers top to bottom")
        self.theme_actions = QActionGroup(self)
        for mode, label in (("system", "Follow the &System"), ("light", "&Light"),
                            ("dark", "&Dark")):
            action = QAction(label, self, checkable=True)
            action.setData(mode)
            action.setChecked(mode == self.theme.mode)
            action.triggered.connect(lambda _c=False, m=mode: self.set_theme(m))
            self.theme_actions.addAction(action)
        self.train_action = self._action("&Train", self._train, K("F5"), "play",
                                         "Check the data, then train the model")
        self.stop_action = self._action("&Stop Training", self.train_page.stop,
                                        K("Shift+F5"), "stop",
                                        "End the run after the current batch, keeping the "
                                        "model")
        self.train_page.bind_actions(self.train_action, self.stop_action)
        self.getting_started_action = self._action(
            "&Getting Started", self.show_help, S.HelpContents,
            tip="How to build, train, judge and export a model, and the shortcuts")
        self.keys_help_action = self._action("&Keyboard and Mouse",
                                             lambda: self.show_help("keys"))
        self.about_action = self._action("&About kbuilder", self.show_about,
                                         tip="The versions of kbuilder and its libraries")

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.new_action, self.open_action])
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        file_menu.addActions([self.save_action, self.save_as_action])
        file_menu.addSeparator()
        file_menu.addActions([self.import_action, self.export_action, self.export_code_action,
                              self.export_formats_action])
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        edit = bar.addMenu("&Edit")
        edit.addActions([self.undo_action, self.redo_action])
        edit.addSeparator()
        edit.addActions([self.cut_action, self.copy_action, self.paste_action,
                         self.delete_action])
        edit.addSeparator()
        edit.addAction(self.select_all_action)
        edit.addSeparator()
        edit.addActions([self.group_action, self.ungroup_action, self.open_block_action,
                         self.leave_block_action])
        view = bar.addMenu("&View")
        view.addActions([self.zoom_in_action, self.zoom_out_action, self.fit_action])
        view.addSeparator()
        view.addAction(self.arrange_action)
        view.addSeparator()
        panels = view.addMenu("&Panels")
        for dock in (self.palette_dock, self.inspector_dock, self.summary_dock, self.code_dock):
            panels.addAction(dock.toggleViewAction())
        theme_menu = view.addMenu("&Theme")
        theme_menu.addActions(self.theme_actions.actions())
        train_menu = bar.addMenu("&Train")
        train_menu.addActions([self.train_action, self.stop_action])
        train_menu.addSeparator()
        train_menu.addAction(self.predict_file_action)
        help_menu = bar.addMenu("&Help")
        help_menu.addActions([self.getting_started_action, self.keys_help_action])
        help_menu.addSeparator()
        help_menu.addAction(self.about_action)

    def _build_toolbar(self) -> None:
        bar = QToolBar("Main toolbar", self)
        bar.setObjectName("main_toolbar")
        bar.setMovable(False)
        bar.setIconSize(bar.iconSize().scaled(20, 20, Qt.AspectRatioMode.KeepAspectRatio))
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        for group in (
            (self.new_action, self.open_action, self.save_action),
            (self.undo_action, self.redo_action),
            (self.cut_action, self.copy_action, self.paste_action, self.delete_action),
            (self.zoom_in_action, self.zoom_out_action, self.fit_action, self.arrange_action,
             self.group_action),
            (self.import_action, self.export_action),
            (self.train_action, self.stop_action),
        ):
            bar.addActions(list(group))
            bar.addSeparator()
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.toolbar = bar

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self._engine_label = QLabel(self)
        self._engine_label.setObjectName("muted")
        self._model_label = QLabel(self)
        self._problems_label = QLabel(self)
        self._problems_label.setObjectName("errorLabel")
        self._problems_label.setToolTip("Show the first layer with a problem")
        self._problems_label.linkActivated.connect(lambda _link: self.show_first_problem())
        self._zoom_label = QLabel(self)
        self._zoom_label.setObjectName("muted")
        for label in (self._engine_label, self._problems_label, self._model_label,
                      self._zoom_label):
            label.setContentsMargins(8, 0, 8, 0)
            status.addPermanentWidget(label)

    def _connect(self) -> None:
        e = self.editor
        e.status_message.connect(self._show_status)
        e.selection_changed.connect(self._on_selection)
        e.graph_changed.connect(self._on_selection)
        e.graph_changed.connect(self._update_actions)
        e.view.zoom_changed.connect(lambda z: self._zoom_label.setText(f"{z * 100:.0f}%"))
        self.palette.add_requested.connect(self._add_from_palette)
        self.inspector.open_block_requested.connect(e.enter_block)
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

    def recent_files(self) -> list[str]:
        value = self.settings.value("recent_files", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])][:MAX_RECENT]

    def _add_recent(self, path: Path) -> None:
        text = str(Path(path).resolve())
        recent = [text] + [p for p in self.recent_files() if p != text]
        self.settings.setValue("recent_files", recent[:MAX_RECENT])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.recent_files()
        for i, path in enumerate(recent):
            label = f"&{i + 1} {Path(path).name}" if i < 9 else Path(path).name
            action = self.recent_menu.addAction(label, lambda p=path: self.open_project(p))
            action.setToolTip(path)
            action.setEnabled(Path(path).exists())
        if not recent:
            self.recent_menu.addAction("No recent projects").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear the List", self._clear_recent)

    def _clear_recent(self) -> None:
        self.settings.setValue("recent_files", [])
        self._refresh_start_page()

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
                     self.data_page, self.train_page, self.results_page):
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
        self.gallery.set_can_go_back(True)
        self._update_title()
        self._update_actions()
        self._update_model_label()
        self.editor.view.setFocus()

    def new_from_template(self, name: str) -> bool:
        """A new, unsaved project from a template ("" for an empty model)."""
        if not self.maybe_save():
            return False
        if not self.ensure_engine():
            return False
        from kbuilder.graph.model import Graph
        from kbuilder.graph.project import Project
        from kbuilder.graph.templates import get_template

        graph = get_template(name).build() if name else Graph("model")
        self.set_project(Project.new(graph))
        self.statusBar().showMessage(
            "New model from a template — drag layers from the palette, connect ports "
            "by dragging from an output to an input." if name else
            "Empty model — drag an Input, layers and an Output from the palette.", 10000)
        return True

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

    def ask_open(self) -> bool:
        folder = str(self.settings.value("last_folder", ""))
        path = self.dialogs.ask_open_path("Open a project or a Keras model", OPEN_FILTER,
                                          folder)
        return self.open_project(path) if path else False

    def open_project(self, path: str | os.PathLike) -> bool:
        """Open a ``.kbproj`` project (or import a ``.keras``/``.h5`` model).

        Returns:
            Whether it was opened; on failure the status bar says why and what was open
            stays open.
        """
        path = Path(path)
        if path.suffix.lower() in MODEL_SUFFIXES:
            return self.import_model(str(path))
        if not self.maybe_save():
            return False
        if not self.ensure_engine():
            return False
        from kbuilder.graph.errors import ProjectFileError
        from kbuilder.graph.project import load_project

        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            project = load_project(path)
        except ProjectFileError as exc:
            QApplication.restoreOverrideCursor()
            self.statusBar().showMessage(f"Could not open {path.name}: {exc}")
            self.dialogs.show_error("Could not open the project", str(exc))
            return False
        QApplication.restoreOverrideCursor()
        self.set_project(project)
        self._add_recent(path)
        self.settings.setValue("last_folder", str(path.parent))
        self.statusBar().showMessage(f"Opened {path.name}", 5000)
        self._offer_orphaned_runs()
        return True

    def _offer_orphaned_runs(self) -> None:
        """Offer back the runs whose training ended before it could record them."""
        from kbuilder.graph import runs

        project = self.project
        if project is None or project.path is None:
            return
        orphans = runs.orphaned_run_folders(project.runs, project.path)
        if not orphans:
            return
        many = len(orphans) != 1
        names = ", ".join(folder.name for folder in orphans[:5])
        if not self.dialogs.ask_confirm(
                "Runs missing from the history",
                f"{project.path.name}'s runs folder holds {len(orphans)} run"
                f"{'s' if many else ''} that {'are' if many else 'is'} not in its history "
                f"({names}): a training ended before it could record "
                f"{'them' if many else 'it'}. Add {'them' if many else 'it'} back?",
                "Add to the history"):
            return
        adopted = [r for r in map(runs.adopt, orphans) if r is not None]
        project.runs.extend(adopted)
        self._on_settings_changed()  # in the file at the next save
        self.results_page.refresh()
        self.statusBar().showMessage(
            f"Added {len(adopted)} run{'s' if len(adopted) != 1 else ''} back to the "
            "history — save to keep them.", 10000)

    def import_model(self, path: str | None = None) -> bool:
        """Open a ``.keras``/``.h5`` model as a new, unsaved project."""
        if not path:
            folder = str(self.settings.value("last_folder", ""))
            path = self.dialogs.ask_open_path("Import a Keras model", MODEL_FILTER, folder)
            if not path:
                return False
        if not self.maybe_save():
            return False
        if not self.ensure_engine():
            return False
        from kbuilder.graph.errors import GraphError
        from kbuilder.graph.keras_import import ModelImportError, import_file

        name = Path(path).name
        self.statusBar().showMessage(f"Importing {name}…")
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            try:
                project = import_file(path)
            except ModelImportError as exc:
                if not exc.trust_would_help:
                    raise  # said below, like any other import error
                QApplication.restoreOverrideCursor()
                if not self.dialogs.ask_trust(name, str(exc)):
                    self.statusBar().showMessage(f"Did not open {name}.", 5000)
                    return False
                QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
                project = import_file(path, trust=True)
        except (GraphError, OSError, ValueError) as exc:
            QApplication.restoreOverrideCursor()
            self.statusBar().showMessage(f"Could not import {name}: {exc}")
            self.dialogs.show_error("Could not import the model", str(exc))
            return False
        QApplication.restoreOverrideCursor()
        from kbuilder.graph.layout import apply_layout

        if all(n.position == (0.0, 0.0) for n in project.graph.nodes):
            apply_layout(project.graph)
        self.set_project(project)
        self.settings.setValue("last_folder", str(Path(path).parent))
        self.statusBar().showMessage(
            f"Imported {name} ({plural(len(project.graph), 'node')}) — save it as a project "
            "to keep your changes.", 8000)
        return True

    def maybe_save(self) -> bool:
        """Ask about unsaved changes; ``False`` means the user cancelled."""
        if self.doc is None or not self.doc.modified:
            return True
        answer = self.dialogs.ask_unsaved(self._project_title())
        if answer == "save":
            return self.save()
        return answer == "discard"

    def save(self) -> bool:
        project = self.project
        if project is None:
            return False
        if project.path is None:
            return self.save_as()
        return self._save_to(project.path)

    def save_as(self, path: str | os.PathLike | None = None) -> bool:
        project = self.project
        if project is None:
            return False
        if not path:
            suggested = str(project.path or Path(str(self.settings.value("last_folder", "")))
                            / f"{project.name}.kbproj")
            path = self.dialogs.ask_save_path("Save the project", PROJECT_FILTER, suggested)
            if not path:
                return False
        path = Path(path)
        if path.suffix.lower() != ".kbproj":
            path = path.with_name(path.name + ".kbproj")
        return self._save_to(path)

    def _save_to(self, path: Path) -> bool:
        from kbuilder.graph.errors import GraphError
        from kbuilder.graph.project import save_project

        project = self.project
        assert project is not None and self.doc is not None
        self.editor.store_view(project.view)
        if project.path is not None and path.resolve() == project.path.resolve():
            if not self._may_overwrite_disk():
                return False
        runs_before = len(project.runs)
        try:
            save_project(project, path)  # merges runs others recorded meanwhile
        except (GraphError, OSError) as exc:
            message = getattr(exc, "strerror", None) or str(exc)
            self.statusBar().showMessage(f"Could not save {path.name}: {message}")
            self.dialogs.show_error("Could not save the project", f"{path}: {message}")
            return False
        self.autosave.clear()
        self._add_recent(path)
        self.settings.setValue("last_folder", str(path.parent))
        self._update_title()
        merged = len(project.runs) - runs_before
        if merged:
            self.results_page.refresh()
        self.statusBar().showMessage(
            f"Saved {path.name}" + (f", with {merged} run{'s' if merged != 1 else ''} "
                                    "recorded there by another program" if merged else ""),
            8000)
        return True

    def _may_overwrite_disk(self) -> bool:
        """Whether saving may replace the file: another program changed its model since
        it was read, so ask (runs recorded there are merged in any case)."""
        from kbuilder.graph.errors import ProjectFileError
        from kbuilder.graph.project import disk_changes

        project = self.project
        assert project is not None and project.path is not None
        try:
            changes = disk_changes(project)
        except ProjectFileError:
            return True  # no longer a readable project: nothing there to keep
        if changes is None or not changes.graph_changed:
            return True
        return self.dialogs.ask_confirm(
            "The project changed on disk",
            f"{project.path.name} was changed by another program since you opened it. "
            "Save your version over it? Its model changes will be lost (runs recorded "
            "there are kept).", "Overwrite")

    def check_disk(self) -> None:
        """Merge the runs another program recorded in the project's file; say when it
        changed the model there too (the next save asks before overwriting)."""
        from kbuilder.graph.errors import ProjectFileError
        from kbuilder.graph.project import changed_on_disk, disk_changes, file_stamp, merge_runs

        project = self.project
        if project is None or project.path is None or not changed_on_disk(project):
            return
        stamp = file_stamp(project.path)
        if stamp == self._disk_seen:
            return  # this version of the file was looked at already
        try:
            changes = disk_changes(project)
        except ProjectFileError:
            return  # being replaced, or damaged: looked at again next time
        self._disk_seen = stamp
        if changes is None:
            return
        name = project.path.name
        if changes.new_runs or changes.finished_runs:
            added = merge_runs(project, changes)
            self.results_page.refresh()
            count = len(added) + len(changes.finished_runs)
            self.statusBar().showMessage(
                f"{count} run{'s' if count != 1 else ''} recorded in {name} by another "
                "program added to the Results tab.", 10000)
        if changes.graph_changed:
            self.statusBar().showMessage(
                f"{name} was changed by another program; saving will ask before "
                "replacing its model.", 10000)

    def _predict_on_file(self) -> bool:
        """Train > Predict on a File…: the Results tab, predicting with its current run."""
        self._show_page(self.results_page)
        return self.results_page.predict_on_file()

    def export_keras(self, path: str | None = None) -> bool:
        """Save a model as ``.keras``: a trained run's (the latest is offered first) or the
        model being edited, untrained; in the background, atomically."""
        from kbuilder.graph.runs import artifact_path, trained_runs
        from kbuilder.ui.results.run_format import run_label, when_text

        project = self.project
        if project is None or self.model_saver.busy:
            return False
        trained = trained_runs(project.runs, project.path)
        weights = "with the project's weights" if project.weights else "untrained"
        choices = [f"The model trained in run {run_label(i)}"
                   f"{' (the latest)' if n == 0 else ''} — {when_text(r.get('created'))}, "
                   f"{r.get('backend')}, {r.get('status')}" for n, (i, r) in enumerate(trained)]
        choices.append(f"The model being edited ({weights})")
        choice = 0
        if trained:
            choice = self.dialogs.ask_choice(
                "Save Model as .keras", "Which model do you want to save?", choices)
            if choice is None:
                return False
        if not path:
            suggested = str(Path(str(self.settings.value("last_folder", "")))
                            / f"{project.name}.keras")
            path = self.dialogs.ask_save_path("Save the model as .keras", KERAS_FILTER,
                                              suggested)
            if not path:
                return False
        target = Path(path)
        if target.suffix.lower() != ".keras":
            target = target.with_name(target.name + ".keras")
        what = choices[choice][0].lower() + choices[choice][1:]
        self.statusBar().showMessage(f"Saving {what} to {target.name}…")
        self.export_action.setEnabled(False)
        if choice < len(trained):
            source = artifact_path(trained[choice][1], "model", project.path)
            assert source is not None
            self.model_saver.save_copy(source, target, what)
        else:
            try:
                self.model_saver.save_built(project, target, what)
            except (OSError, ValueError) as exc:
                self._on_model_save_failed(str(exc))
                return False
        return True

    def _on_model_saved(self, path: str, what: str) -> None:
        self._update_actions()
        self.statusBar().showMessage(f"Saved {what} to {path}", 10000)

    def _on_model_save_failed(self, reason: str) -> None:
        self._update_actions()
        self.statusBar().showMessage(f"Could not save the model: {reason}")
        self.dialogs.show_error("Could not save the model", reason)

    def recover(self, entry: RecoveryEntry | None) -> bool:
        """Open an autosave from a session that crashed (as unsaved changes)."""
        if entry is None or not self.ensure_engine():
            return False
        from kbuilder.graph.errors import ProjectFileError
        from kbuilder.graph.project import load_project

        try:
            project = load_project(entry.path)
        except ProjectFileError as exc:
            self.dialogs.show_error("Could not recover the model", str(exc))
            return False
        project.path = Path(entry.original) if entry.original else None
        project.disk = None  # what the original file holds now was never read here
        project.dirty = True  # the recovered work is not in any saved file yet
        self.set_project(project)
        self.autosave.mark_changed()
        self.autosave.autosave()  # this session's recovery now holds the work
        entry.discard()
        self.gallery.set_recovery(None)
        self._update_title()
        self.statusBar().showMessage("Recovered the autosaved model — save it to keep it.",
                                     10000)
        return True

    def _discard_recovery(self, entry: RecoveryEntry | None) -> None:
        if entry is not None:
            entry.discard()
        self._refresh_start_page()

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

    def _on_history_changed(self) -> None:
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

    def _on_run_recorded(self, record: dict) -> None:
        """A run ended and was added to ``project.runs``: show it among the results."""
        self._on_settings_changed()
        self.results_page.show_run(record.get("run_id", ""))

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

    def _update_actions(self) -> None:
        has_doc = self.doc is not None
        editing = has_doc and self.current_page() is self.editor
        history = self.doc.history if self.doc is not None else None
        self.undo_action.setEnabled(bool(editing and history and history.can_undo))
        self.redo_action.setEnabled(bool(editing and history and history.can_redo))
        self.undo_action.setText(f"&Undo {history.undo_text}" if history and history.can_undo
                                 else "&Undo")
        self.redo_action.setText(f"&Redo {history.redo_text}" if history and history.can_redo
                                 else "&Redo")
        selected = bool(self.editor.selected_node_ids()) if editing else False
        for action in (self.save_action, self.save_as_action, self.export_action,
                       self.export_code_action, self.export_formats_action):
            action.setEnabled(has_doc)
        self.export_action.setEnabled(has_doc and not self.model_saver.busy)
        for action in (self.select_all_action, self.paste_action, self.zoom_in_action,
                       self.zoom_out_action, self.fit_action, self.arrange_action):
            action.setEnabled(editing)
        for action in (self.cut_action, self.copy_action, self.group_action):
            action.setEnabled(selected)
        self.delete_action.setEnabled(bool(editing and (
            selected or self.editor.scene.selected_edge_ids())))
        self.leave_block_action.setEnabled(bool(editing and self.editor.block_path))

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

    @staticmethod
    def _dropped_file(mime) -> str | None:
        if not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile():
                path = url.toLocalFile()
                if Path(path).suffix.lower() in (".kbproj", *MODEL_SUFFIXES):
                    return path
        return None
