"""Data-parallel training on JAX (issue 16 item 5): two simulated CPU devices train to the
loss curve of one device with the same global batch; two processes on 127.0.0.1 as two
hosts train one model; other backends are refused with a sentence that suggests JAX."""

import json
import os
import socket
import subprocess
import sys

import pytest

from kbuilder import cli


def run(*argv):
    return cli.main([str(a) for a in argv])


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dp")
    path = folder / "iris.kbproj"
    assert run("new", "--template", "mlp_classifier", "--data", "iris", "-o", path) == 0
    return path


TRAIN = ("--backend", "jax", "--epochs", "3", "--batch-size", "16", "--no-save")


@pytest.mark.slow
def test_two_devices_follow_the_loss_curve_of_one(project, capsys):
    folder = project.parent
    assert run("train", project, *TRAIN, "--history", folder / "one.json") == 0
    capsys.readouterr()
    assert run("train", project, *TRAIN, "--distribute", "data-parallel", "--devices", "2",
               "--history", folder / "two.json") == 0
    # The batch semantics, said plainly: kbuilder's batch size is the global batch.
    assert "Batch 16 in all: 8 per device on 2 devices." in capsys.readouterr().err
    one = json.loads((folder / "one.json").read_text())
    two = json.loads((folder / "two.json").read_text())
    assert two["training"]["distribute"] == "data-parallel" and two["training"]["devices"] == 2
    assert "distribute" not in one["training"]  # one device: the settings as before
    for key in ("loss", "val_loss"):
        assert two["history"][key] == pytest.approx(one["history"][key], rel=1e-4)
    # It learned (the curve goes down), so the comparison is not of two flat lines.
    assert one["history"]["loss"][-1] < one["history"]["loss"][0]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_on_loopback_train_one_model(project, tmp_path):
    port = _free_port()
    hosts = []
    for process_id in (0, 1):
        copy = tmp_path / f"host{process_id}.kbproj"  # each host has its project file
        copy.write_bytes(project.read_bytes())
        hosts.append(subprocess.Popen(
            [sys.executable, "-m", "kbuilder", "train", str(copy), *TRAIN,
             "--distribute", "data-parallel", "--coordinator", f"127.0.0.1:{port}",
             "--num-processes", "2", "--process-id", str(process_id),
             "--history", str(tmp_path / f"h{process_id}.json")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "KERAS_BACKEND": "numpy"}))
    outputs = []
    try:
        for host in hosts:
            outputs.append(host.communicate(timeout=240)[0])
    finally:
        for host in hosts:
            if host.poll() is None:
                host.kill()
    assert [h.returncode for h in hosts] == [0, 0], outputs
    assert "Batch 16 in all: 8 per device on 2 hosts (8 per host, 1 device each)." in outputs[0]
    first, second = (json.loads((tmp_path / f"h{i}.json").read_text()) for i in (0, 1))
    # One model: both hosts saw the same (global) losses and ended with the same weights.
    assert first["history"]["loss"] == pytest.approx(second["history"]["loss"], rel=1e-6)
    assert first["test_metrics"] == pytest.approx(second["test_metrics"], rel=1e-6)
    assert first["history"]["loss"][-1] < first["history"]["loss"][0]


@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_other_backends_are_refused_with_a_suggestion(project, backend, capsys):
    assert run("train", project, "--backend", backend, "--distribute", "data-parallel",
               "--no-save") == 2
    err = capsys.readouterr().err
    assert f"only on the JAX backend, not on {backend}" in err
    assert "Choose the JAX backend" in err


def test_a_batch_that_does_not_split_and_incomplete_hosts_are_refused(project, capsys):
    assert run("train", project, "--distribute", "data-parallel", "--devices", "3",
               "--batch-size", "16", "--no-save") == 2
    assert "cannot be split evenly over 3 devices; use a multiple of 3, e.g. 15 or 18" \
        in capsys.readouterr().err
    assert run("train", project, "--distribute", "data-parallel", "--coordinator",
               "127.0.0.1:1", "--no-save") == 2
    assert "--num-processes and --process-id missing" in capsys.readouterr().err
    assert run("train", project, "--coordinator", "127.0.0.1:1", "--num-processes", "2",
               "--process-id", "0", "--no-save") == 2
    assert "add --distribute data-parallel" in capsys.readouterr().err


@pytest.mark.slow
def test_a_streamed_table_trains_data_parallel_on_two_devices(tmp_path, capsys):
    from tests.runtime.test_table_stream import learnable_csv

    path = learnable_csv(tmp_path / "t.csv", rows=301)
    project = tmp_path / "stream.kbproj"
    assert run("new", "--template", "mlp_classifier", "--data", f"csv:{path}:stream=yes",
               "-o", project) == 0
    capsys.readouterr()
    assert run("train", project, "--backend", "jax", "--epochs", "3", "--batch-size", "16",
               "--learning-rate", "0.01", "--no-save", "--distribute", "data-parallel",
               "--devices", "2", "--history", tmp_path / "h.json") == 0
    assert "Batch 16 in all: 8 per device on 2 devices." in capsys.readouterr().err
    done = json.loads((tmp_path / "h.json").read_text())
    assert done["data"]["stream_table"] is True  # read in blocks, not whole
    assert done["history"]["loss"][-1] < done["history"]["loss"][0]
