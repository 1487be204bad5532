"""Test-wide settings: the Keras backend for in-process graph work, Qt offscreen."""

import os

# jax imports fastest; the graph core works on any backend (worker tests pick their own).
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
