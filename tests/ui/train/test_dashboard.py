"""The dashboard's learning-rate plot: linear while the rate is steady, logarithmic once a
schedule or ReduceLROnPlateau has moved it more than tenfold."""

from __future__ import annotations

import pytest

from kbuilder.runtime import protocol as p
from kbuilder.ui.train.dashboard import LEARNING_RATE, QtDashboard


def feed(dashboard: QtDashboard, rates: list[float]) -> None:
    dashboard.on_run_started(p.RunStarted("r", "jax", "cpu", epochs=len(rates),
                                          steps_per_epoch=10, train_samples=100,
                                          val_samples=20, test_samples=20,
                                          data_fingerprint=""))
    for epoch, rate in enumerate(rates):
        dashboard.on_epoch(p.EpochEnd("r", epoch, {"loss": 1.0 / (epoch + 1)}, rate, 0.1,
                                      1000.0, 1.0))
    dashboard.redraw()


@pytest.fixture
def dashboard(qtbot):
    widget = QtDashboard()
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    widget.show()
    return widget


def test_a_steady_learning_rate_keeps_a_linear_axis(dashboard):
    feed(dashboard, [1e-3] * 5)
    plot = dashboard.plots[LEARNING_RATE]
    assert not plot.log_y
    low, high = plot.item.vb.viewRange()[1]
    assert low < 1e-3 < high  # the view is in rates, around the one rate


def test_a_rate_cut_more_than_tenfold_gets_a_log_axis_with_readable_ticks(dashboard):
    feed(dashboard, [1e-3, 1e-3, 5e-4, 1e-4, 2e-5])
    plot = dashboard.plots[LEARNING_RATE]
    assert plot.log_y
    low, high = plot.item.vb.viewRange()[1]
    assert low < -4.69 and high > -3.0  # decades: log10(2e-5) .. log10(1e-3)
    labels = [label for _value, label in
              plot.item.getAxis("left")._tickLevels[0]]
    assert labels == ["2e-05", "5e-05", "0.0001", "0.0002", "0.0005", "0.001"]
    # A new run starts linear again.
    feed(dashboard, [1e-3] * 3)
    assert not dashboard.plots[LEARNING_RATE].log_y


def test_the_legend_sits_above_the_plots_not_over_the_curves(dashboard):
    """Issue 12 item 26: each plot's legend covered the validation curve."""
    feed(dashboard, [1e-3] * 5)
    assert all(plot.item.legend is None for plot in dashboard.plots.values())
    legend = dashboard.legend
    assert [legend.labels[k].text() for k in ("batch", "train", "val")] == [
        "train (batch)", "train (epoch)", "validation"]
    assert legend.isVisible()
    assert legend.geometry().bottom() <= dashboard.graphics.geometry().top()
