"""Real training in worker processes on every backend, with tiny data.

Each backend's worker is started once per module and reused for several runs (a worker
loops over requests), which also exercises the warm-worker path.
"""

import os
import signal
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from kbuilder.graph.commands import History
from kbuilder.graph.model import Graph
from kbuilder.graph.settings import DataSettings, TrainingSettings
from kbuilder.runtime import protocol as p
from kbuilder.runtime.client import TrainingRun, Worker
from tests.graph.helpers import add_input, add_layer, add_output

BACKENDS = ["jax", "tensorflow", "torch"]


def iris_graph(features: int = 4) -> Graph:
    h, g = History(), Graph("iris_mlp")
    x = add_input(h, g, [features], name="measurements")
    d = add_layer(h, g, "Dense", x, units=16, activation="relu")
    y = add_layer(h, g, "Dense", d, name="species", units=3, activation="softmax")
    add_output(h, g, y)
    return g


def start(worker, tmp_path, graph=None, data=None, **training) -> TrainingRun:
    settings = TrainingSettings(backend=worker.backend, **{"epochs": 3, "batch_size": 16,
                                                           **training})
    return TrainingRun.start(
        worker, (graph or iris_graph()).to_dict(),
        (data or DataSettings(source="iris")).to_dict(), settings.to_dict(),
        str(tmp_path / "run"),
    )


@pytest.fixture(scope="module", params=BACKENDS)
def worker(request):
    w = Worker(request.param)
    w.wait_ready()
    yield w
    w.shutdown()


def test_worker_reports_its_backend(worker):
    assert worker.ready.backend == worker.backend
    assert "cpu" in worker.ready.devices
    assert worker.ready.versions["keras"] == keras.__version__
    if hasattr(os, "getpriority"):  # without a window: the app's priority, like a script
        assert (os.getpriority(os.PRIO_PROCESS, worker.ready.pid)
                == os.getpriority(os.PRIO_PROCESS, 0))


def test_a_window_s_worker_yields_to_it():
    w = Worker("jax", yield_to_window=True)
    try:
        w.wait_ready()
        if hasattr(os, "getpriority"):  # below the window's priority: it answers first
            assert (os.getpriority(os.PRIO_PROCESS, w.ready.pid)
                    >= min(19, os.getpriority(os.PRIO_PROCESS, 0) + 5))
    finally:
        w.shutdown()


def test_training_events_arrive_in_order_with_sane_values(worker, tmp_path):
    run = start(worker, tmp_path, tensorboard=True)
    events = list(run.events())
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "RunStarted" and kinds[-1] == "Finished", kinds
    started, finished = events[0], events[-1]
    assert started.train_samples + started.val_samples + started.test_samples == 150
    epochs = [e for e in events if isinstance(e, p.EpochEnd)]
    assert [e.epoch for e in epochs] == [0, 1, 2]
    batches = [e for e in events if isinstance(e, p.BatchEnd)]
    assert batches and all(b.logs["loss"] > 0 for b in batches)
    steps = [b.step for b in batches]
    assert steps == sorted(steps)
    # The last batch of each epoch is always reported.
    assert {b.batch for b in batches} >= {started.steps_per_epoch - 1}
    assert all(set(e.logs) >= {"loss", "accuracy", "val_loss", "val_accuracy"} for e in epochs)
    assert epochs[0].learning_rate == pytest.approx(1e-3)
    assert finished.status == "completed"
    assert len(finished.history["loss"]) == 3
    assert 0 <= finished.test_metrics["accuracy"] <= 1
    matrix = np.array(finished.results["confusion_matrix"])
    assert matrix.shape == (3, 3) and matrix.sum() == started.test_samples
    model = keras.saving.load_model(finished.artifacts["model"])
    assert model.get_layer("species").units == 3
    assert os.listdir(finished.artifacts["tensorboard"])


def test_stop_keeps_the_model_and_history(worker, tmp_path):
    run = start(worker, tmp_path, epochs=500, batch_size=4)
    for event in run.events():
        if isinstance(event, p.EpochEnd):
            run.stop()
    result = run.result
    assert isinstance(result, p.Finished) and result.status == "stopped"
    assert 1 <= len(result.history["loss"]) < 500
    assert keras.saving.load_model(result.artifacts["model"]).count_params() == 4 * 16 + 16 + 51


def test_bad_input_shape_fails_with_a_reason_and_the_worker_survives(worker, tmp_path):
    run = start(worker, tmp_path, graph=iris_graph(features=5))
    result = run.wait()
    assert isinstance(result, p.Failed)
    assert "5" in result.reason and "4" in result.reason, result.reason
    assert worker.alive
    again = start(worker, tmp_path, epochs=1).wait()
    assert isinstance(again, p.Finished)


