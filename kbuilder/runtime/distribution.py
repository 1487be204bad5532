"""Data-parallel training on ``keras.distribution``: the worker's devices, hosts and data.

Three steps, each where it must happen:

1. *Before the worker starts* (``worker_environment``): the devices it may use. A GPU run
   over N devices sees GPUs K..K+N-1 (``CUDA_VISIBLE_DEVICES``; all of them for "all");
   a CPU run over N devices splits the host into N XLA devices
   (``--xla_force_host_platform_device_count``, also how tests simulate several devices).
   Several hosts get Keras's own variables (``KERAS_DISTRIBUTION_JOB_ADDRESSES``, ...),
   read by ``keras.distribution.initialize``.
2. *Before any computation* (``initialize_hosts``, first thing in the worker): joining the
   other hosts (``jax.distributed`` under Keras), which must precede the first use of a
   device.
3. *Before the model is built* (``apply``): ``keras.distribution.set_distribution`` with a
   ``DataParallel`` over every device of every host, so the variables are created
   replicated; then each host keeps its share of the training rows (``shard``).

kbuilder's batch size is the global batch (see ``kbuilder.graph.distribution``). Mixed
precision needs nothing more: the dtype policy is per layer and each device computes in it.
Evaluation and predictions after training run without the distribution (on each host's
first device, with the trained, replicated weights), so the test split need not divide.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from kbuilder.graph.distribution import batch_problem, unsupported_backend
from kbuilder.graph.settings import TrainingSettings
from kbuilder.runtime.devices import parse_device


class DistributionError(ValueError):
    """A data-parallel setting that cannot work here, in a sentence for the user."""


_HOST_PORT = re.compile(r"^[A-Za-z0-9._\-\[\]:]+:\d{1,5}$")
_ENV_ADDRESS = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
_ENV_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
_ENV_PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
_CPU_DEVICES_FLAG = "--xla_force_host_platform_device_count"


@dataclass(frozen=True)
class Hosts:
    """Several hosts training one model: where the coordinator (process 0) listens, how
    many processes take part and which one this is. Every host runs the same command with
    its own ``process_id``."""

    coordinator: str  # HOST:PORT of process 0, reachable from every host
    num_processes: int
    process_id: int

    def validate(self) -> None:
        if not isinstance(self.coordinator, str) or not _HOST_PORT.match(self.coordinator):
            raise DistributionError(
                f"The coordinator must be HOST:PORT (e.g. 10.0.0.1:1234), the address of "
                f"process 0 that every host can reach; received {self.coordinator!r}.")
        if isinstance(self.num_processes, bool) or not isinstance(self.num_processes, int) \
                or self.num_processes < 1:
            raise DistributionError(f"The number of processes must be a whole number >= 1; "
                                    f"received {self.num_processes!r}.")
        if isinstance(self.process_id, bool) or not isinstance(self.process_id, int) or not (
                0 <= self.process_id < self.num_processes):
            raise DistributionError(
                f"The process id must be one of 0..{self.num_processes - 1} (0 on the "
                f"coordinator's host); received {self.process_id!r}.")

    def environment(self) -> dict[str, str]:
        return {_ENV_ADDRESS: self.coordinator, _ENV_PROCESSES: str(self.num_processes),
                _ENV_PROCESS_ID: str(self.process_id)}

    @classmethod
    def from_environment(cls) -> Hosts | None:
        """The hosts set up for this process (by ``environment``), or ``None``."""
        if _ENV_ADDRESS not in os.environ:
            return None
        return cls(os.environ[_ENV_ADDRESS], int(os.environ.get(_ENV_PROCESSES, "1")),
                   int(os.environ.get(_ENV_PROCESS_ID, "0")))


def is_distributed(training: TrainingSettings) -> bool:
    return training.distribute != "none"


def check(training: TrainingSettings, hosts: Hosts | None = None) -> None:
    """Refuse, before a worker starts, what cannot run: another backend than JAX, a batch
    that does not split over the devices asked for, hosts without data parallelism.

    Raises:
        DistributionError: in a sentence that says how to fix it.
    """
    if hosts is not None:
        hosts.validate()
        if not is_distributed(training):
            raise DistributionError(
                "Several hosts train one model only data-parallel; add --distribute "
                "data-parallel (and run the same command on every host).")
    if not is_distributed(training):
        return
    problem = unsupported_backend(training.backend)
    if problem:
        raise DistributionError(problem)
    if training.devices is not None:
        problem = batch_problem(training.batch_size, training.devices,
                                hosts.num_processes if hosts else 1)
        if problem:
            raise DistributionError(problem)


def worker_environment(training: TrainingSettings,
                       hosts: Hosts | None = None) -> dict[str, str | None]:
    """What a data-parallel worker's environment adds to ``devices.worker_environment``
    (``None``: remove the variable). Nothing for a run on one device."""
    if not is_distributed(training):
        return {}
    env: dict[str, str | None] = {}
    gpu = parse_device(training.device)
    count = training.devices
    if gpu is not None:
        # "gpu:K" with N devices: GPUs K..K+N-1 (they appear as 0..N-1 in the worker);
        # all devices: every GPU the machine (or the user's CUDA_VISIBLE_DEVICES) shows.
        if count is None:
            env["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES")
        else:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(gpu + i) for i in range(count))
        # Each device gets its own copy of the model and batches: let JAX take memory as
        # needed rather than 75 % of every GPU up front.
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    elif count is not None and count > 1:
        flags = os.environ.get("XLA_FLAGS", "")
        if _CPU_DEVICES_FLAG not in flags:  # the user's own setting wins
            env["XLA_FLAGS"] = f"{flags} {_CPU_DEVICES_FLAG}={count}".strip()
    if hosts is not None:
        env.update(hosts.environment())
    return env


# ------------------------------------------------------------------ inside the worker
def initialize_hosts() -> Hosts | None:
    """Join the other hosts, when this worker is one of several; call before anything uses
    a device (``keras.distribution.initialize`` starts ``jax.distributed``)."""
    hosts = Hosts.from_environment()
    if hosts is None or hosts.num_processes == 1:
        return hosts
    import keras

    # Keras reads the addresses, count and id from the environment set above.
    keras.distribution.initialize()
    return hosts


@dataclass(frozen=True)
class Placement:
    """Where a data-parallel run computes: devices on this host, hosts, this host's id."""

    local_devices: int
    processes: int
    process_id: int

    @property
    def devices(self) -> int:
        return self.local_devices * self.processes


