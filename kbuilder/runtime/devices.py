"""Which device a worker uses, expressed as environment variables set before the backend
is imported (the only point at which all three backends reliably honour them)."""

from __future__ import annotations

BACKENDS = ("jax", "tensorflow", "torch")
# Backends that only run trained models: Keras's OpenVINO backend has no training loop.
INFERENCE_BACKENDS = ("openvino",)


class DeviceError(ValueError):
    """A device name kbuilder cannot map to a backend device."""


def parse_device(device: str) -> int | None:
    """``"cpu"`` -> ``None``; ``"gpu:1"`` -> ``1``."""
    if device == "cpu":
        return None
    kind, _, index = device.partition(":")
    if kind == "gpu" and index.isdigit():
        return int(index)
    raise DeviceError(f"Unknown device {device!r}; use 'cpu' or 'gpu:N' (see `kbuilder doctor`).")


def worker_environment(backend: str, device: str) -> dict[str, str]:
    """Environment variables that pin ``backend`` to ``device`` in a fresh process.

    ``CUDA_VISIBLE_DEVICES`` selects the GPU for all three backends (the chosen GPU then
    appears as device 0 inside the worker); an empty value hides every GPU for ``cpu``.
    ``openvino`` (inference only) runs on the CPU.
    """
    if backend not in BACKENDS + INFERENCE_BACKENDS:
        raise DeviceError(f"Unknown backend {backend!r}; use one of "
                          f"{', '.join(BACKENDS + INFERENCE_BACKENDS)}.")
    gpu = parse_device(device)
    if backend in INFERENCE_BACKENDS and gpu is not None:
        raise DeviceError(f"The {backend} backend runs on the CPU in kbuilder; "
                          f"use the device 'cpu' instead of {device!r}.")
    env = {
        "KERAS_BACKEND": backend,
        "CUDA_VISIBLE_DEVICES": "" if gpu is None else str(gpu),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    if backend == "jax":
        env["JAX_PLATFORMS"] = "cpu" if gpu is None else "cuda,cpu"
    if backend == "tensorflow" and gpu is not None:
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"  # share the GPU with the app's other work
    return env


def visible_devices(backend: str) -> list[str]:
    """Devices the current process's backend sees (call inside a worker)."""
    if backend in INFERENCE_BACKENDS:
        return ["cpu"]
    if backend == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
    elif backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    else:
        import torch

        gpus = list(range(torch.cuda.device_count()))
    return ["cpu"] + [f"gpu:{i}" for i in range(len(gpus))]
