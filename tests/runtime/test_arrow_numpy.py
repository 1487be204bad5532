"""Arrow <-> NumPy through buffers, and a table load that never imports pandas."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kbuilder.runtime.data.arrow_numpy import from_numpy, string_scalar, strings, to_numpy
from kbuilder.runtime.data.columns import Numbers


def test_to_numpy_matches_pyarrow_for_slices_chunks_and_gaps():
    floats = pa.chunked_array([pa.array([1.5, None, 3.0]), pa.array([None, 5.0])])
    np.testing.assert_array_equal(to_numpy(floats), [1.5, np.nan, 3.0, np.nan, 5.0])
    np.testing.assert_array_equal(to_numpy(floats.chunk(0).slice(1)), [np.nan, 3.0])
    flags = pa.array([True, False, True, True, False, False, True, False, True])
    np.testing.assert_array_equal(to_numpy(flags.slice(3)), flags.slice(3).to_pylist())
    ints = pa.array([3, 1, 2], pa.int32()).slice(1)
    assert to_numpy(ints).dtype == np.int32 and to_numpy(ints).tolist() == [1, 2]


def test_to_numpy_of_many_chunks_is_pyarrow_bit_for_bit():
    """Chunks (sliced, all missing, empty, none) copied straight into one array: the very
    bits of combine_chunks + fill_null(NaN), and integers with gaps still refused."""
    rng = np.random.default_rng(0)
    chunks = []
    for size in (0, 7, 33, 12, 1, 40):
        values = [None if rng.random() < 0.3 else float(v) for v in rng.normal(size=size)]
        chunks.append(pa.array(values, pa.float64()).slice(1 if size > 2 else 0))
    chunks.append(pa.nulls(3, pa.float64()))
    column = pa.chunked_array(chunks, pa.float64())
    expected = pc.fill_null(column.combine_chunks(), np.nan).to_numpy()
    got = to_numpy(column)
    assert got.dtype == np.float64 and got.view(np.int64).tolist() == \
        expected.view(np.int64).tolist()
    assert to_numpy(pa.chunked_array([], pa.float32())).dtype == np.float32
    ints = pa.chunked_array([pa.array([1, 2], pa.int64()), pa.array([3], pa.int64())])
    assert to_numpy(ints).tolist() == [1, 2, 3]
    try:
        to_numpy(pa.chunked_array([pa.array([1, None]), pa.array([3])]))
    except TypeError as exc:
        assert "missing values" in str(exc)
    else:
        raise AssertionError("an integer column with a gap was converted")


def test_float32_straight_from_chunks_equals_astype_and_numbers_stay_lazy():
    """A parsed float column becomes float32 in one pass, bit for bit what the float64
    copy and astype give (NaN in gaps, inf beyond float32's range); ``Numbers`` answers
    its count and first values without converting the column."""
    rng = np.random.default_rng(1)
    chunks = []
    for size in (5, 0, 40, 9):
        values = [None if rng.random() < 0.25 else float(v) for v in rng.normal(size=size)]
        chunks.append(pa.array(values, pa.float64()))
    chunks.append(pa.array([float("nan"), 1e39, None, -2.5], pa.float64()))
    column = pa.chunked_array(chunks, pa.float64())
    wide = to_numpy(column)
    with np.errstate(over="ignore"):
        expected = wide.astype(np.float32)
    got = to_numpy(column, np.float32)
    assert got.dtype == np.float32
    assert got.view(np.int32).tolist() == expected.view(np.int32).tolist()
    single = to_numpy(pa.chunked_array([pa.array([1.1, 2.2])]), np.float32)
    assert single.tolist() == np.asarray([1.1, 2.2]).astype(np.float32).tolist()

    numbers = Numbers(column)
    assert numbers.present() == int(np.count_nonzero(~np.isnan(wide)))
    present = wide[~np.isnan(wide)]
    assert numbers.head(7).tolist() == present[:7].tolist()
    assert numbers.head(1000).tolist() == present.tolist()
    assert not isinstance(numbers.source, np.ndarray)  # not converted so far
    assert numbers.float32().view(np.int32).tolist() == expected.view(np.int32).tolist()
    assert numbers.values.view(np.int64).tolist() == wide.view(np.int64).tolist()
    eager = Numbers(wide)
    assert eager.present() == numbers.present()
    assert eager.head(7).tolist() == present[:7].tolist()


def test_from_numpy_strings_and_scalars_round_trip():
    assert from_numpy(np.arange(4, dtype=np.int64)).to_pylist() == [0, 1, 2, 3]
    assert from_numpy(np.asarray([True, False, True])).to_pylist() == [True, False, True]
    assert strings(["a", "é", ""]).to_pylist() == ["a", "é", ""]
    text = pa.array(["x", None])
    assert pc.fill_null(text, string_scalar("(missing)")).to_pylist() == ["x", "(missing)"]
    assert string_scalar(None).as_py() is None


def test_loading_a_table_does_not_import_pandas(tmp_path: Path):
    rows = ["x,flag,site,label"] + [
        f"{'' if i % 7 == 0 else i * 0.5},{'yes' if i % 2 else 'no'},"
        f"{['north', 'south ', 'NA'][i % 3]},{'ab'[i % 2]}" for i in range(60)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    script = (
        "import sys\n"
        "from kbuilder.graph.settings import DataSettings\n"
        "from kbuilder.runtime.data import load_data\n"
        "for mode in ('flat', 'model'):\n"
        f"    load_data(DataSettings(source='csv:{tmp_path / 't.csv'}', target='label',"
        " table_encoding=mode))\n"
        "print('pandas' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ}, check=True)
    assert done.stdout.strip() == "False"  # pyarrow's pandas bridge costs 0.5 s
