"""Data sources: built-in sets, keras.datasets (offline and faked), CSV, NumPy, image
folders, splits, fingerprints, summaries and adapt()."""

from __future__ import annotations

import json
import socket
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from kbuilder.graph.settings import DataSettings, SettingsError
from kbuilder.runtime.data import (
    DataError,
    Dataset,
    adapt_layers,
    dataset_from_arrays,
    fit_to_input,
    infer_task,
    load_data,
)


# --------------------------------------------------------------------------- helpers
def write_png(path: Path, array: np.ndarray) -> None:
    """A minimal PNG encoder (8-bit gray or RGB), so the tests need no imaging library."""
    a = np.asarray(array, dtype=np.uint8)
    color = 0 if a.ndim == 2 else 2
    a = a.reshape(a.shape[0], a.shape[1], -1)
    height, width, _ = a.shape
    raw = b"".join(b"\x00" + a[i].tobytes() for i in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return path


def csv_data(tmp_path: Path, text: str, **settings) -> Dataset:
    path = write_csv(tmp_path / "data.csv", text)
    return load_data(DataSettings(source=f"csv:{path}", **settings))


def csv_error(tmp_path: Path, text: str, **settings) -> DataError:
    with pytest.raises(DataError) as info:
        csv_data(tmp_path, text, **settings)
    return info.value


def all_rows(ds: Dataset) -> np.ndarray:
    return np.concatenate([x for x, _ in ds.splits().values()])


# ======================================================================= built-in sets
@pytest.mark.parametrize(
    "name, task, shape, classes",
    [
        ("digits", "classification", (8, 8, 1), 10),
        ("iris", "classification", (4,), 3),
        ("wine", "classification", (13,), 3),
        ("breast_cancer", "classification", (30,), 2),
        ("diabetes", "regression", (10,), None),
    ],
)
def test_sklearn_datasets(name, task, shape, classes):
    ds = load_data(DataSettings(source=name))
    assert ds.task == task and ds.num_classes == classes
    assert ds.sample_shape == shape
    n = sum(len(y) for _, y in ds.splits().values())
    # 60 / 20 / 20 of the whole data.
    assert abs(len(ds.y_test) - 0.2 * n) <= 1 and abs(len(ds.y_val) - 0.2 * n) <= 1
    assert ds.x_train.dtype == np.float32
    summary = ds.summary()
    json.dumps(summary)  # JSON-safe
    assert summary["splits"]["train"]["count"] == len(ds.y_train)
    if task == "classification":
        assert len(ds.class_names) == classes
        assert set(ds.y_train.tolist()) == set(range(classes))
    if name != "digits":
        assert ds.feature_names and len(ds.feature_names) == shape[0]
        # Standardised with the training split's statistics.
        np.testing.assert_allclose(ds.x_train.mean(axis=0), 0, atol=1e-4)
        assert summary["preprocessing"][0]["step"] == "standardize"


def test_digits_are_images_scaled_to_one():
    ds = load_data(DataSettings(source="digits"))
    assert ds.x_train.shape[1:] == (8, 8, 1) and ds.feature_names is None
    assert ds.x_train.min() == 0.0 and ds.x_train.max() == 1.0
    assert ds.class_names == [str(i) for i in range(10)]


def test_splits_are_stratified():
    ds = load_data(DataSettings(source="iris"))
    for _, y in ds.splits().values():
        counts = np.bincount(y)
        assert counts.max() - counts.min() <= 1  # iris has 50 of each class
    assert ds.summary()["splits"]["test"]["class_counts"] == {
        "setosa": 10, "versicolor": 10, "virginica": 10}


def test_splits_and_fingerprint_are_reproducible():
    a = load_data(DataSettings(source="wine", seed=3))
    b = load_data(DataSettings(source="wine", seed=3))
    c = load_data(DataSettings(source="wine", seed=4))
    for (xa, ya), (xb, yb) in zip(a.splits().values(), b.splits().values(), strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 64
    assert c.fingerprint != a.fingerprint
    assert not np.array_equal(a.x_test, c.x_test)  # other rows
    other_split = load_data(DataSettings(source="wine", seed=3, validation_split=0.1))
    assert other_split.fingerprint != a.fingerprint


def test_splits_partition_the_rows():
    x = np.arange(100, dtype=np.float32)[:, None]
    y = np.repeat([0, 1, 2, 3], 25)
    ds = dataset_from_arrays(x, y, settings=DataSettings(validation_split=0.25,
                                                         test_split=0.15, seed=7))
    ids = sorted(all_rows(ds)[:, 0].tolist())
    assert ids == list(range(100))
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (60, 25, 15)


def test_no_validation_split_leaves_it_empty():
    ds = load_data(DataSettings(source="iris", validation_split=0.0))
    assert ds.x_val is None and ds.y_val is None
    assert "validation" not in ds.summary()["splits"]
    assert len(ds.y_train) == 120


def test_a_tiny_dataset_keeps_a_training_sample():
    ds = dataset_from_arrays(np.zeros((3, 2)), np.array([0, 1, 0]))
    assert len(ds.y_train) >= 1


# ========================================================================= fit_to_input
def test_fit_to_input_reshapes_when_sizes_agree():
    x = np.zeros((5, 8, 8, 1))
    assert fit_to_input(x, [64]).shape == (5, 64)
    assert fit_to_input(x, [8, 8, 1]) is x
    assert fit_to_input(x, [None, 8]).shape == (5, 8, 8)
    assert fit_to_input(np.zeros((5, 784)), [28, 28, 1]).shape == (5, 28, 28, 1)


def test_fit_to_input_explains_a_size_mismatch():
    with pytest.raises(DataError, match=r"Input 'image' takes samples of shape \(28, 28, 1\) "
                       r"= 784 values, but each sample of the data has shape \(8, 8, 1\) "
                       r"= 64 values"):
        fit_to_input(np.zeros((5, 8, 8, 1)), [28, 28, 1], "image")


def test_infer_task_rule():
    assert infer_task(np.array(["a", "b", "a"])) == "classification"
    assert infer_task(np.array([0, 1, 2] * 10)) == "classification"
    assert infer_task(np.array([0.5, 1.5, 2.0] * 10)) == "regression"
    assert infer_task(np.arange(100)) == "regression"  # many distinct whole numbers
    assert infer_task(np.array([1, 2, 3, 4])) == "regression"  # as many values as rows
    assert infer_task(np.array([0, 1])) == "classification"


# ====================================================================== keras.datasets
def _offline() -> bool:
    try:
        socket.getaddrinfo("storage.googleapis.com", 443)
    except OSError:
        return True
    return False


@pytest.mark.skipif(not _offline(), reason="needs a machine without internet access")
def test_keras_dataset_offline_error_is_clear():
    if (Path.home() / ".keras" / "datasets" / "mnist.npz").exists():
        pytest.skip("MNIST is cached here")
    with pytest.raises(DataError) as info:
        load_data(DataSettings(source="mnist"))
    assert str(info.value).startswith(
        "Could not download MNIST (no internet connection?). kbuilder caches it in "
        "~/.keras/datasets after the first download; or use a built-in offline dataset "
        "such as digits."
    )


def test_keras_download_progress_is_reported(monkeypatch, tmp_path):
    import urllib.error

    from keras.src.backend import config
    from keras.src.utils import file_utils

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path))  # an empty cache

    original = file_utils.urlretrieve
    calls = []

    def fake_urlretrieve(url, filename, reporthook=None, data=None):
        reporthook(1, 1000, 3000)
        reporthook(2, 1000, 3000)
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(file_utils, "urlretrieve", fake_urlretrieve)
    with pytest.raises(DataError, match="Could not download MNIST"):
        load_data(DataSettings(source="mnist"),
                  progress=lambda stage, done, total: calls.append((stage, done, total)))
    assert calls == [("Downloading MNIST", 1000, 3000), ("Downloading MNIST", 2000, 3000)]
    assert file_utils.urlretrieve is fake_urlretrieve  # our wrapper is gone again
    monkeypatch.undo()
    assert file_utils.urlretrieve is original


