"""The one backend-specific part of the explanations: a gradient.

Keras has no backend-neutral gradient API (keras-team/keras#20760), so each backend's own
is used — ``jax.grad``, ``torch.autograd.grad``, ``tf.GradientTape`` — on a function
written with Keras models and ``keras.ops`` only. Everything else (Grad-CAM's weighting,
integrated gradients' path, permutation importance) is numpy, the same on every backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# ``fn(tensors) -> scalar tensor``: the differentiated function, on backend tensors.
Scalar = Callable[[list[Any]], Any]


def value_and_grads(fn: Scalar, arrays: Sequence[np.ndarray],
                    constants: Sequence[np.ndarray] = ()) -> tuple[float, list[np.ndarray]]:
    """``fn(arrays + constants)`` and its gradient with respect to each of ``arrays``
    (float32), as numpy; ``constants`` (integer inputs, say) are passed but not
    differentiated."""
    import keras

    backend = keras.backend.backend()
    fixed = [keras.ops.convert_to_tensor(c) for c in constants]
    if backend == "jax":
        import jax

        def call(xs: list[Any]) -> Any:
            return fn([*xs, *fixed])

        value, grads = jax.value_and_grad(call)([keras.ops.convert_to_tensor(a)
                                                 for a in arrays])
    elif backend == "torch":
        import torch

        xs = [keras.ops.convert_to_tensor(a).detach().requires_grad_(True) for a in arrays]
        with torch.enable_grad():
            value = fn([*xs, *fixed])
            grads = list(torch.autograd.grad(value, xs))
    elif backend == "tensorflow":
        import tensorflow as tf

        xs = [tf.constant(a) for a in arrays]
        with tf.GradientTape() as tape:
            for x in xs:
                tape.watch(x)
            value = fn([*xs, *fixed])
        grads = tape.gradient(value, xs)
    else:
        raise ValueError(f"The {backend} backend computes no gradients; explain with jax, "
                         "tensorflow or torch (permutation importance works on any).")
    numpy_grads = [np.zeros_like(np.asarray(a)) if g is None
                   else np.asarray(keras.ops.convert_to_numpy(g)) for a, g in
                   zip(arrays, grads, strict=True)]
    return float(keras.ops.convert_to_numpy(value)), numpy_grads
