"""The worker protocol: every message between the app and a worker process.

Messages are frozen dataclasses with a ``type`` tag, carried as JSON (``encode`` /
``decode``) so the protocol is visible, versioned and language-neutral — no pickles and
no proxy objects. Values must be JSON-safe: ``jsonable`` turns numpy scalars and arrays
into Python numbers and lists, and NaN/inf into ``None`` (JSON has neither).

Requests go to the worker; events come back. A run's events arrive in this order::

    WorkerReady  (once per worker, when the backend is imported)
    RunStarted
    (BatchEnd* EpochEnd)*   BatchEnd at most ~20 per second; LogLine/Warning anywhere
    [PhaseStarted (BatchEnd* EpochEnd)*]   a fine-tuning run's second phase
    Finished | Failed       exactly one

While a worker imports its backend or works on a request it also sends a ``Heartbeat``
every ``HEARTBEAT_SECONDS`` from a thread of its own, whatever the job does: an app that
hears nothing for much longer knows the worker is stopped or hung, not just busy.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

PROTOCOL_VERSION = 6  # 2: Heartbeat; Finished.diagnosis, .baselines; Predicted.split
# 3: Progress; StartPrediction.input_columns; 4: RunStarted.devices, .processes;
# 5: PhaseStarted; 6: StartExplanation, Explained; StartActivations, ActivationsReady
HEARTBEAT_SECONDS = 1.0


class ProtocolError(ValueError):
    """A message that is not valid under this protocol version."""


@dataclass(frozen=True)
class Message:
    type: ClassVar[str] = "message"


# ------------------------------------------------------------------ requests (to worker)
@dataclass(frozen=True)
class StartTraining(Message):
    """Train ``graph`` (``Graph.to_dict()``) on ``data`` with ``training`` settings.

    ``weights_path`` is an ``.npz`` of initial weights (``node_id/index`` keys) or None.
    Everything the run writes (model, checkpoints, TensorBoard logs) goes to ``run_dir``.
    """

    type: ClassVar[str] = "start_training"
    run_id: str
    graph: dict[str, Any]
    data: dict[str, Any]
    training: dict[str, Any]
    run_dir: str
    weights_path: str | None = None
    evaluate: bool = True


@dataclass(frozen=True)
class StartEvaluation(Message):
    """Evaluate the saved model at ``model_path`` on the ``split`` of ``data``."""

    type: ClassVar[str] = "start_evaluation"
    run_id: str
    model_path: str
    data: dict[str, Any]
    split: str = "test"  # train | val | test
    batch_size: int = 32


@dataclass(frozen=True)
class StartPrediction(Message):
    """Predict with the model at ``model_path`` on the arrays/CSV at ``inputs_path``
    (or, when it is None, on the test split of ``data``) and write a CSV of predictions.

    ``input_columns``: for a table in ``inputs_path``, its row's line (or row) number and
    its first this many columns, as read, go in front of each prediction, so a person can
    see which row a prediction is for (the app's Predictions tab asks for a few).
    """

    type: ClassVar[str] = "start_prediction"
    run_id: str
    model_path: str
    output_path: str
    inputs_path: str | None = None
    data: dict[str, Any] | None = None
    batch_size: int = 32
    input_columns: int = 0


@dataclass(frozen=True)
class StartExport(Message):
    """Export the model at ``model_path`` to ``format`` at ``output`` and, with ``verify``,
    check it against Keras. Without ``model_path`` the model of the project at
    ``project_path`` is built with the project's weights; the ``python`` and ``notebook``
    formats are written from that project's graph and settings when it is given."""

    type: ClassVar[str] = "start_export"
    run_id: str
    model_path: str | None
    format: str
    output: str
    verify: bool = True
    project_path: str | None = None


@dataclass(frozen=True)
class StartExplanation(Message):
    """Explain the predictions of the model at ``model_path`` (``runtime.explain``) and
    write its arrays, pictures and ``explanation.json`` into ``output_dir``.

    ``method``: gradcam | integrated-gradients | saliency | permutation. The samples are
    ``first`` .. ``first + samples`` (all from ``first`` when ``samples`` <= 0) of the file
    ``inputs_path``, or of ``data``'s test split (permutation: its validation split).
    ``layer``: Grad-CAM's layer (None: the last convolution); ``steps``: integrated
    gradients'; ``target``: the class explained (None: each sample's predicted class);
    ``repeats``: the shuffles per feature of permutation importance.
    """

    type: ClassVar[str] = "start_explanation"
    run_id: str
    model_path: str
    method: str
    output_dir: str
    inputs_path: str | None = None
    data: dict[str, Any] | None = None
    samples: int = 8
    first: int = 0
    layer: str | None = None
    steps: int = 32
    target: int | None = None
    repeats: int = 5


@dataclass(frozen=True)
class StartActivations(Message):
    """The output of the layer (node) ``layer`` on samples ``first`` .. ``first +
    samples`` of ``inputs_path`` or of ``data``'s test split, written as ``.npy`` (and a
    picture) into ``output_dir``. The model: the trained one at ``model_path``, or, with
    ``graph`` (``Graph.to_dict()``), that graph built with the weights in ``weights_path``
    (an ``.npz`` as ``StartTraining`` takes; None: freshly initialised)."""

    type: ClassVar[str] = "start_activations"
    run_id: str
    layer: str
    output_dir: str
    model_path: str | None = None
    graph: dict[str, Any] | None = None
    weights_path: str | None = None
    inputs_path: str | None = None
    data: dict[str, Any] | None = None
    samples: int = 1
    first: int = 0


@dataclass(frozen=True)
class StopRequested(Message):
    """End after the current batch, keeping the model and history so far."""

    type: ClassVar[str] = "stop_requested"


@dataclass(frozen=True)
class PauseRequested(Message):
    type: ClassVar[str] = "pause_requested"


@dataclass(frozen=True)
class ResumeRequested(Message):
    type: ClassVar[str] = "resume_requested"


@dataclass(frozen=True)
class Shutdown(Message):
    """Leave the worker's loop and exit."""

    type: ClassVar[str] = "shutdown"


# ---------------------------------------------------------------- events (from worker)
@dataclass(frozen=True)
class WorkerReady(Message):
    """The worker imported its backend and waits for work."""

    type: ClassVar[str] = "worker_ready"
    backend: str
    device: str
    pid: int
    versions: dict[str, str]
    devices: list[str]
    import_seconds: float


@dataclass(frozen=True)
class Heartbeat(Message):
    """The worker process is alive and running (sent while it is busy, see the top)."""

    type: ClassVar[str] = "heartbeat"


@dataclass(frozen=True)
class RunStarted(Message):
    type: ClassVar[str] = "run_started"
    run_id: str
    backend: str
    device: str
    epochs: int
    steps_per_epoch: int
    train_samples: int
    val_samples: int
    test_samples: int
    data_fingerprint: str
    data_summary: dict[str, Any] = field(default_factory=dict)
    # Data-parallel: the devices on each host and the hosts the (global) batch is split
    # over (graph/distribution.py says it in words); 1 and 1 on one device.
    devices: int = 1
    processes: int = 1


@dataclass(frozen=True)
class BatchEnd(Message):
    """Progress within an epoch; coalesced to about 20 per second at most."""

    type: ClassVar[str] = "batch_end"
    run_id: str
    epoch: int  # 0-based
    batch: int  # 0-based, within the epoch
    step: int  # 0-based, across epochs
    logs: dict[str, float | None]
    samples_per_second: float
    eta_seconds: float | None


@dataclass(frozen=True)
class EpochEnd(Message):
    type: ClassVar[str] = "epoch_end"
    run_id: str
    epoch: int
    logs: dict[str, float | None]  # train and val_ metrics
    learning_rate: float | None
    seconds: float
    samples_per_second: float
    eta_seconds: float | None


@dataclass(frozen=True)
class PhaseStarted(Message):
    """A fine-tuning run's second phase begins at ``epoch`` (0-based; the epoch numbers run
    on from the first phase): ``unfrozen`` says what now learns, at ``learning_rate``."""

    type: ClassVar[str] = "phase_started"
    run_id: str
    phase: int  # 2
    epoch: int
    learning_rate: float
    unfrozen: str
    trainable_params: int


@dataclass(frozen=True)
class Progress(Message):
    """How far a job other than training has come (``total`` is None when unknown);
    at most ~10 per second. Predictions send one per batches predicted."""

    type: ClassVar[str] = "progress"
    run_id: str
    stage: str  # what is being done, e.g. "predicting"
    done: int
    total: int | None = None


@dataclass(frozen=True)
class LogLine(Message):
    type: ClassVar[str] = "log_line"
    run_id: str | None
    level: str  # "info" | "warning" | "error"
    text: str


@dataclass(frozen=True)
class Finished(Message):
    """The run ended with a model: ``status`` is completed, stopped or nan.

    ``diagnosis`` is a sentence when the run learned nothing useful (its loss diverged or
    never improved, or it does no better than guessing), saying the likely cause; it is
    also the end of ``message``. Empty when nothing is wrong.

    ``baselines`` is ``runtime.baseline.Baselines.to_dict()``: the model's test figure
    beside always guessing the most common class (or the mean) and a linear model, and
    whether it beats them; empty without a test split. Read it with
    ``Baselines.from_dict``.
    """

    type: ClassVar[str] = "finished"
    run_id: str
    status: str
    message: str
    history: dict[str, list[float | None]]
    test_metrics: dict[str, float | None]
    results: dict[str, Any]  # confusion matrix, per-class scores, sample predictions
    artifacts: dict[str, str]  # "model" -> path of the trained .keras, ...
    seconds: float
    diagnosis: str = ""
    baselines: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluated(Message):
    type: ClassVar[str] = "evaluated"
    run_id: str
    split: str
    samples: int
    metrics: dict[str, float | None]
    results: dict[str, Any]


@dataclass(frozen=True)
class Predicted(Message):
    type: ClassVar[str] = "predicted"
    run_id: str
    output_path: str
    samples: int
    preview: list[dict[str, Any]]
    split: str = ""  # what was predicted on, e.g. "the test split of digits"


@dataclass(frozen=True)
class Exported(Message):
    """The export is in place. ``report`` is the parity table (empty when not verified):
    rows of ``format``, ``runtime``, ``max_abs_diff``, ``tolerance``, ``verdict``, ``note``."""

    type: ClassVar[str] = "exported"
    run_id: str
    format: str
    output: str
    files: list[str]
    report: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Explained(Message):
    """``explanation``: ``runtime.explain.Explanation.to_dict()`` (read it with
    ``Explanation.from_dict``): what was computed, on what, and the files written."""

    type: ClassVar[str] = "explained"
    run_id: str
    explanation: dict[str, Any]


@dataclass(frozen=True)
class ActivationsReady(Message):
    """``activations``: ``runtime.explain.ActivationStats.to_dict()``."""

    type: ClassVar[str] = "activations_ready"
    run_id: str
    activations: dict[str, Any]


@dataclass(frozen=True)
class Failed(Message):
    """The run could not finish; ``history`` holds what was learned before."""

    type: ClassVar[str] = "failed"
    run_id: str | None
    reason: str
    traceback: str = ""
    history: dict[str, list[float | None]] = field(default_factory=dict)


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.type: cls
    for cls in (
        StartTraining, StartEvaluation, StartPrediction, StartExport, StopRequested,
        PauseRequested, ResumeRequested, Shutdown, WorkerReady, Heartbeat, RunStarted, BatchEnd,
        EpochEnd, PhaseStarted, Progress, LogLine, Finished, Evaluated, Predicted, Exported, Failed,
        StartExplanation, StartActivations, Explained, ActivationsReady,
    )
}


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays as Python values and NaN/inf as ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars (Keras callback remote_monitor)
        return jsonable(value.tolist())
    if hasattr(value, "item"):
        return jsonable(value.item())
    raise ProtocolError(f"{type(value).__name__} cannot be sent to or from a worker.")


