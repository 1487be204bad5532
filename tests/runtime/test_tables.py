"""Tables as users bring them: CSV/TSV/Parquet/Excel variants, roles, bad inputs, specs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from kbuilder.graph.settings import (
    DataSettings,
    SettingsError,
    TableSpec,
    parse_table_spec,
    spec_fields,
)
from kbuilder.runtime.data import DataError, load_data
from kbuilder.runtime.data.preview import describe_csv
from kbuilder.runtime.data.roles import column_roles
from kbuilder.runtime.data.tables import read_table


def everything(ds):
    return np.concatenate([x for x in (ds.x_train, ds.x_val, ds.x_test) if x is not None])


def load(path: Path, **settings):
    settings.setdefault("source", f"csv:{path}")
    settings.setdefault("validation_split", 0.0)
    settings.setdefault("test_split", 0.0)
    return load_data(DataSettings(**settings))


def error(path: Path, **settings) -> DataError:
    with pytest.raises(DataError) as info:
        load(path, **settings)
    return info.value


LABELS = ["a", "b"] * 10


# ================================================================ specs and settings
def test_the_spec_parser_reads_every_option():
    spec = parse_table_spec("csv:/d/x.csv:target=y:header=none:delimiter=tab:decimal=,"
                            ":encoding=cp1252")
    assert spec == TableSpec("csv", "/d/x.csv", "y", "none", "\t", ",", "cp1252")
    assert parse_table_spec("csv:/d/x.csv:header=3").header == 3
    assert parse_table_spec("csv:C:\\data\\x.tsv").format == "tsv"  # by extension
    assert parse_table_spec("excel:/d/b.xlsx:sheet=Raw data").sheet == "Raw data"
    assert parse_table_spec("parquet:/d/p.parquet").format == "parquet"
    assert parse_table_spec("csv:/d/x.csv:target=a:b").target == "a:b"
    assert spec_fields("csv:/d/x.csv:target=y:header=none") == {
        "source": "csv:/d/x.csv", "target": "y", "header": "none"}
    assert spec_fields("digits") == {"source": "digits"}
    for bad, param in (("csv:/x.csv:header=zero", "header"),
                       ("csv:/x.csv:delimiter=x", "delimiter"),
                       ("csv:/x.csv:decimal=;", "decimal"),
                       ("csv:/x.csv:encoding=klingon", "encoding")):
        with pytest.raises(SettingsError) as info:
            parse_table_spec(bad)
        assert info.value.param == param


def test_reading_options_and_roles_are_typed_saved_and_old_projects_load():
    settings = DataSettings(source="csv:/d/x.csv:delimiter=;", decimal=",",
                            roles=(("when", "ignore"),), merges=(("sex", "M", "male"),))
    saved = settings.to_dict()
    assert saved["roles"] == [["when", "ignore"]] and saved["merges"] == [["sex", "M", "male"]]
    again = DataSettings.from_dict(saved)
    assert again == settings
    assert again.table().delimiter == ";" and again.table().decimal == ","  # spec + field
    assert DataSettings.from_dict({"source": "csv:/d/x.csv", "target": "y"}).roles == ()
    with pytest.raises(SettingsError, match="must be one of numeric"):
        DataSettings(source="csv:/d/x.csv", roles=(("a", "colour"),)).validate()


# ========================================================================= variants
def test_semicolons_decimal_commas_and_units_in_the_thousands(tmp_path):
    path = tmp_path / "eu.csv"
    rows = [f"{1000 + i * 250},5;{i % 3};{LABELS[i]}" for i in range(20)]
    path.write_text("mass_mg;dose;label\n" + "\n".join(rows) + "\n")
    ds = load(path)
    assert ds.feature_names == ["mass_mg", "dose"]
    assert everything(ds)[:, 0].max() == pytest.approx(5750.5)
    forced = describe_csv(path, settings=DataSettings(source=f"csv:{path}:decimal=."))
    assert forced.column("mass_mg").kind == "text"  # '1000,5' is no number with a point


def test_quoted_newlines_keep_the_line_numbers_right(tmp_path):
    path = tmp_path / "notes.csv"
    rows = [f'{i},"note {i}\nsecond line",{LABELS[i]}' for i in range(19)]
    rows.append('x,"last",b')  # lines: header 1, each row 2 lines -> this one is line 40
    path.write_text("n,note,label\n" + "\n".join(rows) + "\n")
    assert (error(path, features=("n",)).line) == 40
    ds = load(path, test_split=0.5, features=("note",), categorical=("note",))
    assert ds.row_label == "line" and set(ds.test_rows) <= set(range(3, 40, 2)) | {40}


def test_bom_cp1252_and_latin1_are_decoded(tmp_path):
    utf = tmp_path / "bom.csv"
    utf.write_bytes("\ufeffcafé,label\n".encode() + "".join(
        f"{i},{LABELS[i]}\n" for i in range(20)).encode())
    assert load(utf).feature_names == ["café"]  # the BOM is not part of the first name
    win = tmp_path / "win.csv"
    win.write_bytes(("city,label\n" + "".join(f"{['Köln', 'Zürich'][i % 2]},{LABELS[i]}\n"
                                              for i in range(20))).encode("cp1252"))
    assert load(win).feature_names == ["city=Köln", "city=Zürich"]
    assert load(win, encoding="latin-1").feature_names == ["city=Köln", "city=Zürich"]


def test_header_less_and_metadata_first_lines(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text("".join(f"{i * 0.5},{i % 4},{LABELS[i]}\n" for i in range(20)))
    ds = load(plain)
    assert ds.feature_names == ["column_1", "column_2"]
    assert any("no header row" in note for note in ds.notes)
    titled = tmp_path / "titled.csv"
    titled.write_text("Export of 2024-05-01\nx,y,label\n"
                      + "".join(f"{i},{i * 2},{LABELS[i]}\n" for i in range(20)))
    ds = load(titled)
    assert ds.feature_names == ["x", "y"] and ds.test_rows is None
    assert any("looks like a description" in note for note in ds.notes)
    # header=N says where the header is; header=none that there is none.
    assert load(titled, header=2).feature_names == ["x", "y"]
    assert load(plain, source=f"csv:{plain}:header=none").feature_names == \
        ["column_1", "column_2"]
    # scikit-learn's own CSV files start with n_samples,n_features,class names.
    import sklearn.datasets

    iris = Path(sklearn.datasets.__file__).parent / "data" / "iris.csv"
    ds = load(iris)
    assert everything(ds).shape == (150, 4) and ds.class_names == ["0", "1", "2"]


def test_na_spellings_are_missing_values(tmp_path):
    path = tmp_path / "gaps.csv"
    spellings = ["NA", "n/a", "-", "?", "", "NULL", "null", "N/A", "nan", "Na"]
    rows = [f"{spellings[i] if i < 10 else i},{spellings[i] if i < 10 else 'x'},{LABELS[i]}"
            for i in range(20)]
    path.write_text("value,kind,label\n" + "\n".join(rows) + "\n")
    ds = load(path)
    missing = {m["column"]: m for m in ds.missing}
    assert missing["value"]["count"] == 10 and isinstance(missing["value"]["filled_with"], float)
    assert missing["kind"]["count"] == 10 and "kind=(missing)" in ds.feature_names
    assert not np.isnan(everything(ds)).any()


def test_mixed_case_categories_are_offered_a_merge_that_the_loader_applies(tmp_path):
    path = tmp_path / "sex.csv"
    values = ["M", "male", "Male", " MALE ", "F", "female", "Female", "female"]
    path.write_text("sex,label\n" + "".join(f"{values[i % 8]},{LABELS[i % 20]}\n"
                                            for i in range(24)))
    (role, _label) = describe_csv(path).columns
    assert dict(role.role.merges) == {"M": "male", "Male": "male", "MALE": "male",
                                      "F": "female", "Female": "female"}
    merges = tuple(("sex", value, becomes) for value, becomes in role.role.merges)
    ds = load(path, merges=merges)
    assert ds.feature_names == ["sex=female", "sex=male"]
    assert everything(ds)[:, 1].sum() == 12  # every spelling of male counted as male


def test_dates_are_expanded_or_left_out(tmp_path):
    path = tmp_path / "visits.csv"
    rows = [f"2024-{1 + i % 12:02d}-{10 + i:02d} {8 + i % 3}:30,{i},{LABELS[i]}"
            for i in range(20)]
    path.write_text("seen,x,label\n" + "\n".join(rows) + "\n")
    ds = load(path)
    assert ds.feature_names == ["seen.year", "seen.month", "seen.day_of_week",
                                "seen.day_of_year", "seen.hour", "x"]
    first = everything(ds)[0]
    assert list(first[:5]) == [2024, 1, 2, 10, 8.5]  # 2024-01-10 was a Wednesday
    assert load(path, roles=(("seen", "ignore"),)).feature_names == ["x"]


def test_identifiers_and_free_text_are_left_out_saying_why(tmp_path):
    path = tmp_path / "people.csv"
    words = ["blue", "green", "red", "tall", "short", "kind", "quick", "old"]
    rows = [f"{5000 + i},P{i:04d},{words[i % 8]} {words[(i * 3) % 8]} {words[i % 5]} {i},"
            f"{i % 5},{LABELS[i % 20]}" for i in range(80)]
    path.write_text("record_id,code,comment,score,label\n" + "\n".join(rows) + "\n")
    roles = {r.name: r for r in column_roles(read_table(parse_table_spec(f"csv:{path}")))}
    assert roles["record_id"].role == "identifier" and "one per row" in roles["record_id"].reason
    assert roles["code"].role == "identifier"
    assert roles["comment"].role == "text" and "free text" in roles["comment"].reason
    assert roles["score"].role == "numeric" and "codes of categories" in roles["score"].reason
    ds = load(path)
    assert ds.feature_names == ["score"]
    assert any("Column 'record_id' numbers the rows" in n for n in ds.notes)
    assert any("Column 'comment' has 80 different text values" in n for n in ds.notes)
    assert load(path, features=("record_id", "score")).feature_names == ["record_id", "score"]


def test_yes_no_columns_are_one_flag(tmp_path):
    path = tmp_path / "flags.csv"
    path.write_text("smoker,label\n" + "".join(f"{['Yes', 'no', ''][i % 3]},{LABELS[i % 20]}\n"
                                               for i in range(21)))
    ds = load(path)
    assert ds.feature_names == ["smoker"]
    assert {m["column"]: m["count"] for m in ds.missing} == {"smoker": 7}  # median-filled
    present = everything(ds)[:, 0][[i % 3 != 2 for i in range(21)]]
    np.testing.assert_array_equal(present, [1.0, 0.0] * 7)


def test_tsv_parquet_and_excel_give_the_same_dataset(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"length": [1.5, None, 3.25, 4.0] * 6,
                          "colour": ["red", "blue", None, "red"] * 6,
                          "label": ["x", "y", "z"] * 8})
    frame.to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_excel(tmp_path / "t.xlsx", index=False)
    sets = [load(tmp_path / name) for name in ("t.tsv", "t.parquet", "t.xlsx")]
    for ds in sets:
        assert ds.feature_names == ["length", "colour=(missing)", "colour=blue", "colour=red"]
        np.testing.assert_array_equal(everything(ds), everything(sets[0]))
    assert sets[1].row_label == "row" and sets[2].row_label == "row"


def test_excel_without_openpyxl_says_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "t.xlsx"
    path.write_bytes(b"PK\x03\x04 not really")
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # as if it were not installed
    assert "needs the openpyxl package" in str(error(path))


# ======================================================================= bad inputs
@pytest.mark.parametrize("content, words, line, column", [
    (b"a,b,label\n1,2,x\n3,4\n5,6,y\n", "line 3 has 2 values but the header has 3", 3, None),
    (b"a,b,label\n1,2,x\n3,4,5,6\n", "line 3 has 4 values", 3, None),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not a text file", None, None),
    (b"", "is empty", None, None),
    (b"a,label\n" + b"".join(b"%d,x\n" % i for i in range(15)) + b"1e40,y\n",
     "line 17, column 'a': 1e+40 is too large", 17, "a"),
])
def test_bad_files_name_the_file_line_and_column(tmp_path, content, words, line, column):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    exc = error(path)
    assert words in str(exc) and str(exc).startswith("bad.csv"), str(exc)
    assert (exc.line, exc.column) == (line, column)


def test_an_unknown_column_lists_the_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,x\n2,y\n")
    exc = error(path, target="c")
    assert str(exc) == "Column 'c' is not in t.csv; its columns are: a, b."
    assert error(path, roles=(("z", "ignore"),)).column == "z"


# ========================================================================== preview
def test_the_preview_reads_only_the_start_of_a_big_file(tmp_path):
    """A file of 64 MB previews from its first megabytes: the bytes the process reads
    (Linux counts them in /proc/self/io) stay far below the file's size."""
    path = tmp_path / "big.csv"
    block = "".join(f"{i % 97},{i * 0.25:.2f},{'abc'[i % 3]}\n" for i in range(50_000))
    with open(path, "w") as f:
        f.write("n,x,label\n")
        while f.tell() < 64 << 20:
            f.write(block)
    size = path.stat().st_size

    def bytes_read() -> int | None:
        try:
            text = Path("/proc/self/io").read_text()
        except OSError:
            return None
        return int(text.split("rchar:")[1].split()[0])

    before = bytes_read()
    preview = describe_csv(path)
    after = bytes_read()
    assert not preview.complete and preview.bytes_read < 8 << 20
    assert abs(preview.rows - 50_000 * (size // len(block))) < 0.05 * preview.rows
    assert [c.kind for c in preview.columns] == ["number", "number", "text"]
    if before is not None and os.name == "posix":
        assert after - before < 16 << 20, after - before  # not the 64 MB


def test_blank_lines_are_skipped_and_the_lines_stay_right(tmp_path):
    path = tmp_path / "gappy.csv"
    rows = [f"{i},{'xyz'[i % 3]},{LABELS[i]}" for i in range(20)]
    rows[5] = ",,"  # line 7: only delimiters
    rows[9] = "   "  # line 11: only spaces
    rows[12] = ""  # line 14: empty
    rows[15] = "oops,x,a"  # line 17
    path.write_text("n,kind,label\n" + "\n".join(rows) + "\n")
    exc = error(path, features=("n",))
    assert (exc.line, exc.column) == (17, "n")
    ds = load(path, features=("kind",), test_split=0.5)
    assert len(everything(ds)) == 17
    assert not {7, 11, 14} & set(ds.test_rows.tolist())


def test_a_row_with_only_its_text_filled_in_is_not_blank(tmp_path):
    import pyarrow as pa

    from kbuilder.runtime.data.csv_read import drop_blank_rows

    table = pa.table({"a": [1.0, None, None, 4.0], "b": [None, None, 2.0, 3.0],
                      "kind": ["x", "y", "", "  "]})
    kept, dropped = drop_blank_rows(table)
    assert dropped.tolist() == [] and kept.num_rows == 4  # row 1 holds "y"
    table = table.set_column(2, "kind", pa.array(["x", " ", "", "z"]))
    kept, dropped = drop_blank_rows(table)
    assert dropped.tolist() == [1] and kept.column("a").to_pylist() == [1.0, None, 4.0]


def test_the_data_tab_gets_the_columns_before_the_whole_file_is_read(tmp_path, monkeypatch):
    from kbuilder.runtime.data import preview

    path = tmp_path / "t.csv"
    path.write_text("a,label\n" + "".join(f"{i},{LABELS[i]}\n" for i in range(20)))
    events = []
    real = preview.load_data

    def loading(*args, **kwargs):
        events.append("whole file")
        return real(*args, **kwargs)

    monkeypatch.setattr(preview, "load_data", loading)
    result = preview.load_job(DataSettings(source=f"csv:{path}"),
                              columns=lambda csv: events.append(csv.header))
    assert events == [["a", "label"], "whole file"] and result.dataset is not None


def test_a_bad_date_names_its_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("d,label\n2024-01-05,a\n2024-02-30x,b\n2024-03-01,a\n")
    exc = error(path, roles=(("d", "datetime"),))
    assert "line 3, column 'd': '2024-02-30x' is not a date" in str(exc)
    assert (exc.line, exc.column) == (3, "d")


def test_a_windows_export_with_its_first_accent_past_the_first_megabyte(tmp_path):
    path = tmp_path / "late.csv"
    rows = "".join(f"{i},plain,{LABELS[i % 20]}\n" for i in range(70_000))  # > 1 MB
    path.write_bytes(("n,city,label\n" + rows + "1,Zürich,a\n").encode("cp1252"))
    ds = load(path)
    assert "city=Zürich" in ds.feature_names


@pytest.mark.parametrize("rows_after", [2, 20_000])
def test_a_quote_never_closed_names_the_line_it_opens_on(tmp_path, rows_after):
    path = tmp_path / "q.csv"
    rows = ["a,b,label"] + [f"{i},x,{LABELS[i]}" for i in range(10)] + ['5,"unclosed,b']
    rows += [f"{i},y,a" for i in range(rows_after)]
    path.write_text("\n".join(rows) + "\n")
    exc = error(path)
    assert exc.line == 12 and "quote" in str(exc), str(exc)


def test_one_hot_encoding_a_huge_category_column_is_refused(tmp_path, monkeypatch):
    from kbuilder.runtime.data import roles

    monkeypatch.setattr(roles, "ONE_HOT_LIMIT", 1000)  # as if the column were enormous
    path = tmp_path / "ids.csv"
    path.write_text("code,label\n" + "".join(f"c{i},{LABELS[i % 20]}\n" for i in range(40)))
    exc = error(path, categorical=("code",))
    assert "Column 'code' has 40 categories" in str(exc) and exc.column == "code"


@pytest.fixture
def typed_head(monkeypatch):
    """A small head for the column types of a whole read (as if the file were large);
    the columns guessed as numbers, per call."""
    from kbuilder.runtime.data import csv_read

    monkeypatch.setattr(csv_read, "TYPE_HEAD_BYTES", 16 << 10)
    guesses = []
    guess = csv_read._float_columns

    def spy(*args):
        found = guess(*args)
        guesses.append(sorted(found))
        return found

    monkeypatch.setattr(csv_read, "_float_columns", spy)
    return guesses


def big_table(path: Path, tail: str, rows: int = 20_000) -> Path:
    """A table of measurements past the head the column types are guessed from, ending
    with ``tail``."""
    rng = np.random.default_rng(0)
    values = rng.normal(50, 20, (rows, 2)).round(3)
    body = "".join(f"{a},{b},{LABELS[i % 20]}\n" for i, (a, b) in enumerate(values))
    path.write_text("x,y,label\n" + body + tail)
    return path


def test_a_number_column_with_text_past_the_head_names_its_line(tmp_path, typed_head):
    path = big_table(tmp_path / "late_text.csv", "1.5,oops,a\n2.5,3.5,b\n")
    exc = error(path)
    assert typed_head == [["x", "y"]]  # guessed from the head, then read again untyped
    assert (exc.line, exc.column) == (20_002, "y") and "'oops' is not a number" in str(exc)
    ds = load(path, features=("x",))
    assert len(everything(ds)) == 20_002 and ds.x_train.dtype == np.float32


def test_a_quoted_newline_past_the_head_keeps_the_line_numbers_right(tmp_path, typed_head):
    path = big_table(tmp_path / "late_quote.csv", '1.5,2.5,"a\nb"\nbad,1,a\n')
    exc = error(path, features=("x",), categorical=("label",))
    assert (exc.line, exc.column) == (20_004, "x")
    ds = load(path, features=("y",))
    assert typed_head == [["x", "y"]] * 2  # both times read again, untyped
    assert len(everything(ds)) == 20_002
    rows = load(path, features=("y",), test_split=0.5).test_rows
    assert set(rows.tolist()) <= set(range(2, 20_002)) | {20_003, 20_004}  # not 20_002


@pytest.mark.parametrize("rows", [3, 4, 6, 9, 1003])  # 2, 3, 4, 6, 752 values present
def test_the_median_fill_is_numpys_median_of_the_training_rows(tmp_path, rows):
    rng = np.random.default_rng(rows)
    values = rng.normal(50, 20, rows).round(1)
    cells = [f"{v}" if i % 4 else "" for i, v in enumerate(values)]  # every 4th missing
    path = tmp_path / "gaps.csv"
    path.write_text("x,label\n" + "".join(f"{c},{LABELS[i % 2]}\n"
                                          for i, c in enumerate(cells)))
    ds = load(path, categorical=("label",))
    train = np.asarray([v for i, v in enumerate(values) if i % 4], np.float32)
    assert len(ds.x_train) == len(values)
    (entry,) = ds.missing
    assert entry["filled_with"] == float(np.median(train))
    assert not np.isnan(ds.x_train).any()
