"""Tables streamed in blocks (``stream_table``): one pass of statistics that match numpy,
rows encoded as the in-memory loader encodes them, a seeded split that needs no shuffle,
values refused by line and column, training through the stream, and memory that does not
grow with the number of rows."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kbuilder.graph.settings import DataSettings, SettingsError, parse_table_spec
from kbuilder.runtime.data import DataError, load_data, roles
from kbuilder.runtime.data.dataset import Streamed
from kbuilder.runtime.data.split import median
from kbuilder.runtime.data.table_splits import TableSplit
from kbuilder.runtime.data.table_stats import Moments, Reservoir
from kbuilder.runtime.data.table_stream import scan_table, split_of

SMALL_BLOCKS = 2000  # bytes: a few hundred rows make several blocks


def messy_csv(path: Path, rows: int = 400, seed: int = 0) -> Path:
    """Measurements in the thousands with gaps (empty, NA), text categories with stray
    spaces and case, a yes/no column, dates, an identifier, a text target."""
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "length", "weight", "colour", "flag", "when", "species"])
        for i in range(rows):
            length = "" if rng.random() < .1 else f"{rng.normal(1500, 400):.2f}"
            weight = "NA" if rng.random() < .05 else f"{rng.normal(3, 1):.3f}"
            w.writerow([i, length, weight, rng.choice(["red", "blue", " green", "NA", "Red"]),
                        rng.choice(["yes", "no", ""]),
                        f"2024-{rng.integers(1, 13):02d}-{rng.integers(1, 28):02d}",
                        rng.choice(["setosa", "versicolor", "virginica"])])
    return path


def quoted_csv(path: Path, rows: int = 300) -> Path:
    """A metadata line above the header, semicolons, decimal commas, quoted newlines and
    doubled quotes, blank lines."""
    rng = np.random.default_rng(1)
    with path.open("w") as f:
        f.write("exported by the lab database\na;b;note;c\n")
        for i in range(rows):
            if i % 37 == 0:
                f.write("\n")
            note = '"multi\nline ""q"""' if i % 11 == 0 else "plain"
            a = f"{rng.normal(5000, 300):.1f}".replace(".", ",")
            f.write(f"{a};{rng.choice(['x', 'y'])};{note};{rng.choice(['k', 'l'])}\n")
    return path


def all_blocks(plan, fill=False):
    parts = [plan.encode(plan.reader.read(b), fill=fill) for b in plan.reader.blocks]
    x = parts[0][0]
    if isinstance(x, dict):
        x = {k: np.concatenate([p[0][k] for p in parts]) for k in x}
    else:
        x = np.concatenate([p[0] for p in parts])
    return x, *(np.concatenate([p[i] for p in parts]) for i in (1, 2, 3))


# ===================================================================== statistics
def test_moments_and_reservoir_merge_blocks_as_numpy_computes_the_whole():
    rng = np.random.default_rng(3)
    values = rng.normal(4000, 900, 5000)
    m, sample = Moments(), Reservoir(100_000, np.random.default_rng(0))
    for block in np.array_split(values, 13):
        m.add(block)
        sample.add(block.astype(np.float32))
    assert m.count == 5000 and m.mean == pytest.approx(values.mean(), rel=1e-12)
    assert m.variance == pytest.approx(values.var(), rel=1e-10)
    assert (m.minimum, m.maximum) == (values.min(), values.max())
    assert median(sample.values) == median(values.astype(np.float32))  # all kept: exact
    small = Reservoir(100, np.random.default_rng(0))
    for block in np.array_split(values, 13):
        small.add(block.astype(np.float32))
    assert len(small.values) == 100 and small.seen == 5000
    assert set(small.values) <= set(values.astype(np.float32))
    again = Reservoir(100, np.random.default_rng(0))
    for block in np.array_split(values, 13):
        again.add(block.astype(np.float32))
    assert np.array_equal(small.values, again.values)  # seeded


