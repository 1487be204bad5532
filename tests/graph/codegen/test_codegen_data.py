"""A generated training script prepares its data exactly as a kbuilder run does.

For every kind of source, the script's data section (and the notebook's data cell) is run
next to ``kbuilder.runtime.data.load_data`` + ``fit_to_input`` (what a training run feeds
``model.fit``), and the arrays, their dtypes and the rows of each split must be the same,
bit for bit: same split order and stratification, same seed, same standardisation with the
training rows' statistics, same median filling, same label numbering, same image decoding.
"""

from __future__ import annotations

import contextlib
import csv
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from kbuilder.graph.codegen import data_common, generate_notebook, generate_training_script
from kbuilder.graph.commands import History
from kbuilder.graph.model import Graph
from kbuilder.graph.project import Project
from kbuilder.graph.settings import DataSettings, TrainingSettings
from kbuilder.graph.templates import TEMPLATES
from kbuilder.runtime import data as runtime_data
from kbuilder.runtime.data.dataset import Streamed
from tests.graph.codegen.test_codegen import ruff_problems
from tests.graph.helpers import add_input, add_layer, add_output

# ======================================================================================
# Data files
# ======================================================================================


def write_csv(folder: Path) -> str:
    """Numbers with gaps, text with gaps, a numeric column marked categorical, an identifier,
    a constant column, text class labels and rows without a label."""
    rng = np.random.default_rng(3)
    path = folder / "patients.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["age", "weight", "smoker", "grade", "id", "site", "outcome"])
        for i in range(90):
            writer.writerow([
                "" if i % 7 == 0 else f"{rng.normal(50, 12):.1f}",
                "NA" if i % 11 == 3 else f"{rng.normal(70, 9):.2f}",
                ["yes", "no", ""][i % 3] if i % 5 else "?",
                str(1 + i % 3),
                f"P{i:04d}",
                "north",
                "" if i == 17 else ["healed", "relapse", "stable"][(i * 7) % 3],
            ])
    return f"csv:{path}"


def write_semicolon_csv(folder: Path) -> str:
    """European spreadsheet: ';' delimiter, decimal commas, a numeric (regression) target."""
    rng = np.random.default_rng(4)
    path = folder / "yield.csv"
    lines = ["temperature;rain;soil;harvest"]
    for i in range(40):
        lines.append(f"{rng.normal(20, 4):.2f}".replace(".", ",") + ";"
                     + ("" if i % 9 == 0 else f"{rng.uniform(0, 90):.1f}".replace(".", ","))
                     + ";" + ["clay", "sand", "loam"][i % 3] + ";"
                     + f"{rng.normal(5, 1):.3f}".replace(".", ","))
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    return f"csv:{path}:target=harvest"


