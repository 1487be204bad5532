"""The Results tab's Inside view (issue 17), driven as a user does: select a run of the
digits CNN, pick a node and a sample, press Show Output — the node's feature maps and
statistics, equal to what `kbuilder activations` writes; Why This Class — a Grad-CAM
overlay that says its layer; another run selected — the view follows it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kbuilder import cli
from kbuilder.ui.testing import click
from tests.ui.trained_runs import trained_projects

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


@pytest.fixture
def inside(window, run_folder):
    digits, _ = trained_projects(run_folder)
    window.set_project(digits)
    window._show_page(window.results_page)
    page = window.results_page
    page.ensure_built()
    page.tabs.setCurrentWidget(page.insight)
    yield window, page, page.insight
    page.shutdown_workers()


def press(button, view, qtbot) -> None:
    assert button.isEnabled()
    click(button, button.rect().center())
    assert view.job.busy and not button.isEnabled()  # computed in a worker
    qtbot.waitUntil(lambda: not view.job.busy, timeout=180_000)


@pytest.mark.slow
def test_a_nodes_output_and_why_this_class(inside, qtbot, tmp_path):
    window, page, view = inside
    names = [view.layer.itemText(i) for i in range(view.layer.count())]
    conv = next(n for n in names if "conv" in n.lower())
    view.layer.setCurrentText(conv)
    view.sample.setValue(3)
    press(view.output_button, view, qtbot)
    stats = view.result.activations
    assert stats["layer"] == conv and stats["kind"] == "image", view.caption.text()
    assert stats["data"].startswith("sample 3 of the test split")
    assert "zeros" in view.caption.text() and conv in view.caption.text()
    assert not view.picture.pixmap().isNull()
    window.grab().save(str(SCREENSHOTS / "inside_node_output.png"))
    # The same numbers as the command line's, for the same model, node and sample.
    model = page.record(page.current_run_id()).model_file
    data = page.record(page.current_run_id()).data
    out = tmp_path / "cli"
    assert cli.main(["activations", model, "--layer", conv, "--data", data["source"],
                     "--first", "2", "-o", str(out)]) == 0
    shown = np.load(stats["files"]["values"])
    assert np.allclose(np.load(next(out.glob("*.npy"))), shown, atol=1e-6)

    press(view.why_button, view, qtbot)
    explanation = view.result.explanation
    assert explanation["method"] == "gradcam" and explanation["layer"]
    assert f"layer {explanation['layer']}" in view.caption.text()
    assert explanation["target_names"]  # the predicted class, named
    assert not view.picture.pixmap().isNull()
    window.grab().save(str(SCREENSHOTS / "inside_why_this_class.png"))

    # Another run selected: the view shows the same thing for that run's model.
    other = [r for r in page.runs if r.run_id != page.current_run_id()][0]
    page.select_runs([other.run_id])
    qtbot.waitUntil(lambda: view.record is not None and view.record.run_id == other.run_id,
                    timeout=10_000)
    assert view.job.busy
    qtbot.waitUntil(lambda: not view.job.busy, timeout=180_000)
    assert view.result.run_id == other.run_id and view.result.explanation["method"] == "gradcam"


@pytest.mark.slow
def test_a_table_models_why_and_feature_importance(window, run_folder, qtbot):
    from tests.ui.trained_runs import trained_table_project

    project, _ = trained_table_project(run_folder)
    window.set_project(project)
    window._show_page(window.results_page)
    page = window.results_page
    page.ensure_built()
    page.tabs.setCurrentWidget(page.insight)
    view = page.insight
    try:
        assert view.importance_button.isVisibleTo(view)  # a table: importance offered
        press(view.why_button, view, qtbot)
        e = view.result.explanation
        assert e["method"] == "integrated-gradients", view.caption.text()
        assert e["baseline"].startswith("zeros") and e["steps"] == 32
        assert "baseline zeros" in view.caption.text() and "32 steps" in view.caption.text()
        assert len(e["features"]) == len(e["importance"]) >= 2
        press(view.importance_button, view, qtbot)
        e = view.result.explanation
        assert e["method"] == "permutation" and "validation split" in e["data"]
        assert len(e["features"]) >= 2 and e["metric"] == "accuracy"
        assert view.pictures.currentWidget() is view.plot_widget
        window.grab().save(str(SCREENSHOTS / "inside_feature_importance.png"))
    finally:
        page.shutdown_workers()
