"""`kbuilder train --fine-tune-from LAYER --fine-tune-epochs N --fine-tune-lr X`."""

from __future__ import annotations

import json

import pytest

from kbuilder import cli
from kbuilder.graph.project import load_project, save_project
from tests.graph.finetune_models import frozen_backbone_project

pytestmark = pytest.mark.slow  # a real worker, or keras imported to check the data


def _project(tmp_path):
    project = frozen_backbone_project(tmp_path)
    path = tmp_path / "tiny.kbproj"
    save_project(project, path)
    return path


def test_an_unknown_layer_to_fine_tune_from_stops_before_training(tmp_path, capsys):
    path = _project(tmp_path)
    assert cli.main(["train", str(path), "--fine-tune-from", "conv_topp"]) == 1
    err = capsys.readouterr().err
    assert "no layer or block of that name" in err and "'conv_topp'" in err
    assert load_project(path).runs == []
    assert cli.main(["train", str(path), "--fine-tune-epochs", "-1"]) != 0
    assert "fine_tune_epochs must be a whole number >= 0" in capsys.readouterr().err


def test_train_fine_tunes_in_a_second_phase(tmp_path, capsys):
    path = _project(tmp_path)
    code = cli.main(["train", str(path), "--backend", "jax", "--epochs", "1",
                     "--batch-size", "16", "--fine-tune-from", "conv_top",
                     "--fine-tune-epochs", "1", "--fine-tune-lr", "0.0005",
                     "--history", str(tmp_path / "h.json")])
    captured = capsys.readouterr()
    out = captured.out + captured.err  # the progress goes to stderr
    assert code == 0, out
    assert "phase 2 (fine-tuning) from epoch 2" in out and "epoch 2/2" in out
    history = json.loads((tmp_path / "h.json").read_text())
    assert len(history["history"]["loss"]) == 2
    training = history["training"]
    assert (training["epochs"], training["fine_tune_from"], training["fine_tune_epochs"],
            training["fine_tune_learning_rate"]) == (1, "conv_top", 1, 0.0005)
    assert load_project(path).training.fine_tune_epochs == 0  # the project is unchanged
