"""Device names: one listing for the worker and ``kbuilder doctor`` (runtime/devices.py)."""

import pytest

from kbuilder.runtime.devices import (
    Device,
    DeviceError,
    backend_devices,
    name_devices,
    parse_device,
    worker_environment,
)


def test_backend_devices_are_named_as_device_takes_them():
    entries = [("cpu", "TFRT_CPU_0"), ("gpu", "H200"), ("cpu", "TFRT_CPU_1"), ("gpu", "A100"),
               ("tpu", "v5e")]
    assert name_devices(entries) == [
        Device("cpu", "cpu", "host, 2 devices"), Device("gpu:0", "gpu", "H200"),
        Device("gpu:1", "gpu", "A100"), Device("tpu:0", "tpu", "v5e")]
    assert name_devices([("cpu", "x")]) == [Device("cpu", "cpu", "host")]
    for device in name_devices(entries):
        if device.kind != "tpu":
            parse_device(device.name)  # each name is one `--device` accepts


def test_openvino_runs_on_the_cpu_only():
    assert backend_devices("openvino") == [Device("cpu", "cpu", "host")]
    with pytest.raises(DeviceError, match="runs on the CPU"):
        worker_environment("openvino", "gpu:0")
    with pytest.raises(DeviceError, match="jax, tensorflow, torch, openvino"):
        worker_environment("cobol", "cpu")
