"""Loading the graph engine (the layer catalog, hence keras) without blocking the window.

The catalog is derived from Keras, and importing keras takes seconds; the window must show
in about one. So the window comes first, and a background thread builds the catalog (the
graph layer imports keras lazily, the UI never does). Everything that needs the catalog —
opening a project, a template, the palette, the inspector — waits for ``when_ready``.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, Signal


class QtEngineLoader(QObject):
    """Builds the layer catalog in a background thread; says when it is ready.

    Signals:
        loaded(): the catalog is built (emitted on the GUI thread).
        failed(message): building the catalog failed (keras missing or broken).
    """

    loaded = Signal()
    failed = Signal(str)
    _finished = Signal(str)  # from the worker thread; queued to the GUI thread

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: threading.Thread | None = None
        self._ready = False
        self._error: str | None = None
        self._waiting: list[Callable[[], None]] = []
        self._finished.connect(self._on_finished)

    @property
    def is_ready(self) -> bool:
        return self._ready

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start loading (once). In-process graph work is symbolic: the numpy backend."""
        if self._thread is not None or self._ready:
            return
        os.environ.setdefault("KERAS_BACKEND", "numpy")
        self._thread = threading.Thread(target=self._load, name="kbuilder-engine", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        try:
            from kbuilder.graph import catalog
            from kbuilder.graph.commands import new_input_node, new_layer_node
            from kbuilder.graph.model import Graph
            from kbuilder.graph.shapes import ShapeInference

            catalog.all_layers()
            # One tiny inference warms Keras's layer machinery, so the first template
            # opens without a visible pause.
            graph = Graph("warmup")
            graph._insert_node(new_input_node(graph, [4]))
            graph._insert_node(new_layer_node(graph, "Dense", {"units": 2}))
            inference = ShapeInference(graph)
            inference.update()
            inference.close()
            # Imported here, in the background, to keep it off the first showing of the
            # Data tab, whose default is a built-in dataset (scikit-learn, ~0.5 s).
            import sklearn.datasets  # noqa: F401

            message = ""
        except Exception as exc:  # reported in the window, never a crash
            message = f"{type(exc).__name__}: {exc}" or "unknown error"
        self._finished.emit(message)

    def _on_finished(self, message: str) -> None:
        if message:
            self._error = message
            self._waiting.clear()
            self.failed.emit(message)
            return
        self._ready = True
        # The Train and Results tabs plot with pyqtgraph (~0.6 s to import), kept off the
        # window's start-up and off the first showing of those tabs. It is imported here,
        # on the GUI thread: its import reads every attribute of PySide6's modules, which
        # creates Qt types lazily, and doing that beside the GUI thread crashed the process.
        import pyqtgraph  # noqa: F401

        # Keras and its friends are hundreds of thousands of long-lived objects; a full
        # garbage collection walking them all stalls the window for ~0.4 s (seen while
        # data loads). Frozen objects are left out of collections.
        gc.collect()
        gc.freeze()
        waiting, self._waiting = self._waiting, []
        for callback in waiting:
            callback()
        self.loaded.emit()

    def when_ready(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` now if the catalog is ready, else as soon as it is."""
        if self._ready:
            callback()
        else:
            self._waiting.append(callback)
            self.start()

    def wait(self, timeout: float = 120.0) -> bool:
        """Process events until the catalog is ready (tests, selftest); ``True`` if it is."""
        self.start()
        deadline = time.monotonic() + timeout
        while not self._ready and self._error is None and time.monotonic() < deadline:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            if self._thread is not None:
                self._thread.join(0.02)
        QCoreApplication.processEvents()
        return self._ready
