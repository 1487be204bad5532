"""Pre-flight checks of frozen blocks and fine-tuning settings."""

from __future__ import annotations

import numpy as np

from kbuilder.graph.freezing import SetBlockOptionCommand, in_inference_mode, set_trainable
from kbuilder.graph.model import UNSET
from kbuilder.graph.settings import TrainingSettings
from kbuilder.runtime.data import dataset_from_arrays
from kbuilder.runtime.preflight import apply_fix, check
from kbuilder.runtime.preflight.findings import CallInInferenceMode
from tests.graph.finetune_models import tiny_backbone_graph


def _images():
    x = np.random.default_rng(0).random((24, 16, 16, 3)).astype("float32")
    return dataset_from_arrays(x, np.arange(24) % 3, source="images")


def test_a_frozen_block_with_batchnorm_in_training_mode_is_warned_and_fixed():
    graph, history = tiny_backbone_graph()
    block = graph.find("backbone")
    history.push(set_trainable(graph, [block.id], False))
    history.push(SetBlockOptionCommand(graph, block.id, "training", UNSET))
    finding = next(f for f in check(graph, _images(), TrainingSettings())
                   if f.code == "frozen_batchnorm_training")
    assert finding.node_id == block.id and "BatchNormalization" in finding.message
    assert finding.fix == CallInInferenceMode(block.id)
    assert finding.fix.label({block.id: "backbone"}.get) == (
        "Call 'backbone' with training=False")
    history.push(apply_fix(finding.fix, graph, TrainingSettings()).command)
    assert in_inference_mode(graph.find("backbone"))
    assert not [f for f in check(graph, _images(), TrainingSettings())
                if f.code == "frozen_batchnorm_training"]
    history.undo()
    assert not in_inference_mode(graph.find("backbone"))


def test_fine_tuning_settings_are_checked_against_the_model():
    graph, history = tiny_backbone_graph()
    settings = TrainingSettings(fine_tune_from="conv_topp", fine_tune_epochs=2)
    codes = {f.code: f for f in check(graph, _images(), settings)}
    assert codes["fine_tune_from"].severity == "error"
    assert "no layer or block of that name" in codes["fine_tune_from"].message
    assert "nothing_frozen" in codes
    history.push(set_trainable(graph, [graph.find("backbone").id], False))
    settings = TrainingSettings(fine_tune_from="conv_top", fine_tune_epochs=2)
    codes = {f.code for f in check(graph, _images(), settings)}
    assert not codes & {"fine_tune_from", "nothing_frozen"}
    assert settings.phase_two_learning_rate == settings.learning_rate / 10
    assert settings.total_epochs == settings.epochs + 2


def test_fine_tuning_settings_are_validated_and_old_settings_still_load():
    import pytest

    from kbuilder.graph.settings import SettingsError

    old = {k: v for k, v in TrainingSettings().to_dict().items() if not k.startswith("fine")}
    assert not TrainingSettings.from_dict(old).fine_tunes
    for bad, words in (({"fine_tune_epochs": -1}, "whole number >= 0"),
                       ({"fine_tune_learning_rate": "low"}, "the guide uses 1e-5"),
                       ({"fine_tune_from": ""}, "name of a layer or block")):
        with pytest.raises(SettingsError, match=words):
            TrainingSettings.from_dict({**old, **bad})
