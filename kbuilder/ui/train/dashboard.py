"""The live training dashboard: curves, progress, throughput, ETA and a log console.

Messages only append to preallocated NumPy buffers (which double when full); a timer
redraws the curves that changed at most 20 times a second. The plots downsample (peak
mode) and clip to the visible range, so curves of 100k points stay smooth
(pyqtgraph's ``examples/scrollingPlots.py``). The x axis is in epochs everywhere: a batch
at step ``s`` sits at ``(s + 1) / steps_per_epoch``, the end of epoch ``e`` at ``e + 1``,
so batch and epoch curves of the same metric share one plot.

pyqtgraph (and NumPy) load with the plots, not with this module: importing them took a
third of the window's start-up. The dashboard builds its plots when it is first shown or
first fed a run; the engine loader imports pyqtgraph (on the GUI thread) once the catalog
is built (``kbuilder.ui.jobs.engine``), so the first visit to the Train tab does not wait.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontDatabase, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from kbuilder.graph.text import plural
from kbuilder.runtime import protocol as p
from kbuilder.ui.shell import theme

if TYPE_CHECKING:
    import pyqtgraph as pg

SMOOTH_POINTS = 300  # antialiased curves up to this many points
SYMBOL_POINTS = 150  # a dot on each epoch's value up to this many epochs
# Batch messages come at most 20 times a second: more frames than that show nothing new.
REDRAW_MS = 50
LOG_BLOCKS = 5000  # lines the console keeps
LEARNING_RATE = "learning rate"
# A learning rate that changes more than this many times over a run is plotted on a log
# axis: on a linear one, the late, small rates of a schedule sit flat on the floor.
LOG_RATIO = 10.0
# Logs keys that are not metrics to plot (ReduceLROnPlateau adds the learning rate).
NOT_METRICS = frozenset({"learning_rate", "lr"})
VAL_COLOR = "#f97316"
PLOT_BACKGROUND = {False: "#ffffff", True: "#1b1d21"}  # by "is the theme dark"
BACKEND_LABELS = {"jax": "JAX", "tensorflow": "TensorFlow", "torch": "PyTorch"}


class Series:
    """x/y values in preallocated arrays that double when full."""

    def __init__(self, capacity: int = 1024):
        import numpy as np

        self.x = np.empty(capacity)
        self.y = np.empty(capacity)
        self.n = 0
        # Running bounds of the finite values, so fitting the view never scans the data.
        self.x_max = -math.inf
        self.y_min, self.y_max = math.inf, -math.inf

    def append(self, x: float, y: float | None) -> None:
        if self.n == len(self.x):
            import numpy as np

            self.x = np.concatenate([self.x, np.empty(len(self.x))])
            self.y = np.concatenate([self.y, np.empty(len(self.y))])
        self.x[self.n] = x
        self.y[self.n] = math.nan if y is None else y  # NaN: a gap (non-finite value)
        self.n += 1
        self.x_max = max(self.x_max, x)
        if y is not None and math.isfinite(y):
            self.y_min, self.y_max = min(self.y_min, y), max(self.y_max, y)

    def extend(self, x, y) -> None:
        """Many points at once (benchmarks, restoring a run)."""
        import numpy as np

        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        needed = self.n + len(x)
        if needed > len(self.x):
            capacity = max(needed, 2 * len(self.x))
            self.x = np.concatenate([self.x[:self.n], np.empty(capacity - self.n)])
            self.y = np.concatenate([self.y[:self.n], np.empty(capacity - self.n)])
        self.x[self.n:needed] = x
        self.y[self.n:needed] = y
        self.n = needed
        finite = y[np.isfinite(y)]
        if len(x):
            self.x_max = max(self.x_max, float(x.max()))
        if len(finite):
            self.y_min = min(self.y_min, float(finite.min()))
            self.y_max = max(self.y_max, float(finite.max()))

    def view(self):
        """The filled part of the buffers: ``(x, y)`` NumPy views."""
        return self.x[:self.n], self.y[:self.n]


class MetricPlot:
    """One plot: a metric's per-batch train curve and per-epoch train/validation curves.

    The view follows the data in steps instead of pyqtgraph's auto-range: the x range
    doubles (up to the run's epochs) when the curves reach its end, the y range changes
    only when a value leaves it or the values fill less than half of it. Re-ranking the
    axes (new ticks and labels) costs most of a frame, so this keeps frames cheap. A
    user who pans or zooms takes over the view; the plot's "A" button gives it back.
    """

    KINDS = ("batch", "train", "val")

    def __init__(self, name: str):
        import pyqtgraph as pg

        self.name = name
        self.item = pg.PlotItem(title=name)
        self.item.setDownsampling(auto=True, mode="peak")
        self.item.setClipToView(True)
        # No grid: pyqtgraph draws it as part of the axes, across the whole plot, and it
        # made every frame about five times as expensive.
        self.item.setLabel("bottom", "epoch")
        self.item.setMenuEnabled(False)
        # No legend inside the plot: wherever it sat, some curve ran under it. The
        # dashboard shows one legend above the plots (every plot has the same curves).
        self.series = {kind: Series() for kind in self.KINDS}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.dirty: set[str] = set()
        self.epochs = 1.0  # the run's length: the widest the x range needs to be
        self.markers: list = []  # pg.InfiniteLine: where a run's phases begin
        self.follow = True
        self.x_range = (0.0, 0.0)
        self.y_range = (0.0, 0.0)
        self.log_y = False  # the y axis is logarithmic (a learning rate over decades)
        self.item.disableAutoRange()
        self.item.vb.sigRangeChangedManually.connect(self._taken_over)
        self.item.autoBtn.clicked.connect(self._given_back)
        for kind in curve_kinds(name):
            label = "learning rate" if name == LEARNING_RATE else CURVE_LABELS[kind]
            # The batch curve is dense: no antialiasing (see ensure_plots).
            self.curves[kind] = self.item.plot(name=label, antialias=kind != "batch")
        self.apply_colors()

    def apply_colors(self) -> None:
        import pyqtgraph as pg

        c = theme.colors()
        pens = {kind: pg.mkPen(color, width=width)
                for kind, (color, width) in curve_colors().items()}
        if self.name == LEARNING_RATE:
            pens["train"] = pg.mkPen(c.valid, width=2)
        for kind, curve in self.curves.items():
            curve.setPen(pens[kind])
            if kind != "batch":
                color = pens[kind].color()
                curve.setSymbol("o")
                curve.setSymbolSize(5)
                curve.setSymbolPen(color)
                curve.setSymbolBrush(color)
        for axis in ("left", "bottom"):
            ax = self.item.getAxis(axis)
            ax.setPen(pg.mkPen(c.muted))
            ax.setTextPen(pg.mkPen(c.muted))
        self.item.setTitle(self.name, color=c.text.name(), size="10pt")

    def clear(self, epochs: int) -> None:
        """No points, a view over ``epochs`` epochs, following the data again."""
        self.series = {kind: Series() for kind in self.KINDS}
        for kind, curve in self.curves.items():
            curve.setData([], [])
            if kind != "batch":
                curve.setSymbol("o")
        self.dirty.clear()
        self.epochs = float(epochs)
        self.follow = True
        self.x_range = self.y_range = (0.0, 0.0)
        if self.log_y:
            self.log_y = False
            self.item.setLogMode(y=False)
            self.item.getAxis("left").setTicks(None)
        for line in self.markers:
            self.item.removeItem(line)
        self.markers = []
        self.item.setXRange(0, epochs, padding=0.02)
        self.item.setYRange(0, 1, padding=0.02)

    def mark(self, x: float, label: str) -> None:
        """A dashed vertical line at ``x`` (where a fine-tuning phase begins)."""
        import pyqtgraph as pg

        c = theme.colors()
        line = pg.InfiniteLine(pos=x, angle=90, movable=False,
                               pen=pg.mkPen(c.muted, width=1, style=Qt.PenStyle.DashLine),
                               label=label, labelOpts={"position": 0.92, "color": c.muted})
        self.item.addItem(line, ignoreBounds=True)
        self.markers.append(line)

    def add(self, kind: str, x: float, y: float | None) -> None:
        self.series[kind].append(x, y)
        self.dirty.add(kind)

    def redraw(self) -> None:
        for kind in self.dirty:
            x, y = self.series[kind].view()
            # Smooth lines while they are few; beyond that antialiasing costs the frame rate.
            smooth = kind != "batch" and len(x) <= SMOOTH_POINTS
            curve = self.curves[kind]
            if kind != "batch" and len(x) > SYMBOL_POINTS and curve.opts["symbol"]:
                curve.setSymbol(None)  # dots merge into a line anyway, and cost each frame
            curve.setData(x, y, connect="finite", antialias=smooth)
        self.dirty.clear()
        if self.name == LEARNING_RATE and not self.log_y:
            rates = self.series["train"]
            if rates.y_min > 0 and rates.y_max > LOG_RATIO * rates.y_min:
                self.log_y = True
                self.item.setLogMode(y=True)
                self.y_range = (0.0, 0.0)  # the range is in decades now
                if self.follow:
                    self._fit(force=True)
                return
        if self.follow:
            self._fit()

    def _fit(self, force: bool = False) -> None:
        series = [s for s in self.series.values() if s.n]
        if not series:
            return
        x_max = max(s.x_max for s in series)
        y_min = min(s.y_min for s in series)
        y_max = max(s.y_max for s in series)
        if force or x_max > self.x_range[1]:
            end = max(self.x_range[1], min(1.0, self.epochs))
            while end < x_max:
                end *= 2
            end = max(min(end, self.epochs), x_max)
            self.x_range = (0.0, end)
            self.item.setXRange(0.0, end, padding=0.02)
        if not math.isfinite(y_min):
            return
        if self.log_y:  # the view's y coordinates are decades
            y_min, y_max = math.log10(y_min), math.log10(y_max)
        low, high = self.y_range
        margin = 0.03 * (high - low)  # a value on the very edge reads as cut off
        if (force or y_min < low + margin or y_max > high - margin
                or (y_max - y_min) < 0.5 * (high - low)):
            pad = 0.08 * (y_max - y_min) or 0.05 * abs(y_max) or 0.5
            self.y_range = (y_min - pad, y_max + pad)
            self.item.setYRange(*self.y_range, padding=0)
            if self.log_y:
                self.item.getAxis("left").setTicks(log_ticks(*self.y_range))

    def _taken_over(self, *_args) -> None:
        self.follow = False

    def _given_back(self) -> None:
        self.item.disableAutoRange()
        self.follow = True
        self._fit(force=True)

    def count(self, kind: str) -> int:
        return self.series[kind].n


class QtDashboard(QWidget):
    """What a run shows while it trains.

    Feed it the controller's messages (``on_run_started``, ``on_batch``, ``on_epoch``,
    ``log``) and call ``on_ended`` at the end.
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.plots: dict[str, MetricPlot] = {}
        self.graphics: pg.GraphicsLayoutWidget | None = None  # built by ensure_plots()
        self._metrics: tuple[str, ...] = ("loss",)  # what the plots show once built
        self.steps_per_epoch = 1
        self.epochs = 1
        self.total_steps = 1
        self._started_at: float | None = None
        self._paused_at: float | None = None  # the clock stands still while paused
        self._ended = False
        self._pending: tuple[int, str, float, float | None] | None = None
        self.frames = 0  # redraws done (the benchmark counts them)

        self.status = QLabel("No run yet. Press Train to start one.", self)
        self.status.setObjectName("sectionTitle")
        self.status.setWordWrap(True)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.epoch_label = self._stat("epoch", "Epoch", "—")
        self.speed_label = self._stat("speed", "Throughput", "—")
        self.eta_label = self._stat("eta", "Time left", "—")
        self.elapsed_label = self._stat("elapsed", "Elapsed", "—")
        stats = QGridLayout()
        stats.setContentsMargins(0, 0, 0, 0)
        stats.setHorizontalSpacing(24)
        stats.addWidget(self.status, 0, 0, 1, 4)
        stats.addWidget(self.progress, 1, 0, 1, 4)
        for column, (caption, value) in enumerate(
            (self.epoch_label, self.speed_label, self.eta_label, self.elapsed_label)
        ):
            stats.addWidget(caption, 2, column)
            stats.addWidget(value, 3, column)

        # The plots' place, filled by ensure_plots() (the first showing or the first run).
        self.plot_area = QWidget(self)
        self.plot_area.setObjectName("plotArea")
        self.plot_area.setAutoFillBackground(True)
        plot_layout = QVBoxLayout(self.plot_area)
        plot_layout.setContentsMargins(0, 0, 0, 0)
        plot_layout.setSpacing(0)
        self.legend = QtLegend(self.plot_area)
        plot_layout.addWidget(self.legend)
        self.console = QPlainTextEdit(self)
        self.console.setReadOnly(True)
        self.console.setMaximumBlockCount(LOG_BLOCKS)
        self.console.setPlaceholderText("The run's log appears here.")
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        mono.setPointSizeF(max(8.0, QFont().pointSizeF() - 1))
        self.console.setFont(mono)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.plot_area)
        split.addWidget(self.console)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        split.setSizes([560, 150])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(stats)
        layout.addWidget(split, 1)

        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.redraw)
        self._clock = QTimer(self)
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._update_elapsed)
        theme.manager().changed.connect(self.apply_theme)
        self.reset(("loss",))
        self.apply_theme()

    def _stat(self, name: str, caption: str, value: str) -> tuple[QLabel, QLabel]:
        label = QLabel(caption, self)
        label.setObjectName("muted")
        shown = QLabel(value, self)
        shown.setObjectName(f"stat_{name}")
        shown.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = shown.font()
        font.setPointSizeF(font.pointSizeF() + 2)
        shown.setFont(font)
        return label, shown

    # --------------------------------------------------------------- plots
    @property
    def plots_built(self) -> bool:
        return self.graphics is not None

    def ensure_plots(self) -> None:
        """Build the plot widget and the plots (imports pyqtgraph the first time)."""
        if self.graphics is not None:
            return
        import pyqtgraph as pg

        # Antialiased wide lines cost the most paint time of a dense curve; the few points of
        # the epoch curves ask for it themselves.
        pg.setConfigOptions(antialias=False)
        self.graphics = pg.GraphicsLayoutWidget(self.plot_area)
        self.graphics.ci.setSpacing(10)
        self.graphics.ci.setContentsMargins(4, 4, 4, 4)
        self.plot_area.layout().addWidget(self.graphics)
        self.graphics.show()  # a child added to a shown widget stays hidden until asked
        self._set_plots(self._metrics, self.epochs)
        self.apply_theme()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.graphics is None:
            # After this paint: the tab appears at once, its plots a moment later.
            QTimer.singleShot(0, self, self.ensure_plots)

    def reset(self, metrics: tuple[str, ...] | list[str] = ("loss",), epochs: int = 1) -> None:
        """Empty curves for ``loss``, each of ``metrics`` and the learning rate, over
        ``epochs`` epochs."""
        self._metrics, self.epochs = tuple(metrics), max(1, epochs)
        if self.graphics is not None:
            self._set_plots(self._metrics, self.epochs)
        self.progress.setValue(0)
        self.progress.setFormat("")
        for _caption, value in (self.epoch_label, self.speed_label, self.eta_label,
                                self.elapsed_label):
            value.setText("—")
        self._started_at = None
        self._paused_at = None
        self._ended = False
        self._pending = None

    def _plot_names(self, metrics: tuple[str, ...]) -> list[str]:
        return list(dict.fromkeys(("loss", *metrics, LEARNING_RATE)))

    def _set_plots(self, metrics: tuple[str, ...], epochs: int) -> None:
        names = self._plot_names(metrics)
        if names != list(self.plots):
            # A new plot costs ~0.1 s of GUI time: keep the ones that stay.
            self.plots = {name: self.plots.get(name) or MetricPlot(name) for name in names}
            self._layout_plots()
        for plot in self.plots.values():
            plot.clear(epochs)

    def _layout_plots(self) -> None:
        self.graphics.ci.clear()
        count = len(self.plots)
        columns = 2 if count <= 4 else 3
        for i, plot in enumerate(self.plots.values()):
            alone = i == count - 1 and i % columns == 0  # the last row's only plot
            self.graphics.ci.addItem(plot.item, row=i // columns, col=i % columns,
                                     colspan=columns if alone else 1)

    def _plot(self, name: str) -> MetricPlot:
        self.ensure_plots()
        plot = self.plots.get(name)
        if plot is None:  # a metric the settings did not name (e.g. a compile metric)
            lr = self.plots.pop(LEARNING_RATE)
            plot = self.plots[name] = MetricPlot(name)
            plot.clear(self.epochs)
            self.plots[LEARNING_RATE] = lr
            self._layout_plots()
        return plot

    def apply_theme(self) -> None:
        c = theme.colors()
        palette = self.plot_area.palette()
        palette.setColor(self.plot_area.backgroundRole(), QColor(PLOT_BACKGROUND[c.dark]))
        self.plot_area.setPalette(palette)
        self.legend.refresh()
        if self.graphics is None:
            return
        self.graphics.setBackground(QColor(PLOT_BACKGROUND[c.dark]))
        for plot in self.plots.values():
            plot.apply_colors()

    def redraw(self) -> None:
        """Hand the changed buffers to their curves and the latest progress to the
        header (the timer's job, 20 times a second)."""
        if self._pending is not None:
            progress, epoch, speed, eta = self._pending
            self._pending = None
            self.progress.setValue(progress)
            self.epoch_label[1].setText(epoch)
            self._show_speed(speed, eta)
        for plot in self.plots.values():
            if plot.dirty:
                plot.redraw()
        self.frames += 1

    @property
    def empty(self) -> bool:
        """No curve has a point (no run was shown since the last reset)."""
        return not any(self.point_counts().values())

    def point_counts(self) -> dict[str, int]:
        """Points received per curve, ``"loss/batch"``, ``"val_loss"``-style keys."""
        if self.graphics is None:  # no plot yet, so no point: the curves it will have
            return {f"{name}/{kind}": 0 for name in self._plot_names(self._metrics)
                    for kind in curve_kinds(name)}
        counts = {}
        for name, plot in self.plots.items():
            for kind in plot.curves:
                counts[f"{name}/{kind}"] = plot.count(kind)
        return counts

    # ------------------------------------------------------------ messages
    def on_run_started(self, message: p.RunStarted, metrics: tuple[str, ...] = ()) -> None:
        self.steps_per_epoch = max(1, message.steps_per_epoch)
        self.epochs = max(1, message.epochs)
        self.total_steps = self.steps_per_epoch * self.epochs
        self.reset(metrics, self.epochs)
        self.ensure_plots()
        self._started_at = time.monotonic()
        self.status.setText(training_heading(message.backend, message.device))
        self.epoch_label[1].setText(f"1 / {self.epochs}")
        self.progress.setFormat("%p%")
        self._timer.start()
        self._clock.start()
        self.log("info", f"Run {message.run_id} started on {message.backend} "
                         f"({message.device}): {message.train_samples} training, "
                         f"{message.val_samples} validation, "
                         f"{plural(message.test_samples, 'test sample')}; "
                         f"{plural(message.steps_per_epoch, 'batch', 'batches')} per epoch.")

    def on_batch(self, message: p.BatchEnd) -> None:
        x = (message.step + 1) / self.steps_per_epoch
        for key, value in message.logs.items():
            if key not in NOT_METRICS and not key.startswith("val_"):
                self._plot(key).add("batch", x, value)
        # Shown at the next frame: a progress bar repaints at once on every new value.
        self._pending = (round(1000 * (message.step + 1) / self.total_steps),
                         f"{message.epoch + 1} / {self.epochs}",
                         message.samples_per_second, message.eta_seconds)

    def on_epoch(self, message: p.EpochEnd) -> None:
        x = message.epoch + 1
        for key, value in message.logs.items():
            if key in NOT_METRICS:
                continue
            if key.startswith("val_"):
                self._plot(key[4:]).add("val", x, value)
            else:
                self._plot(key).add("train", x, value)
        if message.learning_rate is not None:
            self._plot(LEARNING_RATE).add("train", x, message.learning_rate)
        self._pending = (round(1000 * x * self.steps_per_epoch / self.total_steps),
                         f"{min(x + 1, self.epochs)} / {self.epochs}",
                         message.samples_per_second, message.eta_seconds)
        # loss first, each metric before its validation value
        keys = sorted((k for k in message.logs if k not in NOT_METRICS),
                      key=lambda k: (k.removeprefix("val_") != "loss", k.removeprefix("val_"),
                                     k.startswith("val_")))
        shown = " · ".join(f"{k} {_number(message.logs[k])}" for k in keys)
        seconds = (f"{message.seconds:.1f} s" if message.seconds >= 1
                   else f"{message.seconds * 1000:.0f} ms")
        self.log("info", f"Epoch {x}/{self.epochs}: {shown} ({seconds})")

    def on_phase(self, message: p.PhaseStarted) -> None:
        """A fine-tuning run's second phase: a line between its epochs on every plot."""
        for plot in self.plots.values():
            plot.mark(message.epoch + 0.5, f"phase {message.phase}: fine-tuning")
        # (the worker's log line says what was unfrozen, at which learning rate)

    def on_ended(self, status: str, text: str, details: str = "",
                 failed: bool = False) -> None:
        """The run is over: a last redraw, the outcome (``text``) in the header, and it
        with ``details`` in the log."""
        self.redraw()
        self._timer.stop()
        self._clock.stop()
        self.set_paused(False)  # a run stopped while paused ends its pause
        self._update_elapsed()
        self._ended = True
        self.eta_label[1].setText("—")
        if status == "completed":
            self.progress.setValue(1000)
        self.status.setText(text or status)
        self.log("error" if failed else "info", "\n".join(x for x in (text, details) if x))

    def log(self, level: str, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        prefix = {"warning": "warning: ", "error": "error: "}.get(level, "")
        self.console.appendPlainText(f"{stamp}  {prefix}{text}")

    def _show_speed(self, samples_per_second: float, eta: float | None) -> None:
        if samples_per_second:
            self.speed_label[1].setText(f"{samples_per_second:,.0f} samples/s")
        self.eta_label[1].setText(_duration(eta) if eta is not None else "—")

    def set_paused(self, paused: bool) -> None:
        """Stop (or restart) the Elapsed clock: a pause is not training time."""
        now = time.monotonic()
        if paused and self._paused_at is None:
            self._paused_at = now
        elif not paused and self._paused_at is not None:
            if self._started_at is not None:
                self._started_at += now - self._paused_at
            self._paused_at = None
        self._update_elapsed()

    @property
    def elapsed(self) -> float | None:
        """Seconds the run has trained, pauses left out (``None`` before it starts)."""
        if self._started_at is None:
            return None
        return (self._paused_at or time.monotonic()) - self._started_at

    def _update_elapsed(self) -> None:
        elapsed = self.elapsed
        if elapsed is not None:
            self.elapsed_label[1].setText(_duration(elapsed))


CURVE_LABELS = {"batch": "train (batch)", "train": "train (epoch)", "val": "validation"}


def training_heading(backend: str, device: str) -> str:
    """``Training on PyTorch (CPU)``: what a run says while it trains."""
    shown = "CPU" if device == "cpu" else device.upper()
    return f"Training on {BACKEND_LABELS.get(backend, backend)} ({shown})"


def curve_colors() -> dict[str, tuple[QColor, int]]:
    """Each curve kind's colour and line width in the current theme."""
    accent = QColor(theme.colors().selection)
    faint = QColor(accent)
    faint.setAlpha(110)
    return {"batch": (faint, 1), "train": (accent, 2), "val": (QColor(VAL_COLOR), 2)}


class QtLegend(QWidget):
    """The curves' legend, once, above the plots: a swatch and a label per curve kind."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("legend")
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 12, 0)
        row.setSpacing(6)
        row.addStretch(1)
        self.swatches: dict[str, QLabel] = {}
        self.labels: dict[str, QLabel] = {}
        for kind in MetricPlot.KINDS:
            swatch, label = QLabel(self), QLabel(CURVE_LABELS[kind], self)
            label.setObjectName("muted")
            row.addWidget(swatch)
            row.addWidget(label)
            row.addSpacing(10)
            self.swatches[kind], self.labels[kind] = swatch, label
        self.refresh()

    def refresh(self) -> None:
        """Swatches in the theme's colours (after a theme change)."""
        for kind, (color, width) in curve_colors().items():
            pixmap = QPixmap(28, 12)
            pixmap.fill(Qt.GlobalColor.transparent)
            p = QPainter(pixmap)
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setPen(QPen(color, width))
            p.drawLine(2, 6, 26, 6)
            if kind != "batch":  # the epoch curves have a dot per epoch
                p.setBrush(color)
                p.drawEllipse(QPointF(14, 6), 2.5, 2.5)
            p.end()
            self.swatches[kind].setPixmap(pixmap)


def curve_kinds(name: str) -> tuple[str, ...]:
    """The curves of the plot ``name``: the learning rate has one value per epoch, a loss or
    metric its per-batch, per-epoch and validation values."""
    return ("train",) if name == LEARNING_RATE else MetricPlot.KINDS


def log_ticks(low: float, high: float) -> list[list[tuple[float, str]]]:
    """Ticks of a log axis spanning ``low``..``high`` decades: 1, 2 and 5 times each power
    of ten (only the powers when that is too many), labelled as plain numbers.

    pyqtgraph's own log ticks label every minor step, and they overlap over a decade or two.
    """
    values = [m * 10.0 ** k for k in range(math.floor(low), math.ceil(high) + 1)
              for m in (1, 2, 5) if low <= math.log10(m) + k <= high]
    if len(values) > 7:
        values = [v for v in values if f"{v:e}".startswith("1")]
    return [[(math.log10(v), f"{v:g}") for v in values]]


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _number(value: float | None) -> str:
    if value is None:
        return "nan"
    return f"{value:.4g}"
