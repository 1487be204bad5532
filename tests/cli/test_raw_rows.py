"""Preprocessing inside the model (issue 13 item 2), end to end in the CLI on real workers:
a template fitted to a messy table (missing numbers, text categories, grams) gets its
input stage as nodes, trains, and `kbuilder predict --input` on raw rows of the very file
gives the run's own predictions for those rows; an unseen category and a missing value
predict; a flat-encoded project still trains as before."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from kbuilder import cli
from kbuilder.graph.project import load_project, save_project
from kbuilder.graph.settings import DataSettings
from kbuilder.runtime.data import load_data
from kbuilder.runtime.data.row_encoder import RowEncoder, encode_file
from tests.runtime.penguins import penguins_csv


def run(*argv):
    return cli.main([str(a) for a in argv])


def read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return penguins_csv(tmp_path_factory.mktemp("raw") / "penguins.csv", missing=20)


def test_the_loader_gives_raw_numbers_and_codes_of_the_training_vocabulary(table):
    flat = load_data(DataSettings(source=f"csv:{table}:target=species"))
    assert isinstance(flat.x_train, np.ndarray) and flat.row_encoder is None
    assert "table_encoding" not in flat.settings.to_dict()  # old projects unchanged
    ds = load_data(DataSettings(source=f"csv:{table}:target=species",
                                table_encoding="model"))
    x = ds.x_train
    assert sorted(x) == ["island", "numeric", "sex"]
    assert x["numeric"].dtype == np.float32 and x["numeric"].shape[1] == 4
    assert np.isnan(x["numeric"]).any()  # filled in the model, not here
    assert 2_000 < np.nanmax(x["numeric"]) < 7_000  # grams, as in the file
    assert x["island"].dtype == np.int32 and x["island"].shape[1] == 1
    encoder = RowEncoder.from_dict(json.loads(json.dumps(ds.row_encoder.to_dict())))
    island = next(c for c in encoder.categories if c["column"] == "island")
    assert island["vocabulary"] == ["Biscoe", "Dream", "Torgersen"]
    assert x["island"].min() >= 1 and x["island"].max() == 3
    # The encoder gives the test split's inputs from the file's rows (line 2 = row 0).
    rows = encode_file(encoder, table)
    picked = ds.test_rows - 2
    for name, array in ds.x_test.items():
        np.testing.assert_array_equal(rows[name][picked], array)


def test_unseen_categories_and_missing_values_become_code_0_and_nan(tmp_path, table):
    ds = load_data(DataSettings(source=f"csv:{table}:target=species",
                                table_encoding="model"))
    odd = tmp_path / "odd.csv"
    odd.write_text("island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex\n"
                   "Atlantis,40.1,,190,NA,male\n"
                   ",40.1,18.0,190,3800,\n")
    rows = encode_file(ds.row_encoder, odd)
    assert rows["island"][:, 0].tolist() == [0, 0]  # unseen; missing never seen either
    assert np.isnan(rows["numeric"][0, [1, 3]]).all()
    assert rows["sex"][0, 0] == ds.row_encoder.categories[1]["vocabulary"].index("male") + 1


@pytest.mark.parametrize("backend", ["jax", "tensorflow", "torch"])
def test_predict_on_raw_rows_gives_the_runs_predictions(tmp_path, table, backend, capsys):
    project = tmp_path / "p.kbproj"
    assert run("new", "--template", "mlp_classifier", "--data",
               f"csv:{table}:target=species", "-o", project) == 0
    graph = load_project(project).graph
    kinds = {n.name: n.class_name or n.kind for n in graph.nodes}
    assert kinds["numeric"] == "input" and kinds["island"] == "input"
    numeric = graph.find("numeric")
    (fill,) = graph.successors(numeric.id)
    (norm,) = graph.successors(fill)
    assert [graph.node(fill).class_name, graph.node(norm).class_name] == \
        ["FillMissing", "Normalization"]
    one_hot = graph.find("island_one_hot")
    assert one_hot.class_name == "CategoryEncoding" and one_hot.param("num_tokens") == 4
    assert run("train", project, "--backend", backend, "--epochs", "3",
               "--history", tmp_path / "run.json") == 0
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["test_metrics"]["accuracy"] >= 0.8  # measured 1.00 on jax in 5 epochs
    encoder_file = record["artifacts"]["row_encoder"]
    assert RowEncoder.load(Path(encoder_file)).categories
    assert run("predict", project, "--backend", backend, "-o", tmp_path / "test.csv") == 0
    assert run("predict", project, "--backend", backend, "--input", table,
               "-o", tmp_path / "raw.csv") == 0
    test, raw = read(tmp_path / "test.csv"), read(tmp_path / "raw.csv")
    assert len(raw) == 344 and len(test) == 69
    for row in test:
        same = raw[int(row["line"]) - 2]
        assert same["predicted"] == row["predicted"]
        for name in ("Adelie", "Chinstrap", "Gentoo"):
            assert float(same[f"p_{name}"]) == pytest.approx(float(row[f"p_{name}"]),
                                                             abs=1e-5)
    odd = tmp_path / "odd.csv"
    odd.write_text("island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex\n"
                   "Atlantis,47.5,,217,NA,male\n")
    assert run("predict", project, "--backend", backend, "--input", odd,
               "-o", tmp_path / "odd_out.csv") == 0
    (answer,) = read(tmp_path / "odd_out.csv")
    assert answer["predicted"] in ("Adelie", "Chinstrap", "Gentoo")
    assert np.isfinite(float(answer["confidence"]))
    if backend == "jax":  # the encoder goes next to an export, with a note on its use
        capsys.readouterr()
        assert run("export", project, "--format", "keras", "-o", tmp_path / "m.keras") == 0
        note = capsys.readouterr().out
        assert "m.row_encoder.json" in note and "'numeric' is float32 (n, 4)" in note
        exported = RowEncoder.load(tmp_path / "m.row_encoder.json")
        assert exported.to_dict() == RowEncoder.load(Path(encoder_file)).to_dict()


def test_a_flat_project_still_trains_as_before(tmp_path, table):
    project = tmp_path / "flat.kbproj"
    assert run("new", "--template", "mlp_classifier", "--data",
               f"csv:{table}:target=species", "-o", project) == 0
    loaded = load_project(project)
    # An old project: flat encoding, one Input of the 8 encoded features.
    from kbuilder.graph.templates import TEMPLATES
    from kbuilder.runtime.preflight import fit_template_to_data

    settings = DataSettings(source=f"csv:{table}:target=species")
    graph = TEMPLATES["mlp_classifier"].build()
    fit_template_to_data(graph, load_data(settings)).apply()
    loaded.graph = graph
    loaded.data = settings
    save_project(loaded, project)
    (features,) = graph.input_nodes()  # the one-hot encoded features, 4 + 3 + 2
    assert features.param("shape") == [9]
    assert run("train", project, "--backend", "jax", "--epochs", "2",
               "--history", tmp_path / "flat.json") == 0
    record = json.loads((tmp_path / "flat.json").read_text())
    assert "row_encoder" not in record["artifacts"]
