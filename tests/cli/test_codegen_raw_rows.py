"""Generated code predicts on raw rows (issue 13, items 2 and 6): a project fitted to a
tiny messy table (text categories with stray spaces and mixed case, missing numbers, yes/no
words, dates) in "model" encoding; its training script's and notebook's ``encode_rows``
give the runtime's row encoder's arrays, and the script's ``--predict`` gives the
predictions ``kbuilder predict --input`` gives, on JAX, TensorFlow and PyTorch, for raw
rows with an unseen category and missing values."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kbuilder import cli
from kbuilder.graph.codegen import (
    RowEncoding,
    generate_notebook,
    generate_training_script,
    trained_encoding,
)
from kbuilder.graph.project import load_project
from kbuilder.graph.settings import DataSettings
from kbuilder.runtime import data as runtime_data
from kbuilder.runtime.data.row_encoder import encode_file
from tests.graph.codegen.test_codegen_data import environment_kept

HEADER = ["colour", "weight", "height", "smoker", "visit", "grade"]
RAW_HEADER = HEADER[:-1]  # rows to predict on have no target


def messy_csv(path: Path, rows: int = 48, seed: int = 3) -> Path:
    """A table of ``rows`` rows whose class ``grade`` follows weight and colour."""
    rng = np.random.default_rng(seed)
    colours = ["red", "Red ", " green", "blue"]  # stray spaces are stripped, case kept
    out = []
    for i in range(rows):
        colour = colours[i % 4]
        weight = round(float(rng.normal(60 + 15 * (i % 3), 5)), 1)
        height = round(float(rng.normal(170, 8)), 1)
        grade = "ABC"[i % 3]
        cells = [colour, f"{weight}", f"{height}", ["yes", "no"][i % 2],
                 f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}", grade]
        if i % 7 == 0:
            cells[1] = "NA"  # missing numbers, two spellings
        if i % 11 == 0:
            cells[2] = ""
        if i % 13 == 0:
            cells[0] = ""  # a missing category
        out.append(cells)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(out)
    return path


def raw_rows(path: Path) -> Path:
    """Rows to predict on: some of the file's, an unseen colour, missing values."""
    path.write_text(
        ",".join(RAW_HEADER) + "\n"
        "red,61.0,170.2,yes,2024-03-04\n"
        "purple,75.5,,no,2024-05-06\n"
        ",NA,181.0,YES,2024-07-08\n"
        " green,90.1,165.0,no,2024-12-24\n")
    return path


def run(*argv):
    return cli.main([str(a) for a in argv])


def read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def fitted_project(table: Path):
    """The mlp_classifier template fitted to ``table`` (model encoding) and its data."""
    from kbuilder.runtime.preflight import new_project_for_data

    settings = DataSettings.from_dict({"source": f"csv:{table}:target=grade",
                                       "table_encoding": "model"})
    dataset = runtime_data.load_data(settings)
    return new_project_for_data("mlp_classifier", settings, dataset=dataset), dataset


def exec_script(script: str) -> dict:
    namespace: dict = {"__name__": "generated_training"}
    with environment_kept():
        exec(compile(script, "train.py", "exec"), namespace)
    return namespace


