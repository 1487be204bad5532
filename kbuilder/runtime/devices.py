"""Which device a worker uses, expressed as environment variables set before the backend
is imported (the only point at which all three backends reliably honour them)."""

from __future__ import annotations

import os
from pathlib import Path

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
