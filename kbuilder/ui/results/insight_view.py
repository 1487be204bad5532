"""The Results tab's "Inside" view: a run's model seen from within (issue 17).

- **Node output**: pick a node and a sample (of the run's test split, from a file, or an
  edited row of a small table: ``insight_sample``); the node's output with the run's
  trained weights or the project's current ones — a grid of feature maps for image
  tensors, a heat map for sequences, bars for vectors, the attention weights per head
  for attention layers — with its mean, std and share of zeros (dead ReLUs).
- **Why this class**: the sample's prediction explained — a Grad-CAM overlay for an
  image model, integrated-gradients bars per feature for a table.
- **Feature importance**: permutation importance on the validation split, as bars.

Everything is computed in a worker on the run's backend (``runtime.explain``, through
``QtWorkerJob``); the worker writes arrays and pictures into a scratch folder that this
view reads (numpy and Qt only: no keras here). Each result's caption says what it is
(method, layer, baseline, steps, backend). A shown result is computed again when another
run is selected (the view follows the Results tab's selection, so also when a run
finishes), and a node's output with the project's weights when the graph is edited
(``graph_edited``, after a pause in the edits).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from kbuilder.graph.runs import RunRecord
from kbuilder.runtime import protocol as p
from kbuilder.ui.jobs.worker_job import QtWorkerJob
from kbuilder.ui.results.insight_sample import QtSampleChooser

# What each action asks the worker for (its caption while it runs).
ACTIONS = {"output": "the node's output", "why": "why the model predicts this class",
           "importance": "the features' importance"}
# After an edit of the graph, the node's output (project's weights) is computed again once
# the edits pause this long: one worker call for a burst of edits, not one per edit.
EDIT_PAUSE_MS = 400
PROJECT_WEIGHTS = 1  # the weights box's "Project's current weights"


class QtInsightView(QWidget):
    """See the class docstring of the module. ``set_run`` gives it the run to look into."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.record: RunRecord | None = None
        self.model_path: str | None = None
        self.project: Any = None  # the open project: its graph and current weights
        self.images = False
        self.last_action: str | None = None  # shown again for another run
        self.result: Any = None  # the last Explained/ActivationsReady
        self._scratch: Path | None = None
        self._stale = False  # the graph changed while a result was being computed
        self.edit_timer = QTimer(self)
        self.edit_timer.setSingleShot(True)
        self.edit_timer.setInterval(EDIT_PAUSE_MS)
        self.edit_timer.timeout.connect(self._after_edits)
        self.job = QtWorkerJob(self)
        self.job.succeeded.connect(self._on_result)
        self.job.failed.connect(self._on_failed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Node", self))
        self.layer = QComboBox(self)
        self.layer.setMinimumContentsLength(14)
        self.layer.setToolTip("The node whose output to show (its layer in the trained "
                              "model)")
        controls.addWidget(self.layer, 1)
        self.weights = QComboBox(self)
        self.weights.addItems(["Run's trained weights", "Project's current weights"])
        self.weights.setToolTip("Whose weights the node's output is computed with: the "
                                "selected run's trained model, or the project's graph as it "
                                "is now in the Model tab with its current weights")
        self.weights.currentIndexChanged.connect(lambda: self._enable())
        controls.addWidget(self.weights)
        layout.addLayout(controls)
        self.chooser = QtSampleChooser(self)
        self.sample = self.chooser.sample
        layout.addWidget(self.chooser)
        buttons = QHBoxLayout()
        self.output_button = QPushButton("Show Output", self)
        self.output_button.setToolTip("The node's output on the sample, with the run's "
                                      "trained weights")
        self.output_button.clicked.connect(lambda: self.show_output())
        self.why_button = QPushButton("Why This Class", self)
        self.why_button.setToolTip("Grad-CAM (images) or integrated gradients (tables) for "
                                   "the sample's predicted class")
        self.why_button.clicked.connect(lambda: self.explain_sample())
        self.importance_button = QPushButton("Feature Importance", self)
        self.importance_button.setToolTip("Permutation importance on the validation split: "
                                          "how much the accuracy drops when a column is "
                                          "shuffled")
        self.importance_button.clicked.connect(lambda: self.feature_importance())
        for button in (self.output_button, self.why_button, self.importance_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.caption = QLabel("Select a run with a trained model.", self)
        self.caption.setWordWrap(True)
        self.caption.setObjectName("muted")
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # All its lines, always: the picture below gives way (it is scaled to its room).
        self.caption.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        layout.addWidget(self.caption)
        self.pictures = QStackedWidget(self)
        self.picture = QLabel(self.pictures)
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setMinimumSize(240, 240)
        # The pixmap is scaled to the room there is; it must not claim the caption's.
        self.picture.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.pictures.addWidget(self.picture)
        self.plot_widget: Any = None  # a pyqtgraph PlotWidget, made on first use
        layout.addWidget(self.pictures, 1)
        self._enable()

    # ================================================================ the run
    def set_run(self, record: RunRecord | None, model_path: str | None,
                layer_names: list[str], images: bool, project: Any = None) -> None:
        """Look into ``record``'s model at ``model_path`` (None: it has none);
        ``layer_names``: the nodes to offer; ``images``: the model takes images;
        ``project``: the open project (for its current weights)."""
        self.project = project
        same = (record is None and self.record is None) or (
            record is not None and self.record is not None and
            record.run_id == self.record.run_id and model_path == self.model_path)
        self.record, self.model_path, self.images = record, model_path, images
        data = record.data if record is not None else \
            (project.data.to_dict() if project is not None and project.data else None)
        self.chooser.set_data(data)
        current = self.layer.currentText()
        self.layer.clear()
        self.layer.addItems(layer_names)
        if current in layer_names:
            self.layer.setCurrentText(current)
        self.why_button.setText("Why This Class")
        self.importance_button.setVisible(not images)
        self._enable()
        if model_path is None and not self._project_ready():
            self.caption.setText("This run has no trained model to look into."
                                 if record is not None else
                                 "Select a run with a trained model, or choose the "
                                 "project's current weights.")
            return
        if not same and self.last_action is not None and not self.job.busy:
            self._run(self.last_action)  # refreshed for the newly selected run

    def _project_ready(self) -> bool:
        """The project's model can be looked into: its graph, with data to take samples
        from (no run needed)."""
        return self.project is not None and self.project.data is not None and \
            self.weights.currentIndex() == PROJECT_WEIGHTS

    def _enable(self) -> None:
        ready = self.model_path is not None and not self.job.busy
        for button in (self.why_button, self.importance_button):
            button.setEnabled(ready)
        self.output_button.setEnabled(not self.job.busy and (
            self.model_path is not None or self._project_ready()))

    def graph_edited(self, layer_names: list[str]) -> None:
        """The project's graph changed: offer its nodes, and once the edits pause show
        the selected node's output again when it is computed with the project's weights."""
        current = self.layer.currentText()
        self.layer.clear()
        self.layer.addItems(layer_names)
        if current in layer_names:
            self.layer.setCurrentText(current)
        if self.last_action == "output" and self.weights.currentIndex() == PROJECT_WEIGHTS:
            self.edit_timer.start()

    def _after_edits(self) -> None:
        if self.job.busy:
            self._stale = True  # computed again when this result is in
        else:
            self._run("output")

    # ================================================================ actions
    def show_output(self, layer: str | None = None, sample: int | None = None) -> bool:
        if layer:
            self.layer.setCurrentText(layer)
        if sample:
            self.sample.setValue(sample)
        return self._run("output")

    def explain_sample(self, sample: int | None = None) -> bool:
        if sample:
            self.sample.setValue(sample)
        return self._run("why")

    def feature_importance(self) -> bool:
        return self._run("importance")

    def _run(self, action: str) -> bool:
        record, path = self.record, self.model_path
        project = action == "output" and self._project_ready()
        if self.job.busy or not (project or (record is not None and path is not None)):
            return False
        if action == "output" and not self.layer.currentText():
            return False
        out = self._folder(action)
        try:
            chosen = self.chooser.chosen(self._folder("sample"))
        except ValueError as exc:
            self.caption.setText(str(exc))
            return False
        run_id = record.run_id if record is not None else "project"
        if project:
            request: p.Message = p.StartActivations(
                run_id, self.layer.currentText(), str(out), None,
                self.project.graph.to_dict(), self._project_weights(), chosen.inputs_path,
                chosen.data, samples=1, first=chosen.first)
        elif action == "output":
            request = p.StartActivations(
                run_id, self.layer.currentText(), str(out), path, None, None,
                chosen.inputs_path, chosen.data, samples=1, first=chosen.first)
        elif action == "why":
            request = p.StartExplanation(
                run_id, path, "gradcam" if self.images else "integrated-gradients",
                str(out), chosen.inputs_path, chosen.data, samples=1, first=chosen.first)
        else:
            request = p.StartExplanation(run_id, path, "permutation", str(out),
                                         data=dict(record.data or {}), samples=0)
        self.last_action = action
        backend = str(record.backend if record is not None and record.backend else
                      getattr(self.project.training, "backend", None) or "jax")
        self.caption.setText(f"Computing {ACTIONS[action]} in a {backend} worker…")
        self.job.start(request, backend)
        self._enable()
        return True

    def _project_weights(self) -> str | None:
        """The project's current weights as the ``.npz`` a worker builds a graph with
        (``node_id/index`` keys, as training's initial weights); None without weights."""
        weights = getattr(self.project, "weights", None)
        if not weights:
            return None
        import numpy as np

        path = self._folder("weights") / "weights.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **{f"{node_id}/{i}": a for node_id, arrays in weights.items()
                          for i, a in enumerate(arrays)})
        return str(path)

    def _folder(self, action: str) -> Path:
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="kbuilder-inside-"))
        folder = self._scratch / action
        shutil.rmtree(folder, ignore_errors=True)
        return folder

    # ================================================================ results
    def _on_failed(self, reason: str) -> None:
        self._stale = False
        self.caption.setText(f"Could not compute {ACTIONS.get(self.last_action or '', 'it')}:"
                             f" {reason}")
        self._enable()

    def _on_result(self, result: Any) -> None:
        self.result = result
        self._enable()
        if self._stale:  # the graph was edited meanwhile: this output is already old
            self._stale = False
            self.edit_timer.start()
        if isinstance(result, p.ActivationsReady):
            self._show_activations(result.activations)
        elif isinstance(result, p.Explained):
            self._show_explanation(result.explanation)

    def _show_activations(self, stats: dict[str, Any]) -> None:
        from kbuilder.runtime.explain.records import ActivationStats

        s = ActivationStats.from_dict(stats)
        shape = "×".join(str(d) for d in s.shape)
        self.caption.setText(
            f"{s.layer} ({s.layer_class}), output {shape} ({s.kind}), {s.data}, "
            f"{s.weights}, {s.backend}. mean {s.mean:.4g}, std {s.std:.4g}, "
            f"min {s.minimum:.4g}, max {s.maximum:.4g}; {s.zero_fraction:.0%} zeros, "
            f"{s.dead_units} of {s.units} units zero (dead ReLUs on this sample).")
        if s.attention_shape:
            heads, queries, keys = s.attention_shape
            self.caption.setText(
                self.caption.text() + f" Shown: its attention weights, one map per head "
                f"({heads} heads side by side; {queries} query positions down, {keys} key "
                "positions across; each head's map scaled to its own range).")
            self._picture(s.files["attention_picture"])
        elif s.kind == "vector":
            import numpy as np

            values = np.load(s.files["values"])[0]
            self._bars([str(i) for i in range(len(values))], values.tolist(),
                       f"{s.layer}: value per unit")
        elif "picture" in s.files:
            self._picture(s.files["picture"])
        else:
            self.pictures.setCurrentWidget(self.picture)
            self.picture.clear()

    def _show_explanation(self, data: dict[str, Any]) -> None:
        from kbuilder.runtime.explain.records import Explanation

        e = Explanation.from_dict(data)
        words = {"gradcam": "Grad-CAM", "integrated-gradients": "Integrated gradients",
                 "permutation": "Permutation importance", "saliency": "Saliency"}[e.method]
        parts = [f"{words} on {e.backend}, {e.data}"]
        if e.target_names:
            parts.append(f"class {e.target_names[0]} (output {e.scores[0]:.3f}; score "
                         f"explained: {e.score})")
        if e.layer:
            parts.append(f"layer {e.layer}")
        if e.baseline:
            parts.append(f"baseline {e.baseline}, {e.steps} steps, completeness error "
                         f"{e.completeness_error:.2g}")
        if e.method == "permutation":
            parts.append(f"{e.metric} {e.metric_value:.3f} unshuffled, drop when shuffled,"
                         f" mean of {e.repeats} shuffles")
        self.caption.setText("; ".join(parts) + ".")
        if "overlay_0" in e.files:
            self._picture(e.files["overlay_0"])
        elif e.features:
            self._bars(e.features, e.importance, f"{words} per feature",
                       e.importance_std or None)

    def _picture(self, path: str) -> None:
        pixmap = QPixmap(path)
        size = self.picture.size()
        side = max(min(size.width(), size.height()) - 8, 160)
        self.picture.setPixmap(pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                             Qt.TransformationMode.FastTransformation))
        self.pictures.setCurrentWidget(self.picture)

    def _bars(self, names: list[str], values: list[float], title: str,
              errors: list[float] | None = None) -> None:
        import numpy as np
        import pyqtgraph as pg

        from kbuilder.ui.shell import theme

        colors = theme.colors()
        if self.plot_widget is None:
            self.plot_widget = pg.PlotWidget(self.pictures)
            self.plot_widget.setSizePolicy(QSizePolicy.Policy.Ignored,
                                           QSizePolicy.Policy.Ignored)
            self.plot_widget.setMinimumSize(240, 160)
            self.pictures.addWidget(self.plot_widget)
        self.plot_widget.setBackground(colors.background)
        plot = self.plot_widget.getPlotItem()
        plot.clear()
        plot.setTitle(title, color=colors.text.name(), size="10pt")
        for side in ("left", "bottom"):
            plot.getAxis(side).setTextPen(colors.text)
            plot.getAxis(side).setPen(colors.muted)
        x = np.arange(len(values))
        heights = np.asarray(values, dtype=float)
        plot.addItem(pg.BarGraphItem(x=x, height=heights, width=0.7,
                                     brush=pg.mkBrush(70, 130, 180)))
        if errors is not None:
            plot.addItem(pg.ErrorBarItem(x=x, y=heights, height=2 * np.asarray(errors),
                                         beam=0.2, pen=pg.mkPen(colors.text)))
        axis = plot.getAxis("bottom")
        step = max(1, len(names) // 20)  # at most ~20 names under the bars
        axis.setTicks([[(i, names[i]) for i in range(0, len(names), step)]])
        plot.showGrid(y=True, alpha=0.2)
        self.pictures.setCurrentWidget(self.plot_widget)

    def shutdown(self) -> None:
        self.job.shutdown()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
