"""The rows a prediction file shows beside each prediction (``input_columns``): each row's
line and its first cells as read, for raw rows through a row encoder and for a numeric
CSV; nothing added when not asked (what `kbuilder predict` writes stays as it was)."""

from __future__ import annotations

import numpy as np
import pytest

from kbuilder.graph.settings import DataSettings
from kbuilder.runtime.data import load_data
from kbuilder.runtime.inference import InferenceError, read_inputs_and_rows
from tests.runtime.penguins import penguins_csv


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A folder as a run leaves it for a table in "model" encoding: row_encoder.json
    beside the model (no model needed to read the inputs)."""
    folder = tmp_path_factory.mktemp("run")
    table = penguins_csv(folder / "penguins.csv")
    ds = load_data(DataSettings(source=f"csv:{table}:target=species", table_encoding="model"))
    ds.row_encoder.save(folder / "row_encoder.json")
    return folder


def test_raw_rows_come_with_their_lines_and_first_cells(model_dir, tmp_path):
    rows = tmp_path / "new.csv"
    rows.write_text("island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex\n"
                    "Dream,41.5,,190,3900,male\n"
                    '"Atlantis, far",39,18,185,3500,\n')
    x, shown = read_inputs_and_rows(rows, str(model_dir / "model.keras"), columns=3)
    assert sorted(x) == ["island", "numeric", "sex"]
    assert shown == [
        {"line": 2, "island": "Dream", "bill_length_mm": 41.5, "bill_depth_mm": None},
        {"line": 3, "island": "Atlantis, far", "bill_length_mm": 39.0, "bill_depth_mm": 18.0},
    ]
    assert x["island"][1, 0] == 0  # not seen in training
    _, none = read_inputs_and_rows(rows, str(model_dir / "model.keras"))
    assert none is None


def test_a_missing_column_is_a_sentence(model_dir, tmp_path):
    rows = tmp_path / "no sex.csv"
    rows.write_text("island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g\n"
                    "Dream,41.5,17,190,3900\n")
    with pytest.raises(InferenceError, match="sex"):
        read_inputs_and_rows(rows, str(model_dir / "model.keras"), columns=2)


def test_a_numeric_csv_shows_its_first_columns(tmp_path):
    rows = tmp_path / "x.csv"
    rows.write_text("a,b,c\n1,2,3\n4,5,6\n")
    x, shown = read_inputs_and_rows(rows, None, columns=2)
    np.testing.assert_array_equal(x, [[1, 2, 3], [4, 5, 6]])
    assert shown == [{"line": 2, "a": 1.0, "b": 2.0}, {"line": 3, "a": 4.0, "b": 5.0}]
