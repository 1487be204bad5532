"""Render results_baseline.png: the Results tab comparing a run with its baselines.

Run: .venv/bin/python docs/screenshots/render_baseline.py
Trains, on JAX, the MLP template fitted to a generated penguin-like table twice: once as
fitted (with its Normalization) and once with the Normalization removed (the model of
issue 13, stuck at the majority class), and shows the stuck run with its baselines.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

from render import HERE, new_window, record_run, settle  # the README's renderer, beside this file

sys.path.insert(0, str(HERE.parents[1]))

from kbuilder.ui.app import create_application  # noqa: E402


def penguin_runs(folder: Path) -> object:
    from kbuilder.graph.commands import ConnectCommand, History, RemoveNodesCommand
    from kbuilder.graph.settings import DataSettings, TrainingSettings
    from kbuilder.runtime.client import Worker
    from kbuilder.runtime.preflight import new_project_for_data
    from tests.runtime.penguins import penguins_csv

    data = DataSettings(source=f"csv:{penguins_csv(folder / 'penguins.csv')}",
                        target="species")
    # The first-run settings of `kbuilder new --data`.
    first_run = TrainingSettings(epochs=40, learning_rate=3e-3, early_stopping={"patience": 8},
                                 reduce_lr_on_plateau={"factor": 0.5, "patience": 3})
    project = new_project_for_data("mlp_classifier", data, first_run)
    worker = Worker("jax")
    try:
        for i in range(2):
            if i == 1:  # the same model without its Normalization
                graph = project.graph
                norm = graph.find("normalization")
                (src,), (dst,) = graph.predecessors(norm.id), graph.successors(norm.id)
                history = History()
                history.push(RemoveNodesCommand(graph, [norm.id]))
                history.push(ConnectCommand(graph, src, 0, dst))
            training = dataclasses.replace(project.training, backend="jax")
            record_run(project, project.data, training, worker,
                       folder / f"run{i + 1}")
            print(project.runs[-1]["message"])
    finally:
        worker.shutdown()
    return project


def main() -> None:
    app = create_application()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        window = new_window(folder)
        project = penguin_runs(folder)
        window.dialogs.unsaved = "discard"
        window.set_project(project)
        window._show_page(window.results_page)
        page = window.results_page
        page.select_runs([run["run_id"] for run in project.runs])
        page.show_run(project.runs[-1]["run_id"])
        settle(app, window)
        page.grab().save(str(HERE / "results_baseline.png"))
        window.close()
    print("written", HERE / "results_baseline.png")


if __name__ == "__main__":
    main()
