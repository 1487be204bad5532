"""The Sweep tab's plots of a study (pyqtgraph, imported when the tab is first shown):
the parameters' importances, parallel coordinates and a trial's curves."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt

if TYPE_CHECKING:
    from kbuilder.runtime.sweep_results import SweepSnapshot, TrialRow


def draw_importances(plot: Any, snap: SweepSnapshot) -> None:
    """The parameters' importances as horizontal bars (most important on top)."""
    import pyqtgraph as pg

    plot.clear()
    items = sorted(snap.importances.items(), key=lambda kv: kv[1])
    plot.setTitle("Parameter importances" + (f" ({snap.importance_note})"
                                             if snap.importance_note else ""))
    if not items:
        return
    bars = pg.BarGraphItem(x0=0, y=list(range(len(items))), height=0.6,
                           width=[v for _, v in items], brush="#8b5cf6")
    plot.addItem(bars)
    plot.getAxis("left").setTicks([[(i, name) for i, (name, _) in enumerate(items)]])


def draw_parallel(plot: Any, snap: SweepSnapshot, done: list[TrialRow],
                  is_log: Callable[[str], bool]) -> None:
    """One line per complete trial through an axis per parameter and the metric, the
    best trials brightest; ``is_log(label)``: the parameter's range is on a log scale."""
    import pyqtgraph as pg

    plot.clear()
    names = sorted({k for r in done for k in r.params})
    if not done or not names:
        return
    axes = [*names, snap.metric]
    scaled = {name: _scaler([r.params.get(name) for r in done], is_log(name))
              for name in names}
    values = [r.value for r in done]
    metric_scale = _scaler(values, False)
    low, high = min(values), max(values)
    colormap = pg.colormap.get("viridis")
    for r in done:
        ys = [scaled[n](r.params.get(n)) for n in names] + [metric_scale(r.value)]
        share = 0.5 if high == low else (r.value - low) / (high - low)
        if snap.direction == "maximize":
            share = 1 - share
        color = colormap.map(1 - share, mode="qcolor")  # the best trials brightest
        plot.plot(list(range(len(axes))), ys, pen=pg.mkPen(color, width=2))
    plot.getAxis("bottom").setTicks([[(i, name) for i, name in enumerate(axes)]])
    plot.setXRange(-0.4, len(axes) - 0.6, padding=0)  # room for the end axes' names
    for i in range(len(axes)):
        plot.addItem(pg.InfiniteLine(pos=i, angle=90, pen=pg.mkPen("#94a3b8", width=1)))


def draw_curves(plot: Any, row: TrialRow | None) -> None:
    """The picked trial's curves: each metric solid, its validation dashed."""
    import pyqtgraph as pg

    plot.clear()
    if plot.plotItem.legend is not None:
        plot.plotItem.legend.clear()
    if row is None:
        plot.setTitle("Curves of the picked trial (pick one in the table)")
        return
    plot.setTitle(f"Curves of trial {row.number} ({row.state})")
    colors = ("#3b82f6", "#f97316", "#22c55e", "#ec4899")
    names = [k for k in row.history if not k.startswith("val_") and k != "learning_rate"]
    for i, name in enumerate(names):
        color = colors[i % len(colors)]
        for key, style in ((name, Qt.PenStyle.SolidLine),
                           (f"val_{name}", Qt.PenStyle.DashLine)):
            ys = [math.nan if v is None else v for v in row.history.get(key, [])]
            if ys:
                plot.plot(list(range(1, len(ys) + 1)), ys, name=key,
                          pen=pg.mkPen(color, width=2, style=style))


def _scaler(values: list[Any], log: bool):
    """Maps a parameter's values to 0..1 (numbers by their range, on a log scale when
    the range is; choices by their order)."""
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) == len(values) and numbers:
        def key(v: float) -> float:
            return math.log(v) if log and v > 0 else float(v)

        low, high = key(min(numbers)), key(max(numbers))
        return lambda v: 0.5 if high == low else (key(v) - low) / (high - low)
    choices = sorted({repr(v) for v in values})
    return lambda v: 0.5 if len(choices) == 1 else choices.index(repr(v)) / (len(choices) - 1)
