"""What a data-parallel run means, in words and numbers, without importing a backend.

kbuilder's ``batch_size`` is the *global* batch: the samples one training step sees in all.
With data parallelism (``TrainingSettings.distribute == "data-parallel"``) every device holds
a copy of the model and computes on its share of the batch, ``batch_size / devices``; the
gradients are averaged, so the step is the one a single device would take on the whole
batch. Several hosts (``keras.distribution.initialize``) split it further: each host feeds
``batch_size / processes`` samples, shared by its own devices.

The window (Train tab), the CLI, the worker and generated scripts all use these sentences
and checks, so they say the same thing.
"""

from __future__ import annotations

from kbuilder.graph.text import plural

# The backends on which Keras 3.15 distributes training. Its TensorFlow distribution
# module is marked "DO NOT USE" (a DTensor prototype that model.fit does not drive) and
# the torch backend has none (``keras.src.backend.distribution_lib`` is None there).
DISTRIBUTED_BACKENDS = ("jax",)


def unsupported_backend(backend: str) -> str | None:
    """Why ``backend`` cannot train data-parallel, or ``None`` when it can."""
    if backend in DISTRIBUTED_BACKENDS:
        return None
    return (f"Keras 3.15 distributes training (keras.distribution) only on the JAX "
            f"backend, not on {backend}. Choose the JAX backend to train data-parallel, or "
            "set distribute to none to train on one device.")


def batch_problem(batch_size: int, devices: int, processes: int = 1) -> str | None:
    """Why ``batch_size`` cannot be split evenly over ``devices`` devices on each of
    ``processes`` hosts (every device must get the same number of samples), or ``None``."""
    total = devices * processes
    if batch_size % total == 0:
        return None
    where = plural(devices, "device") + (f" on each of {processes} hosts ({total} in all)"
                                         if processes > 1 else "")
    lower = max(total, batch_size - batch_size % total)
    return (f"The batch size {batch_size} cannot be split evenly over {where}; use a "
            f"multiple of {total}, e.g. {lower} or {lower + total}.")


def batch_split(batch_size: int, devices: int, processes: int = 1) -> str:
    """The batch semantics in one sentence, e.g. "Batch 64 in all: 32 per device on 2
    devices."."""
    total = devices * processes
    per_device = batch_size // total
    hosts = ""
    if processes > 1:
        hosts = (f" on {plural(processes, 'host')} ({batch_size // processes} per host, "
                 f"{plural(devices, 'device')} each)")
    else:
        hosts = f" on {plural(devices, 'device')}"
    return f"Batch {batch_size} in all: {per_device} per device{hosts}."
