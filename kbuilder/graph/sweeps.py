"""Search spaces of a hyperparameter sweep: typed, validated, saved in the project.

A ``SweepParam`` is one swept value: a node's parameter (``node_id`` + ``param``) or a
training setting (``node_id`` ``None``: ``learning_rate``, ``batch_size``, ``epochs``,
``optimizer``, ``early_stopping.patience``, ``reduce_lr_on_plateau.patience``), with an
integer or float range (optionally log-scaled) or a list of choices. A ``SweepSpec`` holds
the parameters and how the sweep runs (sampler, pruner, metric, direction, trials); it is
the ``sweep`` section of the project file (absent in older files: no sweep).

``check_space`` tries every range at its extremes (and every choice) on a copy of the
graph and the training settings, so a range that makes the model invalid is flagged
before the sweep starts. ``SetSweepCommand`` edits the spec with undo;
``apply_values_command`` writes a trial's values into the graph as one undoable command.

Plain Python: no Qt, no keras, no optuna (the engine is ``kbuilder.runtime.sweep``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kbuilder.graph.commands import Command, MacroCommand, SetParamCommand
from kbuilder.graph.errors import GraphError
from kbuilder.graph.model import Graph
from kbuilder.graph.settings import SettingsError, TrainingSettings
from kbuilder.graph.text import found

KINDS = ("int", "float", "choice")
SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("median", "hyperband", "none")
DIRECTIONS = ("minimize", "maximize")
# Training settings a sweep can vary, and the kinds of range each takes.
TRAINING_TARGETS: dict[str, tuple[str, ...]] = {
    "learning_rate": ("float", "choice"),
    "batch_size": ("int", "choice"),
    "epochs": ("int", "choice"),
    "optimizer": ("choice",),
    "early_stopping.patience": ("int", "choice"),
    "reduce_lr_on_plateau.patience": ("int", "choice"),
}
# How many values of a float (or long int) range a grid search tries.
GRID_POINTS = 5


class SweepError(GraphError):
    """A search space or sweep setting that is not valid; the message says how to fix it."""


@dataclass(frozen=True)
class SweepParam:
    """One swept value.

    Args:
        param: the node's parameter (``units``) or the training setting
            (``learning_rate``, ``early_stopping.patience``).
        node_id: the node whose parameter it is; ``None`` for a training setting.
        kind: ``int`` or ``float`` (a range from ``low`` to ``high``, both included) or
            ``choice`` (one of ``choices``).
        log: sample the range on a log scale (``low`` must be above 0).
    """

    param: str
    node_id: str | None = None
    kind: str = "float"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def label(self, graph: Graph | None = None) -> str:
        """How the user (and the Optuna study) names it: ``dense.units``, ``learning_rate``."""
        if self.node_id is None:
            return self.param
        name = self.node_id
        if graph is not None and self.node_id in _node_ids(graph):
            name = _node(graph, self.node_id).name
        return f"{name}.{self.param}"

    def extremes(self) -> list[Any]:
        """The values the pre-flight tries: both ends of a range, every choice."""
        if self.kind == "choice":
            return list(self.choices)
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return [int(self.low), int(self.high)]
        return [float(self.low), float(self.high)]

    def grid(self) -> list[Any]:
        """The values a grid search tries: every choice, every int of a short range,
        else ``GRID_POINTS`` evenly (or log-evenly) spaced points."""
        if self.kind == "choice":
            return list(self.choices)
        low, high = float(self.low or 0), float(self.high or 0)
        if self.kind == "int" and high - low + 1 <= GRID_POINTS * 2:
            return list(range(int(low), int(high) + 1))
        n = GRID_POINTS
        if self.log:
            points = [math.exp(math.log(low) + (math.log(high) - math.log(low)) * i / (n - 1))
                      for i in range(n)]
        else:
            points = [low + (high - low) * i / (n - 1) for i in range(n)]
        if self.kind == "int":
            return sorted({int(round(v)) for v in points})
        return points

    def validate(self) -> None:
        """Check the record on its own (not against a graph); raises ``SweepError``."""
        what = self.param if self.node_id is None else f"parameter {self.param!r}"
        if not isinstance(self.param, str) or not self.param:
            raise SweepError(f"A swept value needs a parameter name; found {found(self.param)}.")
        if self.kind not in KINDS:
            raise SweepError(f"The range of {what} must be one of {', '.join(KINDS)}; "
                             f"found {found(self.kind)}.", self.node_id, self.param)
        if self.node_id is None and self.param not in TRAINING_TARGETS:
            raise SweepError(
                f"{self.param!r} is not a training setting a sweep can vary; use one of "
                f"{', '.join(TRAINING_TARGETS)}, or NODE.PARAM for a layer's parameter.",
                None, self.param)
        if self.node_id is None and self.kind not in TRAINING_TARGETS[self.param]:
            raise SweepError(f"{self.param} takes a range of kind "
                             f"{' or '.join(TRAINING_TARGETS[self.param])}, not {self.kind}.",
                             None, self.param)
        if self.kind == "choice":
            if not self.choices:
                raise SweepError(f"The choices of {what} are empty; give at least one value.",
                                 self.node_id, self.param)
            if len({repr(c) for c in self.choices}) != len(self.choices):
                raise SweepError(f"The choices of {what} repeat a value; give each once.",
                                 self.node_id, self.param)
            for choice in self.choices:
                if choice is not None and not isinstance(choice, bool | int | float | str):
                    raise SweepError(f"A choice of {what} must be a number, text, true/false "
                                     f"or null; found {found(choice)}.",
                                     self.node_id, self.param)
            return
        for end, value in (("low", self.low), ("high", self.high)):
            if (isinstance(value, bool) or not isinstance(value, int | float)
                    or not math.isfinite(value)):
                raise SweepError(f"The {end} end of the range of {what} must be a finite "
                                 f"number; found {found(value)}.", self.node_id, self.param)
            if self.kind == "int" and value != int(value):
                raise SweepError(f"The range of {what} is of whole numbers, but its {end} end "
                                 f"is {value}; give whole numbers or make it a float range.",
                                 self.node_id, self.param)
        assert self.low is not None and self.high is not None
        if not self.low < self.high:
            raise SweepError(f"The range of {what} goes from {self.low} to {self.high}: the "
                             "low end must be below the high end.", self.node_id, self.param)
        if self.log and self.low <= 0:
            raise SweepError(f"The range of {what} is on a log scale, so it must start above "
                             f"0; found {self.low}. Raise the low end or drop ':log'.",
                             self.node_id, self.param)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"param": self.param, "node_id": self.node_id, "kind": self.kind}
        if self.kind == "choice":
            data["choices"] = list(self.choices)
        else:
            data.update(low=self.low, high=self.high, log=self.log)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> SweepParam:
        if not isinstance(data, dict):
            raise SweepError(f"A swept value must be a set of named values; found {found(data)}.")
        known = {"param", "node_id", "kind", "low", "high", "log", "choices"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SweepError(f"A swept value has the unknown field {unknown[0]!r}; known "
                             f"fields are {', '.join(sorted(known))}.")
        choices = data.get("choices", ())
        if not isinstance(choices, list | tuple):
            raise SweepError(f"choices must be a list; found {found(choices)}.")
        log = data.get("log", False)
        if not isinstance(log, bool):
            raise SweepError(f"log must be true or false; found {found(log)}.")
        node_id = data.get("node_id")
        if node_id is not None and not isinstance(node_id, str):
            raise SweepError(f"node_id must be text or null; found {found(node_id)}.")
        param = cls(param=data.get("param"), node_id=node_id, kind=data.get("kind", "float"),
                    low=data.get("low"), high=data.get("high"), log=log,
                    choices=tuple(choices))
        param.validate()
        return param


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: what varies and how the study searches.

    Args:
        params: the swept values (one per node parameter or training setting).
        sampler: ``tpe``, ``random``, ``grid`` or ``cmaes`` (ranges only, needs ``cmaes``).
        pruner: ``median``, ``hyperband`` or ``none``; fed the metric after every epoch.
        metric: the validation metric the objective is (``val_loss``, ``val_accuracy``).
        direction: ``minimize``/``maximize``; ``None`` chooses from the metric's name.
        trials: how many finished trials the study aims at (all workers together).
        storage: where the study lives when not in the SQLite file beside the project:
            an SQLAlchemy URL (``postgresql+psycopg2://...``, ``mysql+pymysql://...``) or
            ``journal:PATH`` (Optuna's journal file); ``None``: the default.
        study: the study's name; ``None``: the project file's stem.
    """

    params: tuple[SweepParam, ...] = ()
    sampler: str = "tpe"
    pruner: str = "median"
    metric: str = "val_loss"
    direction: str | None = None
    trials: int = 20
    extra: dict[str, Any] = field(default_factory=dict)  # room for settings added later
    storage: str | None = None
    study: str | None = None

    @property
    def objective_direction(self) -> str:
        if self.direction is not None:
            return self.direction
        return "minimize" if any(w in self.metric for w in ("loss", "error")) else "maximize"

    def validate(self) -> None:
        for name, value, allowed in (("sampler", self.sampler, SAMPLERS),
                                     ("pruner", self.pruner, PRUNERS)):
            if value not in allowed:
                raise SweepError(f"sweep: {name} must be one of {', '.join(allowed)}; "
                                 f"found {found(value)}.", param=name)
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise SweepError(f"sweep: direction must be minimize or maximize; found "
                             f"{found(self.direction)}.", param="direction")
        if not isinstance(self.metric, str) or not self.metric:
            raise SweepError("sweep: metric must name a metric such as val_loss or "
                             f"val_accuracy; found {found(self.metric)}.", param="metric")
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials < 1:
            raise SweepError(f"sweep: trials must be a whole number >= 1; found "
                             f"{found(self.trials)}.", param="trials")
        for name, value in (("storage", self.storage), ("study", self.study)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise SweepError(f"sweep: {name} must be text (or absent for the default); "
                                 f"found {found(value)}.", param=name)
        seen: set[tuple[str | None, str]] = set()
        for p in self.params:
            p.validate()
            key = (p.node_id, p.param)
            if key in seen:
                raise SweepError(f"sweep: {p.label()} is swept twice; keep one range.",
                                 p.node_id, p.param)
            seen.add(key)

    def with_param(self, param: SweepParam) -> SweepSpec:
        """This spec with ``param`` added, or replacing the range of the same value."""
        kept = [p for p in self.params if (p.node_id, p.param) != (param.node_id, param.param)]
        return replace(self, params=(*kept, param))

    def without(self, node_id: str | None, param: str) -> SweepSpec:
        return replace(self, params=tuple(p for p in self.params
                                          if (p.node_id, p.param) != (node_id, param)))

    def find(self, node_id: str | None, param: str) -> SweepParam | None:
        return next((p for p in self.params if (p.node_id, p.param) == (node_id, param)), None)

    def swept_nodes(self) -> set[str]:
        """Ids of the nodes with a swept parameter (marked on the canvas)."""
        return {p.node_id for p in self.params if p.node_id is not None}

    def to_dict(self) -> dict[str, Any]:
        return {"params": [p.to_dict() for p in self.params], "sampler": self.sampler,
                "pruner": self.pruner, "metric": self.metric, "direction": self.direction,
                "trials": self.trials, "extra": dict(self.extra),
                # Written only when chosen: a default sweep's section reads as before.
                **{k: v for k, v in (("storage", self.storage), ("study", self.study))
                   if v is not None}}

    @classmethod
    def from_dict(cls, data: Any) -> SweepSpec:
        if not isinstance(data, dict):
            raise SweepError(f"sweep: must be a set of named values; found {found(data)}.")
        known = {"params", "sampler", "pruner", "metric", "direction", "trials", "extra",
                 "storage", "study"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SweepError(f"sweep: unknown setting {unknown[0]!r}; known settings are "
                             f"{', '.join(sorted(known))}.", param=unknown[0])
        params = data.get("params", [])
        if not isinstance(params, list):
            raise SweepError(f"sweep: params must be a list; found {found(params)}.",
                             param="params")
        extra = data.get("extra", {})
        if not isinstance(extra, dict):
            raise SweepError("sweep: extra must be a set of named values.", param="extra")
        defaults = cls()
        spec = cls(params=tuple(SweepParam.from_dict(p) for p in params),
                   sampler=data.get("sampler", defaults.sampler),
                   pruner=data.get("pruner", defaults.pruner),
                   metric=data.get("metric", defaults.metric),
                   direction=data.get("direction"),
                   trials=data.get("trials", defaults.trials), extra=dict(extra),
                   storage=data.get("storage"), study=data.get("study"))
        spec.validate()
        return spec


# ------------------------------------------------------------------ against a model
@dataclass(frozen=True)
class SpaceProblem:
    """A swept value that cannot work with this model: which, at what value, and why."""

    label: str
    node_id: str | None
    param: str
    value: Any
    message: str


def check_space(spec: SweepSpec, graph: Graph, training: TrainingSettings) -> list[SpaceProblem]:
    """Every problem of ``spec`` with this graph and these settings, before a sweep starts.

    Each node parameter must exist on its node and every extreme of its range (and every
    choice) must be a value the layer accepts and leave a model whose shapes check; each
    training setting must accept its extremes. Ranges are tried one at a time, the other
    values as they are now.
    """
    from kbuilder.graph.report import check_graph

    problems: list[SpaceProblem] = []
    for p in spec.params:
        label = p.label(graph)
        try:
            p.validate()
        except SweepError as exc:
            problems.append(SpaceProblem(label, p.node_id, p.param, None, exc.message))
            continue
        if p.node_id is not None and p.node_id not in _node_ids(graph):
            problems.append(SpaceProblem(label, p.node_id, p.param, None,
                                         f"The sweep varies {label}, but that node is no longer "
                                         "in the model; remove the range."))
            continue
        for value in p.extremes():
            message = None
            if p.node_id is None:
                try:
                    apply_training(training, {p.param: value})
                except SettingsError as exc:
                    message = exc.message
            else:
                trial = Graph.from_dict(graph.to_dict())
                try:
                    SetParamCommand(_graph_of(trial, p.node_id), p.node_id, p.param,
                                    value).do()
                except GraphError as exc:
                    message = exc.message
                else:
                    report = check_graph(trial)
                    if not report["ok"]:
                        first = report["errors"][0]
                        where = f"{first['node']}: " if first["node"] else ""
                        message = f"the model is not valid: {where}{first['message']}"
            if message:
                problems.append(SpaceProblem(
                    label, p.node_id, p.param, value,
                    f"The range of {label} fails at {value!r}: {message.rstrip('.')}. Narrow "
                    "the range to values that work."))
    return problems


def _node_ids(graph: Graph) -> set[str]:
    return {node.id for _, node in graph.walk()}


def _node(graph: Graph, node_id: str) -> Any:
    return next(node for _, node in graph.walk() if node.id == node_id)


def _graph_of(graph: Graph, node_id: str) -> Graph:
    """The (nested, for a node in a block) graph that holds ``node_id``."""
    return next(g for g, node in graph.walk() if node.id == node_id)


def apply_training(training: TrainingSettings, values: Mapping[str, Any]) -> TrainingSettings:
    """``training`` with the swept training settings set (``early_stopping.patience``
    turns early stopping on with that patience). Raises ``SettingsError``."""
    data = training.to_dict()
    for name, value in values.items():
        if "." in name:
            section, key = name.split(".", 1)
            data[section] = {**(data.get(section) or {}), key: value}
        else:
            data[name] = value
    return TrainingSettings.from_dict(data)


def split_values(spec: SweepSpec, values: Mapping[str, Any], graph: Graph
                 ) -> tuple[dict[tuple[str, str], Any], dict[str, Any]]:
    """A trial's values (by label) as node values ``{(node_id, param): v}`` and training
    values ``{setting: v}``."""
    nodes: dict[tuple[str, str], Any] = {}
    settings: dict[str, Any] = {}
    for p in spec.params:
        label = p.label(graph)
        if label not in values:
            continue
        if p.node_id is None:
            settings[p.param] = values[label]
        else:
            nodes[(p.node_id, p.param)] = values[label]
    return nodes, settings


def apply_to_graph(graph: Graph, node_values: Mapping[tuple[str, str], Any]) -> Graph:
    """A copy of ``graph`` with the node values set (each validated like an edit)."""
    trial = Graph.from_dict(graph.to_dict())
    for (node_id, param), value in node_values.items():
        SetParamCommand(_graph_of(trial, node_id), node_id, param, value).do()
    return trial


def apply_values_command(graph: Graph, node_values: Mapping[tuple[str, str], Any],
                         text: str = "apply the trial's values") -> MacroCommand:
    """One undoable command that sets a trial's node values in ``graph``."""
    return MacroCommand(text, [SetParamCommand(_graph_of(graph, node_id), node_id, param, v)
                               for (node_id, param), v in node_values.items()])


class SetSweepCommand(Command):
    """Replace the project's sweep spec (add, change or remove a range) with undo."""

    def __init__(self, project: Any, spec: SweepSpec | None, text: str = "edit the sweep"):
        if spec is not None:
            spec.validate()
        self.project, self.spec, self.text = project, spec, text

    def do(self) -> None:
        self.old = self.project.sweep
        self.project.sweep = self.spec

    def undo(self) -> None:
        self.project.sweep = self.old


# ---------------------------------------------------------------- command-line text
def parse_range(text: str, graph: Graph, choice: bool = False) -> SweepParam:
    """``dense.units=16..128``, ``learning_rate=1e-4..1e-2:log`` or (``choice``)
    ``dense.activation=relu,tanh`` as a ``SweepParam``; raises ``SweepError``."""
    target, sep, values = text.partition("=")
    target, values = target.strip(), values.strip()
    if not sep or not target or not values:
        form = "NODE.PARAM=a,b,c" if choice else "NODE.PARAM=LOW..HIGH[:log]"
        raise SweepError(f"Expected {form}; found {text!r}.")
    node_id, param = _target(target, graph)
    if choice:
        made = SweepParam(param, node_id, "choice",
                          choices=tuple(_scalar(v.strip()) for v in values.split(",")))
    else:
        log = values.endswith(":log")
        low_text, dots, high_text = values.removesuffix(":log").partition("..")
        if not dots:
            raise SweepError(f"Expected LOW..HIGH in {text!r} (e.g. units=16..128 or "
                             "learning_rate=1e-4..1e-2:log).")
        try:
            low, high = float(low_text), float(high_text)
        except ValueError:
            raise SweepError(f"The ends of the range in {text!r} must be numbers.") from None
        whole = _is_int_text(low_text) and _is_int_text(high_text)
        kind = "int" if whole and _takes_int(graph, node_id, param) else "float"
        if kind == "int":
            made = SweepParam(param, node_id, "int", int(low), int(high), log)
        else:
            made = SweepParam(param, node_id, "float", low, high, log)
    made.validate()
    return made


def _target(target: str, graph: Graph) -> tuple[str | None, str]:
    if target in TRAINING_TARGETS:
        return None, target
    name, dot, param = target.rpartition(".")
    if not dot:
        raise SweepError(f"{target!r} is neither a training setting a sweep can vary "
                         f"({', '.join(TRAINING_TARGETS)}) nor NODE.PARAM.")
    for _, node in graph.walk():
        if node.name == name or node.id == name:
            return node.id, param
    names = sorted(node.name for _, node in graph.walk() if node.kind == "layer")
    raise SweepError(f"The model has no node named {name!r} (in {target!r}); its layers are "
                     f"{', '.join(names[:12])}{'...' if len(names) > 12 else ''}.")


def _takes_int(graph: Graph, node_id: str | None, param: str) -> bool:
    if node_id is None:
        return "int" in TRAINING_TARGETS.get(param, ())
    node = _node(graph, node_id)
    if node.kind != "layer":
        return True
    from kbuilder.graph import catalog

    spec = catalog.get(node.class_name or "")
    kinds = {p.name: p.kind for p in spec.params}
    return kinds.get(param) != "float"


def _is_int_text(text: str) -> bool:
    return text.strip().lstrip("+-").isdigit()


def _scalar(text: str) -> Any:
    """A choice as written on a command line: a number, true/false, null, or text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def merged(spec: SweepSpec, extra: Iterable[SweepParam]) -> SweepSpec:
    """``spec`` with ``extra`` ranges added (a range given again replaces the saved one)."""
    for param in extra:
        spec = spec.with_param(param)
    return spec


def describe(spec: SweepSpec, graph: Graph) -> list[str]:
    """One line per swept value, for the CLI and the exported script's header."""
    return [f"{p.label(graph)}: {range_text(p)}" for p in spec.params]


def labels(spec: SweepSpec, graph: Graph) -> Sequence[str]:
    return [p.label(graph) for p in spec.params]


class _SetTrainingCommand(Command):
    """Replace the project's training settings (part of applying a trial's values)."""

    def __init__(self, project: Any, training: TrainingSettings):
        self.project, self.training = project, training
        self.text = "set the training settings"

    def do(self) -> None:
        self.old = self.project.training
        self.project.training = self.training

    def undo(self) -> None:
        self.project.training = self.old


def apply_trial_command(project: Any, spec: SweepSpec, values: Mapping[str, Any],
                        number: int | None = None) -> MacroCommand:
    """One undoable command that gives the model and the training settings a trial's
    values (``values`` by label, as the study names them).

    Raises:
        GraphError: a value the node no longer accepts (the model changed since).
        SettingsError: a training value the settings refuse.
    """
    node_values, setting_values = split_values(spec, values, project.graph)
    text = f"apply the values of trial {number}" if number is not None else "apply the values"
    children: list[Command] = list(apply_values_command(project.graph, node_values).children)
    if setting_values:
        children.append(_SetTrainingCommand(project, apply_training(project.training,
                                                                    setting_values)))
    return MacroCommand(text, children)


def range_text(param: SweepParam) -> str:
    """``8 .. 128 (log)`` or ``'relu' | 'tanh'``."""
    if param.kind == "choice":
        return " | ".join(repr(c) for c in param.choices)
    return f"{param.low} .. {param.high}{' (log)' if param.log else ''}"


def swept_by_node(spec: SweepSpec | None, graph: Graph) -> dict[str, str]:
    """Node id -> its swept parameters with their ranges (``units 8 .. 128``), to mark
    them on the canvas."""
    marks: dict[str, list[str]] = {}
    for p in (spec.params if spec is not None else ()):
        if p.node_id is not None:
            marks.setdefault(p.node_id, []).append(f"{p.param} {range_text(p)}")
    return {node_id: "; ".join(texts) for node_id, texts in marks.items()}
