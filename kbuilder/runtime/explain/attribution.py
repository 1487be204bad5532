"""Gradient explanations on a Keras model, the same numbers on every backend: Grad-CAM,
integrated gradients and saliency (numpy around ``gradients.value_and_grads``).

Inputs are the model's inputs as a list of arrays in ``model.inputs`` order (what
``fit_to_model`` gives, listed). The explained score of a class is its log-probability
when the model outputs probabilities (softmax or a sigmoid unit: the log does not
saturate as a probability near 1 does) and the raw output otherwise; ``score_name`` says
which.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from kbuilder.runtime.explain.gradients import value_and_grads

# Integrated gradients' default number of steps along the path (the error of the sum,
# stated with each result, is usually well below 1 % of the score difference with 32).
DEFAULT_STEPS = 32
# Samples differentiated together (Grad-CAM, saliency); integrated gradients sends one
# sample's steps at a time.
BATCH = 64


class ExplainError(ValueError):
    """An explanation that cannot be made for this model or input; the message says why."""


@dataclass(frozen=True)
class Scoring:
    """How a class's score is read from the model's output."""

    probabilities: bool  # log-probability of the class (else the raw output unit)
    sigmoid: bool  # one unit, the second class's probability
    logits: bool = False  # the output's softmax/sigmoid is taken off: the class's logit

    @property
    def name(self) -> str:
        if self.logits:
            return "the class's logit (the output before its " + \
                ("sigmoid)" if self.sigmoid else "softmax)")
        return "log-probability of the class" if self.probabilities else "the output unit"

    def score(self, outputs: Any, targets: np.ndarray) -> Any:
        """The sum over the batch of each sample's target score (a backend tensor)."""
        import keras

        ops = keras.ops
        if self.logits and self.sigmoid:  # class 1: z, class 0: -z (its logit)
            t = ops.convert_to_tensor(2.0 * targets.astype("float32") - 1.0)
            return ops.sum(t * ops.reshape(outputs, (-1,)))
        if self.sigmoid:
            p = ops.reshape(outputs, (-1,))
            t = ops.convert_to_tensor(targets.astype("float32"))
            picked = t * p + (1.0 - t) * (1.0 - p)
        else:
            flat = ops.reshape(outputs, (ops.shape(outputs)[0], -1))
            mask = ops.convert_to_tensor(np.eye(int(flat.shape[1]), dtype="float32")[targets])
            picked = ops.sum(flat * mask, axis=1)
        if self.probabilities:
            picked = ops.log(ops.maximum(picked, 1e-12))
        return ops.sum(picked)


def scoring_for(outputs: np.ndarray) -> Scoring:
    """Whether ``outputs`` (a batch of the model's first output) are probabilities."""
    flat = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    in_unit = bool(np.all((flat >= 0) & (flat <= 1)))
    if flat.shape[1] == 1:
        return Scoring(in_unit, in_unit)
    return Scoring(in_unit and bool(np.allclose(flat.sum(axis=1), 1, atol=1e-3)), False)


@contextlib.contextmanager
def output_logits(model: Any, scoring: Scoring) -> Iterator[Scoring]:
    """While inside, the model's first output is its logits when it ends in a layer with a
    softmax or sigmoid activation (taken off for the while): Grad-CAM and integrated
    gradients explain the class's logit, as Grad-CAM's authors do, not a saturating
    probability. Yields the scoring to use (unchanged when nothing is taken off)."""
    import keras

    layer = getattr(getattr(model.outputs[0], "_keras_history", None), "operation", None)
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", "")
    if not scoring.probabilities or name not in ("softmax", "sigmoid"):
        yield scoring
        return
    layer.activation = keras.activations.linear
    try:
        yield replace(scoring, probabilities=False, logits=True)
    finally:
        layer.activation = activation


def predicted_targets(outputs: np.ndarray) -> np.ndarray:
    """The predicted class (output unit) of each sample."""
    flat = np.asarray(outputs).reshape(len(outputs), -1)
    if flat.shape[1] == 1:
        return (flat[:, 0] >= 0.5).astype(np.int64)
    return flat.argmax(axis=1)


def target_values(outputs: np.ndarray, targets: np.ndarray, scoring: Scoring) -> np.ndarray:
    flat = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    if scoring.sigmoid and scoring.logits:
        return np.where(targets == 1, flat[:, 0], -flat[:, 0])
    if scoring.sigmoid:
        return np.where(targets == 1, flat[:, 0], 1 - flat[:, 0])
    return flat[np.arange(len(flat)), targets]


def _differentiable(model: Any, xs: Sequence[np.ndarray]) -> list[bool]:
    """Per model input: whether it is a float input (integer codes are held fixed)."""
    return [np.asarray(x).dtype.kind == "f" and "int" not in str(t.dtype)
            for x, t in zip(xs, model.inputs, strict=True)]


