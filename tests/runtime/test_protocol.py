"""The worker protocol: every message survives JSON, bad messages are refused clearly."""

import dataclasses
import json

import numpy as np
import pytest

from kbuilder.runtime import protocol as p

EXAMPLES = [
    p.StartTraining("r1", {"nodes": []}, {"source": "iris"}, {"epochs": 1}, "/tmp/run"),
    p.StopRequested(), p.PauseRequested(), p.ResumeRequested(), p.Shutdown(),
    p.WorkerReady("jax", "cpu", 12, {"keras": "3"}, ["cpu"], 1.5),
    p.Heartbeat(),
    p.RunStarted("r1", "jax", "cpu", 2, 10, 100, 20, 30, "abc", {"classes": 3}),
    p.BatchEnd("r1", 0, 3, 3, {"loss": 0.5}, 1000.0, 12.0),
    p.EpochEnd("r1", 0, {"loss": 0.5, "val_loss": 0.6}, 0.001, 1.2, 900.0, None),
    p.PhaseStarted("r1", 2, 5, 1e-5, "the layers from 'conv_top' on", 1234),
    p.LogLine("r1", "info", "hello"),
    p.Finished("r1", "completed", "done", {"loss": [0.5]}, {"accuracy": 0.9}, {}, {}, 3.0),
    p.Finished("r1", "completed", "done. It diverged.", {"loss": [0.5, 9.0]}, {}, {}, {},
               3.0, "It diverged."),
    p.Failed("r1", "boom", "Traceback...", {"loss": [0.5]}),
    p.StartEvaluation("r2", "/m.keras", {"source": "iris"}),
    p.StartPrediction("r3", "/m.keras", "/out.csv", "/x.npy"),
    p.StartPrediction("r3", "/m.keras", "/out.csv", "/rows.csv", input_columns=4),
    p.Progress("r3", "predicting", 3, 10),
    p.Evaluated("r2", "test", 30, {"accuracy": 1.0}, {"task": "classification"}),
    p.Predicted("r3", "/out.csv", 3, [{"predicted": "a"}]),
    p.StartExport("r4", "/m.keras", "onnx", "/out/m.onnx", True),
    p.Exported("r4", "onnx", "/out/m.onnx", ["/out/m.onnx"],
               [{"format": "onnx", "runtime": "onnxruntime 1.2", "max_abs_diff": 3e-8,
                 "tolerance": 1e-4, "verdict": "pass", "note": ""}], ["a note"]),
    p.StartExplanation("r5", "/m.keras", "gradcam", "/out", None, {"source": "digits"},
                       samples=2, layer="conv2d"),
    p.Explained("r5", {"method": "gradcam", "layer": "conv2d", "targets": [3, 1]}),
    p.StartActivations("r6", "dense", "/out", None, {"nodes": []}, "/w.npz",
                       inputs_path="/x.npy"),
    p.ActivationsReady("r6", {"layer": "dense", "shape": [16], "zero_fraction": 0.25}),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: m.type)
def test_round_trip(message):
    assert p.decode(p.encode(message)) == message


def test_every_message_type_has_an_example():
    assert {m.type for m in EXAMPLES} == set(p.MESSAGE_TYPES)


def test_numpy_values_and_non_finite_numbers_become_json():
    message = p.EpochEnd("r", np.int64(1), {"loss": np.float32(0.25), "acc": float("nan")},
                         np.float64(1e-3), 1.0, 2.0, float("inf"))
    decoded = p.decode(p.encode(message))
    assert decoded.epoch == 1 and decoded.logs == {"loss": 0.25, "acc": None}
    assert decoded.eta_seconds is None
    assert p.jsonable(np.arange(3)) == [0, 1, 2]


def test_wrong_version_unknown_type_and_bad_fields_are_refused():
    payload = json.loads(p.encode(p.StopRequested()))
    with pytest.raises(p.ProtocolError, match="protocol version"):
        p.decode(json.dumps({**payload, "v": 99}))
    with pytest.raises(p.ProtocolError, match="unknown type"):
        p.decode(json.dumps({**payload, "type": "launch_missiles"}))
    with pytest.raises(p.ProtocolError, match="wrong fields"):
        p.decode(json.dumps({**payload, "surprise": 1}))
    with pytest.raises(p.ProtocolError, match="not valid JSON"):
        p.decode(b"\xff{")
    with pytest.raises(p.ProtocolError, match="cannot be sent"):
        p.encode(p.LogLine("r", "info", object()))


def batch_end(**changes):
    payload = json.loads(p.encode(p.BatchEnd("r1", 0, 3, 3, {"loss": 0.5}, 1000.0, 12.0)))
    return json.dumps({**payload, **changes})


@pytest.mark.parametrize(("changes", "words"), [
    ({"epoch": "three"}, "epoch = 'three'; it must be a whole number"),
    ({"logs": "x"}, "logs = 'x'; it must be an object of (a number or null)"),
    ({"logs": {"loss": "low"}}, "logs = {'loss': 'low'}"),
    ({"epoch": True}, "epoch = True"),  # JSON's true is no number here
    ({"epoch": 1.5}, "epoch = 1.5"),
    ({"run_id": 7}, "run_id = 7; it must be a string"),
    ({"eta_seconds": "soon"}, "eta_seconds = 'soon'; it must be a number or null"),
    ({"samples_per_second": None}, "samples_per_second = None; it must be a number"),
])
def test_fields_of_the_wrong_type_are_refused(changes, words):
    with pytest.raises(p.ProtocolError, match="'batch_end' message has") as caught:
        p.decode(batch_end(**changes))
    assert words in str(caught.value)


def test_nested_field_types_are_checked():
    finished = json.loads(p.encode(next(m for m in EXAMPLES if m.type == "finished")))
    with pytest.raises(p.ProtocolError, match=r"history = .*a list of \(a number or null\)"):
        p.decode(json.dumps({**finished, "history": {"loss": ["low"]}}))
    with pytest.raises(p.ProtocolError, match="artifacts"):
        p.decode(json.dumps({**finished, "artifacts": {"model": 3}}))
    exported = json.loads(p.encode(next(m for m in EXAMPLES if m.type == "exported")))
    with pytest.raises(p.ProtocolError, match="notes"):
        p.decode(json.dumps({**exported, "notes": "a note"}))


def test_a_float_field_takes_a_whole_number_and_nulls_where_allowed():
    decoded = p.decode(batch_end(samples_per_second=1000, eta_seconds=None))
    assert decoded.samples_per_second == 1000 and decoded.eta_seconds is None


def test_messages_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        EXAMPLES[0].run_id = "x"