def write_headerless_csv(folder: Path) -> str:
    """No header row (columns column_1..), said in the spec; a metadata-free numeric table."""
    rng = np.random.default_rng(11)
    path = folder / "plain.csv"
    lines = [f"{rng.normal():.4f},{rng.integers(0, 9)},{'ab'[i % 2]}" for i in range(36)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f"csv:{path}:header=none"


def write_sklearn_style_csv(folder: Path) -> str:
    """scikit-learn's layout: a metadata line (n_samples, n_features, class names), then
    header-less rows, in cp1252 with quoted text holding a newline."""
    rng = np.random.default_rng(12)
    path = folder / "shipped.csv"
    lines = ["30,3,setosa,versicolor,virginica"]
    for i in range(30):
        lines.append(f"{rng.normal():.3f},{rng.normal() * 1000:.1f},"
                     f"\"caf\u00e9 {i % 3}\nline\",{i % 3}")
    path.write_bytes(("\n".join(lines) + "\n").encode("cp1252"))
    return f"csv:{path}"


def write_dates_tsv(folder: Path) -> str:
    """A TSV with dates (some with a time), a yes/no column, an identifier, messy category
    spellings (merged by the settings) and integer codes made categorical by a role."""
    rng = np.random.default_rng(13)
    path = folder / "visits.tsv"
    lines = ["id\twhen\tfasting\tsex\tcode\tscore"]
    for i in range(48):
        when = f"2024-{1 + i % 12:02d}-{1 + (i * 5) % 28:02d}" + (" 08:30" if i % 4 == 0 else "")
        lines.append("\t".join([
            str(1000 + i), "" if i == 5 else when, ["yes", "no", "NA"][i % 3],
            ["M", "male", "Male ", "female", "F"][i % 5], str(i % 4),
            f"{rng.normal(10, 2):.2f}",
        ]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    return f"tsv:{path}"


def write_parquet(folder: Path) -> str:
    """Parquet with floats (NaN), text (a pandas category), timestamps and integer labels."""
    import pandas as pd

    rng = np.random.default_rng(14)
    path = folder / "measure.parquet"
    n = 40
    frame = pd.DataFrame({
        "length": np.where(np.arange(n) % 6 == 0, np.nan, rng.normal(5, 1, n)),
        "colour": pd.Categorical(["red", "blue", None, "green"] * (n // 4)),
        "taken": pd.date_range("2023-03-01 06:00", periods=n, freq="29h"),
        "label": rng.integers(0, 3, n),
    })
    frame.to_parquet(path)
    return f"parquet:{path}"


def write_npz(folder: Path) -> str:
    rng = np.random.default_rng(5)
    path = folder / "signals.npz"
    labels = np.array(["low", "mid", "high"])[rng.integers(0, 3, size=50)]
    np.savez(path, x=rng.normal(size=(50, 6)), y=labels)
    return f"npz:{path}"


def write_npz_with_test(folder: Path) -> str:
    """x_train/y_train/x_test/y_test with labels 3, 7, 9 (numbered 0, 1, 2)."""
    rng = np.random.default_rng(6)
    path = folder / "own_test.npz"
    np.savez(path, x_train=rng.normal(size=(30, 4)).astype("float64"),
             y_train=rng.choice([3, 7, 9], size=30), x_test=rng.normal(size=(10, 4)),
             y_test=rng.choice([3, 7, 9], size=10))
    return f"npz:{path}"


def write_npy_folder(folder: Path) -> str:
    """x.npy and y.npy in a folder; a 1-D regression target."""
    rng = np.random.default_rng(7)
    (folder / "arrays").mkdir()
    np.save(folder / "arrays" / "x.npy", rng.normal(size=(35, 3)).astype("float32"))
    np.save(folder / "arrays" / "y.npy", rng.normal(size=35))
    return f"npz:{folder / 'arrays'}"


def write_images(folder: Path) -> str:
    """Two classes of PNG and JPEG images of different sizes and modes."""
    rng = np.random.default_rng(8)
    root = folder / "pictures"
    for label, count in (("cats", 9), ("dogs", 7)):
        (root / label / "more").mkdir(parents=True)
        for i in range(count):
            size = (5 + i, 9 - i % 3)
            pixels = rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
            image = Image.fromarray(pixels)
            if i % 3 == 0:
                image.convert("L").save(root / label / f"{i}.png")
            elif i % 3 == 1:
                image.save(root / label / "more" / f"{i}.jpg", quality=90)
            else:
                image.save(root / label / f"{i}.PNG")
    (root / "cats" / "notes.txt").write_text("not an image")
    return f"images:{root}"


# ======================================================================================
# Running both sides
# ======================================================================================


def project_for(settings: DataSettings, sample_shape: tuple, loss: str) -> Project:
    """A small dense model whose input takes ``sample_shape`` (flattened when it has more
    than one axis, as the digits MLP does)."""
    if sample_shape == (8, 8, 1):
        graph = TEMPLATES["mlp_classifier"].build()  # takes 64 values: fit_to_input reshapes
    else:
        h, graph = History(), Graph("model")
        x = add_input(h, graph, list(sample_shape), name="features")
        if len(sample_shape) > 1:
            x = add_layer(h, graph, "Flatten", x)
        add_output(h, graph, add_layer(h, graph, "Dense", x, units=3))
    project = Project.new(graph)
    project.data = settings
    project.training = TrainingSettings(loss=loss)
    return project


@contextlib.contextmanager
def environment_kept():
    """A generated script chooses the Keras backend in ``os.environ``; keep ours."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_script_data(script: str) -> tuple[dict, list]:
    """Define the script's functions (not as __main__), then run its data section as
    ``main()`` does; returns the arrays and the rows ``split_rows`` gave."""
    namespace: dict = {"__name__": "generated_training"}
    with environment_kept():
        exec(compile(script, "train.py", "exec"), namespace)
    rows: list = []
    split_rows = namespace["split_rows"]

    def recording_split_rows(*args, **kwargs):
        rows.append(split_rows(*args, **kwargs))
        return rows[-1]

    namespace["split_rows"] = recording_split_rows
    call = namespace["load_data"]
    loaded = call(namespace["DATA_PATH"]) if "DATA_PATH" in namespace else call()
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = loaded
    fit = namespace["fit_to_input"]
    if "ImageBatches" in namespace:  # image files, read batch by batch
        return streamed_arrays(namespace, loaded), rows
    arrays = {"x_train": fit(x_train), "y_train": y_train, "x_val": fit(x_val), "y_val": y_val,
              "x_test": fit(x_test), "y_test": y_test}
    return arrays, rows


def streamed_arrays(namespace: dict, splits) -> dict:
    """The file lists of a script's image splits and the images its ``ImageBatches``
    read from them, all batches joined in order."""
    arrays = {}
    for name, (files, y) in zip(("train", "val", "test"), splits, strict=True):
        batches = namespace["ImageBatches"](files, y)
        read = [batches[i] for i in range(len(batches))] if len(files) else []
        arrays[f"files_{name}"] = [str(f) for f in files]
        arrays[f"x_{name}"] = np.concatenate([b[0] for b in read]) if read else None
        arrays[f"y_{name}"] = np.concatenate([b[1] for b in read]) if read else y
    return arrays


def run_notebook_data(notebook) -> dict:
    """Run the notebook's setup and data cells; returns the arrays they leave."""
    code = [c.source for c in notebook.cells if c.cell_type == "code"]
    namespace: dict = {"__name__": "notebook"}
    with environment_kept():
        exec(compile(code[0], "setup-cell", "exec"), namespace)
    exec(compile(code[1], "data-cell", "exec"), namespace)
    if "ImageBatches" in namespace:
        return streamed_arrays(namespace, [(namespace[f"x_{s}"], namespace[f"y_{s}"])
                                           for s in ("train", "val", "test")])
    names = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
    return {name: namespace[name] for name in names}


def run_runtime(settings: DataSettings, input_shape: tuple, monkeypatch) -> tuple[dict, tuple]:
    """What a kbuilder training run feeds ``model.fit``, and the rows of its splits."""
    calls = []
    split = runtime_data.split.split_rows

    def recording_split(index, labels, fraction, rng):
        calls.append(split(index, labels, fraction, rng))
        return calls[-1]

    monkeypatch.setattr(runtime_data.split, "split_rows", recording_split)
    dataset = runtime_data.load_data(settings)
    monkeypatch.setattr(runtime_data.split, "split_rows", split)

    def fit(x):
        if x is None:
            return None
        x = runtime_data.fit_to_input(x, input_shape)
        # A streamed image folder: every image as the training feed reads it, in order.
        return np.asarray(x) if isinstance(x, Streamed) else x

    arrays = {"x_train": fit(dataset.x_train), "y_train": dataset.y_train,
              "x_val": fit(dataset.x_val), "y_val": dataset.y_val,
              "x_test": fit(dataset.x_test), "y_test": dataset.y_test}
    for name in ("train", "val", "test"):
        x = getattr(dataset, f"x_{name}")
        if isinstance(x, Streamed):  # the split's file list
            arrays[f"files_{name}"] = [str(f) for f in x.files]
    return arrays, calls


def runtime_rows(calls: list, count: int, own_test: bool, own_validation: bool) -> tuple:
    """(train, validation, test) rows from the runtime's ``_split`` calls, as ``_finish``
    combines them."""
    empty = np.arange(0)
    everything = np.arange(count)
    calls = list(calls)
    if own_test:
        rest, test = everything, empty
    else:
        rest, test = calls.pop(0)
        test = empty if test is None else test
    if own_validation:
        return rest, empty, test
    keep, take = calls.pop(0)
    return rest[keep], (empty if take is None else rest[take]), test


def assert_same_arrays(got: dict, want: dict) -> None:
    for name, expected in want.items():
        have = got[name]
        if name.startswith("files_"):
            assert have == expected, name
            continue
        if expected is None:  # the runtime's empty split; the script's is an empty array
            assert have is None or len(have) == 0, name
            continue
        assert have.dtype == expected.dtype, (name, have.dtype, expected.dtype)
        assert have.shape == expected.shape, (name, have.shape, expected.shape)
        np.testing.assert_array_equal(have, expected, err_msg=name)


# ======================================================================================
# The cases
# ======================================================================================

# name: (writes the data and returns the source, extra data settings, loss, own test set)
CASES = {
    "digits": (lambda folder: "digits", {}, "sparse_categorical_crossentropy", False),
    "iris": (lambda folder: "iris", {"seed": 3}, "sparse_categorical_crossentropy", False),
    "breast_cancer": (lambda folder: "breast_cancer", {"test_split": 0.25},
                      "sparse_categorical_crossentropy", False),
    "diabetes": (lambda folder: "diabetes", {"validation_split": 0.1, "seed": 2},
                 "mean_squared_error", False),
    "csv_categorical_missing": (write_csv, {"target": "outcome", "categorical": ["grade"]},
                                "sparse_categorical_crossentropy", False),
    "csv_semicolon_regression": (write_semicolon_csv, {}, "mean_squared_error", False),
    "csv_headerless": (write_headerless_csv, {}, "sparse_categorical_crossentropy", False),
    "csv_metadata_line_cp1252": (write_sklearn_style_csv, {"seed": 5},
                                 "sparse_categorical_crossentropy", False),
    "tsv_dates_roles_merges": (write_dates_tsv, {
        "target": "sex", "roles": [["code", "categorical"]],
        "merges": [["sex", "M", "male"], ["sex", "Male", "male"], ["sex", "F", "female"]],
    }, "sparse_categorical_crossentropy", False),
    "parquet": (write_parquet, {}, "sparse_categorical_crossentropy", False),
    "npz_text_labels": (write_npz, {"seed": 9}, "sparse_categorical_crossentropy", False),
    "npz_own_test": (write_npz_with_test, {}, "sparse_categorical_crossentropy", True),
    "npy_folder_regression": (write_npy_folder, {"validation_split": 0.0},
                              "mean_squared_error", False),
    "images_rgb": (write_images, {"image_size": [6, 5]}, "sparse_categorical_crossentropy",
                   False),
    "images_grayscale": (write_images, {"image_size": [4, 4], "color_mode": "grayscale",
                                        "seed": 1}, "sparse_categorical_crossentropy", False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_script_and_notebook_prepare_the_data_as_kbuilder_does(case, tmp_path, monkeypatch):
    write, extra, loss, own_test = CASES[case]
    settings = DataSettings.from_dict({"source": write(tmp_path), **extra})
    sample_shape = runtime_data.load_data(settings).sample_shape
    project = project_for(settings, tuple(sample_shape), loss)
    input_shape = (64,) if sample_shape == (8, 8, 1) else tuple(sample_shape)

    want, calls = run_runtime(settings, input_shape, monkeypatch)
    script = generate_training_script(project)
    assert ruff_problems(script, tmp_path) == ""
    got, script_rows = run_script_data(script)
    assert_same_arrays(got, want)
    assert len(script_rows) == 1
    pool = ("y_train", "y_val") if own_test else ("y_train", "y_val", "y_test")
    count = sum(0 if want[k] is None else len(want[k]) for k in pool)
    expected_rows = runtime_rows(calls, count, own_test, own_validation=False)
    for have, expected, split in zip(script_rows[0], expected_rows, ("train", "val", "test"),
                                     strict=True):
        np.testing.assert_array_equal(have, expected, err_msg=split)
    assert_same_arrays(run_notebook_data(generate_notebook(project)), want)


def test_keras_datasets_are_prepared_as_kbuilder_does(monkeypatch):
    """The keras.datasets sets (faked: no downloads here) keep their test set, scale pixels
    and standardise Boston Housing with the training rows' statistics."""
    rng = np.random.default_rng(0)
    fakes = {
        "mnist": lambda: ((rng.integers(0, 256, (40, 5, 5), dtype=np.uint8),
                           rng.integers(0, 10, 40, dtype=np.uint8)),
                          (rng.integers(0, 256, (12, 5, 5), dtype=np.uint8),
                           rng.integers(0, 10, 12, dtype=np.uint8))),
        "cifar10": lambda: ((rng.integers(0, 256, (30, 4, 4, 3), dtype=np.uint8),
                             rng.integers(0, 10, (30, 1))),
                            (rng.integers(0, 256, (8, 4, 4, 3), dtype=np.uint8),
                             rng.integers(0, 10, (8, 1)))),
        "boston_housing": lambda: ((rng.normal(size=(30, 13)), rng.normal(size=30)),
                                   (rng.normal(size=(9, 13)), rng.normal(size=9))),
        "imdb": lambda num_words=None: (
            (np.array([list(rng.integers(1, 50, n)) for n in rng.integers(5, 300, 24)],
                      dtype=object), rng.integers(0, 2, 24)),
            (np.array([list(rng.integers(1, 50, n)) for n in rng.integers(5, 300, 6)],
                      dtype=object), rng.integers(0, 2, 6))),
    }
    for name, fake in fakes.items():
        data = fake()  # the same arrays for both sides
        monkeypatch.setattr(getattr(keras.datasets, name), "load_data",
                            lambda *a, data=data, **k: data)
        settings = DataSettings.from_dict({"source": name, "validation_split": 0.25, "seed": 4})
        shape = runtime_data.load_data(settings).sample_shape
        want, _ = run_runtime(settings, tuple(shape), monkeypatch)
        project = project_for(settings, tuple(shape), "sparse_categorical_crossentropy")
        got, _ = run_script_data(generate_training_script(project))
        assert_same_arrays(got, want)


def test_the_rules_agree_with_the_runtime():
    assert data_common.CLASS_LABEL_LIMIT == runtime_data.CLASS_LABEL_LIMIT
    assert data_common.VOCABULARY_SIZE == runtime_data.VOCABULARY_SIZE
    assert data_common.SEQUENCE_LENGTH == runtime_data.SEQUENCE_LENGTH
    assert data_common.MAX_AUTO_CATEGORIES == runtime_data.MAX_AUTO_CATEGORIES
    assert set(data_common.MISSING_MARKERS) == runtime_data.MISSING_MARKERS
    assert data_common.MISSING_CATEGORY == runtime_data.MISSING_CATEGORY


# ======================================================================================
# One array per model input
# ======================================================================================


def write_multi_npz(folder: Path, own_test: bool) -> str:
    """Arrays named after a model's two Inputs (one of images to flatten), text class
    labels in `label`, an array no input takes, and maybe the file's own test split."""
    rng = np.random.default_rng(11)
    path = folder / "two_inputs.npz"
    n = 44
    arrays = {"vitals": rng.normal(size=(n, 3)), "scan": rng.random((n, 4, 4)),
              "label": np.array(["a", "b", "c"])[rng.integers(0, 3, n)],
              "unused": rng.normal(size=(n, 2))}
    if own_test:
        arrays |= {"vitals_test": rng.normal(size=(6, 3)), "scan_test": rng.random((6, 4, 4)),
                   "label_test": np.array(["a", "b", "c"])[rng.integers(0, 3, 6)],
                   "unused_test": rng.normal(size=(6, 2))}
    np.savez(path, **arrays)
    return f"npz:{path}"


def two_input_project(settings: DataSettings, loss: str) -> Project:
    h, graph = History(), Graph("two_inputs")
    vitals = add_input(h, graph, [3], name="vitals")
    scan = add_input(h, graph, [16], name="scan")  # the data's 4x4 samples are flattened
    joined = add_layer(h, graph, "Concatenate", vitals, scan)
    add_output(h, graph, add_layer(h, graph, "Dense", joined, units=3))
    project = Project.new(graph)
    project.data = settings
    project.training = TrainingSettings(loss=loss)
    return project


@pytest.mark.parametrize("own_test, mapped", [(False, False), (True, False), (False, True)])
def test_a_file_of_one_array_per_input_is_prepared_as_kbuilder_does(own_test, mapped,
                                                                     tmp_path):
    source = write_multi_npz(tmp_path, own_test)
    extra = ({"input_arrays": {"vitals": "vitals", "scan": "scan"},
              "output_arrays": {"output": "label"}} if mapped else {})
    settings = DataSettings.from_dict({"source": source, "seed": 5, **extra})
    project = two_input_project(settings, "sparse_categorical_crossentropy")
    dataset = runtime_data.load_data(settings)
    names, shapes = ["vitals", "scan"], [(3,), (16,)]
    want = {"y_train": dataset.y_train, "y_val": dataset.y_val, "y_test": dataset.y_test}
    for split in ("train", "val", "test"):
        fitted = runtime_data.fit_to_inputs(getattr(dataset, f"x_{split}"), names, shapes)
        for name, array in zip(names, fitted, strict=True):
            want[f"x_{split}/{name}"] = array
    script = generate_training_script(project)
    assert ruff_problems(script, tmp_path) == ""
    assert "raise SystemExit(" not in script.split("def main")[1].split("load_data")[0]
    namespace: dict = {"__name__": "generated_training"}
    with environment_kept():
        exec(compile(script, "train.py", "exec"), namespace)
    splits = namespace["load_data"](namespace["DATA_PATH"])
    got = {}
    for split, (x, y) in zip(("train", "val", "test"), splits, strict=True):
        got[f"y_{split}"] = y
        for name, array in zip(names, namespace["fit_to_inputs"](x), strict=True):
            got[f"x_{split}/{name}"] = array
    assert_same_arrays(got, want)
    assert len(got["x_test/scan"]) == (6 if own_test else len(dataset.y_test))
    notebook = generate_notebook(project)
    code = [c.source for c in notebook.cells if c.cell_type == "code"]
    space: dict = {"__name__": "notebook"}
    with environment_kept():
        exec(compile(code[0], "setup-cell", "exec"), space)
    exec(compile(code[1], "data-cell", "exec"), space)
    for i, name in enumerate(names):
        np.testing.assert_array_equal(space["x_train"][i], want[f"x_train/{name}"])


def two_output_project(settings: DataSettings, loss: str) -> Project:
    """Two Inputs and two Outputs: "kind" (classes) and "size" (a value)."""
    h, graph = History(), Graph("two_outputs")
    vitals = add_input(h, graph, [3], name="vitals")
    scan = add_input(h, graph, [16], name="scan")
    joined = add_layer(h, graph, "Concatenate", vitals, scan)
    add_output(h, graph, add_layer(h, graph, "Dense", joined, units=3), name="kind")
    add_output(h, graph, add_layer(h, graph, "Dense", joined, units=1), name="size")
    project = Project.new(graph)
    project.data = settings
    project.training = TrainingSettings(loss=loss)
    return project


@pytest.mark.parametrize("own_test, loss", [
    pytest.param(False, "sparse_categorical_crossentropy",
                 marks=pytest.mark.slow),  # trains the script too: 6-18 s
    (True, "categorical_crossentropy"),
])
def test_a_file_of_one_array_per_output_is_prepared_as_kbuilder_does(own_test, loss,
                                                                     tmp_path):
    """Targets by Output name (output_arrays): each encoded on its own, the split
    stratified by the first, the same arrays and rows as the runtime's."""
    source = write_multi_npz(tmp_path, own_test)
    path = source.split(":", 1)[1]
    with np.load(path) as archive:
        arrays = dict(archive)
    rng = np.random.default_rng(2)
    arrays["size"] = rng.normal(size=len(arrays["label"]))
    if own_test:
        arrays["size_test"] = rng.normal(size=len(arrays["label_test"]))
    np.savez(path, **arrays)
    settings = DataSettings.from_dict({
        "source": source, "seed": 7, "input_arrays": {"vitals": "vitals", "scan": "scan"},
        "output_arrays": {"kind": "label", "size": "size"}})
    project = two_output_project(settings, loss)
    dataset = runtime_data.load_data(settings)
    assert sorted(dataset.y_train) == ["kind", "size"]
    names, shapes = ["vitals", "scan"], [(3,), (16,)]
    want = {}
    for split in ("train", "val", "test"):
        fitted = runtime_data.fit_to_inputs(getattr(dataset, f"x_{split}"), names, shapes)
        for name, array in zip(names, fitted, strict=True):
            want[f"x_{split}/{name}"] = array
        targets = runtime_data.fit_targets(getattr(dataset, f"y_{split}"), ["kind", "size"])
        for name, array in zip(["kind", "size"], targets, strict=True):
            want[f"y_{split}/{name}"] = array
    script = generate_training_script(project)
    assert ruff_problems(script, tmp_path) == ""
    main = script.split("def main")[1]
    assert "raise SystemExit(" not in main.split("load_data")[0]  # no stop: targets given
    assert 'TARGET_ARRAYS = {"kind": "label", "size": "size"}' in script
    assert 'metrics=[["accuracy"], ["accuracy"]]' in main
    namespace: dict = {"__name__": "generated_training"}
    with environment_kept():
        exec(compile(script, "train.py", "exec"), namespace)
    splits = namespace["load_data"](namespace["DATA_PATH"])
    got = {}
    for split, (x, y) in zip(("train", "val", "test"), splits, strict=True):
        for name, array in zip(names, namespace["fit_to_inputs"](x), strict=True):
            got[f"x_{split}/{name}"] = array
        for name, array in zip(["kind", "size"], namespace["fit_targets"](y), strict=True):
            got[f"y_{split}/{name}"] = array
    assert_same_arrays(got, want)
    assert len(got["x_test/scan"]) == (6 if own_test else len(dataset.y_test["kind"]))
    assert got["y_train/size"].dtype == np.float32 and got["y_train/kind"].dtype == np.int32
    if loss == "categorical_crossentropy":  # one-hot rows for each output's classes
        assert "y_train[i], y_val[i], y_test[i] = one_hot(*targets)" in main
        return
    # The script trains the two outputs (one epoch, JAX) and saves the model.
    script_path = tmp_path / "train.py"
    script_path.write_text(script)
    result = subprocess.run(
        [sys.executable, str(script_path), "--epochs", "1", "--output", "two.keras"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"})
    assert result.returncode == 0, result.stderr[-3000:]
    tested = [line for line in result.stdout.splitlines() if line.startswith("test ")]
    assert sum(line.endswith("accuracy", 0, line.index(":")) for line in tested) == 2, tested
    assert (tmp_path / "two.keras").is_file()


@pytest.mark.parametrize("writer, extra", [
    (write_csv, {"target": "outcome", "categorical": ["grade"]}),
    (write_dates_tsv, {}),
])
def test_a_table_in_model_encoding_is_prepared_as_kbuilder_does(writer, extra, tmp_path):
    """Raw numbers (NaN kept) and category codes of the training vocabulary, one array per
    Input of the fitted model, the same in the script, the notebook and the runtime."""
    from kbuilder.runtime.preflight import new_project_for_data

    settings = DataSettings.from_dict({"source": writer(tmp_path), "seed": 4,
                                       "table_encoding": "model", **extra})
    dataset = runtime_data.load_data(settings)
    project = new_project_for_data("mlp_classifier", settings, dataset=dataset)
    inputs = project.graph.input_nodes()
    names, shapes = [n.name for n in inputs], [tuple(n.param("shape")) for n in inputs]
    assert names[0] == "numeric" and len(names) >= 2
    want = {"y_train": dataset.y_train, "y_val": dataset.y_val, "y_test": dataset.y_test}
    for split in ("train", "val", "test"):
        fitted = runtime_data.fit_to_inputs(getattr(dataset, f"x_{split}"), names, shapes)
        for name, array in zip(names, fitted, strict=True):
            want[f"x_{split}/{name}"] = array
    assert np.isnan(want["x_train/numeric"]).any()  # filled by the model, not the data
    script = generate_training_script(project)
    assert ruff_problems(script, tmp_path) == ""
    namespace: dict = {"__name__": "generated_training"}
    with environment_kept():
        exec(compile(script, "train.py", "exec"), namespace)
    splits = namespace["load_data"](namespace["DATA_PATH"])
    got = {}
    for split, (x, y) in zip(("train", "val", "test"), splits, strict=True):
        got[f"y_{split}"] = y
        for name, array in zip(names, namespace["fit_to_inputs"](x), strict=True):
            got[f"x_{split}/{name}"] = array
    assert_same_arrays(got, want)
    vocabularies = {c["column"]: c["vocabulary"] for c in dataset.row_encoder.categories}
    assert namespace["VOCABULARIES"] == vocabularies
    notebook = generate_notebook(project)
    code = [c.source for c in notebook.cells if c.cell_type == "code"]
    space: dict = {"__name__": "notebook"}
    with environment_kept():
        exec(compile(code[0], "setup-cell", "exec"), space)
    exec(compile(code[1], "data-cell", "exec"), space)
    for i, name in enumerate(names):
        np.testing.assert_array_equal(space["x_train"][i], want[f"x_train/{name}"])


# ======================================================================================
# A streamed table: rows split by a hash of their line
# ======================================================================================
def write_streamed_csv(folder: Path) -> Path:
    """Numbers with gaps, a category, a value over two lines, a blank line, a row without
    a label: each moves the line numbers the split is drawn from."""
    rng = np.random.default_rng(8)
    path = folder / "big.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["size", "colour", "label"])
        for i in range(70):
            colour = "light\nblue" if i == 5 else ["red", "blue", "green"][i % 3]
            writer.writerow(["" if i % 9 == 4 else f"{rng.normal(3, 1):.2f}", colour,
                             "" if i == 11 else ["yes", "no"][int(rng.integers(0, 2))]])
            if i == 30:
                f.write("\n")
    return path


@pytest.mark.parametrize(("fmt", "encoding"), [("csv", "flat"), ("parquet", "flat"),
                                              ("csv", "model")])
def test_a_streamed_table_is_split_by_the_same_rows_in_the_script(fmt, encoding, tmp_path):
    """With ``stream_table`` the script splits each row by the hash of its line as
    ``table_stream.split_of`` does: the same rows (by line) in each split, in file order,
    with the same targets and encoded features, though the runtime reads the file in
    blocks (small ones here) and the script reads it whole."""
    from kbuilder.runtime.data.table_stream import scan_table

    path = write_streamed_csv(tmp_path)
    if fmt == "parquet":
        import pandas as pd

        frame = pd.read_csv(path)  # size: floats with NaN; colour, label: text
        path = tmp_path / "big.parquet"
        frame.to_parquet(path, row_group_size=16)
    settings = DataSettings.from_dict({"source": f"{fmt}:{path}", "target": "label",
                                       "stream_table": True, "seed": 4,
                                       "validation_split": 0.2, "test_split": 0.25,
                                       "table_encoding": encoding})
    plan = scan_table(settings, block_bytes=300)
    assert len(plan.reader.blocks) > 2  # really in blocks
    want: dict[int, list] = {0: [], 1: [], 2: []}
    for block in plan.reader.blocks:
        x, y, lines, split = plan.encode(plan.reader.read(block))
        for part in range(3):
            in_part = split == part
            want[part].append(({k: v[in_part] for k, v in x.items()} if encoding == "model"
                               else x[in_part], y[in_part], lines[in_part]))

    project = project_for(settings, (plan.width,), "sparse_categorical_crossentropy")
    script = generate_training_script(project)
    assert "kbuilder streamed it" in script and "def split_of" in script
    assert ruff_problems(script, tmp_path) == ""
    namespace: dict = {"__name__": "generated_training"}
    with environment_kept():
        exec(compile(script, "train.py", "exec"), namespace)
    calls = []
    split_samples = namespace["split_samples"]

    def recording_split_samples(path, y, classes, kept):
        calls.append((kept, split_samples(path, y, classes, kept)))
        return calls[-1][1]

    namespace["split_samples"] = recording_split_samples
    splits = namespace["load_data"](namespace["DATA_PATH"])
    (kept, rows), = calls
    sample_lines = namespace["row_lines"](namespace["DATA_PATH"])[kept]
    for part, (x, y) in enumerate(splits):
        xs, ys, lines = zip(*want[part], strict=True)
        x_want = {k: np.concatenate([x[k] for x in xs]) for k in xs[0]} \
            if encoding == "model" else np.concatenate(xs)
        y_want, lines_want = np.concatenate(ys), np.concatenate(lines)
        name = ("train", "validation", "test")[part]
        np.testing.assert_array_equal(sample_lines[rows[part]], lines_want, err_msg=name)
        np.testing.assert_array_equal(y, y_want, err_msg=name)
        if encoding == "model":  # raw inputs by name: numbers (NaN kept), category codes
            assert sorted(x) == sorted(x_want), name
            for key in x:
                np.testing.assert_allclose(x[key], x_want[key], rtol=1e-6, err_msg=name)
        else:
            np.testing.assert_allclose(namespace["fit_to_input"](x), x_want, rtol=1e-6,
                                       err_msg=name)
    assert min(len(r) for r in rows) > 5  # every split has rows
    if encoding == "flat":  # the notebook's data cell: the same splits
        cells = run_notebook_data(generate_notebook(project))
        for (x, y), name in zip(splits, ("train", "val", "test"), strict=True):
            np.testing.assert_array_equal(cells[f"y_{name}"], y, err_msg=name)
            np.testing.assert_array_equal(cells[f"x_{name}"], namespace["fit_to_input"](x))


# ======================================================================================
# A table with a column of image paths (tabular + image), preprocessing in the model
# ======================================================================================
@pytest.mark.parametrize("encoding", ["model", "flat"])
def test_a_table_with_image_paths_is_prepared_as_kbuilder_does(encoding, tmp_path):
    """The multi_input template fitted to a table with a category, a number with a gap
    and a column of image paths, its preprocessing in the model or the columns encoded
    outside it: the script's and the notebook's inputs (images read by ``InputBatches``
    from the same files) are the runtime's, bit for bit."""
    from kbuilder.runtime.preflight import fit_template_to_data, new_project_for_data
    from tests.runtime.image_rows import write_image_rows

    path = write_image_rows(tmp_path / "study", n=20, size=6)
    settings = DataSettings(source=f"csv:{path}:target=label", image_size=(5, 4), seed=2,
                            table_encoding=encoding)
    dataset = runtime_data.load_data(settings)
    if encoding == "model":
        project = new_project_for_data("multi_input", settings, dataset=dataset)
    else:  # an older project: one-hot encoding and median filling outside the model
        graph = TEMPLATES["multi_input"].build()
        fit = fit_template_to_data(graph, dataset)
        fit.apply()
        project = Project.new(graph)
        project.data, project.training = settings, TrainingSettings(loss=fit.loss)
    inputs = project.graph.input_nodes()
    names, shapes = [n.name for n in inputs], [tuple(n.param("shape")) for n in inputs]
    assert sorted(names) == (["image", "numeric", "site"] if encoding == "model"
                             else ["image", "tabular"])
    want = {}
    for split in ("train", "val", "test"):
        x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
        want[f"y_{split}"] = y
        want[f"files_{split}"] = [str(f) for f in x["scan"].files]
        fitted = runtime_data.fit_to_inputs(x, names, shapes)
        for name, array in zip(names, fitted, strict=True):
            want[f"x_{split}/{name}"] = np.asarray(array)
    assert want["x_train/image"].dtype == np.uint8
    assert want["x_train/image"].shape[1:] == (5, 4, 3)
    if encoding == "model":  # filled by the model, not the data
        assert any(np.isnan(want[f"x_{s}/numeric"]).any() for s in ("train", "val", "test"))
    script = generate_training_script(project)
    assert ruff_problems(script, tmp_path) == ""

    def read(space, splits):
        got = {}
        for split, (x, y) in zip(("train", "val", "test"), splits, strict=True):
            got[f"y_{split}"] = y
            got[f"files_{split}"] = list(x["image"])
            batches = space["InputBatches"](x, y)
            read = [batches[i] for i in range(len(batches))]
            for j, name in enumerate(names):
                got[f"x_{split}/{name}"] = np.concatenate([b[0][j] for b in read])
            np.testing.assert_array_equal(np.concatenate([b[1] for b in read]), y)
        return got

    namespace: dict = {"__name__": "generated_training"}
    with environment_kept():
        exec(compile(script, "train.py", "exec"), namespace)
    assert_same_arrays(read(namespace, namespace["load_data"](namespace["DATA_PATH"])), want)
    assert namespace["IMAGE_COLUMNS"] == {"scan": "image"}
    if encoding == "flat":  # Normalization adapted on the filled features, as kbuilder does
        assert 'model.get_layer("normalization").adapt(x_train["tabular"])' in script
    notebook = generate_notebook(project)
    code = [c.source for c in notebook.cells if c.cell_type == "code"]
    space: dict = {"__name__": "notebook"}
    with environment_kept():
        exec(compile(code[0].replace("keras.utils.set_random_seed(SEED)", ""), "setup-cell",
                     "exec"), space)
    exec(compile(code[1], "data-cell", "exec"), space)
    assert_same_arrays(read(space, [(space[f"x_{s}"], space[f"y_{s}"])
                                    for s in ("train", "val", "test")]), want)
    # A missing image stops the script with its row, as kbuilder names its line.
    (path.parent / "images" / "s7.png").unlink()
    with pytest.raises(SystemExit, match=r"Row 8, column 'scan': the image 'images/s7.png' "
                                         "does not exist"):
        namespace["load_data"](namespace["DATA_PATH"])
