"""What the data panel previews, computed without Qt: CSV columns and sample pictures."""

from __future__ import annotations

import numpy as np
import pytest

from kbuilder.graph.settings import DataSettings
from kbuilder.runtime.data import DataError, dataset_from_arrays
from kbuilder.runtime.data.preview import describe_csv, load_job, preview_samples


def test_describe_csv_types_follow_the_loader(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("id;price;colour;notes;grade\n"
                    "1;1,5;red;;A\n2;2,5;blue;;B\n3;NA;red;;A\n4;3,0;green;;oops\n"
                    "5;4,0;red;;B\n")
    preview = describe_csv(path)
    kinds = {c.name: (c.kind, c.missing, c.distinct) for c in preview.columns}
    assert kinds == {
        "id": ("number", 0, 5),
        "price": ("number", 1, 4),  # decimal commas with ';' as the delimiter
        "colour": ("text", 0, 3),
        "notes": ("empty", 5, 0),
        "grade": ("text", 0, 3),
    }
    assert preview.rows == 5 and preview.head[2] == ("3", "NA", "red", "", "A")
    assert preview.head_lines == (2, 3, 4, 5, 6)
    assert preview.column("colour").description == "text · 3 values"


def test_a_numeric_column_with_a_typo_is_mixed_and_names_the_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,y\n1,a\n2,b\nx2,a\n4,b\n5,a\n")
    column = describe_csv(path).column("x")
    assert column.kind == "mixed" and column.first_text == ("x2", 4)
    assert column.description == "number with text ('x2', line 4)"
    result = load_job(DataSettings(source=f"csv:{path}"))
    assert result.dataset is None and result.csv is not None  # columns shown anyway
    assert isinstance(result.error, DataError) and result.error.column == "x"
    assert result.error.line == 4


def test_unreadable_csv_is_a_data_error(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n3\n")
    with pytest.raises(DataError, match="line 3 has 1 value but the header has 2 columns"):
        describe_csv(path)


def test_preview_samples_images_of_every_class_and_table_heads():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (60, 8, 8, 1)).astype(np.float32)
    y = np.repeat(np.arange(3), 20)
    ds = dataset_from_arrays(x, y, class_names=["a", "b", "c"])
    samples = preview_samples(ds, images=9)
    assert samples.kind == "images" and samples.images.dtype == np.uint8
    assert samples.images.shape == (9, 8, 8, 1) and samples.sample_shape == (8, 8, 1)
    assert samples.labels == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    assert samples.images.max() > 200  # 0..1 data stretched to 0..255 for display

    table = dataset_from_arrays(rng.normal(size=(30, 3)), rng.normal(size=30) * 10,
                                feature_names=["u", "v", "w"])
    samples = preview_samples(table, rows=5)
    assert samples.kind == "table" and samples.header == ["target", "u", "v", "w"]
    assert len(samples.rows) == 5 and len(samples.rows[0]) == 4
