"""Test-wide settings: the Keras backend for in-process graph work, Qt offscreen."""

import os

# In-process graph work is symbolic: the numpy backend does it fastest (no per-shape JIT
# of weight initialisers, as on JAX). Worker tests choose their backend per process.
os.environ.setdefault("KERAS_BACKEND", "numpy")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