def _model_call(model: Any) -> Any:
    def call(inputs: list[Any]) -> Any:
        out = model(structured(model, inputs), training=False)
        return out[0] if isinstance(out, list | tuple) else out

    return call


def structured(model: Any, inputs: list[Any]) -> Any:
    """``inputs`` (one per model input, in order) in the structure the model was built
    with (a tensor, a list or a dict), so Keras does not warn that they differ."""
    import keras

    struct = getattr(model, "_inputs_struct", None)
    if struct is None:
        return inputs if len(inputs) > 1 else inputs[0]
    return keras.tree.pack_sequence_as(struct, list(inputs))


# ----------------------------------------------------------------------------- Grad-CAM
def conv_layers(model: Any) -> list[Any]:
    """The layers Grad-CAM can use: those whose output is a map (batch, height, width,
    channels), convolutions first in the sense that the default is the last of them."""
    found = []
    for layer in model.layers:
        try:
            shape = tuple(layer.output.shape)
        except (AttributeError, ValueError):
            continue  # a layer used more than once has no single output
        if len(shape) == 4 and "Input" not in type(layer).__name__:
            found.append(layer)
    return found


def gradcam_layer(model: Any, name: str | None) -> Any:
    """The named layer, or the last convolution (else the last 2-D map) of the model."""
    maps = conv_layers(model)
    if name:
        try:
            layer = model.get_layer(name)
        except ValueError:
            raise ExplainError(f"The model has no layer '{name}'. Its layers with image-"
                               f"like outputs are: {', '.join(m.name for m in maps) or 'none'}."
                               ) from None
        if layer not in maps:
            raise ExplainError(f"Grad-CAM needs a layer whose output is a map (height, "
                               f"width, channels); '{name}' gives "
                               f"{_shape_words(layer)}. Choose one of: "
                               f"{', '.join(m.name for m in maps) or 'none'}.")
        return layer
    convs = [m for m in maps if "Conv" in type(m).__name__]
    if not (convs or maps):
        raise ExplainError("Grad-CAM needs a convolutional image model: this model has no "
                           "layer with an image-like output (height, width, channels). "
                           "Use --method integrated-gradients instead.")
    return (convs or maps)[-1]


def _shape_words(layer: Any) -> str:
    try:
        return f"shape {list(layer.output.shape[1:])}"
    except (AttributeError, ValueError):
        return "several outputs"


