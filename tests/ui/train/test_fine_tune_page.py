"""Two-phase training from the Train tab: the settings in the form, one run, the curves
running on across the phases with a line where the second begins."""

from __future__ import annotations

import os

import pytest

from kbuilder.ui.testing import type_into
from tests.graph.finetune_models import frozen_backbone_project
from tests.ui.train.test_train_page import RUN_TIMEOUT_MS, click, train_page

pytestmark = pytest.mark.slow


def test_a_two_phase_run_from_the_train_tab(window, qtbot, tmp_path):
    project = frozen_backbone_project(tmp_path)
    window.set_project(project)
    page = train_page(window, "jax", epochs=1, batch_size=16)
    group = page.fine_tune
    assert not group.start.isEnabled()  # off until it has epochs
    group.epochs.setValue(2)
    assert group.start.isEnabled()
    assert "conv_top" in [group.start.itemText(i) for i in range(group.start.count())]
    group.start.setCurrentText("conv_top")
    group._on_start()
    assert "0.0001 (learning rate / 10)" == group.learning_rate.placeholderText()
    type_into(group.learning_rate, "lots")
    assert "fine_tune_learning_rate must be a number" in page.errors[
        "fine_tune_learning_rate"].text()
    type_into(group.learning_rate, "0.0005")
    training = window.project.training
    assert (training.fine_tune_epochs, training.fine_tune_from,
            training.fine_tune_learning_rate) == (2, "conv_top", 0.0005)
    with qtbot.waitSignal(page.run_recorded, timeout=RUN_TIMEOUT_MS) as recorded:
        click(page.train_button)
    record = recorded.args[0]
    assert record.status == "completed", record.message
    assert record.training["fine_tune_from"] == "conv_top"  # both phases' settings kept
    assert record.training["epochs"] == 1 and record.training["fine_tune_epochs"] == 2
    plots = page.dashboard.plots
    assert list(plots["loss"].curves["train"].xData) == [1, 2, 3]
    assert [line.value() for line in plots["loss"].markers] == [1.5]
    assert "Phase 2 from epoch 2: fine-tuning the layers from 'conv_top'" in \
        page.dashboard.console.toPlainText()
    if os.environ.get("KBUILDER_SCREENSHOTS"):
        window.grab().save(os.path.join(os.environ["KBUILDER_SCREENSHOTS"],
                                        "fine-tuning.png"))
