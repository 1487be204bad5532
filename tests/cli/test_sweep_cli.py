"""`kbuilder sweep` and `sweep-worker` end to end on real JAX workers (iris, tiny MLP):
parallel trials on one SQLite study, a second process joining, kill -9 and resume, the
pruner, a PostgreSQL server."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kbuilder import cli
from kbuilder.graph.project import load_project
from tests.postgres_server import postgres_server

# Small and quick: 2 epochs of iris, only the learning rate varies (no new weight shapes,
# so JAX's compilation cache serves every trial after the first).
LR = "learning_rate=3e-3..3e-2:log"


def run(*argv):
    return cli.main([str(a) for a in argv])


def study_of(storage, name):
    import optuna

    return optuna.load_study(study_name=name, storage=storage)


def states(study):
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def kbuilder_process(*argv, cwd):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.Popen([sys.executable, "-m", "kbuilder", *map(str, argv)], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def wait_for(condition, timeout=180.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def iris(tmp_path):
    project = tmp_path / "iris.kbproj"
    assert run("new", "--template", "mlp_classifier", "--data", "iris", "-o", project) == 0
    return project


@pytest.mark.slow
def test_six_trials_two_at_a_time_and_a_joining_worker(iris, capsys):
    storage = f"sqlite:///{iris.with_suffix('.db')}"
    coordinator = kbuilder_process(
        "sweep", iris, "--trials", 6, "--parallel", 2, "--storage", storage, "--study", "s",
        "--param", LR, "--epochs", 2, "--pruner", "none", "--sampler", "random",
        cwd=iris.parent)
    import optuna

    wait_for(lambda: "s" in [s.study_name for s in optuna.get_all_study_summaries(storage)],
             what="the study to be created")
    # A second process joins from "another machine": the storage, the study, the file.
    assert run("sweep-worker", iris, "--storage", storage, "--study", "s", "--trials", 2) == 0
    out, _ = coordinator.communicate(timeout=300)
    assert coordinator.returncode == 0, out
    study = study_of(storage, "s")
    finished = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    assert len(finished) >= 6
    pids = {t.user_attrs["pid"] for t in finished}
    assert os.getpid() in pids and len(pids) == 2  # both processes contributed
    assert "Recorded the best trial" in out
    runs = load_project(iris).runs
    best = min(finished, key=lambda t: t.value)
    assert [r.run_id for r in runs] == [best.user_attrs["run_id"]]
    assert runs[0].status == "completed" and "best trial" in runs[0].message
    assert runs[0].training["learning_rate"] == pytest.approx(best.params["learning_rate"])


@pytest.mark.slow
def test_kill_9_of_the_coordinator_then_resume_keeps_the_finished_trials(iris):
    storage = f"sqlite:///{iris.with_suffix('.db')}"
    argv = ("sweep", iris, "--trials", 3, "--storage", storage, "--study", "k",
            "--param", LR, "--epochs", 2, "--pruner", "none", "--heartbeat", 1)
    first = kbuilder_process(*argv, cwd=iris.parent)

    def one_done_one_running():
        try:
            found = states(study_of(storage, "k"))
        except Exception:  # not created yet
            return False
        running = [t for t in study_of(storage, "k").get_trials(deepcopy=False)
                   if t.state.name == "RUNNING" and t.params]
        return "COMPLETE" in found and running

    wait_for(one_done_one_running, what="a finished trial and a running one")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    # Read after the kill: a trial seen running a moment before may have finished first.
    before = {t.number: (t.params, t.value) for t in study_of(storage, "k").get_trials()
              if t.state.name == "COMPLETE"}
    running = next(t for t in study_of(storage, "k").get_trials() if t.state.name == "RUNNING")
    assert run(*argv) == 0
    study = study_of(storage, "k")
    trials = {t.number: t for t in study.get_trials()}
    for number, (params, value) in before.items():  # nothing finished was lost
        assert trials[number].state.name == "COMPLETE"
        assert (trials[number].params, trials[number].value) == (params, value)
    assert trials[running.number].state.name == "FAIL"
    retried = [t for t in trials.values() if t.system_attrs.get("failed_trial") == running.number]
    assert retried and retried[0].params == running.params
    assert retried[0].state.name == "COMPLETE"
    assert sum(t.state.name == "COMPLETE" for t in trials.values()) == 3


@pytest.mark.slow
def test_ctrl_c_stops_the_parallel_trials_and_queues_them_again(iris):
    storage = f"sqlite:///{iris.with_suffix('.db')}"
    sweep = kbuilder_process("sweep", iris, "--trials", 4, "--parallel", 2, "--storage",
                             storage, "--study", "c", "--param", LR, "--epochs", 50,
                             "--pruner", "none", cwd=iris.parent)

    def both_running():
        try:
            trials = study_of(storage, "c").get_trials(deepcopy=False)
        except Exception:
            return False
        return sum(t.state.name == "RUNNING" and "run_dir" in t.user_attrs
                   for t in trials) == 2

    wait_for(both_running, what="two running trials")
    running = [t.params for t in study_of(storage, "c").get_trials() if t.state.name == "RUNNING"]
    sweep.send_signal(signal.SIGINT)
    out, _ = sweep.communicate(timeout=180)
    assert sweep.returncode == 130, out
    assert "run the same command again to resume" in out
    trials = study_of(storage, "c").get_trials()
    # Queued again: their values wait as the fixed parameters of new trials.
    waiting = [t.system_attrs["fixed_params"] for t in trials if t.state.name == "WAITING"]
    assert sorted(map(str, waiting)) == sorted(map(str, running))
    assert not [t for t in trials if t.state.name == "RUNNING"]


@pytest.mark.slow
def test_the_pruner_stops_a_clearly_worse_trial(iris):
    from kbuilder.graph.sweeps import SweepSpec, parse_range
    from kbuilder.runtime import sweep as engine

    project = load_project(iris)
    spec = SweepSpec((parse_range("learning_rate=1e-7..5e-2:log", project.graph),),
                     pruner="median", trials=3)
    training = project.training.__class__.from_dict({**project.training.to_dict(),
                                                     "epochs": 3, "early_stopping": None})
    plan = engine.SweepPlan(spec, project.data, training, iris.name, "")
    storage = engine.open_storage(f"sqlite:///{iris.with_suffix('.db')}")
    study = engine.open_study(storage, "p", plan, project.graph)
    for lr in (0.05, 0.05, 1e-7):  # two that learn, then one that cannot
        study.enqueue_trial({"learning_rate": lr})
    outcomes = []
    engine.Sweep(project, study, on_trial=outcomes.append).run()
    assert [o.state for o in outcomes] == ["complete", "complete", "pruned"]
    assert outcomes[2].epoch == 1  # at the first epoch the pruner looks at (after warm-up)
    assert states(study) == ["COMPLETE", "COMPLETE", "PRUNED"]


def test_ranges_that_break_the_model_are_flagged_before_any_trial(iris, capsys):
    assert run("sweep", iris, "--trials", 2, "--param", "dense.units=0..16",
               "--param", "dropout.rate=0.1..0.5") == 1
    err = capsys.readouterr().err
    assert "The range of dense.units fails at 0" in err
    assert "dropout.rate" not in err
    assert not iris.with_name("iris.sweeps.db").exists()  # no study was started


def test_a_range_that_fails_the_preflight_check_is_flagged(iris, capsys):
    # iris has 3 classes: a softmax head of 2 units cannot learn them.
    assert run("sweep", iris, "--trials", 2, "--param", "predictions.units=2..3") == 1
    err = capsys.readouterr().err
    assert "The range of predictions.units fails the pre-flight check at 2" in err
    assert "at 3" not in err


@pytest.fixture
def postgres():
    """A PostgreSQL server of our own in a temp folder; its URL."""
    yield from postgres_server()


@pytest.mark.slow
def test_a_two_worker_sweep_on_postgresql(iris, postgres, capsys):
    assert run("sweep", iris, "--trials", 2, "--parallel", 2, "--storage", postgres,
               "--study", "pg", "--param", LR, "--epochs", 1, "--pruner", "none") == 0
    study = study_of(postgres, "pg")
    assert states(study) == ["COMPLETE", "COMPLETE"]
    assert "Recorded the best trial" in capsys.readouterr().out
    assert len(load_project(iris).runs) == 1