def gradcam(model: Any, xs: list[np.ndarray], targets: np.ndarray, scoring: Scoring,
            layer: Any) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM maps: ``(raw, resized)`` — at the layer's resolution, and resized to the
    first input's height and width and scaled to 0..1 per sample (0 everywhere when the
    map is all zeros).

    Each position's channels are weighted by the class score's gradient at that position
    (the element-wise form, HiResCAM: Draelos & Carin 2020), not by the gradient's mean
    over the map as in Selvaraju et al.'s Grad-CAM. The two are the same map whenever the
    layer is followed by global pooling (the gradient is then equal at every position).
    They differ when the positions reach the head separately (Flatten, then Dense): there
    a class's weights are positive where its evidence lies and negative elsewhere, their
    mean cancels, and the mean-weighted map of a model that tells classes by *where*
    something is came out all zeros in our tests (tests/runtime/explain/learned.py)."""
    import keras

    feature_model = keras.Model(model.inputs, layer.output)
    head = keras.Model([*model.inputs, layer.output], model.outputs[0])
    raws = []
    for start in range(0, len(targets), BATCH):
        part = [np.asarray(x[start:start + BATCH]) for x in xs]
        t = targets[start:start + BATCH]
        maps = np.asarray(keras.ops.convert_to_numpy(feature_model(part, training=False)))

        def score(tensors: list[Any], t: np.ndarray = t) -> Any:
            a, inputs = tensors[0], tensors[1:]
            return scoring.score(head([*inputs, a], training=False), t)

        _, (grads,) = value_and_grads(score, [maps.astype("float32")], part)
        raws.append(np.maximum((maps * grads).sum(axis=-1), 0))
    raw = np.concatenate(raws).astype(np.float32)
    height, width = (int(d) for d in np.asarray(xs[0]).shape[1:3])
    return raw, np.stack([_normalised(resize(m, height, width)) for m in raw])


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """A 2-D float map resized bilinearly (pixel centres aligned, as images are)."""
    def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        low = np.floor(pos).astype(int)
        high = np.minimum(low + 1, n_in - 1)
        return low, high, pos - low

    r0, r1, fr = axis(image.shape[0], height)
    c0, c1, fc = axis(image.shape[1], width)
    rows = image[r0] * (1 - fr)[:, None] + image[r1] * fr[:, None]
    return (rows[:, c0] * (1 - fc) + rows[:, c1] * fc).astype(np.float32)


def _normalised(m: np.ndarray) -> np.ndarray:
    top = float(m.max())
    return m / top if top > 0 else np.zeros_like(m)


# ----------------------------------------------------------------- integrated gradients
def integrated_gradients(model: Any, xs: list[np.ndarray], targets: np.ndarray,
                         scoring: Scoring, steps: int = DEFAULT_STEPS
                         ) -> tuple[list[np.ndarray], float]:
    """Per model input the attributions (the input's shape), from an all-zero baseline
    with ``steps`` midpoint steps; and the largest completeness error over the samples,
    |sum(attributions) - (score(x) - score(baseline))|. Integer inputs get zeros."""
    if steps < 1:
        raise ExplainError(f"Integrated gradients need at least 1 step; received {steps}.")
    call = _model_call(model)
    grad_of = _differentiable(model, xs)
    if not any(grad_of):
        raise ExplainError("The model's inputs are all whole numbers (category codes); "
                           "there is nothing to differentiate. Use --method permutation.")
    alphas = ((np.arange(steps) + 0.5) / steps).astype(np.float32)
    attributions = [np.zeros_like(np.asarray(x), dtype=np.float32) for x in xs]
    worst = 0.0
    for i, t in enumerate(targets):
        samples = [np.asarray(x[i:i + 1]) for x in xs]
        path = [alphas.reshape(-1, *[1] * (s.ndim - 1)) * s.astype(np.float32)
                for s, g in zip(samples, grad_of, strict=True) if g]
        fixed = [np.repeat(s, steps, axis=0) for s, g in zip(samples, grad_of, strict=True)
                 if not g]
        tt = np.full(steps, t)

        def score(tensors: list[Any], tt: np.ndarray = tt, scoring: Scoring = scoring) -> Any:
            return scoring.score(call(_in_order(tensors, grad_of)), tt)

        _, grads = value_and_grads(score, path, fixed)
        parts = iter(grads)
        total = 0.0
        for k, (s, g) in enumerate(zip(samples, grad_of, strict=True)):
            if g:
                attribution = s[0].astype(np.float32) * next(parts).mean(axis=0)
                attributions[k][i] = attribution
                total += float(attribution.sum(dtype=np.float64))
        ends = [np.concatenate([np.zeros_like(s, dtype=np.float32), s.astype(np.float32)])
                if g else np.repeat(s, 2, axis=0) for s, g in zip(samples, grad_of, strict=True)]
        out = _predict(model, ends)
        low, high = _log_scores(out, np.array([t, t]), scoring)
        worst = max(worst, abs(total - (high - low)))
    return attributions, worst


def _in_order(tensors: list[Any], grad_of: list[bool]) -> list[Any]:
    """The differentiated tensors (first) and the fixed ones back in input order."""
    moving = iter(tensors[:sum(grad_of)])
    fixed = iter(tensors[sum(grad_of):])
    return [next(moving) if g else next(fixed) for g in grad_of]


def _predict(model: Any, xs: list[np.ndarray], batch: int = 1024) -> np.ndarray:
    """The model's first output on ``xs``, called directly in batches (no compiled
    predict step to build for a few samples)."""
    import keras

    call = _model_call(model)
    parts = [np.asarray(keras.ops.convert_to_numpy(
        call([keras.ops.convert_to_tensor(np.asarray(x[start:start + batch])) for x in xs])))
        for start in range(0, len(xs[0]), batch)]
    return np.concatenate(parts)


def _log_scores(outputs: np.ndarray, targets: np.ndarray, scoring: Scoring) -> np.ndarray:
    values = target_values(outputs, targets, scoring)
    return np.log(np.maximum(values, 1e-12)) if scoring.probabilities else values


def saliency(model: Any, xs: list[np.ndarray], targets: np.ndarray,
             scoring: Scoring) -> list[np.ndarray]:
    """Per model input |d score / d input| at the input (zeros for integer inputs)."""
    call = _model_call(model)
    grad_of = _differentiable(model, xs)
    result = [np.zeros_like(np.asarray(x), dtype=np.float32) for x in xs]
    for start in range(0, len(targets), BATCH):
        part = [np.asarray(x[start:start + BATCH]) for x in xs]
        t = targets[start:start + BATCH]

        def score(tensors: list[Any], t: np.ndarray = t) -> Any:
            return scoring.score(call(_in_order(tensors, grad_of)), t)

        _, grads = value_and_grads(score, [p.astype(np.float32) for p, g in
                                           zip(part, grad_of, strict=True) if g],
                                   [p for p, g in zip(part, grad_of, strict=True) if not g])
        moving = iter(grads)
        for k, g in enumerate(grad_of):
            if g:
                result[k][start:start + len(t)] = np.abs(next(moving))
    return result
