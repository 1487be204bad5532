"""Render predict-file.png: the Results tab's Predictions of a run on a file of new rows.

Run: .venv/bin/python docs/screenshots/render_predict.py
Trains, on JAX, the MLP template fitted to a generated penguin-like table (its
preprocessing in the model), then predicts with the run's model on new raw rows of that
table — without the species, one of them from an island never seen in training and with
empty cells — as "Predict on a file…" does.
"""

from __future__ import annotations

import csv
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

from render import HERE, new_window, record_run, settle  # the README's renderer, beside this file

sys.path.insert(0, str(HERE.parents[1]))

from kbuilder.ui.app import create_application  # noqa: E402


def penguin_run(folder: Path) -> tuple[object, Path]:
    from kbuilder.graph.settings import DataSettings, TrainingSettings
    from kbuilder.runtime.client import Worker
    from kbuilder.runtime.preflight import new_project_for_data
    from tests.runtime.penguins import penguins_csv

    table = penguins_csv(folder / "penguins.csv")
    data = DataSettings(source=f"csv:{table}", target="species")
    project = new_project_for_data("mlp_classifier", data,
                                   TrainingSettings(epochs=30, learning_rate=3e-3))
    training = dataclasses.replace(project.training, backend="jax")
    worker = Worker("jax")
    try:
        record_run(project, project.data, training, worker,
                   folder / "run1")
    finally:
        worker.shutdown()
    print(project.runs[-1]["message"])
    return project, table


def new_rows(table: Path, path: Path) -> Path:
    with open(table, newline="") as handle:
        header, *body = list(csv.reader(handle))
    at = header.index("species")
    rows = [[c for i, c in enumerate(r) if i != at] for r in body[100:140]]
    rows[3] = ["Atlantis", "41.0", "", "200.0", "4100.0", ""]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([h for h in header if h != "species"])
        writer.writerows(rows)
    return path


def main() -> None:
    app = create_application()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        window = new_window(folder)
        project, table = penguin_run(folder)
        window.dialogs.unsaved = "discard"
        window.set_project(project)
        window._show_page(window.results_page)
        page = window.results_page
        page.show_run(project.runs[-1]["run_id"])
        window.dialogs.open_path = str(new_rows(table, folder / "new penguins.csv"))
        page.predict_button.click()
        view = page.predictions
        deadline = time.monotonic() + 300
        while view.busy and time.monotonic() < deadline:
            settle(app, window)
            time.sleep(0.05)
        assert not view.busy and view.table.rowCount(), view.status.text()
        settle(app, window)
        page.grab().save(str(HERE / "predict-file.png"))
        page.shutdown_workers()
        window.close()
    print("written", HERE / "predict-file.png")


if __name__ == "__main__":
    main()
