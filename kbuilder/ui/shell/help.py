"""Help › Getting Started and Help › About kbuilder.

The getting-started page walks through the five journeys (build, data, train, judge,
export) and lists the keyboard shortcuts, read from the window's own actions so the list
never drifts from the menus. The About box names the versions of kbuilder, Python, Qt,
PySide6, Keras and the installed backends, read from the installed packages' metadata:
importing keras (seconds, and a backend with it) is the worker processes' job, never the
window's.
"""

from __future__ import annotations

import functools
import html
import importlib.metadata
import platform
import sys
from dataclasses import dataclass

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMenuBar,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

import kbuilder
from kbuilder.graph.settings import BACKENDS

# The libraries the About box names: (label, importable module). Their versions come
# from the distribution that provides the module (``tensorflow`` is ``tensorflow-cpu``
# on some machines), found without importing it.
LIBRARIES = (("Keras", "keras"), ("JAX", "jax"), ("TensorFlow", "tensorflow"),
             ("PyTorch", "torch"), ("NumPy", "numpy"), ("pyqtgraph", "pyqtgraph"),
             ("ONNX Runtime", "onnxruntime"))
BACKEND_MODULES = frozenset(BACKENDS)


@dataclass(frozen=True)
class Version:
    """One line of the About box."""

    name: str
    version: str | None  # None: not installed
    backend: bool = False


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def installed_version(module: str) -> str | None:
    """The version of the installed package that provides ``module``, or ``None``."""
    names = _distributions().get(module) or [module]
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def versions() -> list[Version]:
    """kbuilder, Python, Qt, PySide6, then Keras, the backends and the other libraries."""
    rows = [
        Version("kbuilder", installed_version("kbuilder") or kbuilder.__version__),
        Version("Python", f"{platform.python_version()} ({sys.platform})"),
        Version("Qt", qVersion()),
        Version("PySide6", PySide6.__version__),
    ]
    rows += [Version(label, installed_version(module), module in BACKEND_MODULES)
             for label, module in LIBRARIES]
    return rows


def about_html() -> str:
    rows = "".join(
        f"<tr><td style='padding-right:18px'>{html.escape(v.name)}"
        f"{' <i>(backend)</i>' if v.backend else ''}</td>"
        f"<td>{html.escape(v.version) if v.version else '<i>not installed</i>'}</td></tr>"
        for v in versions())
    return ("<h2>kbuilder</h2><p>Build, train and export Keras 3 models visually.</p>"
            f"<table cellspacing=0 cellpadding=1>{rows}</table>"
            "<p>Training runs in a worker process on the backend chosen in the Train tab; "
            "<code>kbuilder doctor</code> checks each backend and lists its devices.</p>")


class QtAboutDialog(QDialog):
    """Help › About kbuilder: what this is and the versions it runs with."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("About kbuilder")
        self.text = QLabel(about_html(), self)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setWordWrap(True)
        self.text.setMinimumWidth(420)
        self.text.setMaximumWidth(460)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 16, 20, 12)
        layout.addWidget(self.text)
        layout.addWidget(buttons)


# ---------------------------------------------------------------- getting started
JOURNEYS = """
<h1>Getting started</h1>
<p>kbuilder takes a model from an idea to a file you can deploy in five steps, one tab each
after the start page. Everything stays in one project file (<code>.kbproj</code>): the
model, the data settings, the training settings and every run.</p>
<p><a href="#build">Build</a> · <a href="#data">Data</a> · <a href="#train">Train</a> ·
<a href="#judge">Judge</a> · <a href="#export">Export</a> ·
<a href="#keys">Keyboard and mouse</a></p>

<h2 id="build"><a name="build"></a>1. Build a model (Model tab)</h2>
<ul>
<li>On the start page, pick a <b>template</b> (a classifier for tables, a CNN for images,
a text or sequence model…), an <b>empty model</b>, or <b>import</b> a <code>.keras</code> or
<code>.h5</code> file.</li>
<li>Drag a layer from the <b>Layers</b> palette onto the canvas, or double-click it. Search
the palette by name or by what a layer does.</li>
<li>Connect layers by dragging from an output port (at the bottom of a node) to an input port
(at the top); ports that fit turn green.</li>
<li>Select a node to edit its settings in the <b>Inspector</b>. Every node shows its output
shape and parameter count; a red badge says what is wrong and how to fix it.</li>
<li>The <b>Model summary</b> lists the layers; the <b>Code</b> panel shows the Keras code
the graph stands for.</li>
</ul>

<h2 id="data"><a name="data"></a>2. Choose the data (Data tab)</h2>
<ul>
<li>A built-in dataset (digits, iris, wine, breast cancer, diabetes, MNIST, CIFAR-10…), a CSV
file (choose the column to predict and the feature columns), a NumPy <code>.npz</code>, or a
folder of images with one sub-folder per class.</li>
<li>The preview shows samples, the class counts and the split into training, validation and
test data.</li>
<li><b>Pre-flight checks</b> compare the data with the model (input shape, number of classes,
loss) before any training; most findings have a one-click fix.</li>
</ul>

