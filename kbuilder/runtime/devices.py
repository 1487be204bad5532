"""Which device a worker uses, expressed as environment variables set before the backend
is imported (the only point at which all three backends reliably honour them)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kbuilder.graph.settings import BACKENDS, INFERENCE_BACKENDS


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


def worker_environment(backend: str, device: str,
                       yield_to_window: bool = False) -> dict[str, str]:
    """Environment variables that pin ``backend`` to ``device`` in a fresh process.

    ``CUDA_VISIBLE_DEVICES`` selects the GPU for all three backends (the chosen GPU then
    appears as device 0 inside the worker); an empty value hides every GPU for ``cpu``.
    ``openvino`` (inference only) runs on the CPU. ``yield_to_window``: a worker of the
    window, whose torch threads spin less (below).
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
        env.update(jax_compilation_cache())
    if (yield_to_window and backend == "torch"
            and not {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} & set(os.environ)):
        # PyTorch's OpenMP threads (GNU libgomp on Linux) spin ~300k rounds after each of
        # a small model's many tiny operations. Spinning 10k rounds takes about 70 % of the
        # CPU time and leaves the window a core, for ~10 % of the steps/s on a free CPU
        # (a fully passive wait costs 15 %). Not for the CLI: there it is what keeps a
        # worker below a plain script's speed (issue 12 item 29).
        env["GOMP_SPINCOUNT"] = "10000"
    if backend == "tensorflow" and gpu is not None:
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"  # share the GPU with the app's other work
    return env


# JAX compiles every new weight shape and the training step with XLA: seconds before the
# first batch. Keeping compiled programs on disk makes the next run of the same (or a
# similar) model start in a fraction of that — the usual edit, train, edit loop.
JAX_CACHE_BYTES = 1 << 30  # least recently used programs are evicted beyond this


def cache_dir() -> Path:
    """kbuilder's per-user cache folder (``KBUILDER_CACHE_DIR`` overrides it)."""
    configured = os.environ.get("KBUILDER_CACHE_DIR")
    if configured:
        return Path(configured)
    import platformdirs

    return Path(platformdirs.user_cache_dir("kbuilder", appauthor=False))


def jax_compilation_cache() -> dict[str, str]:
    """Environment for JAX's persistent compilation cache, unless the user set one up."""
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return {}
    return {
        "JAX_COMPILATION_CACHE_DIR": str(cache_dir() / "jax"),
        # Cache everything: the many small initializer programs are what costs seconds.
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1",
        "JAX_COMPILATION_CACHE_MAX_SIZE": str(JAX_CACHE_BYTES),
    }


@dataclass(frozen=True)
class Device:
    """One device a backend sees, named the way ``--device`` takes it."""

    name: str  # "cpu", "gpu:0", "tpu:0", ...
    kind: str  # "cpu", "gpu", "tpu"
    detail: str  # what the backend calls it ("NVIDIA H200", "host")


def backend_devices(backend: str) -> list[Device]:
    """The devices this process's ``backend`` sees; imports the backend, so call it in a
    worker or in ``kbuilder doctor``'s probe process, never in the window.

    The one listing of devices: the worker's ``WorkerReady.devices`` and the doctor's report
    both come from here.
    """
    if backend in INFERENCE_BACKENDS:
        return [Device("cpu", "cpu", "host")]
    return name_devices(_device_entries(backend))


def visible_devices(backend: str) -> list[str]:
    """The names of ``backend_devices`` (call inside a worker)."""
    return [d.name for d in backend_devices(backend)]


def name_devices(entries: list[tuple[str, str]]) -> list[Device]:
    """``(kind, detail)`` in backend order -> ``cpu``, ``gpu:0``, ``gpu:1``, ...

    Backends describe the host CPU differently (and JAX may split it into several devices);
    it is one device, ``cpu``, to kbuilder.
    """
    devices: list[Device] = []
    counts: dict[str, int] = {}
    cpus = 0
    for kind, detail in entries:
        if kind == "cpu":
            cpus += 1
            continue
        index = counts.get(kind, 0)
        counts[kind] = index + 1
        devices.append(Device(f"{kind}:{index}", kind, detail))
    if cpus:
        devices.insert(0, Device("cpu", "cpu", "host" if cpus == 1 else f"host, {cpus} devices"))
    return devices


def _kind(platform_name: str) -> str:
    platform_name = platform_name.lower()
    return "gpu" if platform_name in ("gpu", "cuda", "rocm", "metal") else platform_name


def _device_entries(backend: str) -> list[tuple[str, str]]:
    if backend == "jax":
        import jax

        found = list(jax.devices())
        # jax.devices() lists only the default platform (the GPU when there is one).
        if not any(d.platform == "cpu" for d in found):
            try:
                found = list(jax.devices("cpu")) + found
            except Exception:  # best effort: JAX_PLATFORMS without cpu, a plugin's error
                pass
        return [(_kind(d.platform), str(getattr(d, "device_kind", d))) for d in found]
    if backend == "tensorflow":
        import tensorflow as tf

        entries = []
        for d in tf.config.list_physical_devices():
            detail = d.name.replace("/physical_device:", "")
            if d.device_type == "GPU":
                try:
                    details = tf.config.experimental.get_device_details(d)
                    detail = details.get("device_name", detail)
                except Exception:  # best effort: the name stays TensorFlow's device id
                    pass
            entries.append((_kind(d.device_type), detail))
        return entries
    if backend == "torch":
        import torch

        return [("cpu", "cpu")] + [("gpu", torch.cuda.get_device_name(i))
                                   for i in range(torch.cuda.device_count())]
    raise DeviceError(f"Unknown backend {backend!r}; use one of {', '.join(BACKENDS)}.")
