"""Permutation importance of a table in "model" encoding (issue 17): one bar per original
column — each numeric column's part of the ``numeric`` block shuffled on its own, a
date's parts together, a category input named after its column — not one "numeric" bar.
Backend-free (the model is only asked to predict), so a rule stands in for the model."""

from __future__ import annotations

import numpy as np

from kbuilder.runtime.data.row_encoder import RowEncoder
from kbuilder.runtime.explain.permutation import features_of, permutation_importance


def encoder() -> RowEncoder:
    return RowEncoder(
        columns=[{"column": "weight", "kind": "number"},
                 {"column": "bought", "kind": "date", "parts": ["year", "month"]},
                 {"column": "power", "kind": "number"}],
        categories=[{"column": "fuel type", "input": "fuel_type", "vocabulary": ["d", "p"]}],
        feature_names=["weight", "bought_year", "bought_month", "power"])


def test_each_original_column_is_one_feature_and_the_deciding_one_ranks_first():
    rng = np.random.default_rng(1)
    n = 400
    numeric = rng.normal(size=(n, 4)).astype("float32")
    fuel = rng.integers(1, 3, (n, 1)).astype("int32")
    # The label is decided by the date's two parts together (year + month > 0).
    label = (numeric[:, 1] + numeric[:, 2] > 0).astype("int64")
    feats = features_of([numeric, fuel], ["numeric", "fuel_type"], None, encoder())
    assert [name for *_, name in feats] == ["weight", "bought", "power", "fuel type"]
    assert feats[1] == (0, (1, 2), "bought") and feats[3] == (1, None, "fuel type")

    def predict(xs):
        x = xs[0]
        return np.stack([x[:, 1] + x[:, 2] <= 0, x[:, 1] + x[:, 2] > 0], axis=1) * 1.0

    result = permutation_importance(predict, [numeric, fuel], label, True, feats)
    assert result.value == 1.0
    ranked = sorted(zip(result.features, result.mean, strict=True), key=lambda r: -r[1])
    assert ranked[0][0] == "bought" and ranked[0][1] > 0.3, ranked
    assert all(v == 0 for _, v in ranked[1:]), ranked  # the other columns do not matter


def test_without_a_row_encoder_each_input_is_one_feature():
    xs = [np.zeros((3, 2), "float32"), np.zeros((3, 1), "int32")]
    assert features_of(xs, ["numeric", "fuel"], None) == [(0, None, "numeric"),
                                                          (1, None, "fuel")]
    assert features_of([np.zeros((3, 2))], ["x"], ["a", "b"]) == [(0, (0,), "a"),
                                                                  (0, (1,), "b")]
