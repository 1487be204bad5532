"""The main window's actions, menus, toolbar and status bar, and which actions apply now.

A mixin of ``MainWindow`` (kbuilder.ui.shell.main_window): the actions' slots are the
window's own methods, and the window calls ``_update_actions`` whenever what is open,
shown or selected changes.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QLabel, QToolBar

from kbuilder.ui.shell import icons


class WindowActions:
    """What the user can trigger in the window: every ``*_action`` attribute, the menu bar,
    the toolbar and the status bar's labels. Mixed into ``MainWindow`` (a QMainWindow)."""

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
        self.find_action = self._action("&Find Layer…", self._find, S.Find,
                                        tip="Find a layer by name or type and jump to it")
        self.group_blocks_action = self._action(
            "Group &Repeated Blocks", e.group_repeated_blocks,
            tip="Collapse the repeated units of an imported model (block_3_…, "
                "conv4_block2_…) into blocks")
        self.expand_blocks_action = self._action("E&xpand All Blocks", e.expand_all_blocks,
                                                 tip="Ungroup every block of this graph")
        self.flow_down_action = self._action("Arrange Top to &Bottom",
                                             lambda: e.set_flow("down"))
        self.flow_right_action = self._action("Arrange Left to &Right",
                                              lambda: e.set_flow("right"))
        self.overview_action = QAction("&Overview", self, checkable=True, checked=True)
        self.overview_action.setStatusTip("The whole model in a corner of the canvas")
        self.overview_action.toggled.connect(e.show_overview)
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
        edit.addActions([self.group_blocks_action, self.expand_blocks_action])
        edit.addSeparator()
        edit.addAction(self.find_action)
        view = bar.addMenu("&View")
        view.addActions([self.zoom_in_action, self.zoom_out_action, self.fit_action])
        view.addSeparator()
        view.addActions([self.arrange_action, self.flow_down_action, self.flow_right_action])
        view.addAction(self.overview_action)
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

    def _find(self) -> None:
        if self.doc is not None:
            self._show_page(self.editor)
            self.editor.show_find()

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
                       self.zoom_out_action, self.fit_action, self.arrange_action,
                       self.find_action, self.group_blocks_action, self.flow_down_action,
                       self.flow_right_action):
            action.setEnabled(editing)
        graph = self.editor.graph if editing else None
        self.expand_blocks_action.setEnabled(
            graph is not None and any(n.kind == "block" for n in graph.nodes))
        for action in (self.cut_action, self.copy_action, self.group_action):
            action.setEnabled(selected)
        self.delete_action.setEnabled(bool(editing and (
            selected or self.editor.scene.selected_edge_ids())))
        self.leave_block_action.setEnabled(bool(editing and self.editor.block_path))

