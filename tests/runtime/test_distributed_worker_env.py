"""The environment a data-parallel worker starts with (runtime/distribution.py): the
devices it sees per backend and device, and the hosts it joins. No backend imported."""

import pytest

from kbuilder.graph.settings import TrainingSettings
from kbuilder.runtime.distribution import DistributionError, Hosts, check, worker_environment


def settings(**values):
    return TrainingSettings(distribute="data-parallel", **values)


def test_one_device_adds_nothing():
    assert worker_environment(TrainingSettings(devices=4)) == {}


def test_the_cpu_is_split_into_the_devices_asked_for(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    env = worker_environment(settings(devices=2))
    assert env == {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
    assert worker_environment(settings(devices=2)) == {}  # the user's own split wins


def test_gpus_from_the_chosen_one_on_or_all_of_them(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    env = worker_environment(settings(device="gpu:1", devices=3))
    assert env["CUDA_VISIBLE_DEVICES"] == "1,2,3"
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    # All: no restriction (None removes the single GPU devices.worker_environment picks).
    assert worker_environment(settings(device="gpu:0"))["CUDA_VISIBLE_DEVICES"] is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    assert worker_environment(settings(device="gpu:0"))["CUDA_VISIBLE_DEVICES"] == "4,5"


def test_hosts_reach_keras_through_its_own_variables():
    hosts = Hosts("10.0.0.1:1234", 2, 1)
    env = worker_environment(settings(), hosts)
    assert env["KERAS_DISTRIBUTION_JOB_ADDRESSES"] == "10.0.0.1:1234"
    assert env["KERAS_DISTRIBUTION_NUM_PROCESSES"] == "2"
    assert env["KERAS_DISTRIBUTION_PROCESS_ID"] == "1"


@pytest.mark.parametrize(("hosts", "words"), [
    (Hosts("nowhere", 2, 0), "must be HOST:PORT"),
    (Hosts("h:1", 0, 0), "whole number >= 1"),
    (Hosts("h:1", 2, 2), "one of 0..1"),
])
def test_bad_hosts_are_refused_in_words(hosts, words):
    with pytest.raises(DistributionError, match=words):
        check(settings(), hosts)
