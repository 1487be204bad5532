"""Every run is compared with trivial and linear baselines (issue 13 item 5)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from kbuilder.graph.settings import DataSettings, TrainingSettings
from kbuilder.graph.templates import TEMPLATES
from kbuilder.runtime.baseline import Baselines, compare_with_baselines, largest_unscaled
from kbuilder.runtime.data import dataset_from_arrays, load_data
from kbuilder.runtime.diagnosis import RunFacts, diagnose
from kbuilder.runtime.preflight import check, fit_template_to_data
from tests.runtime.penguins import penguins_csv


@pytest.fixture(scope="module")
def penguins(tmp_path_factory):
    path = penguins_csv(tmp_path_factory.mktemp("penguins") / "penguins.csv")
    return load_data(DataSettings(source=f"csv:{path}", target="species"))


def test_the_linear_baseline_separates_the_penguins_and_the_majority_does_not(penguins):
    stuck = compare_with_baselines(penguins, penguins.x_train, penguins.x_test,
                                   {"accuracy": 0.36})
    assert stuck.trivial_label == "always 'Adelie'"
    majority = np.mean(penguins.y_test == penguins.class_names.index("Adelie"))
    assert stuck.trivial == pytest.approx(majority)
    assert stuck.linear >= 0.97 and stuck.linear_rows == len(penguins.y_train)
    assert stuck.verdict == "not_better_than_trivial" and not stuck.beaten
    below = compare_with_baselines(penguins, penguins.x_train, penguins.x_test,
                                   {"accuracy": 0.8})
    assert below.verdict == "not_better_than_linear"
    good = compare_with_baselines(penguins, penguins.x_train, penguins.x_test,
                                  {"accuracy": 0.99})
    assert good.beaten
    assert Baselines.from_dict(good.to_dict()) == good
    assert "always 'Adelie' 0.4" in good.summary() and "logistic regression 1.00" in \
        good.summary()


def test_regression_is_compared_with_the_mean_and_a_ridge_regression():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3)) * [1, 100, 1000]
    y = x @ [2.0, 0.03, 0.001] + rng.normal(scale=0.1, size=400)
    ds = dataset_from_arrays(x.astype(np.float32), y.astype(np.float32), task="regression")
    mean_error = float(np.abs(ds.y_test - ds.y_train.mean()).mean())
    base = compare_with_baselines(ds, ds.x_train, ds.x_test, {"mae": mean_error})
    assert base.metric == "mean absolute error" and base.trivial_label == "always the mean"
    assert base.trivial == pytest.approx(mean_error, rel=1e-6)
    assert base.linear < 0.2 * base.trivial  # the data is linear
    assert base.verdict == "not_better_than_trivial"
    assert compare_with_baselines(ds, ds.x_train, ds.x_test,
                                  {"mae": base.trivial / 2}).verdict == "not_better_than_linear"
    assert compare_with_baselines(ds, ds.x_train, ds.x_test, {"mae": base.linear}).beaten


def test_big_inputs_take_seconds_and_huge_images_get_no_linear_model():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200_000, 20)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    ds = dataset_from_arrays(x, y)
    started = time.perf_counter()
    base = compare_with_baselines(ds, ds.x_train, ds.x_test, {"accuracy": 0.5})
    assert time.perf_counter() - started < 5
    assert base.linear_rows == 5_000 and base.linear > 0.95
    images = rng.random((60, 96, 96, 3)).astype(np.float32)
    ds = dataset_from_arrays(images, np.arange(60) % 2)
    base = compare_with_baselines(ds, ds.x_train, ds.x_test, {"accuracy": 0.5})
    assert base.linear is None and "27,648 values" in base.linear_note
    assert "No logistic regression: each sample has 27,648 values" in base.summary()
    tokens = compare_with_baselines(ds, ds.x_train, ds.x_test, {"accuracy": 0.5},
                                    token_ids=True)
    assert tokens.linear is None and "word tokens" in tokens.linear_note


def test_without_a_test_split_or_for_multi_label_data_there_is_nothing_to_compare():
    x = np.random.default_rng(0).random((50, 3)).astype(np.float32)
    ds = dataset_from_arrays(x, np.arange(50) % 2)
    ds.x_test = ds.y_test = None
    assert compare_with_baselines(ds, ds.x_train, None, {"accuracy": 0.5}) is None
    multi = dataset_from_arrays(x, (np.random.default_rng(1).random((50, 3)) > 0.5)
                                .astype(np.float32))
    assert compare_with_baselines(multi, multi.x_train, multi.x_test,
                                  {"accuracy": 0.5}) is None
    assert Baselines.from_dict({}) is None and Baselines.from_dict({"task": 1}) is None


def test_a_stuck_model_on_unscaled_inputs_is_told_to_fit_again(penguins):
    base = compare_with_baselines(penguins, penguins.x_train, penguins.x_test,
                                  {"accuracy": 0.36})
    unscaled = largest_unscaled(penguins.x_train, penguins.feature_names, 10.0)
    assert unscaled.startswith("column 'body_mass_g' goes up to ")
    text = diagnose(RunFacts(epoch_losses=[10.5, 10.3, 10.3, 10.3], first_loss=9.6,
                             learning_rate=3e-3, accuracy=0.36, majority_share=0.43,
                             baselines=base, epochs_planned=40, early_stopping=True,
                             unscaled=unscaled))
    assert "the test accuracy 0.36 is no better than always guessing 'Adelie' (0.4" in text
    assert "where a logistic regression gets 1.00" in text
    assert "fit the model to the data again" in text and "Normalization" in text
    # Said once: the old "most common class" sentence gives way to the baselines.
    assert "most common class" not in text


def test_other_causes_when_the_model_falls_short_of_the_linear_baseline(penguins):
    base = compare_with_baselines(penguins, penguins.x_train, penguins.x_test,
                                  {"accuracy": 0.8})
    facts = dict(first_loss=1.1, learning_rate=1e-3, baselines=base, epochs_planned=5)
    text = diagnose(RunFacts(epoch_losses=[1.0, 0.8, 0.7, 0.6, 0.5], **facts))
    assert "is worse than a logistic regression on the same features (1.00)" in text
    assert "still falling after the 5 epochs asked for; train for more epochs" in text
    text = diagnose(RunFacts(epoch_losses=[1.0, 0.9, 0.9], early_stopping=True,
                             **{**facts, "epochs_planned": 40}))
    assert "early stopping ended the run after 3 of 40 epochs" in text
    text = diagnose(RunFacts(epoch_losses=[1.1, 1.1, 1.1], **{**facts, "learning_rate": 0.0}))
    assert "learning rate 0 is probably too low for adam; try 0.001" in text
    pixels = diagnose(RunFacts(epoch_losses=[2.3, 2.3, 2.3], **facts,
                               unscaled="the values go up to 255", scaling_layer="Rescaling"))
    assert "has no Rescaling layer" in pixels and "scale 1/255" in pixels
    beaten = compare_with_baselines(penguins, penguins.x_train, penguins.x_test,
                                    {"accuracy": 1.0})
    assert diagnose(RunFacts(epoch_losses=[1.0, 0.1, 0.01], baselines=beaten,
                             unscaled="x")) == ""


def test_fitting_to_an_unscaled_table_adds_normalization_right_after_the_input(penguins):
    graph = TEMPLATES["mlp_classifier"].build()
    fit = fit_template_to_data(graph, penguins)
    fit.apply()
    (features,) = graph.input_nodes()
    (after,) = graph.successors(features.id)
    assert graph.node(after).class_name == "Normalization"
    assert any("Normalization added" in note for note in fit.notes)
    # The pre-flight no longer warns, and fitting again adds no second one.
    findings = check(graph, penguins, TrainingSettings(loss=fit.loss))
    assert "unscaled_features" not in {f.code for f in findings}
    again = fit_template_to_data(graph, penguins)
    again.apply()
    assert [n.class_name for n in graph.nodes].count("Normalization") == 1


def test_scaled_tables_and_images_get_no_normalization():
    iris = load_data(DataSettings(source="iris"))  # centimetres: already small
    graph = TEMPLATES["mlp_classifier"].build()
    fit_template_to_data(graph, iris).apply()
    assert "Normalization" not in [n.class_name for n in graph.nodes]
    images = dataset_from_arrays(np.random.default_rng(0).random((40, 8, 8, 1)) * 255,
                                 np.arange(40) % 2)
    graph = TEMPLATES["mlp_classifier"].build()
    fit_template_to_data(graph, images).apply()
    assert "Normalization" not in [n.class_name for n in graph.nodes]
