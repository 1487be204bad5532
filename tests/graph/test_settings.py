"""Data and training settings (graph/settings.py): each bad value is refused by name.

A refusal is a ``SettingsError`` whose ``param`` is the field and whose message names it
and the value found, so the Data and Train tabs can mark the field and the CLI can say
which ``--option`` to fix.
"""

import dataclasses

import pytest

from kbuilder.graph.settings import (
    BACKENDS,
    DataSettings,
    SettingsError,
    TableSpec,
    TrainingSettings,
    data_fields,
    parse_source,
    parse_table_spec,
    spec_fields,
)

BAD_TRAINING = [
    ("backend", "cobol"), ("device", "gpu"), ("device", "tpu:0"), ("device", 0),
    ("optimizer", "adamm"), ("loss", "mse"), ("metrics", ("accuracy", "acc")),
    ("learning_rate", 0), ("learning_rate", 10), ("learning_rate", "0.01"),
    ("epochs", 0), ("epochs", "ten"), ("epochs", 2.5), ("epochs", True),
    ("batch_size", 0), ("seed", -1), ("mixed_precision", "yes"),
    ("early_stopping", "on"), ("reduce_lr_on_plateau", 3), ("checkpoint", ["best"]),
]

BAD_DATA = [
    ("source", ""), ("source", "cobol:x.cob"), ("source", "csv:"), ("source", 3),
    ("table_encoding", "zip"), ("validation_split", 1), ("validation_split", -0.1),
    ("validation_split", True), ("test_split", "0.2"), ("color_mode", "cmyk"),
    ("image_size", (0, 64)), ("image_size", (64,)), ("image_size", (64.0, 64)),
    ("seed", -1), ("seed", 1.5), ("header", 0), ("header", "first"), ("delimiter", ":"),
    ("decimal", ";"), ("encoding", "klingon"), ("roles", (("age", "numbr"),)),
    ("roles", (("age",),)), ("merges", (("colour", "red"),)), ("skip_bad_images", "yes"),
    ("cache_images", 1), ("input_arrays", (("pixels", "x"), ("pixels", "y"))),
]


@pytest.mark.parametrize("field, value", BAD_TRAINING)
def test_a_bad_training_setting_is_refused_naming_it(field, value):
    with pytest.raises(SettingsError) as refused:
        TrainingSettings(**{field: value}).validate()
    assert refused.value.param == field
    assert field in str(refused.value)


@pytest.mark.parametrize("field, value", BAD_DATA)
def test_a_bad_data_setting_is_refused_naming_it(field, value):
    with pytest.raises(SettingsError) as refused:
        DataSettings(**{field: value}).validate()
    assert refused.value.param == field
    # "the role of column 'age'": a list field may be named in the singular; a bad source
    # is quoted itself.
    assert field.removesuffix("s") in str(refused.value) or field == "source"


def test_splits_that_leave_nothing_to_train_on_are_refused():
    with pytest.raises(SettingsError) as refused:
        DataSettings(validation_split=0.5, test_split=0.5).validate()
    assert refused.value.param == "validation_split" and "add up to 1" in str(refused.value)


def test_the_defaults_are_valid_and_every_backend_trains():
    DataSettings().validate()
    for backend in BACKENDS:
        TrainingSettings(backend=backend).validate()


def test_settings_survive_their_json_form_and_refuse_unknown_keys():
    data = DataSettings(source="csv:/d/x.csv", target="y", roles=(("age", "numeric"),),
                        merges=(("c", "rd", "red"),), image_size=(32, 48),
                        input_arrays=(("pixels", "x"),))
    training = TrainingSettings(backend="torch", metrics=("accuracy", "auc"), epochs=3,
                                early_stopping={"monitor": "val_loss", "patience": 2})
    assert DataSettings.from_dict(data.to_dict()) == data
    assert TrainingSettings.from_dict(training.to_dict()) == training
    with pytest.raises(SettingsError) as refused:
        TrainingSettings.from_dict({**training.to_dict(), "epocs": 3})
    assert refused.value.param == "epocs" and "epochs" in str(refused.value)  # the known ones
    with pytest.raises(SettingsError) as refused:
        DataSettings.from_dict({**data.to_dict(), "validation_split": 2})
    assert refused.value.param == "validation_split"


def test_a_table_spec_names_its_file_and_options():
    spec = parse_table_spec("csv:C:/data/sales 2024.csv:target=total:header=none"
                            ":delimiter=tab:decimal=,:encoding=cp1252")
    assert spec == TableSpec("csv", "C:/data/sales 2024.csv", target="total", header="none",
                             delimiter="\t", decimal=",", encoding="cp1252")
    assert parse_table_spec("csv:x.parquet").format == "parquet"  # the extension decides
    assert parse_table_spec("excel:book.xlsx:sheet=2024:header=3") == TableSpec(
        "excel", "book.xlsx", header=3, sheet="2024")
    for bad in ("digits", "csv:", "csv::target=y", "npz:x.npz"):
        with pytest.raises(SettingsError):
            parse_table_spec(bad)
    with pytest.raises(SettingsError) as refused:
        parse_table_spec("csv:x.csv:delimiter=#")
    assert refused.value.param == "delimiter"


def test_a_command_line_spec_becomes_data_settings_fields():
    assert spec_fields("tsv:/d/x.tsv:target=y:header=2") == {
        "source": "tsv:/d/x.tsv", "target": "y", "header": 2}
    assert spec_fields("digits") == {"source": "digits"}
    settings = DataSettings(**spec_fields("csv:/d/x.csv:target=y"))
    assert settings.table().target == "y" and settings.location == "/d/x.csv"
    # A field set later wins over the spec's option.
    assert dataclasses.replace(settings, target="z").table().target == "z"


def test_each_kind_of_source_and_its_fields():
    assert parse_source("iris") == ("builtin", "iris")
    assert parse_source("parquet:/d/x.parquet") == ("csv", "/d/x.parquet")
    assert parse_source("images:/d/photos") == ("images", "/d/photos")
    assert "target" in data_fields("csv:x.csv") and "image_size" not in data_fields("csv:x.csv")
    assert "image_size" in data_fields("images:/d") and "target" not in data_fields("images:/d")
    assert set(data_fields("digits")) == {"source", "validation_split", "test_split", "seed"}