def test_keras_dataset_damaged_cache(monkeypatch):
    import keras

    def broken():
        raise ValueError("Incomplete or corrupted file detected.")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", broken)
    with pytest.raises(DataError, match="Could not read CIFAR-10 from its cache .* damaged"):
        load_data(DataSettings(source="cifar10"))


def test_keras_images_success_path(monkeypatch):
    import keras

    rng = np.random.default_rng(0)

    def fake():
        return ((rng.integers(0, 256, (40, 28, 28), dtype=np.uint8), np.arange(40) % 10),
                (rng.integers(0, 256, (12, 28, 28), dtype=np.uint8), np.arange(12) % 10))

    monkeypatch.setattr(keras.datasets.mnist, "load_data", fake)
    ds = load_data(DataSettings(source="mnist", validation_split=0.25))
    assert ds.x_train.shape == (30, 28, 28, 1) and ds.x_val.shape == (10, 28, 28, 1)
    assert ds.x_test.shape == (12, 28, 28, 1)  # the dataset's own test set is kept
    assert ds.x_train.dtype == np.float32 and ds.x_train.max() <= 1.0
    assert ds.num_classes == 10 and ds.task == "classification"


def test_keras_cifar_labels_are_flattened(monkeypatch):
    import keras

    def fake():
        x = np.zeros((20, 32, 32, 3), np.uint8)
        return (x, (np.arange(20) % 10)[:, None]), (x[:5], (np.arange(5) % 10)[:, None])

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", fake)
    ds = load_data(DataSettings(source="cifar10"))
    assert ds.y_train.ndim == 1 and ds.class_names[0] == "airplane"
    assert ds.sample_shape == (32, 32, 3)


