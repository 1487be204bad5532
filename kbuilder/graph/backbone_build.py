"""Building a pretrained network (a backbone node) with ``keras.applications``, its
ImageNet weights downloaded through Keras's own cache, and recognising one in a model.

The network is Keras's own: ``keras.applications.<Name>(include_top=False, weights=...,
pooling=..., input_shape=..., name=<node name>)``, a nested Functional model whose inner
layers keep Keras's names (so "unfreeze from layer X" finds them).

Weights, offline-honest: Keras downloads ImageNet weights once into
``$KERAS_HOME/models`` (``~/.keras/models``) with ``keras.utils.get_file``. While a network
is built here, that download reports its progress to the callback given to
``report_downloads`` (the worker turns it into ``Progress`` messages), and a download that
fails raises ``WeightsUnavailableError``, naming the file, its URL and where to put it by
hand. A weights file the user has (``.h5`` / ``.weights.h5``) is loaded by Keras itself
(``weights=<path>``).
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kbuilder.graph.backbones import (
    BACKBONES,
    POOLINGS,
    Backbone,
    backbone,
    by_keras_name,
    input_problem,
    keras_models_folder,
    of_class,
    weights_problem,
)

# (file name, bytes so far, total bytes or None) while a weights file downloads.
DownloadProgress = Callable[[str, int, "int | None"], None]

_progress: list[DownloadProgress] = []
_lock = threading.RLock()  # the patches of keras below, one at a time


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights could not be downloaded; the message says how to place them."""


@contextlib.contextmanager
def report_downloads(callback: DownloadProgress) -> Iterator[None]:
    """Send the progress of weights downloads made inside the block to ``callback``."""
    _progress.append(callback)
    try:
        yield
    finally:
        _progress.remove(callback)


@contextlib.contextmanager
def _downloads_explained() -> Iterator[None]:
    """Report progress of, and explain failures of, ``keras.utils.get_file``'s downloads."""
    from keras.src.utils import file_utils

    original = file_utils.urlretrieve

    def retrieve(url: str, filename: str | None = None, reporthook: Any = None,
                 data: Any = None) -> Any:
        name = Path(filename or url).name

        def hook(blocks: int, block_size: int, total: int) -> None:
            if reporthook is not None:
                reporthook(blocks, block_size, total)
            done = blocks * block_size
            size = total if total > 0 else None
            for callback in list(_progress):
                callback(name, min(done, size) if size else done, size)

        try:
            return original(url, filename, hook, data)
        except Exception as exc:
            folder = Path(filename).parent if filename else keras_models_folder()
            raise WeightsUnavailableError(
                f"The ImageNet weights file '{name}' could not be downloaded from {url} "
                f"({type(exc).__name__}: {exc}). Without internet, download it on another "
                f"machine and put it in {folder} (Keras's cache, set by KERAS_HOME), or "
                "choose \"a weights file\" for the network's weights."
            ) from exc

    with _lock:
        file_utils.urlretrieve = retrieve
        try:
            yield
        finally:
            file_utils.urlretrieve = original


