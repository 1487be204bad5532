"""A sweep's trial whose process died is failed and queued again with Optuna's public API,
and the Sweep view says why; Ctrl+C is counted, not raised, while a job runs."""

import os
import signal
import socket
import subprocess
import sys

import pytest
from optuna.distributions import FloatDistribution

from kbuilder.graph.project import load_project
from kbuilder.graph.sweeps import SweepSpec, parse_range
from kbuilder.runtime import sweep as engine
from kbuilder.runtime.interrupts import CountInterrupts
from kbuilder.runtime.sweep_results import read_snapshot
from tests.cli.test_sweep_cli import run


def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_a_running_trial_of_a_dead_local_process_is_failed_and_retried(tmp_path):
    project_path = tmp_path / "iris.kbproj"
    assert run("new", "--template", "mlp_classifier", "--data", "iris", "-o", project_path) == 0
    project = load_project(project_path)
    spec = SweepSpec((parse_range("learning_rate=1e-3..1e-1:log", project.graph),), trials=3)
    plan = engine.SweepPlan(spec, project.data, project.training, project_path.name, "")
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = engine.open_study(engine.open_storage(url), "d", plan, project.graph)
    rate = {"learning_rate": FloatDistribution(1e-3, 1e-1, log=True)}
    alive = study.ask(rate)
    alive.set_user_attr("host", socket.gethostname())
    alive.set_user_attr("pid", os.getpid())
    dead = study.ask(rate)
    dead.set_user_attr("host", socket.gethostname())
    dead.set_user_attr("pid", dead_pid())

    assert engine.fail_dead_local_trials(study) == [dead.number]
    assert engine.fail_dead_local_trials(study) == []  # once only
    trials = {t.number: t for t in study.get_trials()}
    assert trials[alive.number].state.name == "RUNNING"
    assert trials[dead.number].state.name == "FAIL"
    retry = [t for t in trials.values() if t.state.name == "WAITING"]
    assert len(retry) == 1 and retry[0].params == {"learning_rate": dead.params["learning_rate"]}
    rows = {r.number: r for r in read_snapshot(url, "d", importances=False).trials}
    assert rows[dead.number].error == (
        "its process ended or stopped answering while it ran; it was tried again as trial "
        f"{retry[0].number} with the same values")
    assert rows[alive.number].error is None


def test_ctrl_c_is_counted_and_passed_on_while_a_job_runs():
    presses = []
    with CountInterrupts(presses.append) as interrupts:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
    assert interrupts.count == 2 and presses == [1, 2]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