def test_keras_text_is_padded(monkeypatch):
    import keras

    seen = {}

    def fake(num_words=None):
        seen["num_words"] = num_words
        seqs = [list(range(1, n + 2)) for n in range(20)]
        return (seqs, np.arange(20) % 2), (seqs[:4], np.arange(4) % 2)

    monkeypatch.setattr(keras.datasets.imdb, "load_data", fake)
    ds = load_data(DataSettings(source="imdb"))
    assert seen["num_words"] == 10_000
    assert ds.x_train.shape[1:] == (200,) and ds.x_train.dtype == np.int32
    assert ds.class_names == ["negative", "positive"]


def test_keras_boston_housing_is_regression(monkeypatch):
    import keras

    def fake():
        x = np.random.default_rng(0).random((30, 13)) * 100
        return (x, np.linspace(5, 50, 30)), (x[:6], np.linspace(5, 50, 6))

    monkeypatch.setattr(keras.datasets.boston_housing, "load_data", fake)
    ds = load_data(DataSettings(source="boston_housing"))
    assert ds.task == "regression" and ds.feature_names[0] == "CRIM"
    assert abs(float(ds.x_train.mean())) < 1e-4


# ================================================================================= CSV
MIXED = """
age,color,height,label
30,red,1.80,cat
41,blue,,dog
,red,1.65,cat
25,green,1.70,dog
52,,1.90,cat
33,blue,1.75,dog
29,red,1.60,cat
47,green,1.85,dog
38,blue,1.72,cat
44,red,1.68,dog
"""


def test_csv_numeric_categorical_and_missing(tmp_path):
    ds = csv_data(tmp_path, MIXED, target="label", validation_split=0.0, test_split=0.2)
    assert ds.task == "classification" and ds.class_names == ["cat", "dog"]
    assert ds.feature_names == ["age", "color=(missing)", "color=blue", "color=green",
                                "color=red", "height"]
    assert not np.isnan(all_rows(ds)).any()
    summary = ds.summary()
    json.dumps(summary)
    missing = {m["column"]: m for m in summary["missing"]}
    assert missing["color"] == {"column": "color", "count": 1, "filled_with": "(missing)"}
    assert missing["age"]["count"] == 1 and missing["height"]["count"] == 1
    # Numeric gaps are filled with the median of the training rows.
    assert isinstance(missing["age"]["filled_with"], float)
    one_hot = all_rows(ds)[:, 1:5]
    np.testing.assert_array_equal(one_hot.sum(axis=1), 1)


def test_csv_features_and_forced_categorical(tmp_path):
    ds = csv_data(tmp_path, MIXED, target="label", features=("age", "color"),
                  categorical=("age",), validation_split=0.0, test_split=0.0)
    assert ds.feature_names[0] == "age=(missing)" and "height" not in ds.feature_names
    assert all(name.startswith(("age=", "color=")) for name in ds.feature_names)


def test_csv_target_from_the_source_spec_and_default(tmp_path):
    path = write_csv(tmp_path / "data.csv", MIXED)
    ds = load_data(DataSettings(source=f"csv:{path}:target=color", test_split=0.0,
                                validation_split=0.0))
    assert ds.class_names == ["blue", "green", "red"]  # the row without a color is left out
    assert "label=cat" in ds.feature_names
    default = load_data(DataSettings(source=f"csv:{path}", test_split=0.0,
                                     validation_split=0.0))
    assert default.class_names == ["cat", "dog"]
    assert any("last column 'label'" in note for note in default.notes)


def test_csv_regression_and_integer_classes(tmp_path):
    rows = "\n".join(f"{i},{i * 1.5 + 0.25},{1 + i % 3}" for i in range(30))
    path = write_csv(tmp_path / "data.csv", "x,price,grade\n" + rows)
    reg = load_data(DataSettings(source=f"csv:{path}", target="price", features=("x",)))
    assert reg.task == "regression" and reg.num_classes is None
    assert reg.y_train.dtype == np.float32
    cls = load_data(DataSettings(source=f"csv:{path}", target="grade", features=("x",)))
    assert cls.task == "classification" and cls.class_names == ["1", "2", "3"]
    assert set(np.concatenate([y for _, y in cls.splits().values()]).tolist()) == {0, 1, 2}
    assert any("numbered 0..2" in note for note in cls.notes)
    forced = load_data(DataSettings(source=f"csv:{path}", target="grade", features=("x",)),
                       task="regression")
    assert forced.task == "regression"