@contextlib.contextmanager
def without_pretrained_downloads() -> Iterator[None]:
    """Inside the block, ``keras.applications.<Name>(weights="imagenet")`` builds with
    random weights: for running generated code whose weights are replaced right after
    (an export's parity check), which must not need the internet."""
    import keras

    originals = {b.name: getattr(keras.applications, b.name) for b in BACKBONES}

    def fresh(build: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("weights", "imagenet") == "imagenet":
                kwargs["weights"] = None
            return build(*args, **kwargs)
        return call

    with _lock:
        for name, build in originals.items():
            setattr(keras.applications, name, fresh(build))
        try:
            yield
        finally:
            for name, build in originals.items():
                setattr(keras.applications, name, build)


def make_backbone(
    class_name: str, params: dict[str, Any], name: str, input_shape: tuple[int | None, ...],
    load_weights: bool = True,
) -> Any:
    """The nested Keras model of a backbone node.

    Args:
        class_name: ``applications.<Name>``.
        params: the node's ``weights``, ``pooling`` (and ``trainable``).
        name: the node's name, given to the model.
        input_shape: of its input samples (without the batch size).
        load_weights: False when the project holds the node's weights (they are set
            afterwards, so nothing is downloaded or read).

    Raises:
        ValueError: a parameter or the input does not suit the network (in words).
        WeightsUnavailableError: ImageNet weights were asked for and cannot be downloaded.
    """
    import keras

    family = of_class(class_name)
    weights = params.get("weights", "imagenet")
    pooling = params.get("pooling", "avg")
    problem = weights_problem(weights) or input_problem(family, tuple(input_shape), weights)
    if pooling not in POOLINGS:
        problem = problem or (f"Received an invalid value for `pooling`, expected one of "
                              f"{', '.join(POOLINGS)}. Received: pooling={pooling!r}")
    if problem:
        raise ValueError(problem)
    if isinstance(weights, str) and weights != "imagenet" and load_weights:
        if not Path(weights).is_file():
            raise ValueError(f"The weights file '{weights}' of '{name}' does not exist; "
                             "choose an existing .h5 or .weights.h5 file.")
    kwargs = {"include_top": False, "weights": weights if load_weights else None,
              "pooling": None if pooling == "none" else pooling,
              "input_shape": tuple(input_shape), "name": name}
    with _downloads_explained():
        model = getattr(keras.applications, family.name)(**kwargs)
    model.trainable = bool(params.get("trainable", True))
    return model


@dataclass(frozen=True)
class Recognised:
    """A nested model found to be a ``keras.applications`` network as Keras builds it."""

    family: Backbone
    pooling: str


def recognise(model: Any) -> Recognised | None:
    """The family and pooling of a nested model that is exactly a keras.applications
    network with ``include_top=False`` (same layer names and weight shapes), else None.

    Found by the model's default Keras name (else among the families with as many output
    channels, for a renamed one), then checked by building the family's network with the
    same input shape (declared weights only, nothing allocated).
    """
    if len(model.inputs) != 1 or len(model.outputs) != 1 or len(model.layers) < 100:
        return None
    family = by_keras_name(model.name)
    candidates = [family] if family else [
        b for b in BACKBONES if b.channels == model.outputs[0].shape[-1]]
    for candidate in candidates:
        found = _same_network(model, candidate)
        if found:
            return found
    return None


def _same_network(model: Any, family: Backbone) -> Recognised | None:
    import keras

    from kbuilder.graph.shapes import declared_variables

    last = model.layers[-1]
    pooling = {"GlobalAveragePooling2D": "avg", "GlobalMaxPooling2D": "max"}.get(
        type(last).__name__, "none")
    shape = tuple(model.inputs[0].shape[1:])
    try:
        with declared_variables():
            twin = getattr(keras.applications, family.name)(
                include_top=False, weights=None, input_shape=shape,
                pooling=None if pooling == "none" else pooling)
    except Exception:
        return None
    same = (_layer_names(twin) == _layer_names(model)
            and [tuple(w.shape) for w in twin.weights] == [tuple(w.shape) for w in model.weights])
    return Recognised(family, pooling) if same else None


def _layer_names(model: Any) -> list[tuple[str, str]]:
    """Class and name of each layer, without the counters Keras appends to the names it
    makes up (``re_lu_28``: they depend on how many such layers the session made)."""
    return [(type(layer).__name__, re.sub(r"_\d+$", "", layer.name)) for layer in model.layers]


def code_expression(class_name: str, params: dict[str, Any], name: str,
                    input_shape: tuple[int | None, ...], literal: Callable[[Any], str]) -> str:
    """The ``keras.applications.<Name>(...)`` call generated code writes for the node."""
    family = backbone(class_name.split(".", 1)[1])
    pooling = params.get("pooling", "avg")
    args = [
        "include_top=False",
        f"weights={literal(params.get('weights', 'imagenet'))}",
        f"pooling={literal(None if pooling == 'none' else pooling)}",
        f"input_shape={literal(tuple(input_shape))}",
        f"name={literal(name)}",
    ]
    return f"keras.applications.{family.name}({', '.join(args)})"


# Generated code builds a network whose ImageNet weights Keras downloads inside
# ``with ImageNetWeights(...):``, so that offline it fails with what to do, not with
# Keras's "URL fetch failure". Local imports: the class is pasted into every generated
# module (model, training script, notebook) without touching their import lines.
IMAGENET_HELPER = "ImageNetWeights"
IMAGENET_HELPER_SOURCE = '''class ImageNetWeights:
    """Inside `with ImageNetWeights(network):`, a keras.applications network whose
    ImageNet weights cannot be downloaded (no internet) fails naming the file, its URL
    and where to put it by hand, instead of with Keras's "URL fetch failure"."""

    def __init__(self, network):
        self.network = network

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        import os
        import re

        found = re.search(r"URL fetch failure on (\\S+): ", str(error or ""))
        if found is None:
            return False  # no error, or another one: raised as it is
        url, reason = found.group(1), str(error).split(" -- ", 1)[-1]
        home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
        raise RuntimeError(
            f"The ImageNet weights of {self.network} ({url.rsplit('/', 1)[-1]}) could "
            f"not be downloaded from {url} ({reason}). Without internet, download the file "
            f"on another machine and put it in {os.path.join(home, 'models')} (Keras's "
            "cache; KERAS_HOME sets where it is), or give its path as weights= to the "
            "keras.applications call."
        ) from error'''


def downloads_imagenet(params: dict[str, Any]) -> bool:
    """Whether a backbone node's network is built with ``weights="imagenet"``."""
    return params.get("weights", "imagenet") == "imagenet"


@dataclass(frozen=True)
class NetworkLayer:
    """One layer inside a pretrained network, as its "Open" view lists it."""

    name: str
    class_name: str
    output_shape: str
    params: int


def network_layers(class_name: str, params: dict[str, Any],
                   input_shape: tuple[int | None, ...]) -> list[NetworkLayer]:
    """The layers of a backbone node's network, in Keras's order, with Keras's names
    (those "unfreeze from layer X" takes). Built with declared weights only: nothing is
    allocated, read or downloaded (1-10 s, so run it in the background)."""
    import keras

    from kbuilder.graph.shapes import declared_variables

    family = of_class(class_name)
    pooling = params.get("pooling", "avg")
    with declared_variables():
        model = getattr(keras.applications, family.name)(
            include_top=False, weights=None, input_shape=tuple(input_shape),
            pooling=None if pooling == "none" else pooling)
    rows = []
    for layer in model.layers:
        shape = layer.output.shape if hasattr(layer, "output") else ()
        count = sum(math.prod(w.shape) for w in layer.weights)
        rows.append(NetworkLayer(layer.name, type(layer).__name__, str(tuple(shape)), count))
    return rows