def test_one_pass_statistics_match_numpy_on_a_messy_csv(tmp_path):
    path = messy_csv(tmp_path / "messy.csv")
    settings = DataSettings(source=f"csv:{path}")
    plan = scan_table(settings, block_bytes=SMALL_BLOCKS)
    assert len(plan.reader.blocks) > 5
    x, y, lines, split = all_blocks(plan)
    train = x[split == 0].astype(np.float64)
    names = plan.feature_names
    for f in plan.features:
        for n in f.numbers:
            column = train[:, names.index(n.name)]
            present = column[~np.isnan(column)]
            assert n.train.count == len(present)
            # Of the file's float64 values; the features are float32.
            assert n.train.mean == pytest.approx(present.mean(), rel=1e-6)
            assert n.train.variance == pytest.approx(present.var(), rel=1e-5)
            assert n.missing == int(np.isnan(x[:, names.index(n.name)]).sum())
            assert n.fill_value() == median(x[split == 0][:, names.index(n.name)])
    length = next(f for f in plan.features if f.column == "length").numbers[0]
    assert length.missing > 0 and 1000 < length.fill_value() < 2000
    # The moments the Normalization gets are those of the filled training rows.
    fills = plan.fill_values()
    filled = np.where(np.isnan(train), np.where(np.isnan(fills), 0, fills), train)
    mean, variance = plan.moments()
    assert np.allclose(mean, filled.mean(axis=0)) and np.allclose(variance, filled.var(0))
    colour = next(f for f in plan.features if f.column == "colour")
    assert colour.categories == ["(missing)", "Red", "blue", "green", "red"]
    assert sum(colour.vocabulary.counts.values()) + colour.vocabulary.missing == len(y)
    assert plan.class_names == ["setosa", "versicolor", "virginica"]
    assert any("'id' numbers the rows" in n for n in plan.notes)


# ============================================================ stream == in memory
@pytest.mark.parametrize("make, spec", [(messy_csv, "csv:{}"),
                                        (quoted_csv, "csv:{}:header=2")])
def test_streamed_blocks_encode_rows_as_the_in_memory_loader(tmp_path, make, spec):
    path = make(tmp_path / "table.csv")
    settings = DataSettings(source=spec.format(path))
    raw = roles.load_csv(str(path), settings, None)
    plan = scan_table(settings, block_bytes=SMALL_BLOCKS)
    assert len(plan.reader.blocks) >= 3
    x, y, lines, _ = all_blocks(plan)
    assert plan.feature_names == raw.feature_names
    assert np.array_equal(x, raw.x, equal_nan=True)  # row for row, NaN where missing
    assert np.array_equal(y, raw.y) and np.array_equal(lines, raw.row_ids)


def test_parquet_streams_by_row_group_as_read_whole(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(2)
    n = 500
    table = pa.table({"size": np.where(rng.random(n) < .1, np.nan, rng.normal(2000, 50, n)),
                      "kind": rng.choice(["a", "b", "c"], n),
                      "label": rng.integers(0, 2, n)})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=64)
    settings = DataSettings(source=f"parquet:{tmp_path / 't.parquet'}")
    plan = scan_table(settings)
    assert len(plan.reader.blocks) == 8
    raw = roles.load_csv(str(tmp_path / "t.parquet"), settings, None)
    x, y, lines, _ = all_blocks(plan)
    assert np.array_equal(x, raw.x, equal_nan=True) and np.array_equal(y, raw.y)
    assert np.array_equal(lines, raw.row_ids)


def test_model_encoding_streams_raw_numbers_and_training_vocabulary_codes(tmp_path):
    path = messy_csv(tmp_path / "messy.csv")
    settings = DataSettings(source=f"csv:{path}", table_encoding="model")
    raw = roles.load_csv(str(path), settings, None)
    plan = scan_table(settings, block_bytes=SMALL_BLOCKS)
    x, _, _, split = all_blocks(plan)
    assert np.array_equal(x["numeric"], raw.x["numeric"], equal_nan=True)
    assert plan.encoder.columns == raw.row_encoder.columns
    assert plan.encoder.feature_names == raw.row_encoder.feature_names
    (spec,) = plan.encoder.categories
    # Codes name the training rows' categories (0: not among them), as fit_vocabularies.
    every = raw.row_encoder.categories[0]["vocabulary"]
    train_text = {every[i] for i in raw.x["colour"][split == 0, 0]}
    assert spec["vocabulary"] == sorted(train_text)
    decoded = [spec["vocabulary"][c - 1] for c in x["colour"][:, 0]]
    assert decoded == [every[i] for i in raw.x["colour"][:, 0]]