def test_csv_semicolons_and_decimal_commas(tmp_path):
    rows = "\n".join(f"{i},5;{i % 2};label{i % 2}" for i in range(10))
    ds = csv_data(tmp_path, "weight;flag;target\n" + rows, test_split=0.0,
                  validation_split=0.0)
    assert ds.feature_names == ["weight", "flag"]
    assert all_rows(ds)[:, 0].max() == pytest.approx(9.5)


def test_csv_tabs_quotes_and_rows_without_target(tmp_path):
    text = 'a\tb\tt\n1\t"x, y"\tp\n2\tz\t\n3\tz\tq\n4\tx, y\tp\n5\tz\tq\n'
    ds = csv_data(tmp_path, text, target="t", test_split=0.0, validation_split=0.0)
    assert len(all_rows(ds)) == 4
    assert "b=x, y" in ds.feature_names
    assert any("1 row(s) without a value for the target 't'" in n for n in ds.notes)


def test_csv_identifier_column_is_left_out(tmp_path):
    rows = "\n".join(f"name{i},{i % 7},{'ab'[i % 2]}" for i in range(120))
    ds = csv_data(tmp_path, "name,x,y\n" + rows, target="y")
    assert ds.feature_names == ["x"]
    assert any("Column 'name' has 120 different text values" in n for n in ds.notes)


def test_csv_unknown_target(tmp_path):
    error = csv_error(tmp_path, MIXED, target="price")
    assert str(error) == ("Column 'price' is not in data.csv; its columns are: "
                          "age, color, height, label.")
    assert error.column == "price"


def test_csv_unknown_feature(tmp_path):
    error = csv_error(tmp_path, MIXED, target="label", features=("age", "weight"))
    assert str(error).startswith("Column 'weight' is not in data.csv")


def test_csv_non_numeric_value_names_line_and_column(tmp_path):
    rows = [f"{20 + i},{i % 2}" for i in range(20)]
    rows[15] = "abc,1"  # the header is line 1, so this is line 17
    error = csv_error(tmp_path, "age,label\n" + "\n".join(rows), target="label")
    assert str(error).startswith("data.csv line 17, column 'age': 'abc' is not a number")
    assert (error.line, error.column) == (17, "age")


def test_csv_empty_and_header_only(tmp_path):
    assert str(csv_error(tmp_path, "")).startswith("data.csv is empty")
    assert str(csv_error(tmp_path, "  \n\n")).startswith("data.csv is empty")
    assert str(csv_error(tmp_path, "a,b\n")) == "data.csv has a header row but no data rows."


def test_csv_ragged_row(tmp_path):
    error = csv_error(tmp_path, "a,b,c\n1,2,3\n4,5\n6,7,8\n")
    assert str(error).startswith("data.csv line 3 has 2 values but the header has 3 columns")
    assert error.line == 3


def test_csv_duplicate_columns(tmp_path):
    error = csv_error(tmp_path, "a,b,a\n1,2,3\n")
    assert str(error).startswith("data.csv has two columns named 'a' (columns 1 and 3)")


def test_csv_binary_file(tmp_path):
    path = tmp_path / "data.csv"
    write_png(path, np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match="data.csv is not a text file"):
        load_data(DataSettings(source=f"csv:{path}"))


