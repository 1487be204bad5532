"""Refusing absurd sizes before Keras allocates anything: layers' weights are declared
with their shapes only (``declared_variables``, ``symbolic_call``), outputs are checked per
sample, and ``explain_size`` says which setting to lower."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from math import prod
from typing import Any

from kbuilder.graph.shapes.specs import TensorSpec

# Sizes no real model reaches; anything above them is a typing slip (filters=1000000),
# refused before Keras allocates anything.
MAX_LAYER_PARAMS = 2**31  # 8 GiB of float32 weights in one layer


MAX_TENSOR_ELEMENTS = 2**28  # 1 GiB of float32 per sample in one tensor


class SizeError(ValueError):
    """A layer whose weights or output would be absurdly large; nothing was allocated.

    Args:
        what: ``"weights"`` or ``"output"``.
        shape: the shape concerned (the output's without the batch dimension).
        count: how many numbers it would hold (a layer's weights in total).
    """

    def __init__(self, what: str, shape: tuple[int | None, ...], count: int):
        super().__init__(f"{what} {shape} too large ({count:,} numbers)")
        self.what = what
        self.shape = shape
        self.count = count


class _DeclaredVariables(list):
    """Keras's list of uninitialized variables, counting them and refusing absurd sizes.

    Keras appends every variable created in a stateless scope to this list, with its
    shape known and nothing allocated; that is the last moment a size can be refused.
    """

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.count = 0

    def append(self, variable: Any) -> None:
        self.count += prod(variable.shape)
        if self.count > self.limit:
            raise SizeError("weights", tuple(variable.shape), self.count)
        super().append(variable)


@contextmanager
def declared_variables(limit: int = MAX_LAYER_PARAMS) -> Iterator[_DeclaredVariables]:
    """Create Keras variables inside the block with their shapes only, never their values.

    Yields the list of variables declared (``.count``: how many numbers they hold).

    Raises:
        SizeError: the variables declared would hold more than ``limit`` numbers.
    """
    import keras
    from keras.src.backend.common import global_state

    key = "uninitialized_variables"
    previous = global_state.get_global_attribute(key)
    declared = _DeclaredVariables(limit)
    global_state.set_global_attribute(key, declared)
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield declared
    finally:
        # The variables stay uninitialized: nothing here reads their values, and another
        # scope's exit must not initialize them either.
        global_state.set_global_attribute(key, previous)


def symbolic_call(layer: Any, args: list, kwargs: dict) -> Any:
    """Call ``layer`` on KerasTensors without allocating its weights.

    The weights are declared (their shapes count the parameters) but never initialized:
    Keras would otherwise fill them with random values when the scope ends.

    Raises:
        SizeError: the layer's weights would be absurdly large.
    """
    try:
        with declared_variables():
            return layer(*args, **kwargs)
    except ValueError as exc:
        # A few layers create variables from concrete values (e.g. a given vocabulary),
        # which a stateless scope refuses; those are small, so build them for real.
        if isinstance(exc, SizeError) or "stateless scope" not in str(exc):
            raise
        return layer(*args, **kwargs)


def check_output_sizes(specs: tuple[TensorSpec, ...]) -> None:
    """Refuse an output whose one sample would hold an absurd number of values.

    Raises:
        SizeError: names the first such output.
    """
    for spec in specs:
        count = prod(d or 1 for d in spec.shape[1:])
        if count > MAX_TENSOR_ELEMENTS:
            raise SizeError("output", spec.shape[1:], count)


def explain_size(exc: SizeError, params: dict[str, Any]) -> tuple[str, str | None]:
    """The sentence for a ``SizeError``, and the parameter most likely to blame.

    The parameter is the largest whole-number setting that appears in the shape
    (``filters=1000000`` in a kernel of shape ``(3, 3, 3, 1000000)``).
    """
    dims = {d for d in exc.shape if d}
    culprits = sorted(
        (value, name) for name, value in params.items()
        if isinstance(value, int) and not isinstance(value, bool) and value in dims
    )
    param = culprits[-1][1] if culprits else None
    hint = f" Lower `{param}`." if param else " Use smaller settings."
    gib = exc.count * 4 / 2**30
    if exc.what == "weights":
        limit = f"{MAX_LAYER_PARAMS:,}"
        return (
            f"its weights would hold at least {exc.count:,} numbers ({gib:,.0f} GiB; a weight of "
            f"shape {exc.shape}), far more than any real layer (at most {limit}).{hint}",
            param,
        )
    shape = TensorSpec((None, *exc.shape), "float32")
    return (
        f"its output {shape} would hold {exc.count:,} numbers per sample ({gib:,.1f} GiB), "
        f"far more than any real model (at most {MAX_TENSOR_ELEMENTS:,}).{hint}",
        param,
    )