def encode(message: Message) -> bytes:
    """One message as UTF-8 JSON with its type tag and the protocol version."""
    body = {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}
    payload = {"v": PROTOCOL_VERSION, "type": message.type, **jsonable(body)}
    return json.dumps(payload, allow_nan=False, separators=(",", ":")).encode("utf-8")


def decode(data: bytes | str) -> Message:
    """Parse and check one message.

    Raises:
        ProtocolError: not JSON, another protocol version, an unknown type or fields, or
            a field whose value is not of its type.
    """
    try:
        payload = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"A worker message is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ProtocolError("A worker message must be a JSON object.")
    version = payload.pop("v", None)
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"The worker speaks protocol version {version!r}, this app {PROTOCOL_VERSION}; "
            "were they started from different kbuilder installations?"
        )
    cls = MESSAGE_TYPES.get(payload.pop("type", None))
    if cls is None:
        raise ProtocolError("A worker message has an unknown type.")
    try:
        message = cls(**payload)
    except TypeError as exc:
        raise ProtocolError(f"A '{cls.type}' message has wrong fields: {exc}") from None
    for name, check, expected in _checks(cls):
        value = getattr(message, name)
        if not check(value):
            shown = repr(value)
            shown = shown if len(shown) <= 40 else shown[:40] + "..."
            raise ProtocolError(f"A '{cls.type}' message has {name} = {shown}; it must be "
                                f"{expected}.")
    return message


