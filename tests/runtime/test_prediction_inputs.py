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


def test_a_numeric_table_refuses_text_and_empty_cells_by_line(tmp_path):
    text = tmp_path / "text.csv"
    text.write_text("a,b\n1,2\n3,x\n")
    with pytest.raises(InferenceError, match=r"text.csv line 3, column 'b': 'x' is not a number"):
        read_inputs_and_rows(text, None)
    empty = tmp_path / "empty.tsv"
    empty.write_text("a\tb\n1\t2\n\t4\n")
    with pytest.raises(InferenceError, match=r"empty.tsv line 3, column 'a' is empty"):
        read_inputs_and_rows(empty, None)
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(InferenceError, match="table file"):
        read_inputs_and_rows(tmp_path / "x.json", None)


def test_two_classes_from_one_sigmoid_output_are_named():
    from kbuilder.runtime.inference import prediction_rows

    rows = prediction_rows(np.array([[0.2], [0.9]], "float32"), ["healthy", "sick"])
    assert [r["predicted"] for r in rows] == ["healthy", "sick"]
    assert rows[0]["confidence"] == pytest.approx(0.8)
    assert rows[1]["p_sick"] == pytest.approx(0.9)
    # Without class names, or with values outside 0..1, it is a value per output.
    assert prediction_rows(np.array([[0.2]]), None) == [{"output_0": pytest.approx(0.2)}]
    assert prediction_rows(np.array([[3.0]]), ["a", "b"]) == [{"output_0": 3.0}]


def test_the_predictions_file_is_whole_or_untouched(tmp_path, monkeypatch):
    """A failure (a kill, a full disk) while the predictions are written leaves the
    previous file as it was and no partial file."""
    import csv as csv_module

    from kbuilder.runtime.inference import write_rows

    out = tmp_path / "predictions.csv"
    write_rows(out, [{"predicted": "a"}])
    before = out.read_bytes()

    def full_disk(self, rows):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(csv_module.DictWriter, "writerows", full_disk)
    with pytest.raises(OSError):
        write_rows(out, [{"predicted": "b"}] * 1000)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv"]
