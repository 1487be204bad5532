"""The Train tab's data-parallel choice (issue 16 item 5): offered when the backend sees
more than one device, the batch size said to be the global batch, and on a backend that
Keras cannot distribute, a sentence that suggests JAX."""

from __future__ import annotations

import os
from pathlib import Path

from kbuilder.runtime import protocol as p

SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"


def test_data_parallel_is_offered_with_several_gpus_and_explained(mlp_window, qtbot):
    window = mlp_window
    window._show_page(window.train_page)
    page = window.train_page
    page.backend.setCurrentIndex(page.backend.findData("jax"))
    page.batch_size.setValue(64)
    # One CPU (this machine): nothing to offer, and nothing said.
    page.controller.devices_found.emit("jax", ["cpu"])
    assert not page.distribute.isEnabled() and page.distribute_note.isHidden()
    # The worker reports two GPUs (as on a machine that has them).
    page.controller.devices_found.emit("jax", ["cpu", "gpu:0", "gpu:1"])
    assert page.distribute.isEnabled()
    page.distribute.setCurrentIndex(page.distribute.findData("data-parallel"))
    training = window.project.training
    assert training.distribute == "data-parallel" and training.devices is None
    assert page.distribute_note.text().startswith("Batch 64 in all: 64 per device on 1 "
                                                  "device. Choose a GPU as the device")
    page.device.setCurrentIndex(page.device.findData("gpu:0"))
    assert window.project.training.device == "gpu:0"
    assert page.distribute_note.text() == "Batch 64 in all: 32 per device on 2 devices."
    assert page.parallel_devices.isEnabled() and page.parallel_devices.text() == "all devices"
    page.parallel_devices.setValue(2)
    page.batch_size.setValue(128)
    assert window.project.training.devices == 2
    assert page.distribute_note.text() == "Batch 128 in all: 64 per device on 2 devices."
    assert window.isWindowModified()
    # When the worker reports the run's devices, the log says how the batch is split.
    page.controller.run_started.emit(p.RunStarted("r1", "jax", "gpu:0", 1, 9, 1078, 360, 359,
                                                  "fingerprint", devices=2))
    assert ("Data-parallel: Batch 128 in all: 64 per device on 2 devices."
            in page.dashboard.console.toPlainText())
    if os.environ.get("KBUILDER_SCREENSHOTS"):
        page.resize(1200, 760)
        page.form.grab().save(str(SCREENSHOTS / "train-data-parallel.png"))


def test_a_backend_keras_cannot_distribute_says_so_and_suggests_jax(mlp_window, qtbot):
    window = mlp_window
    window._show_page(window.train_page)
    page = window.train_page
    page.controller.devices_found.emit("jax", ["cpu", "gpu:0", "gpu:1"])
    page.distribute.setCurrentIndex(page.distribute.findData("data-parallel"))
    page.backend.setCurrentIndex(page.backend.findData("torch"))
    assert window.project.training.backend == "torch"
    note = page.distribute_note.text()
    assert not page.distribute_note.isHidden()
    assert "only on the JAX backend, not on torch" in note and "Choose the JAX backend" in note
    assert not page.parallel_devices.isEnabled()
    # Still on, so it can be turned off here.
    assert page.distribute.isEnabled()
    page.distribute.setCurrentIndex(page.distribute.findData("none"))
    assert window.project.training.distribute == "none" and page.distribute_note.isHidden()
