"""Keep Keras from importing TensorFlow when it only wants to look at values.

Keras's serializer (``get_config``, ``serialize_keras_object``) asks of every value whether
it is a TensorFlow shape, dtype or type spec. The first such question imports TensorFlow if
it is installed: 3 to 9 seconds, plus its memory, in a process that runs Keras on another
backend and never needs it. While TensorFlow is not imported no value can be one of its
objects, so the answer is "no" without the import. Importing a model and generating code
both read many configurations and use ``no_tensorflow_probe()`` around that work.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def no_tensorflow_probe() -> Iterator[None]:
    """Answer Keras's "is this a TensorFlow object?" with no while the block runs.

    Keras's lazy ``tensorflow`` module is left undecided again afterwards, so code that
    really uses TensorFlow later imports it as usual. Does nothing when TensorFlow is
    already imported or Keras has already decided whether it is available.
    """
    from keras.src.utils import module_utils

    lazy = getattr(module_utils, "tensorflow", None)
    if "tensorflow" in sys.modules or getattr(lazy, "_available", True) is not None:
        yield
        return
    lazy._available = False
    try:
        yield
    finally:
        lazy._available = None