def apply(training: TrainingSettings, device: str) -> Placement | None:
    """Set Keras's distribution for a data-parallel run (before the model is built), or
    clear it; ``None`` for a run on one device.

    Raises:
        DistributionError: the backend cannot, or the devices asked for are not there,
            or the batch does not split over them.
    """
    import keras

    keras.distribution.set_distribution(None)
    if not is_distributed(training):
        return None
    problem = unsupported_backend(keras.backend.backend())
    if problem:
        raise DistributionError(problem)
    import jax

    kind = "gpu" if device.startswith("gpu") else "cpu"
    local = [d for d in jax.local_devices() if _kind(d.platform) == kind]
    if training.devices is not None and len(local) < training.devices:
        raise DistributionError(
            f"The run asks for {training.devices} {kind.upper()} devices, but the JAX "
            f"backend sees {len(local)} on this host; lower devices, or choose all.")
    processes, process_id = jax.process_count(), jax.process_index()
    placement = Placement(len(local), processes, process_id)
    problem = batch_problem(training.batch_size, placement.local_devices, processes)
    if problem:
        raise DistributionError(problem)
    every = keras.distribution.list_devices(kind)  # every host's devices
    # Several hosts: each feeds its own share of the rows (``shard``), so Keras must not
    # try to split the data again (it could only split a tf.data.Dataset).
    keras.distribution.set_distribution(keras.distribution.DataParallel(
        devices=every, auto_shard_dataset=processes == 1))
    return placement


def local_batch(batch_size: int, placement: Placement | None) -> int:
    """The samples this host feeds per step (the global batch over the hosts)."""
    return batch_size if placement is None else batch_size // placement.processes


def shard(x: Any, y: Any, placement: Placement | None) -> tuple[Any, Any, int]:
    """This host's rows of a split, their number a multiple of its devices (every device
    gets the same number of samples in every batch, the last one too); and how many rows
    were left out to make them divide (fewer than the number of devices)."""
    from kbuilder.runtime.data.dataset import map_x, num_rows, take_rows
    from kbuilder.runtime.data.table_splits import table_inputs

    if placement is None or x is None:
        return x, y, 0
    found = table_inputs(x)
    if found is not None:
        if placement.processes > 1:
            raise DistributionError(
                "A table streamed in blocks trains data-parallel on one host only: each "
                "host would have to read its own share of the blocks, which kbuilder does "
                "not do yet. Read the table whole (turn streaming off in the Data tab, or "
                ":stream=no) to train on several hosts, or train on the devices of one.")
        # One host: every row stays; the feed cuts each batch to a multiple of the
        # devices (table_feed.TableBatches, ``multiple``), the last one losing fewer
        # than their number of rows per epoch.
        return x, y, len(found[0]) % placement.local_devices
    import numpy as np

    rows = num_rows(x)
    kept = rows - rows % placement.devices
    index = np.arange(placement.process_id, kept, placement.processes)
    if kept == rows and placement.processes == 1:
        return x, y, 0
    return (take_rows(x, index),
            None if y is None else map_x(lambda a: a[index], y), rows - kept)


def _kind(platform: str) -> str:
    return "gpu" if platform.lower() in ("gpu", "cuda", "rocm") else platform.lower()