def test_csv_missing_file_and_bad_target_choices(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_data(DataSettings(source=f"csv:{tmp_path / 'nope.csv'}"))
    error = csv_error(tmp_path, MIXED, target="label", features=("age", "label"))
    assert "both the target and a feature" in str(error)
    error = csv_error(tmp_path, "a,t\n1,x\n2,x\n3,x\n", target="t")
    assert "only one class ('x')" in str(error)


# =============================================================================== NumPy
def test_npz_x_y(tmp_path):
    path = tmp_path / "data.npz"
    x = np.random.default_rng(0).random((50, 6))
    np.savez(path, x=x, y=np.arange(50) % 5)
    ds = load_data(DataSettings(source=f"npz:{path}"))
    assert ds.x_train.dtype == np.float32 and ds.sample_shape == (6,)
    assert ds.num_classes == 5 and ds.label_format == "integer"


def test_npz_with_its_own_test_set(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, x_train=np.zeros((40, 3)), y_train=np.linspace(0, 1, 40),
             x_test=np.ones((7, 3)), y_test=np.linspace(0, 1, 7))
    ds = load_data(DataSettings(source=f"npz:{path}", validation_split=0.25))
    assert ds.task == "regression"
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (30, 10, 7)
    np.testing.assert_array_equal(ds.x_test, 1)


def test_npy_folder_and_file(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((20, 4, 4), np.uint8))
    np.save(tmp_path / "y.npy", np.array([-1, 1] * 10))
    for spec in (f"npz:{tmp_path}", f"npz:{tmp_path / 'x.npy'}"):
        ds = load_data(DataSettings(source=spec))
        assert ds.class_names == ["-1", "1"] and ds.x_train.dtype == np.uint8
        assert set(ds.y_train.tolist()) <= {0, 1}


def test_npz_one_hot_labels(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, x=np.zeros((30, 2)), y=np.eye(3)[np.arange(30) % 3])
    ds = load_data(DataSettings(source=f"npz:{path}"))
    assert ds.label_format == "one_hot" and ds.num_classes == 3
    assert ds.summary()["splits"]["train"]["class_counts"] == {"0": 6, "1": 6, "2": 6}


def test_npz_pickled_array_is_refused(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, x=np.array([{"a": 1}, None], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DataError, match=r"array 'x' of data.npz holds Python objects "
                       r"\(a pickle\). kbuilder does not load pickles"):
        load_data(DataSettings(source=f"npz:{path}"))


def test_npz_missing_arrays_and_length_mismatch(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, features=np.zeros((3, 2)), measures=np.zeros(3))
    with pytest.raises(DataError, match="must hold arrays named x and y .*, or one array per "
                       "model input and the target array y; it holds: features, measures"):
        load_data(DataSettings(source=f"npz:{path}"))
    np.savez(path, x=np.zeros((10, 2)), y=np.zeros(9))
    with pytest.raises(DataError, match="data.npz: x has 10 samples but y has 9"):
        load_data(DataSettings(source=f"npz:{path}"))
    np.savez(path, x=np.zeros((10, 2)), y=np.arange(10) % 2, x_test=np.zeros((2, 2)))
    with pytest.raises(DataError, match="has x_test but not y_test"):
        load_data(DataSettings(source=f"npz:{path}"))


def test_npz_not_numpy(tmp_path):
    path = tmp_path / "data.npz"
    path.write_text("hello")
    with pytest.raises(DataError, match="data.npz is not a NumPy .npz or .npy file"):
        load_data(DataSettings(source=f"npz:{path}"))


# ======================================================================= image folders
def make_images(root: Path, classes=("cats", "dogs"), count=3, size=(10, 12)) -> Path:
    rng = np.random.default_rng(0)
    for c in classes:
        for i in range(count):
            write_png(root / c / f"{i}.png", rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return root


def test_image_folder(tmp_path):
    root = make_images(tmp_path / "pets")
    (root / "cats" / "notes.txt").write_text("not an image")
    ds = load_data(DataSettings(source=f"images:{root}", image_size=(8, 8),
                                validation_split=0.0, test_split=0.0))
    assert ds.x_train.shape == (6, 8, 8, 3) and ds.x_train.dtype == np.float32
    assert ds.class_names == ["cats", "dogs"] and ds.y_train.tolist() == [0, 0, 0, 1, 1, 1]
    assert 1.0 < ds.x_train.max() <= 255.0  # 0..255 kept: the model rescales
    gray = load_data(DataSettings(source=f"images:{root}", image_size=(5, 6),
                                  color_mode="grayscale"))
    assert gray.sample_shape == (5, 6, 1)


def test_image_folder_progress(tmp_path):
    root = make_images(tmp_path / "pets", count=2)
    calls = []
    load_data(DataSettings(source=f"images:{root}", image_size=(4, 4)),
              progress=lambda *a: calls.append(a))
    assert calls[-1] == ("Reading images", 4, 4)


def test_corrupt_image_is_named(tmp_path):
    root = make_images(tmp_path / "pets")
    (root / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")
    with pytest.raises(DataError) as info:
        load_data(DataSettings(source=f"images:{root}", image_size=(8, 8)))
    assert str(info.value).startswith(f"{root / 'dogs' / 'broken.png'} is not a readable "
                                      "image")
    assert info.value.path == str(root / "dogs" / "broken.png")


def test_image_folder_structure_errors(tmp_path):
    root = make_images(tmp_path / "pets")
    (root / "birds").mkdir()
    with pytest.raises(DataError, match="The class folder 'birds' in .* has no images"):
        load_data(DataSettings(source=f"images:{root}"))
    one = make_images(tmp_path / "one", classes=("cats",))
    with pytest.raises(DataError, match=r"has only one class folder \('cats'\); a "
                       "classifier needs at least two"):
        load_data(DataSettings(source=f"images:{one}"))
    flat = tmp_path / "flat"
    write_png(flat / "a.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match="has no sub-folders. It holds 1 image directly"):
        load_data(DataSettings(source=f"images:{flat}"))
    with pytest.raises(DataError, match="does not exist"):
        load_data(DataSettings(source=f"images:{tmp_path / 'none'}"))


# ============================================================================== adapt
def test_adapt_layers():
    import keras

    x = np.random.default_rng(0).normal(5.0, 2.0, (200, 3)).astype(np.float32)
    inputs = keras.Input((3,), name="features")
    norm = keras.layers.Normalization(name="norm")(inputs)
    hidden = keras.layers.Dense(4, name="dense")(norm)
    deep = keras.layers.Normalization(name="deep_norm")(hidden)
    fixed = keras.layers.Normalization(name="fixed", mean=0.0, variance=1.0)(inputs)
    out = keras.layers.Concatenate()([deep, fixed])
    model = keras.Model(inputs, out)
    results = {r.layer: r for r in adapt_layers(model, x)}
    assert results["norm"].adapted
    np.testing.assert_allclose(np.ravel(model.get_layer("norm").mean), x.mean(axis=0),
                               rtol=1e-4)
    assert not results["deep_norm"].adapted
    assert "cannot be adapted automatically" in results["deep_norm"].message
    assert not results["fixed"].adapted and "nothing to adapt" in results["fixed"].message


def test_adapt_layers_with_named_inputs():
    import keras

    a, b = keras.Input((2,), name="a"), keras.Input((1,), name="b")
    out = keras.layers.Concatenate()([keras.layers.Normalization(name="na")(a), b])
    model = keras.Model([a, b], out)
    data = {"a": np.array([[0.0, 10.0], [2.0, 30.0]], np.float32), "b": np.zeros((2, 1))}
    (result,) = adapt_layers(model, data)
    assert result.adapted
    np.testing.assert_allclose(np.ravel(model.get_layer("na").mean), [1.0, 20.0])
    with pytest.raises(DataError, match="no array for the model input 'a'"):
        adapt_layers(model, {"b": data["b"]})


def test_npz_whole_file_pickle_is_refused(tmp_path):
    import pickle

    path = tmp_path / "data.npz"
    path.write_bytes(pickle.dumps({"x": [1, 2]}))
    with pytest.raises(DataError, match="data.npz holds Python objects"):
        load_data(DataSettings(source=f"npz:{path}"))


@pytest.mark.parametrize("decoder", ["default", "tensorflow"])
def test_both_image_decoders(tmp_path, monkeypatch, decoder):
    """Pillow when installed, TensorFlow's decoders otherwise: same arrays, same errors."""
    from kbuilder.runtime import data

    if decoder == "tensorflow":
        monkeypatch.setattr(data.images, "_image_decoder", lambda: data.images._tf_decode)
    root = tmp_path / "shapes"
    write_png(root / "dark" / "a.png", np.full((6, 6, 3), 10, np.uint8))
    write_png(root / "light" / "b.png", np.full((6, 6), 200, np.uint8))
    ds = load_data(DataSettings(source=f"images:{root}", image_size=(3, 3),
                                validation_split=0.0, test_split=0.0))
    np.testing.assert_allclose(ds.x_train[0], 10, atol=0.5)
    np.testing.assert_allclose(ds.x_train[1], 200, atol=0.5)  # gray expanded to RGB
    (root / "light" / "c.png").write_bytes(b"GIF89a broken")
    with pytest.raises(DataError, match=r"c.png is not a readable image \([^<]+\)\."):
        load_data(DataSettings(source=f"images:{root}"))


# ------------------------------------------------ hostile and odd files (issue 12 item 14)
def _npy_bytes(header: dict, data: bytes = b"\0" * 64) -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + data


def _hostile_files(folder: Path) -> dict[str, str]:
    """source spec -> words the DataError must hold."""
    import zipfile

    np.savez(folder / "zero_d.npz", x=np.float32(1), y=np.int64(2))
    np.savez(folder / "complex.npz", x=np.ones((20, 3)) * (1 + 2j), y=np.arange(20) % 2)
    np.savez(folder / "huge_value.npz", x=np.full((20, 2), 1e300), y=np.arange(20) % 2)
    huge = {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
    (folder / "claims").mkdir()
    (folder / "claims" / "x.npy").write_bytes(_npy_bytes(huge))
    np.save(folder / "claims" / "y.npy", np.arange(10))
    with zipfile.ZipFile(folder / "claims.npz", "w") as archive:
        archive.writestr("x.npy", _npy_bytes(huge))
        archive.writestr("y.npy", _npy_bytes({"descr": "<i8", "fortran_order": False,
                                              "shape": (8,)}))
    rows = [f"{i},{1e308 if i == 3 else i * 0.5},{i % 2}" for i in range(20)]
    (folder / "big.csv").write_text("a,b,t\n" + "\n".join(rows) + "\n")
    (folder / "inf.csv").write_text("a,t\n" + "\n".join(
        f"{'inf' if i == 4 else i},{i % 2}" for i in range(20)) + "\n")
    return {
        f"npz:{folder / 'zero_d.npz'}": "is a single value",
        f"npz:{folder / 'complex.npz'}": "complex numbers",
        f"npz:{folder / 'huge_value.npz'}": "32-bit floats",
        f"npz:{folder / 'claims'}": "damaged or cut short",
        f"npz:{folder / 'claims' / 'x.npy'}": "7.3 TB",
        f"npz:{folder / 'claims.npz'}": "array 'x' of claims.npz is damaged",
        f"csv:{folder / 'big.csv'}": "big.csv line 5, column 'b': 1e+308 is too large",
        f"csv:{folder / 'inf.csv'}": "line 6, column 'a': inf is infinite",
    }


def test_hostile_numpy_and_csv_files_get_a_sentence_with_bounded_memory(tmp_path):
    # Each used to end in TypeError/MemoryError, train silently on the real part, or
    # become inf with a raw RuntimeWarning. In a child process, to measure its peak memory.
    import subprocess
    import sys

    expected = _hostile_files(tmp_path)
    script = """
import json, resource, sys, warnings
warnings.simplefilter("error")  # no raw warning may be how a file is refused
from kbuilder.graph.settings import DataSettings
from kbuilder.runtime.data import DataError, load_data
out = {}
for spec in json.loads(sys.argv[1]):
    try:
        load_data(DataSettings(source=spec))
        out[spec] = "loaded"
    except DataError as exc:
        out[spec] = str(exc)
try:  # this process's own peak: ru_maxrss would count the parent's memory it forked from
    status = open("/proc/self/status").read()
    out["rss_mb"] = int(status.split("VmHWM:")[1].split()[0]) / 1024
except OSError:
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""
    done = subprocess.run([sys.executable, "-c", script, json.dumps(list(expected))],
                          capture_output=True, text=True, timeout=120, check=True)
    out = json.loads(done.stdout)
    for spec, words in expected.items():
        assert words in out[spec], (spec, out[spec])
    assert out["rss_mb"] < 300, out["rss_mb"]


def test_prediction_inputs_with_a_lying_header_are_refused(tmp_path):
    from kbuilder.runtime.inference import read_inputs

    path = tmp_path / "x.npy"
    path.write_bytes(_npy_bytes({"descr": "<f4", "fortran_order": False,
                                 "shape": (10**7, 10**5)}))
    with pytest.raises(DataError, match="damaged or cut short"):
        read_inputs(path)


def test_the_cli_shows_no_raw_warnings(tmp_path, capsys):
    import sys
    import warnings

    from kbuilder import cli

    def noisy(args):
        warnings.warn("overflow encountered in cast", RuntimeWarning, stacklevel=1)
        return 0

    parser = cli.build_parser
    try:
        cli.build_parser = lambda: _parser_with(parser(), noisy)
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            # As outside pytest (which records warnings instead): printed on stderr.
            warnings.showwarning = lambda message, category, *args, **kwargs: print(
                f"{category.__name__}: {message}", file=sys.stderr)
            assert cli.main(["templates"]) == 0
    finally:
        cli.build_parser = parser
    assert "RuntimeWarning" not in capsys.readouterr().err


def _parser_with(parser, run):
    parser.set_defaults(run=run)
    for action in parser._subparsers._group_actions:
        for sub in action.choices.values():
            sub.set_defaults(run=run)
    return parser


def test_test_samples_know_their_row_or_csv_line(tmp_path):
    from kbuilder.runtime.inference import test_split_columns

    lines = ["a,t"] + [f"{i},{'yes' if i % 2 else 'no'}" for i in range(40)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    data = load_data(DataSettings(source=f"csv:{tmp_path / 'd.csv'}"))
    assert data.row_label == "line" and len(data.test_rows) == len(data.y_test)
    for first in test_split_columns(data):
        _, label = lines[first["line"] - 1].split(",")  # 1-based lines, the header is 1
        assert first["true"] == label  # labels alternate: a wrong line shows
    digits = load_data(DataSettings(source="digits"))
    assert digits.row_label == "row" and not digits.test_is_given


# ------------------------------------------------------------ one array per model input
def two_inputs(tmp_path, **extra):
    rng = np.random.default_rng(0)
    arrays = {"tabular": rng.normal(size=(40, 3)), "image": rng.random((40, 4, 4, 1)),
              "y": np.array(["no", "yes"])[np.arange(40) % 2], **extra}
    path = tmp_path / "two.npz"
    np.savez(path, **arrays)
    return path, arrays


def test_npz_of_one_array_per_input_gives_x_by_input_name(tmp_path):
    path, arrays = two_inputs(tmp_path)
    ds = load_data(DataSettings(source=f"npz:{path}", test_split=0.25))
    assert set(ds.x_train) == {"tabular", "image"} and ds.class_names == ["no", "yes"]
    assert ds.sample_shape == {"tabular": (3,), "image": (4, 4, 1)}
    assert ds.x_train["tabular"].dtype == np.float32
    assert len(ds.x_test["image"]) == len(ds.y_test) == 10
    # The two arrays of a sample stay together through the split.
    rows = [int(np.flatnonzero((arrays["tabular"].astype("float32") == r).all(axis=1))[0])
            for r in ds.x_test["tabular"]]
    np.testing.assert_array_equal(ds.x_test["image"], arrays["image"][rows].astype("float32"))


def test_npz_arrays_of_a_split_and_a_mapping_to_other_names(tmp_path):
    rng = np.random.default_rng(1)
    path, _ = two_inputs(tmp_path, tabular_test=rng.normal(size=(6, 3)),
                         image_test=rng.random((6, 4, 4, 1)), y_test=np.array(["no", "yes"] * 3),
                         extra=np.zeros(40), extra_test=np.ones(6))
    ds = load_data(DataSettings(source=f"npz:{path}"))
    assert ds.test_is_given and len(ds.y_test) == 6 and set(ds.x_test) == {
        "tabular", "image", "extra"}
    mapped = DataSettings(source=f"npz:{path}", input_arrays=(("scan", "image"),),
                          output_arrays=(("output", "y"),))
    ds = load_data(mapped)
    assert set(ds.x_train) == {"scan", "tabular", "extra"}  # renamed; the rest by its name
    again = DataSettings.from_dict(mapped.to_dict())
    assert again == mapped and mapped.to_dict()["input_arrays"] == {"scan": "image"}
    assert "input_arrays" not in DataSettings(source=f"npz:{path}").to_dict()


def test_npz_mapping_and_split_mistakes_are_named(tmp_path):
    path, _ = two_inputs(tmp_path, image_test=np.zeros((2, 4, 4, 1)))
    with pytest.raises(DataError, match="has image_test but not tabular_test, y_test"):
        load_data(DataSettings(source=f"npz:{path}"))
    path, _ = two_inputs(tmp_path)
    with pytest.raises(DataError, match="has no array 'scan' \\(chosen as input of 'pixels'\\)"
                       ".* it holds: image, tabular, y"):
        load_data(DataSettings(source=f"npz:{path}", input_arrays=(("pixels", "scan"),)))
    with pytest.raises(SettingsError, match="names the node 'a' twice"):
        DataSettings(source="npz:x.npz", input_arrays=(("a", "x"), ("a", "y"))).validate()
    with pytest.raises(SettingsError, match="input_arrays must map node names to array names"):
        DataSettings.from_dict({"source": "npz:x.npz", "input_arrays": ["image"]})


def test_fit_to_inputs_feeds_each_input_by_name_and_names_what_is_missing():
    from kbuilder.runtime.data import fit_to_inputs

    x = {"image": np.zeros((2, 4, 4, 1)), "tabular": np.ones((2, 3)), "extra": np.ones((2, 1))}
    tab, image = fit_to_inputs(x, ["tabular", "image"], [(3,), (16,)])
    assert tab.shape == (2, 3) and image.shape == (2, 16)
    assert fit_to_inputs({"whatever": np.ones((2, 3))}, ["rows"], [(3,)]).shape == (2, 3)
    with pytest.raises(DataError, match="The model's Input 'scan' gets no data: the data has "
                       "the arrays 'image', 'tabular', 'extra'"):
        fit_to_inputs(x, ["tabular", "scan"], [(3,), (16,)])
    with pytest.raises(DataError, match="The model has 2 inputs .* but the data is one array"):
        fit_to_inputs(np.ones((2, 3)), ["tabular", "image"], [(3,), (16,)])


def test_npz_targets_of_several_outputs_split_together(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 2))
    np.savez(tmp_path / "two.npz", rows=x, kind=np.arange(30) % 3, size=x.sum(axis=1))
    settings = DataSettings(source=f"npz:{tmp_path / 'two.npz'}",
                            output_arrays=(("kind", "kind"), ("size", "size")))
    ds = load_data(settings)
    assert set(ds.y_train) == {"kind", "size"} and ds.task == "classification"
    assert ds.num_classes == 3 and ds.y_train["size"].dtype == np.float32
    # The rows of both targets and of the input stay together through the split.
    np.testing.assert_allclose(ds.y_test["size"], ds.x_test["rows"].sum(axis=1), rtol=1e-5)
    summary = ds.summary()
    assert summary["splits"]["train"]["y_shape"] == {"kind": [18], "size": [18]}
    assert sum(summary["splits"]["train"]["class_counts"].values()) == 18
    assert any("a target per output" in n for n in ds.notes)
