"""Test-wide settings: the Keras backend for in-process graph work, Qt offscreen."""

import os

# In-process graph work is symbolic: the numpy backend does it fastest (no per-shape JIT
# of weight initialisers, as on JAX). Worker tests choose their backend per process.
os.environ.setdefault("KERAS_BACKEND", "numpy")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# Property tests (hypothesis) explore new examples on every run where people run them; CI
# (.ci/run sets KBUILDER_CI) replays a fixed set, so a submission never fails by chance.
# An example they find goes into a plain test of its own.
def _hypothesis_profile() -> None:
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, print_blob=True)
    if os.environ.get("KBUILDER_CI"):
        settings.load_profile("ci")


_hypothesis_profile()

_exit_status = {"code": None}


def pytest_sessionfinish(session, exitstatus):
    _exit_status["code"] = int(exitstatus)


def pytest_unconfigure(config):
    # After the summary is printed, leave without the interpreter's teardown: with Qt,
    # TensorFlow, JAX and torch all loaded in one process, their native destructors can
    # crash at exit (seen: a segfault after "N passed"), which would turn a green run red.
    # Nothing is left to flush here.
    import sys

    if _exit_status["code"] is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status["code"])
