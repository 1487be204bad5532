"""Driving the editor as a user does, offscreen: for the tests and ``kbuilder selftest``.

Mouse gestures are real ``QMouseEvent``s sent to the canvas viewport at the positions of
ports and nodes; a palette drag is the ``QMimeData`` the palette builds, dropped on the
view (a real ``QDrag`` needs a window system); typing goes through ``QTest``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from kbuilder.ui.model.canvas.editor import QtCanvasEditor
from kbuilder.ui.model.canvas.view import QtGraphView

LEFT = Qt.MouseButton.LeftButton


class ScriptedDialogs:
    """Answers the window's questions without showing a dialog; records what was shown."""

    def __init__(self, open_path: str = "", save_path: str = "", unsaved: str = "discard",
                 trust: bool = False):
        self.open_path, self.save_path = open_path, save_path
        self.folder_path = ""  # what ask_folder answers
        self.unsaved, self.trust = unsaved, trust
        self.confirm = True  # what ask_confirm answers
        self.asked_confirm: list[tuple[str, str]] = []
        self.errors: list[tuple[str, str]] = []
        self.infos: list[tuple[str, str]] = []
        self.asked_unsaved: list[str] = []
        self.asked_trust: list[tuple[str, str]] = []
        self.stop_training = True  # what ask_stop_training answers
        self.asked_stop_training = 0
        self.choice: int | None = 0  # what ask_choice answers (None: cancel)
        self.asked_choice: list[tuple[str, list[str]]] = []

    def ask_open_path(self, title: str, file_filter: str, folder: str = "") -> str:
        return self.open_path

    def ask_save_path(self, title: str, file_filter: str, suggested: str = "") -> str:
        return self.save_path

    def ask_folder(self, title: str, folder: str = "") -> str:
        return self.folder_path

    def ask_unsaved(self, name: str) -> str:
        self.asked_unsaved.append(name)
        return self.unsaved

    def ask_stop_training(self) -> bool:
        self.asked_stop_training += 1
        return self.stop_training

    def ask_trust(self, name: str, message: str) -> bool:
        self.asked_trust.append((name, message))
        return self.trust

    def ask_confirm(self, title: str, message: str, action: str = "OK") -> bool:
        self.asked_confirm.append((title, message))
        return self.confirm

    def ask_choice(self, title: str, message: str, choices: list[str]) -> int | None:
        self.asked_choice.append((message, list(choices)))
        return self.choice

    def show_error(self, title: str, message: str) -> None:
        self.errors.append((title, message))

    def show_info(self, title: str, message: str) -> None:
        self.infos.append((title, message))


def send_mouse(widget: QWidget, kind: QEvent.Type, pos: QPoint,
               button: Qt.MouseButton = LEFT, buttons: Qt.MouseButton | None = None,
               modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    if buttons is None:
        buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else button
    local = QPointF(pos)
    event = QMouseEvent(kind, local, QPointF(widget.mapToGlobal(pos)), button, buttons,
                        modifiers)
    QApplication.sendEvent(widget, event)


def drag(widget: QWidget, start: QPoint, end: QPoint, steps: int = 6,
         modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    """Press at ``start``, move in steps, release at ``end`` (left button)."""
    send_mouse(widget, QEvent.Type.MouseButtonPress, start, modifiers=modifiers)
    for i in range(1, steps + 1):
        p = start + (end - start) * (i / steps)
        send_mouse(widget, QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, LEFT, modifiers)
    send_mouse(widget, QEvent.Type.MouseButtonRelease, end, modifiers=modifiers)
    QApplication.processEvents()


def click(widget: QWidget, pos: QPoint,
          modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    send_mouse(widget, QEvent.Type.MouseButtonPress, pos, modifiers=modifiers)
    send_mouse(widget, QEvent.Type.MouseButtonRelease, pos, modifiers=modifiers)
    QApplication.processEvents()


def to_viewport(view: QtGraphView, scene_pos: QPointF) -> QPoint:
    return view.mapFromScene(scene_pos)


def ensure_visible(editor: QtCanvasEditor, node_ids: Iterable[str]) -> None:
    """Scroll (and zoom out if needed) so the nodes are inside the viewport."""
    from PySide6.QtCore import QRectF

    rect = QRectF()
    for nid in node_ids:
        rect = rect.united(editor.scene.nodes[nid].sceneBoundingRect())
    view = editor.view
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    if not visible.contains(rect.adjusted(-30, -30, 30, 30)):
        view.fit(rect.adjusted(-60, -60, 60, 60), max_zoom=1.0)
    QApplication.processEvents()


def port_point(editor: QtCanvasEditor, node_id: str, is_output: bool,
               key: int | str) -> QPoint:
    item = editor.scene.nodes[node_id]
    return to_viewport(editor.view, item.port_scene_pos(is_output, key))


def node_point(editor: QtCanvasEditor, node_id: str) -> QPoint:
    """The middle of a node's title (away from its ports and badge)."""
    item = editor.scene.nodes[node_id]
    return to_viewport(editor.view, item.scenePos() + QPointF(-20, -8))


def connect_by_drag(editor: QtCanvasEditor, src: str, src_port: int, dst: str,
                    dst_port: str = "inputs") -> None:
    """Drag from an output port to an input port with the mouse."""
    ensure_visible(editor, [src, dst])
    drag(editor.view.viewport(), port_point(editor, src, True, src_port),
         port_point(editor, dst, False, dst_port))


def click_node(editor: QtCanvasEditor, node_id: str,
               modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    ensure_visible(editor, [node_id])
    click(editor.view.viewport(), node_point(editor, node_id), modifiers)


def drop_mime(view: QtGraphView, mime: QMimeData, pos: QPoint) -> bool:
    """Deliver a drag-and-drop of ``mime`` at viewport ``pos``; whether it was accepted."""
    actions = Qt.DropAction.CopyAction
    viewport = view.viewport()
    enter = QDragEnterEvent(QPoint(pos), actions, mime, LEFT, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(QPointF(pos), actions, mime, LEFT, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(viewport, drop)
    QApplication.processEvents()
    return drop.isAccepted()


def type_into(widget: QWidget, text: str, enter: bool = True) -> None:
    """Select what the field holds, type ``text``, press Enter."""
    widget.setFocus()
    QTest.keyClick(widget, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClicks(widget, text)
    if enter:
        QTest.keyClick(widget, Qt.Key.Key_Return)
    QApplication.processEvents()


def field(window: Any, name: str) -> QWidget:
    """The inspector's input widget for parameter ``name``."""
    return window.inspector.rows[name].editor.focus_widget()