# ========================================================================== split
def test_the_split_is_seeded_stable_and_needs_no_shuffle(tmp_path):
    settings = DataSettings(source="csv:x.csv", validation_split=0.2, test_split=0.1)
    lines = np.arange(2, 20_002)
    split = split_of(lines, settings)
    assert np.array_equal(split, split_of(lines, settings))  # the same seed, the same rows
    shares = np.bincount(split, minlength=3) / len(lines)
    assert shares == pytest.approx([0.7, 0.2, 0.1], abs=0.015)
    other = split_of(lines, DataSettings(source="csv:x.csv", seed=1, validation_split=0.2,
                                         test_split=0.1))
    assert (other != split).mean() > 0.3
    # A row's split is its own: the rows of half the file are split as in the whole.
    assert np.array_equal(split_of(lines[5000:9000], settings), split[5000:9000])
    # Streamed, each split's rows are those the hash gives, counted per block.
    path = messy_csv(tmp_path / "messy.csv")
    dataset = load_data(DataSettings(source=f"csv:{path}:stream=yes", seed=4))
    again = load_data(DataSettings(source=f"csv:{path}:stream=yes", seed=4))
    assert isinstance(dataset.x_train, TableSplit)
    assert np.array_equal(dataset.y_test, again.y_test)
    assert np.array_equal(dataset.test_rows, again.test_rows)
    assert len(dataset.x_train) + len(dataset.x_val) + len(dataset.x_test) == 400
    assert dataset.x_train[:3].shape == (3, len(dataset.feature_names))
    assert not np.isnan(dataset.x_train[:]).any()  # medians filled
    assert dataset.fingerprint == again.fingerprint


