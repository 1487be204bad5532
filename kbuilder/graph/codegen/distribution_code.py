"""The data-parallel part of a generated training script (``keras.distribution``).

The script does what a kbuilder run does (``runtime/distribution.py``): it shows the
backend its devices before Keras is imported, joins the other hosts when
``KERAS_DISTRIBUTION_*`` is set, sets a ``DataParallel`` distribution before the model is
built, keeps this host's share of the training and validation rows (a multiple of its
devices), and judges the test split without the distribution.
"""

from __future__ import annotations

from typing import Any

from kbuilder.graph.codegen.literals import string

_CPU_DEVICES_FLAG = "--xla_force_host_platform_device_count"


def environment_lines(training: Any) -> list[str]:
    """``os.environ`` lines (before keras is imported) for the devices of the run."""
    device, count = training.device, training.devices
    if device == "cpu":
        lines = ['os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # train on the CPU']
        if count is not None and count > 1:
            lines += [f"# Data-parallel on the CPU: XLA splits the host into {count} devices.",
                      f'os.environ.setdefault("XLA_FLAGS", "{_CPU_DEVICES_FLAG}={count}")']
        return lines
    first = int(device.split(":")[1])
    if count is None:
        return ["# Data-parallel over every GPU this machine shows (CUDA_VISIBLE_DEVICES)."]
    gpus = ",".join(str(first + i) for i in range(count))
    return [f'os.environ.setdefault("CUDA_VISIBLE_DEVICES", {string(gpus)})  '
            f"# data-parallel over {count} GPUs",
            '# Each GPU holds a copy of the model: take memory as needed, not 75 % up front.',
            'os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")']


DEFINITIONS = '''\
def distribute():
    """Data-parallel training (keras.distribution.DataParallel): a copy of the model on
    every device, each batch split between them. BATCH_SIZE is the global batch.

    Several hosts: run this script on each with KERAS_DISTRIBUTION_JOB_ADDRESSES (the
    coordinator's HOST:PORT), KERAS_DISTRIBUTION_NUM_PROCESSES and
    KERAS_DISTRIBUTION_PROCESS_ID (0 on the coordinator) set. Returns this host's id, the
    number of hosts and this host's number of devices.
    """
    import jax

    if "KERAS_DISTRIBUTION_JOB_ADDRESSES" in os.environ:
        keras.distribution.initialize()  # before anything uses a device
    hosts = jax.process_count()
    devices = keras.distribution.list_devices()
    if BATCH_SIZE % len(devices):
        raise SystemExit(f"BATCH_SIZE {BATCH_SIZE} must be a multiple of the "
                         f"{len(devices)} devices to split evenly over them.")
    # Several hosts: each feeds its own share of the rows (host_share), so Keras must
    # not split the data again.
    keras.distribution.set_distribution(keras.distribution.DataParallel(
        devices=devices, auto_shard_dataset=hosts == 1))
    print(f"Data-parallel: batch {BATCH_SIZE} in all, {BATCH_SIZE // len(devices)} per "
          f"device on {len(devices)} devices ({hosts} hosts)")
    return jax.process_index(), hosts, jax.local_device_count()


def host_share(data, placement):
    """This host's rows of arrays (a dict or list of arrays too): every n-th row from its
    id on, their number a multiple of its devices (every device gets as many samples)."""
    host, hosts, devices = placement
    if isinstance(data, dict):
        return {name: host_share(a, placement) for name, a in data.items()}
    if isinstance(data, list | tuple):
        return [host_share(a, placement) for a in data]
    kept = len(data) - len(data) % (hosts * devices)
    return data[host:kept:hosts]'''


def main_lines() -> list[str]:
    """At the start of ``main`` (before the seed is set and the data loaded)."""
    return ["placement = distribute()  # before the model is built: variables replicated"]


def share_lines() -> list[str]:
    """After the data is loaded: this host's share of the training and validation rows."""
    return ["x_train, y_train = host_share(x_train, placement), host_share(y_train, placement)",
            "x_val, y_val = host_share(x_val, placement), host_share(y_val, placement)"]


def after_fit_lines() -> list[str]:
    return ["# The test split is judged on one device with the trained (replicated) weights,",
            "# so its rows need not divide over the devices.",
            "keras.distribution.set_distribution(None)"]
