"""A table with a category, a number with gaps and a column of image paths, fitted with its
preprocessing inside the model (issue 13): the trained model takes raw rows and the
images they name, and predicts on them what kbuilder's own evaluation predicts, on every
backend."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from kbuilder import cli
from kbuilder.graph.project import load_project, save_project
from kbuilder.graph.settings import DataSettings, TrainingSettings
from tests.runtime.image_rows import write_image_rows


def run(*argv):
    return cli.main([str(a) for a in argv])


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """(the CSV, a project of the multi_input template fitted to it in "model" encoding)."""
    from kbuilder.runtime.preflight import new_project_for_data

    folder = tmp_path_factory.mktemp("image_columns")
    path = write_image_rows(folder / "study", n=24, size=8)
    settings = DataSettings(source=f"csv:{path}:target=label", image_size=(8, 8))
    project = new_project_for_data("multi_input", settings,
                                   TrainingSettings(epochs=1, batch_size=8))
    save_project(project, folder / "p.kbproj")
    return path, folder / "p.kbproj"


def test_fitting_builds_the_table_stage_beside_the_image_input(fitted):
    path, project_path = fitted
    project = load_project(project_path)
    assert project.data.table_encoding == "model"
    graph = project.graph
    inputs = {n.name: (n.param("shape"), n.param("dtype", "float32"))
              for n in graph.input_nodes()}
    assert inputs == {"numeric": ([2], "float32"), "site": ([1], "int32"),
                      "image": ([8, 8, 3], "float32")}
    after = {n.name: graph.node(graph.successors(n.id)[0]).class_name
             for n in graph.input_nodes()}
    assert after == {"numeric": "FillMissing", "site": "CategoryEncoding",
                     "image": "Rescaling"}


def _probabilities(path):
    with open(path, newline="") as handle:
        return [(row.get("line"), float(row["p_well"])) for row in csv.DictReader(handle)]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "tensorflow", "torch"])
def test_raw_rows_and_their_images_predict_as_the_evaluation_does(fitted, tmp_path,
                                                                   backend, capsys):
    path, project_path = fitted
    project = tmp_path / "p.kbproj"
    shutil.copy(project_path, project)
    assert run("train", project, "--backend", backend, "--history", tmp_path / "h.json") == 0
    history = json.loads((tmp_path / "h.json").read_text())
    assert history["status"] == "completed", history.get("message")
    # kbuilder's own pipeline on the test split...
    assert run("predict", project, "-o", tmp_path / "test.csv") == 0
    tested = _probabilities(tmp_path / "test.csv")
    lines = [int(line) for line, _ in tested]
    # ...and raw rows of those lines, without the label, in another folder with the images.
    new = tmp_path / "clinic"
    (new / "images").mkdir(parents=True)
    rows = path.read_text().splitlines()
    kept = [rows[0].rsplit(",", 1)[0]] + [rows[n - 1].rsplit(",", 1)[0] for n in lines]
    for row in kept[1:]:
        image = row.split(",")[3]
        shutil.copy(path.parent / image, new / image)
    (new / "rows.csv").write_text("\n".join(kept) + "\n")
    assert run("predict", project, "--input", new / "rows.csv", "-o", tmp_path / "raw.csv") == 0
    raw = _probabilities(tmp_path / "raw.csv")
    np.testing.assert_allclose([p for _, p in raw], [p for _, p in tested], rtol=1e-5,
                               atol=1e-6)
    # The generated training script predicts the same on those raw rows with the run's
    # model (its row encoder and image columns written out from the run).
    script = tmp_path / "train.py"
    assert run("codegen", project, "--training-script", "-o", script) == 0
    text = script.read_text()
    assert "IMAGE_COLUMNS = {'scan': 'image'}" in text or 'IMAGE_COLUMNS = {"scan": "image"}' in text
    script.write_text(text.replace('os.environ["KERAS_BACKEND"] = "jax"',
                                   f'os.environ["KERAS_BACKEND"] = "{backend}"'))
    out = tmp_path / "script.csv"
    result = subprocess.run(
        [sys.executable, str(script), "--predict", str(new / "rows.csv"), "-o", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"})
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out, newline="") as handle:
        scripted = [float(row["output_0"]) for row in csv.DictReader(handle)]
    np.testing.assert_allclose(scripted, [p for _, p in tested], rtol=1e-5, atol=1e-6)
    capsys.readouterr()