# ========================================================================= errors
def test_a_value_beyond_float32_is_refused_naming_line_and_column(tmp_path):
    path = tmp_path / "big.csv"
    rows = [f"{i},{1.5 * i:.1f},{'ab'[i % 2]}" for i in range(600)]
    rows[517] = "517,3.5e39,a"  # in a later block
    path.write_text("n,size,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError) as error:
        scan_table(DataSettings(source=f"csv:{path}"), block_bytes=SMALL_BLOCKS)
    assert error.value.line == 519 and error.value.column == "size"
    assert str(error.value).startswith("big.csv line 519, column 'size': 3.5e+39 is too large")


def test_text_in_a_numeric_column_of_a_later_block_is_named(tmp_path):
    path = tmp_path / "late.csv"
    rows = [f"{i * 0.5},{'ab'[i % 2]}" for i in range(600)]
    rows[480] = "n/a?,b"
    path.write_text("size,label\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError) as error:
        scan_table(DataSettings(source=f"csv:{path}"), block_bytes=SMALL_BLOCKS)
    assert error.value.line == 482 and "'n/a?' is not a number" in str(error.value)


@pytest.mark.slow
def test_fitting_and_checks_read_a_sample_never_a_whole_split(tmp_path, monkeypatch):
    """The template fit, the pre-flight checks and the summary look at a streamed table's
    first rows only: reading a whole split (np.asarray of it) would fail here."""
    from kbuilder.graph.settings import TrainingSettings
    from kbuilder.runtime.data.table_splits import TableInput
    from kbuilder.runtime.preflight import check, new_project_for_data

    def whole(self, dtype=None, copy=None):
        raise AssertionError("a whole streamed split was read")

    monkeypatch.setattr(TableSplit, "__array__", whole)
    monkeypatch.setattr(TableInput, "__array__", whole)
    path = learnable_csv(tmp_path / "t.csv")
    settings = DataSettings(source=f"csv:{path}:stream=yes")
    training = TrainingSettings(backend="jax", epochs=1)
    project = new_project_for_data("mlp_classifier", settings, training)
    dataset = load_data(project.data)
    findings = check(project.graph, dataset, project.training)
    assert not [f for f in findings if f.severity == "error"], findings
    summary = dataset.summary()
    assert summary["splits"]["train"]["count"] == len(dataset.y_train)


# ======================================================================= settings
def test_stream_table_is_a_saved_setting_and_a_spec_option():
    assert parse_table_spec("csv:a.csv:stream=yes:target=y").stream is True
    assert parse_table_spec("csv:a.csv").stream is None
    assert parse_table_spec("csv:a.csv:stream=auto").stream == "auto"
    with pytest.raises(SettingsError, match="stream must be yes, no or auto"):
        parse_table_spec("csv:a.csv:stream=maybe")
    on = DataSettings(source="csv:a.csv", stream_table=True)
    assert on.table().stream is True
    assert DataSettings.from_dict(on.to_dict()) == on
    off = DataSettings(source="csv:a.csv", stream_table=False)
    assert "stream_table" not in off.to_dict()  # as before "auto" existed
    assert DataSettings.from_dict(off.to_dict()) == off
    new = DataSettings(source="csv:a.csv")  # new settings: decided by the file's size
    assert new.stream_table == "auto" and new.table().stream == "auto"
    assert new.to_dict()["stream_table"] == "auto"
    assert DataSettings.from_dict(new.to_dict()) == new
    # A project saved before "auto" has no stream_table: it keeps reading the table whole.
    assert DataSettings.from_dict({"source": "csv:a.csv"}).stream_table is False
    # The spec's own yes or no wins over "auto".
    assert DataSettings(source="csv:a.csv:stream=yes").table().stream is True
    assert DataSettings(source="csv:a.csv:stream=no").table().stream is False
    with pytest.raises(SettingsError, match='stream_table must be true, false or "auto"'):
        DataSettings(source="csv:a.csv", stream_table="yes").validate()


def test_stream_auto_streams_a_table_too_large_for_a_share_of_memory(tmp_path, monkeypatch):
    """``stream=auto`` reads a table whole unless that would take more than a quarter of
    the computer's memory (a tiny memory injected here); the loader, the generated script
    and the CLI's data line follow the same choice."""
    from kbuilder.graph import stream_choice as choice_module
    from kbuilder.graph.stream_choice import data_line, stream_choice

    path = learnable_csv(tmp_path / "t.csv", rows=200)
    size = path.stat().st_size
    settings = DataSettings(source=f"csv:{path}", target="label")
    small = stream_choice(settings.table(), memory=size)  # 3x the file > a quarter of it
    assert small.stream and small.automatic
    assert "streams from disk: the file is" in small.reason
    assert "more than a quarter of this computer's" in small.reason
    large = stream_choice(settings.table(), memory=100 * size)
    assert not large.stream and "is read whole into memory" in large.reason
    assert not stream_choice(DataSettings(source=f"csv:{path}", stream_table=False)
                             .table(), memory=size).stream  # an explicit no stays no
    assert stream_choice(DataSettings(source=f"csv:{path}", stream_table=True)
                         .table(), memory=100 * size).stream  # and a yes stays yes

    whole = load_data(settings)
    monkeypatch.setattr(choice_module, "computer_memory", lambda: size)
    assert data_line(settings).startswith("Data: t.csv streams from disk: the file is")
    streamed = load_data(settings)
    assert streamed.row_label == whole.row_label
    assert isinstance(streamed.x_train, Streamed) and isinstance(whole.x_train, np.ndarray)
    from kbuilder.graph.codegen.data_section import data_section

    code = "\n".join(data_section(settings, "csv").definitions)
    assert "def split_of(" in code  # the script splits as the stream does
    monkeypatch.setattr(choice_module, "computer_memory", lambda: 100 * size)
    code = "\n".join(data_section(settings, "csv").definitions)
    assert "def split_of(" not in code


# ======================================================================= training
def learnable_csv(path: Path, rows: int = 400) -> Path:
    rng = np.random.default_rng(5)
    length = rng.normal(3000, 600, rows)
    kind = rng.choice(["a", "b"], rows)
    label = np.where(length + 400 * (kind == "b") > 3200, "high", "low")
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["length", "noise", "kind", "label"])
        for i in range(rows):
            w.writerow(["" if i % 17 == 0 else f"{length[i]:.1f}",
                        f"{rng.normal(50, 10):.2f}", kind[i], label[i]])
    return path


def test_batches_visit_every_training_row_once_an_epoch_shuffled_by_epoch(tmp_path):
    from kbuilder.runtime.data.table_feed import TableBatches

    path = learnable_csv(tmp_path / "t.csv")
    plan = scan_table(DataSettings(source=f"csv:{path}"), block_bytes=SMALL_BLOCKS)
    split = TableSplit(plan, 0)
    batches = TableBatches(split, plan.y["train"], 32, shuffle=True, seed=1)
    epochs = []
    for _ in range(2):
        xs, ys = zip(*(batches[i] for i in range(len(batches))), strict=True)
        batches.on_epoch_end()
        epochs.append((np.concatenate(xs), np.concatenate(ys)))
    whole = split[:]
    for x, y in epochs:
        order = np.lexsort(x.T[::-1])
        assert np.array_equal(x[order], whole[np.lexsort(whole.T[::-1])])
        # Each row keeps its own target.
        rows = {tuple(r): t for r, t in zip(whole, plan.y["train"], strict=True)}
        assert all(rows[tuple(r)] == t for r, t in zip(x, y, strict=True))
    assert not np.array_equal(epochs[0][0], epochs[1][0])  # another order each epoch
    assert np.array_equal(batches[3][0], batches[3][0])  # asked again: the same batch
    # Keras asks for them in order (its own shuffle of the batches' order, fit's default,
    # would make every batch a read of other blocks): one pass over the file an epoch.
    from kbuilder.runtime.data.feed import keras_feed

    feed = keras_feed(split, plan.y["train"], 32, shuffle=True, seed=1)
    assert feed["shuffle"] is False
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    reads = []
    feed["x"]._epoch = (lambda epoch: lambda: reads.append(1) or epoch())(feed["x"]._epoch)
    adapter = PyDatasetAdapter(feed["x"], shuffle=feed["shuffle"])
    assert sum(len(b[1]) for b in adapter.get_numpy_iterator()) == len(split)
    assert len(reads) == 1
    # The model encoding's inputs, as fit_to_model hands them over: by Input name, or
    # by position (a tuple: TensorFlow's dataset signature refuses a list).
    raw = load_data(DataSettings(source=f"csv:{path}", stream_table=True,
                                 table_encoding="model"))
    named = keras_feed(raw.x_train, raw.y_train, 16)["x"][0]
    assert set(named[0]) == {"numeric", "kind"} and named[0]["kind"].dtype == np.int32
    listed = keras_feed([raw.x_train["numeric"], raw.x_train["kind"]], raw.y_train, 16)
    inputs, y = listed["x"][0]
    assert isinstance(inputs, tuple) and inputs[0].shape == (16, 2) and y.shape == (16,)
    (alone,) = keras_feed(raw.x_train, None, 16)["x"][0]  # to predict: inputs only
    assert set(alone) == {"numeric", "kind"}
    # A model with one Input gets that input itself (fit_to_model unwraps the dict).
    numbers, y = keras_feed(raw.x_train["numeric"], raw.y_train, 16)["x"][0]
    assert isinstance(numbers, np.ndarray) and numbers.shape == (16, 2)


def test_preprocessing_layers_get_the_one_pass_statistics_of_every_training_row(tmp_path):
    """A Normalization (flat encoding) and a FillMissing + Normalization (model encoding)
    end as adapting them on all the training rows would leave them."""
    import keras

    from kbuilder.graph.catalog.kbuilder_layers import keras_class
    from kbuilder.runtime.data.adapt import adapt_layers, table_statistics
    from kbuilder.runtime.data.dataset import values_sample

    path = messy_csv(tmp_path / "messy.csv")
    flat = load_data(DataSettings(source=f"csv:{path}", stream_table=True))
    width = flat.x_train.shape[1]
    inputs = keras.Input((width,), name="features")
    norm = keras.layers.Normalization()
    model = keras.Model(inputs, keras.layers.Dense(1)(norm(inputs)))
    results = adapt_layers(model, values_sample(flat.x_train),
                           table_statistics(model, flat.x_train))
    assert "computed as it streamed" in results[0].message
    reference = keras.layers.Normalization()
    reference.adapt(flat.x_train[:])  # every training row, read
    assert np.allclose(keras.ops.convert_to_numpy(norm.mean),
                       keras.ops.convert_to_numpy(reference.mean), rtol=1e-5, atol=1e-6)
    assert np.allclose(keras.ops.convert_to_numpy(norm.variance),
                       keras.ops.convert_to_numpy(reference.variance), rtol=1e-4, atol=1e-6)

    raw = load_data(DataSettings(source=f"csv:{path}", stream_table=True,
                                 table_encoding="model"))
    numeric = raw.x_train["numeric"]
    inputs = keras.Input((numeric.shape[1],), name="numeric")
    fill = keras_class("FillMissing")()
    norm = keras.layers.Normalization()
    model = keras.Model(inputs, keras.layers.Dense(1)(norm(fill(inputs))))
    adapt_layers(model, values_sample(numeric), table_statistics(model, {"numeric": numeric}))
    every = numeric[:]
    reference_fill = keras_class("FillMissing")()
    reference_fill.adapt(every)
    assert np.allclose(keras.ops.convert_to_numpy(fill.fill),
                       keras.ops.convert_to_numpy(reference_fill.fill))
    reference = keras.layers.Normalization()
    reference.adapt(keras.ops.convert_to_numpy(reference_fill(every)))
    assert np.allclose(keras.ops.convert_to_numpy(norm.mean),
                       keras.ops.convert_to_numpy(reference.mean), rtol=1e-5)


@pytest.mark.slow
def test_a_model_trains_through_the_stream(tmp_path):
    """Fitted as a new user would (model encoding: FillMissing and Normalization set from
    the one-pass statistics), trained in a JAX worker on the streamed batches."""
    from kbuilder.graph.settings import TrainingSettings
    from kbuilder.runtime import protocol as p
    from kbuilder.runtime.client import TrainingRun, Worker
    from kbuilder.runtime.preflight import new_project_for_data

    path = learnable_csv(tmp_path / "t.csv")
    settings = DataSettings(source=f"csv:{path}:stream=yes")
    training = TrainingSettings(backend="jax", epochs=25, batch_size=32, learning_rate=1e-2)
    project = new_project_for_data("mlp_classifier", settings, training)
    data = project.data
    assert data.table_encoding == "model"
    worker = Worker("jax")
    try:
        worker.wait_ready()
        result = TrainingRun.start(worker, project.graph.to_dict(), data.to_dict(),
                                   project.training.to_dict(),
                                   str(tmp_path / "run")).wait()
    finally:
        worker.shutdown()
    assert isinstance(result, p.Finished), getattr(result, "reason", result)
    assert result.test_metrics["accuracy"] > 0.85, result.message
    # Evaluation streams the same test rows; prediction on the raw file goes block by
    # block (data streamed) and writes what the whole-file path writes.
    from kbuilder.runtime.inference import run_evaluation, run_prediction

    model = result.artifacts["model"]
    evaluated = run_evaluation(p.StartEvaluation("e", model, data.to_dict()))
    assert evaluated.metrics["accuracy"] == pytest.approx(result.test_metrics["accuracy"])
    assert evaluated.samples == len(load_data(data).y_test)
    whole, blocks = tmp_path / "whole.csv", tmp_path / "blocks.csv"
    run_prediction(p.StartPrediction("w", model, str(whole), str(path), input_columns=1))
    predicted = run_prediction(p.StartPrediction("b", model, str(blocks), str(path),
                                                 data.to_dict(), input_columns=1))
    assert predicted.samples == 400
    assert blocks.read_text() == whole.read_text()
    assert not list(tmp_path.glob(".blocks.csv.*"))  # written atomically, nothing left


def test_data_parallel_batches_of_a_streamed_table_divide_over_the_devices(tmp_path):
    """Every batch a multiple of the devices (keras.distribution splits it evenly): the
    epoch's last batch leaves out fewer rows than there are devices; several hosts are
    refused in a sentence."""
    from kbuilder.runtime.data.table_feed import TableBatches
    from kbuilder.runtime.distribution import DistributionError, Placement, shard

    path = learnable_csv(tmp_path / "t.csv", rows=203)
    plan = scan_table(DataSettings(source=f"csv:{path}"), block_bytes=SMALL_BLOCKS)
    split = TableSplit(plan, 0)
    assert len(split) % 4  # the last batch must be cut
    batches = TableBatches(split, plan.y["train"], 32, shuffle=True, seed=1, multiple=4)
    sizes = [len(batches[i][0]) for i in range(len(batches))]
    assert all(n % 4 == 0 for n in sizes) and sum(sizes) == len(split) - len(split) % 4
    x, y, left_out = shard(split, plan.y["train"], Placement(4, 1, 0))
    assert x is split and left_out == len(split) % 4  # one host: every row stays
    with pytest.raises(DistributionError, match="data-parallel on one host only"):
        shard(split, plan.y["train"], Placement(2, 2, 0))


# ========================================================================= memory
_MEASURE = """
import json, sys
from pathlib import Path
from kbuilder.graph.settings import DataSettings
from kbuilder.runtime.data.table_splits import stream_dataset
from kbuilder.runtime.data.table_feed import TableBatches
Path("/proc/self/clear_refs").write_text("5")  # the peak from here: the data's
dataset = stream_dataset(DataSettings(source="csv:" + sys.argv[1]), block_bytes=1 << 20)
batches = TableBatches(dataset.x_train, dataset.y_train, 256, shuffle=True)
rows = sum(len(batches[i][1]) for i in range(len(batches)))
status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
print(json.dumps({"rows": rows, "peak": int(status["VmHWM"].split()[0]) * 1024}))
"""


def numeric_csv(path: Path, rows: int) -> Path:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(rows)
    columns = {f"f{i}": np.round(rng.normal(1000, 100, rows), 3) for i in range(8)}
    columns["label"] = rng.integers(0, 3, rows)
    pacsv.write_csv(pa.table(columns), path)
    return path


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux /proc needed")
def test_peak_memory_of_a_streamed_pass_does_not_grow_with_the_rows(tmp_path):
    """A 10 MB and a 40 MB CSV (4x the rows) scanned and one epoch batched in a fresh
    interpreter: the peak resident memory above the imports stays put (blocks of 1 MB;
    what grows is the targets kept per row, about 12 bytes each: 4 MB here). Read whole,
    the 300,000 more rows of 9 columns would be 30 MB more text and 20 MB of floats.
    Each size is measured twice and the lower peak kept: the allocator's (and pyarrow's
    threads') peaks vary by a few MB from run to run."""
    peaks = {}
    for name, rows in (("n", 100_000), ("4n", 400_000)):
        path = numeric_csv(tmp_path / f"{name}.csv", rows)
        runs = []
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], check=True,
                                 capture_output=True, text=True, env=_env(), timeout=600)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        assert runs[0]["rows"] == runs[1]["rows"]
        peaks[name] = min(runs, key=lambda r: r["peak"])
    grown = (peaks["4n"]["peak"] - peaks["n"]["peak"]) / 2**20
    assert peaks["4n"]["rows"] > 3 * peaks["n"]["rows"]
    # Read whole, the 300,000 more rows would add about 60 MB (text, float64 columns, the
    # float32 features); streamed, 4-10 MiB on a quiet machine, up to ~20 under load
    # (pyarrow's threads hold their buffers longer).
    assert grown < 32, f"peak RSS grew by {grown:.1f} MiB from 10^5 to 4x10^5 rows"


def _env() -> dict[str, str]:
    import os

    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "KERAS_BACKEND": "numpy"}