# --------------------------------------------------------------- field type checks
# Each message's fields checked against their annotations, so that a wrong value (an
# epoch "three", logs "x") is refused where it arrives, not met later as an
# AttributeError in a view. The checks are built once per class from its type hints:
# only the forms the messages use (str, int, float, bool, None, Any, unions, list[X],
# dict[str, X]). A float field takes an int too (JSON writes 1.0 as 1).
Check = Callable[[Any], bool]
_CHECKS: dict[type, list[tuple[str, Check, str]]] = {}


def _checks(cls: type) -> list[tuple[str, Check, str]]:
    checks = _CHECKS.get(cls)
    if checks is None:
        hints = typing.get_type_hints(cls)
        checks = _CHECKS[cls] = [(f.name, *_check_of(hints[f.name]))
                                 for f in dataclasses.fields(cls) if hints[f.name] is not Any]
    return checks


def _check_of(hint: Any) -> tuple[Check, str]:
    """A predicate for values of type ``hint`` and the words for what it accepts."""
    if hint is Any:
        return (lambda v: True), "anything"
    if hint is type(None):
        return (lambda v: v is None), "null"
    if hint is bool:
        return (lambda v: v is True or v is False), "true or false"
    if hint is int:
        return (lambda v: type(v) is int), "a whole number"
    if hint is float:
        return (lambda v: type(v) is float or type(v) is int), "a number"
    if hint is str:
        return (lambda v: type(v) is str), "a string"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        parts = [_check_of(a) for a in args]
        checks = [c for c, _ in parts]
        return (lambda v: any(c(v) for c in checks)), " or ".join(w for _, w in parts)
    if origin is list:
        item, words = _check_of(args[0])
        return (lambda v: type(v) is list and all(item(x) for x in v)), f"a list of ({words})"
    if origin is dict:
        value, words = _check_of(args[1])
        if args[1] is Any:
            return (lambda v: type(v) is dict), "an object"
        return ((lambda v: type(v) is dict and all(value(x) for x in v.values())),
                f"an object of ({words})")
    raise TypeError(f"no protocol check for the type {hint!r}")  # a new message's field