def assert_same_inputs(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for name, array in want.items():
        assert got[name].dtype == array.dtype, name
        np.testing.assert_array_equal(got[name], array, err_msg=name)


def test_encode_rows_gives_the_arrays_of_the_runtime_row_encoder(tmp_path):
    from tests.graph.codegen.test_codegen import ruff_problems

    table = messy_csv(tmp_path / "messy.csv")
    raw = raw_rows(tmp_path / "raw.csv")
    project, dataset = fitted_project(table)
    encoder = dataset.row_encoder
    want_raw, want_table = encode_file(encoder, raw), encode_file(encoder, table)
    assert want_raw["colour"][:, 0].tolist()[:2] == [encoder.categories[0]["vocabulary"]
                                                     .index("red") + 1, 0]  # purple: unseen
    # The trained run's encoder, written out: encode_rows works without load_data.
    rows = RowEncoding.from_row_encoder(encoder.to_dict(), "trained.keras")
    script = generate_training_script(project, rows)
    assert ruff_problems(script, tmp_path) == ""
    assert 'TRAINED_MODEL = "trained.keras"' in script and "--predict" in script
    namespace = exec_script(script)
    assert_same_inputs(namespace["encode_rows"](namespace["read_rows"](str(raw))), want_raw)
    assert_same_inputs(namespace["encode_rows"](namespace["read_rows"](str(table))),
                       want_table)
    import pandas as pd  # a DataFrame the user made works as well

    frame = pd.DataFrame({"colour": ["red", "purple", None], "weight": [61.0, None, 3.5],
                          "height": [170.0, 171.5, np.nan], "smoker": ["yes", "No", None],
                          "visit": ["2024-03-04", None, "2024-07-08 10:30"]})
    got = namespace["encode_rows"](frame)
    assert got["colour"][:, 0].tolist() == [want_raw["colour"][0, 0], 0,
                                            1 + encoder.categories[0]["vocabulary"]
                                            .index("(missing)")]
    assert np.isnan(got["numeric"][1, 0]) and got["numeric"][1, 1:3].tolist() == [171.5, 0.0]
    assert np.isnan(got["numeric"][1, 3:]).all()  # no date: every part missing
    assert np.isnan(got["numeric"][2, 2])  # a missing yes/no
    with pytest.raises(SystemExit, match=r"Row 2, column 'weight': 'heavy' is not a number"):
        namespace["encode_rows"](frame.assign(weight=["1", "heavy", "2"]))
    # Without a trained run, load_data learns the same encoder from the data.
    learned = exec_script(generate_training_script(project))
    assert learned["NUMERIC_COLUMNS"] == [] and 'TRAINED_MODEL = "model.keras"' in \
        generate_training_script(project)
    learned["load_data"](learned["DATA_PATH"])
    assert learned["NUMERIC_COLUMNS"] == encoder.columns
    assert learned["VOCABULARIES"] == namespace["VOCABULARIES"]
    assert learned["CLASS_NAMES"] == encoder.class_names == ["A", "B", "C"]
    assert_same_inputs(learned["encode_rows"](learned["read_rows"](str(raw))), want_raw)


def test_an_encoder_for_other_inputs_is_not_written_out(tmp_path):
    project, dataset = fitted_project(messy_csv(tmp_path / "messy.csv"))
    data = dataset.row_encoder.to_dict()
    data["categories"] = [{**c, "input": "other"} for c in data["categories"]]
    script = generate_training_script(project, RowEncoding.from_row_encoder(data))
    assert "NUMERIC_COLUMNS = []" in script  # learned from the data instead


def test_the_notebook_predicts_on_raw_rows(tmp_path, monkeypatch):
    table = messy_csv(tmp_path / "messy.csv")
    project, dataset = fitted_project(table)
    notebook = generate_notebook(project)
    code = [c.source for c in notebook.cells if c.cell_type == "code"]
    assert "predict_csv(model, RAW_ROWS)" in code[-1]
    monkeypatch.chdir(tmp_path)
    space: dict = {"__name__": "notebook"}
    # Unseeded: keras's set_random_seed imports TensorFlow (seconds) to seed it as well.
    setup = code[0].replace("keras.utils.set_random_seed(SEED)", "")
    with environment_kept():
        exec(compile(setup, "setup-cell", "exec"), space)
    exec(compile(code[1], "data-cell", "exec"), space)  # load_data: the encoder too
    exec(compile(code[2], "model-cell", "exec"), space)  # built and adapted, not trained
    space["RAW_ROWS"] = str(raw_rows(tmp_path / "raw.csv"))
    exec(compile(code[-1].replace("RAW_ROWS = DATA_PATH", "pass", 1), "predict-cell", "exec"),
         space)
    model = space["model"]
    names = [n.name for n in project.graph.input_nodes()]
    inputs = encode_file(dataset.row_encoder, tmp_path / "raw.csv")
    want = np.asarray(model.predict([inputs[n] for n in names], verbose=0))
    written = read(tmp_path / "predictions.csv")
    assert [r["predicted"] for r in written] == [
        ["A", "B", "C"][k] for k in want.argmax(axis=1)]
    for row, probabilities in zip(written, want, strict=True):
        for name, p in zip("ABC", probabilities, strict=True):
            assert float(row[f"p_{name}"]) == pytest.approx(float(p), abs=1e-6)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One project trained (2 epochs, JAX) on the messy table, its training script from
    ``kbuilder codegen``, the raw rows and ``kbuilder predict --input``'s predictions."""
    folder = tmp_path_factory.mktemp("rawcode")
    table = messy_csv(folder / "messy.csv")
    project = folder / "p.kbproj"
    assert run("new", "--template", "mlp_classifier", "--data",
               f"csv:{table}:target=grade", "-o", project) == 0
    assert run("train", project, "--backend", "jax", "--epochs", "2") == 0
    script = folder / "train.py"
    assert run("codegen", project, "--training-script", "-o", script) == 0
    raw = raw_rows(folder / "raw.csv")
    assert run("predict", project, "--backend", "jax", "--input", raw,
               "-o", folder / "kbuilder.csv") == 0
    return folder, project, script, raw


@pytest.mark.slow  # one script per backend: 3-10 s each on 2 cores (the fixture ~12 s)
@pytest.mark.parametrize("backend", ["jax", "tensorflow", "torch"])
def test_the_script_predicts_on_raw_rows_as_kbuilder_predict(trained, backend):
    folder, project, script, raw = trained
    rows = trained_encoding(load_project(project), project)
    assert rows is not None and rows.model_path and Path(rows.model_path).is_file()
    text = script.read_text()
    assert f'TRAINED_MODEL = "{rows.model_path}"' in text  # the run's model by default
    # The script's one line naming a backend.
    chosen = text.replace('os.environ["KERAS_BACKEND"] = "jax"',
                          f'os.environ["KERAS_BACKEND"] = "{backend}"')
    assert chosen != text or backend == "jax"
    (folder / f"train_{backend}.py").write_text(chosen)
    out = folder / f"script_{backend}.csv"
    result = subprocess.run(
        [sys.executable, f"train_{backend}.py", "--predict", str(raw), "-o", str(out)],
        cwd=folder, capture_output=True, text=True, timeout=600,
        env={k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Wrote 4 predictions to {out}" in result.stdout
    want, got = read(folder / "kbuilder.csv"), read(out)
    assert len(got) == len(want) == 4  # an unseen colour and missing values predict too
    for mine, theirs in zip(got, want, strict=True):
        assert mine["predicted"] == theirs["predicted"]
        for name in ("A", "B", "C"):
            assert float(mine[f"p_{name}"]) == pytest.approx(float(theirs[f"p_{name}"]),
                                                             abs=1e-5)
    assert not list(folder.glob(".predictions-*"))  # written atomically, nothing left over


def test_kbuilder_layers_live_in_a_module_that_holds_their_globals():
    """torch.compile (a model trained with jit_compile, predicted on PyTorch) looks a
    layer's globals up through the module its class names; that module must hold them."""
    from kbuilder.graph.catalog.kbuilder_layers import keras_class

    cls = keras_class("FillMissing")
    module = sys.modules[cls.__module__]
    assert module.keras is not None and module.layers is not None
    assert module.FillMissing is cls


@pytest.mark.slow  # an export in a worker and a script: ~15 s
def test_the_python_export_predicts_on_raw_rows_with_its_weights(trained, tmp_path, capsys):
    folder, project, _, raw = trained
    capsys.readouterr()
    assert run("export", project, "--format", "python", "-o", folder / "exported") == 0
    assert "train.py --predict rows.csv" in capsys.readouterr().out
    script = folder / "exported" / "train.py"
    assert 'TRAINED_MODEL = "model.weights.h5"' in script.read_text()
    out = tmp_path / "exported.csv"
    result = subprocess.run(  # from another folder: the weights are found beside the script
        [sys.executable, str(script), "--predict", str(raw), "-o", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"})
    assert result.returncode == 0, result.stderr[-3000:]
    for mine, theirs in zip(read(out), read(folder / "kbuilder.csv"), strict=True):
        assert mine["predicted"] == theirs["predicted"]
        assert float(mine["confidence"]) == pytest.approx(float(theirs["confidence"]),
                                                          abs=1e-5)


def test_a_parquet_table_of_values_predicts_values(tmp_path):
    """read_rows of a Parquet file, and a regression's predictions as output_0."""
    import pandas as pd

    from kbuilder.runtime.preflight import new_project_for_data
    from tests.runtime.penguins import cars_csv

    table = tmp_path / "cars.parquet"
    frame = pd.read_csv(cars_csv(tmp_path / "cars.csv", rows=40))
    frame.loc[3, "power_kw"] = None
    frame.to_parquet(table)
    settings = DataSettings.from_dict({"source": f"parquet:{table}:target=consumption",
                                       "table_encoding": "model"})
    dataset = runtime_data.load_data(settings)
    project = new_project_for_data("mlp_classifier", settings, dataset=dataset)
    rows = RowEncoding.from_row_encoder(dataset.row_encoder.to_dict())
    assert rows.class_names == [] and rows.vocabularies == {"fuel": ["diesel", "petrol"]}
    namespace = exec_script(generate_training_script(project, rows))
    want = encode_file(dataset.row_encoder, table)
    assert_same_inputs(namespace["encode_rows"](namespace["read_rows"](str(table))), want)
    model = namespace["build_model"]()
    predictions = namespace["predict_csv"](model, str(table))
    assert list(predictions.columns) == ["output_0"] and len(predictions) == 40
    names = [n.name for n in project.graph.input_nodes()]
    expected = np.asarray(model.predict([want[n] for n in names], verbose=0))[:, 0]
    np.testing.assert_allclose(predictions["output_0"].to_numpy(), expected, atol=1e-6)
