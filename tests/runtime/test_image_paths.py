"""A table with a column of image paths feeding a tabular + image model (issue 13 item 4)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kbuilder import cli
from kbuilder.graph.project import load_project
from kbuilder.graph.settings import DataSettings
from kbuilder.runtime.data import DataError, column_roles, load_data
from kbuilder.runtime.data.images import ImageFiles
from kbuilder.runtime.data.tables import read_table
from tests.runtime.image_rows import write_image_rows


def run(*argv):
    return cli.main([str(a) for a in argv])


def test_a_column_of_image_paths_feeds_images_and_the_rest_features(tmp_path):
    path = write_image_rows(tmp_path)
    settings = DataSettings(source=f"csv:{path}:target=label", image_size=(8, 8))
    roles = {r.name: r.role for r in column_roles(read_table(settings.table()), settings,
                                                  "label")}
    assert roles == {"age": "numeric", "dose": "numeric", "site": "categorical",
                     "scan": "image_path", "label": "target"}
    ds = load_data(settings)
    assert set(ds.x_train) == {"features", "scan"}
    assert isinstance(ds.x_train["scan"], ImageFiles)
    assert ds.x_train["scan"].dtype == np.uint8 and ds.x_train["scan"].shape[1:] == (8, 8, 3)
    assert ds.feature_names == ["age", "dose", "site=east", "site=north", "site=south"]
    assert not np.isnan(ds.x_train["features"]).any()  # the gap in 'dose' filled
    for x, y in ds.splits().values():  # the same rows for both inputs
        assert len(x["features"]) == len(x["scan"]) == len(y)
        # Row i of the CSV is s{i}.png, with age written in the features.
        rows = [int(f.rsplit("s", 1)[1][:-4]) for f in x["scan"].files]
        ages = np.loadtxt(path, delimiter=",", skiprows=1, usecols=0)[rows]
        np.testing.assert_allclose(x["features"][:, 0], ages, rtol=1e-6)
    # Paths are relative to the CSV's folder: the working directory does not matter.
    assert all(f.startswith(str(tmp_path.resolve())) for f in ds.x_train["scan"].files)
    # The user decides which data feeds which Input.
    mapped = load_data(DataSettings(source=settings.source, image_size=(8, 8),
                                    input_arrays=(("image", "scan"), ("tabular", "features"))))
    assert set(mapped.x_train) == {"image", "tabular"}


def test_a_missing_image_is_named_with_its_line(tmp_path):
    path = write_image_rows(tmp_path, n=12)
    (tmp_path / "images" / "s5.png").unlink()
    with pytest.raises(DataError) as info:
        load_data(DataSettings(source=f"csv:{path}:target=label",
                               roles=(("scan", "image_path"),)))
    assert "rows.csv line 7, column 'scan'" in str(info.value)
    assert "'images/s5.png' does not exist" in str(info.value)
    assert info.value.line == 7


def test_an_image_path_outside_the_tables_folder_is_refused(tmp_path):
    path = write_image_rows(tmp_path / "study", n=12)
    text = path.read_text().replace("images/s2.png", "../elsewhere/s2.png")
    path.write_text(text)
    with pytest.raises(DataError) as info:
        load_data(DataSettings(source=f"csv:{path}:target=label",
                               roles=(("scan", "image_path"),)))
    message = str(info.value)
    assert "rows.csv line 4, column 'scan'" in message
    assert "points outside the folder of rows.csv" in message
    assert "give an absolute path, or move the images into that folder" in message


def test_the_training_script_generator_refuses_such_a_table_encoded_outside_the_model(
        tmp_path):
    """Generated scripts read columns of image paths with the table's preprocessing in the
    model (``tests/graph/codegen/test_codegen_data.py``); a project whose table is
    encoded outside the model ("flat") is refused with what to do."""
    import dataclasses

    from kbuilder.graph.codegen import CodegenError, generate_training_script

    path = write_image_rows(tmp_path, n=12)
    project_path = tmp_path / "p.kbproj"
    assert run("new", "--template", "multi_input", "--data",
               f"csv:{path}:target=label", "-o", project_path) == 0
    project = load_project(project_path)
    assert project.data.table_encoding == "model"
    assert "InputBatches" in generate_training_script(project)
    project.data = dataclasses.replace(project.data, table_encoding="flat")
    with pytest.raises(CodegenError, match="cannot write a training script yet for a table"
                       ) as info:
        generate_training_script(project)
    assert "e.g. the multi_input template" in str(info.value)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_multi_input_template_trains_and_predicts_from_such_a_csv_on_the_cli(
        tmp_path, capsys, backend):
    path = write_image_rows(tmp_path / "study")
    project = tmp_path / "p.kbproj"
    assert run("new", "--template", "multi_input", "--data", f"csv:{path}:target=label",
               "-o", project) == 0
    graph = load_project(project).graph  # the table's preprocessing in the model
    assert graph.find("numeric").param("shape") == [2]
    assert graph.find("image").param("shape") == [64, 64, 3]
    after = {n.name: graph.node(graph.successors(n.id)[0]).class_name
             for n in graph.input_nodes()}
    assert after == {"numeric": "FillMissing", "site": "CategoryEncoding",
                     "image": "Rescaling"}
    assert run("train", project, "--backend", backend, "--epochs", "2", "--batch-size", "8",
               "--history", tmp_path / "h.json") == 0
    history = json.loads((tmp_path / "h.json").read_text())
    assert history["status"] == "completed", history.get("message")
    assert np.isfinite(history["history"]["loss"]).all()
    assert 0 <= history["test_metrics"]["accuracy"] <= 1
    # New rows without the label, images relative to that CSV's own folder.
    new = tmp_path / "clinic"
    new.mkdir()
    (new / "images").mkdir()
    lines = path.read_text().splitlines()
    kept = [",".join(line.split(",")[:4]) for line in lines[:6]]
    for i in range(5):
        (new / "images" / f"s{i}.png").write_bytes((path.parent / "images" /
                                                   f"s{i}.png").read_bytes())
    (new / "rows.csv").write_text("\n".join(kept) + "\n")
    capsys.readouterr()
    assert run("predict", project, "--input", new / "rows.csv", "-o", tmp_path / "p.csv") == 0
    predictions = (tmp_path / "p.csv").read_text().splitlines()
    # One sigmoid unit for two classes: the class it says, and how sure.
    assert len(predictions) == 6 and predictions[0] == "predicted,confidence,p_well"
    for row in predictions[1:]:
        label, confidence, p_well = row.split(",")
        assert label == ("well" if float(p_well) >= 0.5 else "sick")
        assert 0.5 <= float(confidence) <= 1 and 0 <= float(p_well) <= 1
    (new / "images" / "s2.png").unlink()
    assert run("predict", project, "--input", new / "rows.csv", "-o", tmp_path / "q.csv") != 0
    assert "rows.csv line 4, column 'scan'" in capsys.readouterr().err


def test_a_batch_of_two_inputs_leaves_an_unreadable_images_row_out_of_both(tmp_path):
    from kbuilder.runtime.data.feed import StreamBatches, readable, skipped_note

    path = write_image_rows(tmp_path, n=12)
    (tmp_path / "images" / "s1.png").write_bytes(b"not a png")
    ds = load_data(DataSettings(source=f"csv:{path}:target=label", image_size=(8, 8),
                                skip_bad_images=True, validation_split=0.0, test_split=0.0))
    x = [ds.x_train["features"], ds.x_train["scan"]]
    batches = StreamBatches(x, ds.y_train, batch_size=12)
    (features, images), y = batches[0]
    assert len(features) == len(images) == len(y) == 11
    rows = [i for i in range(12) if i != 1]  # CSV row i is s{i}.png
    np.testing.assert_array_equal(y, ds.y_train[rows])
    np.testing.assert_allclose(features, ds.x_train["features"][rows])
    assert "s1.png" in skipped_note(x)
    assert readable(x).sum() == 11
    (predicted,) = StreamBatches(x, None, batch_size=12)[0]  # a 1-tuple: not (x, y)
    assert [len(a) for a in predicted] == [12, 12]


def test_the_images_of_a_column_can_be_cached_resized(tmp_path, monkeypatch):
    """cache_images for a column of image paths, as for an image folder: the second read
    decodes nothing; the cache is the column's own."""
    monkeypatch.setenv("KBUILDER_CACHE_DIR", str(tmp_path / "cache"))
    path = write_image_rows(tmp_path / "data", n=12)
    settings = DataSettings(source=f"csv:{path}:target=label", image_size=(6, 6),
                            cache_images=True, validation_split=0.0, test_split=0.0)
    plain = np.asarray(load_data(DataSettings(
        source=f"csv:{path}:target=label", image_size=(6, 6), validation_split=0.0,
        test_split=0.0)).x_train["scan"])
    first = load_data(settings)
    assert any("cached in" in note for note in first.notes)
    np.testing.assert_array_equal(np.asarray(first.x_train["scan"]), plain)  # fills it
    (cache_file,) = (tmp_path / "cache" / "images").iterdir()
    assert cache_file.stat().st_size == 12 * (1 + 6 * 6 * 3)
    second = load_data(settings).x_train["scan"]
    second._decode = None  # a decode would fail: every image comes from the cache
    np.testing.assert_array_equal(np.asarray(second), plain)


def test_a_model_of_table_columns_only_refuses_image_paths_instead_of_dropping_them(
        tmp_path, capsys):
    """Fitting the MLP (preprocessing inside the model) to a table with image paths: the
    images cannot feed it, and that is said rather than training without them."""
    path = write_image_rows(tmp_path, n=12)
    assert run("new", "-o", tmp_path / "p.kbproj", "--template", "mlp_classifier", "--data",
               f"csv:{path}:target=label") != 0
    message = capsys.readouterr().err
    assert "Column 'scan' names image files" in message and "multi_input" in message
    assert not (tmp_path / "p.kbproj").exists()
    # Read in "model" encoding, the images are there for an image Input.
    settings = DataSettings(source=f"csv:{path}:target=label", table_encoding="model")
    ds = load_data(settings)
    assert isinstance(ds.x_train["scan"], ImageFiles)
    assert [c["column"] for c in ds.row_encoder.images] == ["scan"]
    # Left out by choice, the rest trains as a table.
    ds = load_data(DataSettings(source=f"csv:{path}:target=label", table_encoding="model",
                                roles=(("scan", "ignore"),)))
    assert "scan" not in ds.x_train
