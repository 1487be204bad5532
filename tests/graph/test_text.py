"""Counts in sentences agree with their nouns (issue 12 item 26: "1 layers")."""

from __future__ import annotations

from kbuilder.graph.text import plural


def test_one_is_singular_everything_else_plural():
    assert plural(1, "layer") == "1 layer"
    assert plural(0, "layer") == "0 layers"
    assert plural(2, "batch", "batches") == "2 batches"
    assert plural(1, "batch", "batches") == "1 batch"
    assert plural(1234, "param", grouped=True) == "1,234 params"
    assert plural(1, "test sample") == "1 test sample"