<h2 id="train"><a name="train"></a>3. Train (Train tab)</h2>
<ul>
<li>Choose the backend (JAX, TensorFlow or PyTorch) and the device, the optimizer, learning
rate, loss and metrics, the epochs and batch size, and callbacks such as early stopping.</li>
<li><b>Train</b> (F5) checks the data again, then trains in a separate worker process: the
window stays responsive and the curves update per batch and per epoch.</li>
<li><b>Pause</b> holds the training; <b>Stop</b> (Shift+F5) ends it after the current batch
and keeps the model trained so far. <b>Kill</b> is the last resort when a stop does not
end.</li>
</ul>

<h2 id="judge"><a name="judge"></a>4. Judge the results (Results tab)</h2>
<ul>
<li>Every run is listed with its settings, status, test result and duration. Select several
to overlay their curves (training solid, validation dashed).</li>
<li>The selected run shows its evaluation on the test data: accuracy and per-class scores, a
confusion matrix and sample predictions for classifiers, errors and a scatter of predicted
against true values for regression. Evaluate again on another split if you like.</li>
<li><b>Details</b> lists what reproduces the run: seed, data fingerprint, settings and
library versions.</li>
</ul>

<h2 id="export"><a name="export"></a>5. Export</h2>
<ul>
<li><b>File › Export…</b> (Ctrl+Alt+E) writes a run's model as ONNX, SavedModel, OpenVINO,
LiteRT, <code>.keras</code>, a Python script or a notebook. Each export is loaded back in
its runtime and compared with Keras on a random batch; the parity table shows the largest
difference.</li>
<li><b>File › Save Model as .keras</b> (Ctrl+E) and <b>Save Model Code</b> (Ctrl+Shift+E)
save the model and its code directly.</li>
<li>Everything the window does is also a command: run <code>kbuilder --help</code>.</li>
</ul>
"""

MOUSE = (
    ("Add a layer", "Drag it from the palette onto the canvas, or double-click it"),
    ("Connect", "Drag from an output port (bottom of a node) to an input port (top)"),
    ("Select several", "Drag on the background, or Ctrl+click"),
    ("Zoom", "Mouse wheel"),
    ("Pan", "Middle button drag, or Space + drag"),
    ("Open a block", "Double-click it (Ctrl+Up goes back up)"),
)


def menu_actions(bar: QMenuBar) -> list[QAction]:
    """The actions of a menu bar's menus (and sub-menus), in menu order."""
    found: list[QAction] = []

    def walk(actions: list[QAction]) -> None:
        for action in actions:
            menu = action.menu()
            if menu is not None:
                walk(menu.actions())
            elif not action.isSeparator():
                found.append(action)

    walk(bar.actions())
    return found


def shortcut_rows(actions: list[QAction]) -> list[tuple[str, str]]:
    """``(what, keys)`` for each action with a shortcut, in menu order."""
    rows = []
    for action in actions:
        keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts()]
        # The Ctrl combinations first, and two at most: Redo also has a media key and
        # an Alt+Shift+Backspace nobody looks for.
        keys = sorted(dict.fromkeys(k for k in keys if k), key=lambda k: "Ctrl" not in k)[:2]
        if keys:
            rows.append((action.text().replace("&", "").replace("…", ""), " or ".join(keys)))
    return rows


def getting_started_html(actions: list[QAction]) -> str:
    def table(rows: list[tuple[str, str]]) -> str:
        cells = "".join(f"<tr><td style='padding:2px 18px 2px 0'>{html.escape(a)}</td>"
                        f"<td><b>{html.escape(b)}</b></td></tr>" for a, b in rows)
        return f"<table cellspacing=0>{cells}</table>"

    return (JOURNEYS
            + '<h2 id="keys"><a name="keys"></a>Keyboard and mouse</h2>'
            + "<h3>On the canvas</h3>" + table(list(MOUSE))
            + "<h3>Shortcuts</h3>" + table(shortcut_rows(actions)))


class QtHelpWindow(QDialog):
    """Help › Getting Started: the journeys and the shortcuts, in a window of its own
    (not modal: it can stay open beside the work).

    Args:
        actions: the window's actions, for the shortcut table.
        parent: the main window.
    """

    def __init__(self, actions: list[QAction], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("kbuilder — Getting started")
        self.setModal(False)
        self.browser = QTextBrowser(self)
        self.browser.setOpenLinks(True)
        self.browser.setOpenExternalLinks(False)
        self.browser.setHtml(getting_started_html(actions))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        self.resize(720, 760)

    def show_section(self, anchor: str = "") -> None:
        """Show the window at ``anchor`` (``build``, ``data``, …, ``keys``) or the top."""
        self.show()
        self.raise_()
        self.activateWindow()
        if anchor:
            self.browser.scrollToAnchor(anchor)
        else:
            self.browser.verticalScrollBar().setValue(0)