def test_jax_keeps_compiled_programs_for_the_next_run(tmp_path, monkeypatch):
    # The second worker starts on a model the first one compiled: XLA's programs come
    # from kbuilder's cache folder instead of being compiled again.
    monkeypatch.setenv("KBUILDER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    w = Worker("jax")
    try:
        assert isinstance(start(w, tmp_path, epochs=1).wait(), p.Finished)
        loaded = Path(f"/proc/{w.ready.pid}/maps")
        if loaded.exists():  # seeding the run must not have loaded TensorFlow (seconds)
            assert "tensorflow" not in loaded.read_text()
    finally:
        w.shutdown()
    cached = list((tmp_path / "cache" / "jax").iterdir())
    assert len(cached) >= 3, cached  # initializers and the training step, at least


def test_nan_loss_stops_the_run_with_a_message(tmp_path):
    # Targets near float32's limit: the squared error overflows to inf on the first batch.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype("float32")
    y = np.linspace(1e38, 3e38, 60).astype("float32")
    np.savez(tmp_path / "bad.npz", x=x, y=y)
    h, g = History(), Graph("regression")
    d = add_layer(h, g, "Dense", add_input(h, g, [4]), units=1)
    add_output(h, g, d)
    w = Worker("jax")
    try:
        run = start(w, tmp_path, graph=g, data=DataSettings(source=f"npz:{tmp_path / 'bad.npz'}"),
                    epochs=5, batch_size=60, loss="mean_squared_error", metrics=())
        result = run.wait()
    finally:
        w.shutdown()
    assert isinstance(result, p.Finished) and result.status == "nan", result
    assert "NaN" in result.message and len(result.history.get("loss", [])) <= 1


def test_pause_holds_training_until_resumed(tmp_path):
    w = Worker("jax")
    try:
        run = start(w, tmp_path, epochs=300, batch_size=4)
        for event in run.events():
            if isinstance(event, p.BatchEnd):
                run.pause()
                break
        time.sleep(0.3)  # let a batch already in flight arrive
        while run.next_event(0.1) is not None:
            pass
        quiet = [run.next_event(0.1) for _ in range(8)]
        assert not any(isinstance(e, p.BatchEnd) for e in quiet)
        run.resume()
        for event in run.events():
            if isinstance(event, p.BatchEnd):
                run.stop()
        assert run.result.status == "stopped"
    finally:
        w.shutdown()


@pytest.mark.parametrize("sig, words", [(signal.SIGKILL, "killed"),
                                         (signal.SIGSEGV, "segmentation fault")])
def test_dead_worker_gives_a_failed_message_with_the_history(tmp_path, sig, words):
    w = Worker("jax")
    try:
        run = start(w, tmp_path, epochs=1000, batch_size=4)
        for event in run.events():
            if isinstance(event, p.EpochEnd):
                os.kill(w.process.pid, sig)
        result = run.result
        assert isinstance(result, p.Failed)
        assert words in result.reason
        assert len(result.history["loss"]) >= 1
    finally:  # a failed assertion must not leave a worker training 1000 epochs
        w.kill()
        w.shutdown()
    assert w.log_path.exists()  # a worker that died keeps its log for a look


def test_kill_ends_the_run_in_a_failed_message_with_the_history(tmp_path):
    w = Worker("jax")
    try:
        run = start(w, tmp_path, epochs=1000, batch_size=4)
        events = []
        for event in run.events():  # no OSError from a closed connection: the events go on
            events.append(event)
            if isinstance(event, p.EpochEnd) and not run.killed:
                run.kill()
    finally:
        if w.alive:  # the loop raised before the kill: end the 1000-epoch run here
            w.kill()
    result = run.result
    assert isinstance(events[-1], p.Failed) and events[-1] is result
    assert "killed (Kill)" in result.reason and "model" in result.reason
    assert len(result.history["loss"]) >= 1  # what arrived before the kill
    assert not w.alive
    assert run.next_event(0.1) is None  # over: nothing more, and no error


def test_torch_workers_of_the_window_spin_less_unless_the_user_tuned_openmp(monkeypatch):
    from kbuilder.runtime.devices import worker_environment

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    assert worker_environment("torch", "cpu", yield_to_window=True)["GOMP_SPINCOUNT"] == "10000"
    assert "GOMP_SPINCOUNT" not in worker_environment("jax", "cpu", yield_to_window=True)
    # Issue 12 item 29: without a window a torch worker runs like a plain script.
    assert "GOMP_SPINCOUNT" not in worker_environment("torch", "cpu")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's choice is kept
    assert "GOMP_SPINCOUNT" not in worker_environment("torch", "cpu", yield_to_window=True)


def test_a_training_run_keeps_its_log_and_clean_workers_delete_theirs(tmp_path, monkeypatch):
    # Issue 12 item 11: worker logs went to /tmp and were never deleted.
    monkeypatch.setenv("KBUILDER_CACHE_DIR", str(tmp_path / "cache"))
    w = Worker("jax")
    try:
        assert w.log_path.parent == tmp_path / "cache" / "logs"
        assert isinstance(start(w, tmp_path, epochs=1).wait(), p.Finished)
        run_log = (tmp_path / "run" / "worker.log").read_text()
        assert "training run" in run_log and "completed" in run_log
    finally:
        w.shutdown()
    assert w.process.returncode == 0 and not w.log_path.exists()


def test_prune_logs_keeps_the_newest_and_those_of_running_apps(tmp_path):
    import subprocess
    import sys

    from kbuilder.runtime.client import prune_logs

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # an app that no longer runs
    for i in range(12):
        log = tmp_path / f"kbuilder-jax-{gone.pid}-{i:02d}.log"
        log.write_text("x")
        os.utime(log, (1000 + i, 1000 + i))
    mine = tmp_path / f"kbuilder-torch-{os.getpid()}-old.log"  # this app's: may be in use
    mine.write_text("x")
    os.utime(mine, (1, 1))
    deleted = prune_logs(tmp_path, keep=5)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(deleted) == 7 and mine.name in left
    assert left[:5] == [f"kbuilder-jax-{gone.pid}-{i:02d}.log" for i in range(7, 12)]


def test_a_stopped_worker_is_noticed_and_a_stop_unanswered(tmp_path):
    # Issue 12 item 12: heartbeats come while fit runs; a stopped process sends none.
    w = Worker("jax")
    try:
        run = start(w, tmp_path, epochs=1000, batch_size=4)
        run.heartbeat_timeout = 2.5
        for event in run.events():
            if isinstance(event, p.EpochEnd):
                break
        assert not run.unresponsive
        os.kill(w.process.pid, signal.SIGSTOP)
        while w.connection.poll(0.5):  # what the worker sent before it stopped
            run.next_event(0)
        deadline = time.monotonic() + 10
        while not run.unresponsive and time.monotonic() < deadline:
            assert run.next_event(0.1) is None
        assert run.unresponsive and run.silent_seconds >= 2.5
        os.kill(w.process.pid, signal.SIGCONT)
        deadline = time.monotonic() + 10
        while run.unresponsive and time.monotonic() < deadline:
            run.next_event(0.1)
        assert not run.unresponsive  # heard again
        run.stop()
        run.wait()
        assert run.result.status == "stopped"
    finally:
        if w.alive:
            os.kill(w.process.pid, signal.SIGCONT)
        w.kill()


def test_the_worker_ignores_ctrl_c_of_the_terminal(tmp_path):
    # A terminal's Ctrl+C reaches the worker too; only the app decides what it means.
    w = Worker("jax")
    try:
        run = start(w, tmp_path, epochs=1000, batch_size=4)
        for event in run.events():
            if isinstance(event, p.EpochEnd):
                os.kill(w.process.pid, signal.SIGINT)
                break
        epochs = 0
        for event in run.events():
            epochs += isinstance(event, p.EpochEnd)
            if epochs == 2:
                run.stop()
        assert run.result.status == "stopped"
    finally:
        w.kill()


def test_a_huge_learning_rate_is_named_as_the_cause(tmp_path):
    # Issue 12 item 16: lr 9.9 trained to chance accuracy and said "Training completed."
    w = Worker("jax")
    try:
        result = start(w, tmp_path, graph=digits_graph(), data=DataSettings(source="digits"),
                       epochs=2, batch_size=64, learning_rate=9.9).wait()
    finally:
        w.shutdown()
    assert isinstance(result, p.Finished) and result.status == "completed"
    assert "no better than always guessing" in result.diagnosis, (result.diagnosis,
                                                                  result.test_metrics)
    assert "learning rate 9.9 is probably too high for adam; try 0.001." in result.diagnosis
    assert result.message.startswith("Training completed. ")
    assert result.message.endswith(result.diagnosis)


def digits_graph() -> Graph:
    h, g = History(), Graph("digits_mlp")
    x = add_input(h, g, [64], name="pixels")
    d = add_layer(h, g, "Dense", x, units=32, activation="relu")
    y = add_layer(h, g, "Dense", d, name="digit", units=10, activation="softmax")
    add_output(h, g, y)
    return g


# ------------------------------------------------- several inputs, missing values in the model
def write_two_input_npz(folder: Path, n: int = 64) -> Path:
    """Arrays named after the multi_input template's Inputs (small images) and a target
    that depends on both."""
    rng = np.random.default_rng(0)
    tabular = rng.normal(size=(n, 5)).astype("float32")
    image = rng.random((n, 8, 8, 3)).astype("float32")
    y = (tabular[:, 0] + 4 * (image[:, :, :, 0].mean(axis=(1, 2)) - 0.5) > 0).astype("int64")
    path = folder / "two_inputs.npz"
    np.savez(path, tabular=tabular, image=image, y=y)
    return path


def test_the_multi_input_template_trains_on_one_array_per_input(worker, tmp_path):
    from kbuilder.runtime.preflight import new_project_for_data

    path = write_two_input_npz(tmp_path)
    data = DataSettings(source=f"npz:{path}")
    project = new_project_for_data("multi_input", data)
    graph = project.graph
    assert graph.find("tabular").param("shape") == [5]
    assert graph.find("image").param("shape") == [8, 8, 3]
    run = start(worker, tmp_path, graph=graph, data=data, epochs=2,
                loss=project.training.loss, metrics=project.training.metrics)
    events = list(run.events())
    started, finished = events[0], events[-1]
    assert isinstance(finished, p.Finished) and finished.status == "completed", finished
    assert started.train_samples + started.val_samples + started.test_samples == 64
    assert started.data_summary["sample_shape"] == {"tabular": [5], "image": [8, 8, 3]}
    assert len(finished.history["loss"]) == 2 and np.isfinite(finished.history["loss"]).all()
    assert np.array(finished.results["confusion_matrix"]).sum() == started.test_samples
    model = keras.saving.load_model(finished.artifacts["model"])
    assert [t.name for t in model.inputs] == ["tabular", "image"]
    with np.load(path) as arrays:
        out = model.predict([arrays["tabular"][:3], arrays["image"][:3]], verbose=0)
    assert out.shape == (3, 1) and np.all((0 <= out) & (out <= 1))


def test_missing_values_are_filled_and_normalized_inside_the_model(worker, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(loc=[100.0, -50.0, 0.0], scale=[30.0, 5.0, 1.0], size=(80, 3))
    x[rng.random(x.shape) < 0.2] = np.nan
    y = (np.nan_to_num(x[:, 0], nan=100.0) > 100).astype("int64")
    np.savez(tmp_path / "gaps.npz", x=x.astype("float32"), y=y)
    h, g = History(), Graph("filled")
    f = add_layer(h, g, "FillMissing", add_input(h, g, [3], name="rows"), name="fill")
    n = add_layer(h, g, "Normalization", f, name="norm")
    add_output(h, g, add_layer(h, g, "Dense", n, name="head", units=1, activation="sigmoid"))
    run = start(worker, tmp_path, graph=g, data=DataSettings(source=f"npz:{tmp_path / 'gaps.npz'}"),
                epochs=2, loss="binary_crossentropy")
    result = run.wait()
    assert isinstance(result, p.Finished) and result.status == "completed", result
    assert np.isfinite(result.history["loss"]).all() and np.isfinite(result.history["val_loss"]).all()
    model = keras.saving.load_model(result.artifacts["model"])
    fill = model.get_layer("fill").get_weights()[0]
    assert abs(fill[0] - 100) < 20 and abs(fill[1] + 50) < 5  # medians of the training rows
    assert abs(float(np.ravel(model.get_layer("norm").get_weights()[0])[1]) + 50) < 5
    out = model.predict(np.array([[np.nan, np.nan, np.nan]], dtype="float32"), verbose=0)
    assert np.isfinite(out).all()


def test_a_model_of_two_outputs_trains_on_a_target_array_per_output(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 4)).astype("float32")
    np.savez(tmp_path / "two.npz", rows=x, total=x.sum(axis=1), spread=x.std(axis=1))
    h, g = History(), Graph("two_heads")
    d = add_layer(h, g, "Dense", add_input(h, g, [4], name="rows"), units=8)
    add_output(h, g, add_layer(h, g, "Dense", d, name="total_head", units=1), name="total")
    add_output(h, g, add_layer(h, g, "Dense", d, name="spread_head", units=1), name="spread")
    # Mapped in the order opposite to the Outputs': the targets follow the names.
    data = DataSettings(source=f"npz:{tmp_path / 'two.npz'}",
                        output_arrays=(("spread", "spread"), ("total", "total")))
    w = Worker("jax")
    try:
        result = start(w, tmp_path, graph=g, data=data, epochs=60, batch_size=8,
                       learning_rate=0.01, loss="mean_squared_error",
                       metrics=("mean_absolute_error",)).wait()
    finally:
        w.shutdown()
    assert isinstance(result, p.Finished) and result.status == "completed", result
    losses = result.history
    assert losses["total_head_loss"][-1] < 0.2 * losses["total_head_loss"][0]  # it learned
    assert set(result.test_metrics) >= {"total_head_loss", "spread_head_loss"}
    total, spread = keras.saving.load_model(result.artifacts["model"]).predict(x, verbose=0)
    # Each head learned its own target, not the other's.
    assert np.abs(total[:, 0] - x.sum(axis=1)).mean() < 0.5 * np.abs(
        total[:, 0] - x.std(axis=1)).mean()
