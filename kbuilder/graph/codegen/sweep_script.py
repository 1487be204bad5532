"""A sweep as a standalone Optuna script: the search space, ``build_model(hp)`` with the
trial's values where the swept parameters are, and the data preparation of the training
script (``TrainingPlan``: the same ``load_data()``, so the same arrays as a kbuilder run).

The swept layer parameters are written as ``hp["dense.units"]`` in the layers' calls
(``layer_args.params_as_code``); the swept training settings replace the constants
(``hp.get("learning_rate", LEARNING_RATE)``). The pruner gets the validation metric after
every epoch, as in ``kbuilder sweep``.
"""

from __future__ import annotations

import dataclasses
import textwrap
from typing import Any

from kbuilder.graph.codegen.layer_args import params_as_code
from kbuilder.graph.codegen.literals import (
    LINE_LENGTH,
    CodegenError,
    SourceCode,
    docstring,
    literal,
    quote_text,
    string,
)
from kbuilder.graph.codegen.training_plan import _OPTIMIZERS, TrainingPlan

INDENT = "    "


@dataclasses.dataclass
class _Subject:
    """What ``TrainingPlan.of`` reads of a project."""

    graph: Any
    data: Any
    training: Any


def generate_sweep_script(project: Any, spec: Any) -> str:
    """The Optuna script of ``spec`` (a ``graph.sweeps.SweepSpec``) on ``project``.

    Run it as ``python sweep.py [--trials N] [--storage URL] [--study NAME]``.

    Raises:
        CodegenError: the graph has problems, a swept node is inside a block, or the data
            streams from disk (not written for sweeps yet).
    """
    graph = project.graph
    top = {node.id: node for node in graph.nodes}
    code: dict[str, dict[str, str]] = {}
    training_values: dict[str, str] = {}
    for p in spec.params:
        label = p.label(graph)
        if p.node_id is None:
            training_values[p.param] = label
            continue
        node = top.get(p.node_id)
        if node is None:
            raise CodegenError(f"The sweep varies {label}, which is inside a block (or no "
                               "longer in the model); a sweep script can vary only the top "
                               "level's layers.", p.node_id)
        code.setdefault(node.name, {})[p.param] = f"hp[{string(label)}]"
    training = project.training
    for section in ("early_stopping", "reduce_lr_on_plateau"):
        label = training_values.get(f"{section}.patience")
        if label is not None:
            options = {**(getattr(training, section) or {}),
                       "patience": SourceCode(f"hp[{string(label)}]")}
            training = dataclasses.replace(training, **{section: options})
    with params_as_code(code):
        plan = TrainingPlan.of(_Subject(graph, project.data, training))
    if plan.data_section.streams:
        raise CodegenError("The data streams from disk (image files or a large table); a sweep "
                           "script is written for data held in memory only. Run the sweep "
                           "with 'kbuilder sweep' instead.")
    metric = spec.metric
    parts = [
        docstring(
            f"Sweep the hyperparameters of the Keras model {quote_text(graph.name)} with "
            "Optuna, as set up in kbuilder.",
            textwrap.fill(f"Data: {plan.data_description}.", LINE_LENGTH - 11) + "\n"
            f"Objective: {metric}, {spec.objective_direction}d; {spec.sampler} sampler, "
            f"{spec.pruner} pruner.\n"
            "Usage: python THIS_FILE [--trials N] [--storage URL] [--study NAME]"
            + (" [--data PATH]" if plan.data_path_kind else ""),
        ),
        _with_optuna(plan.setup_code()),
        plan.settings_code() + "\n" + "\n".join([
            f"TRIALS = {spec.trials}",
            f"METRIC = {string(metric)}  # the validation metric the sweep optimizes",
            f"DIRECTION = {string(spec.objective_direction)}",
            *([f"GRID = {literal({p.label(graph): p.grid() for p in spec.params})}"]
              if spec.sampler == "grid" else []),
        ]),
        _suggest_definition(spec, graph),
        *[_with_hp(d) for d in plan.model.definitions],
        *plan.data_definitions(),
        plan.callbacks_definition().replace("def make_callbacks(output):",
                                            "def make_callbacks(output, hp):", 1),
        _reporter_definition(),
        _objective_definition(plan, spec, training_values),
        _main_definition(plan, spec),
        'if __name__ == "__main__":\n    main()',
    ]
    head = parts[0] + "\n\n" + parts[1] + "\n\n" + parts[2]
    return "\n\n\n".join([head, *parts[3:]]) + "\n"


def _with_hp(definition: str) -> str:
    if not definition.startswith("def build_model():"):
        return definition
    head, _, rest = definition.partition("\n")
    doc, _, body = rest.partition("\n")
    return "\n".join(["def build_model(hp):", doc,
                      "    # hp: the trial's values, by name (see suggest)", body])


def _with_optuna(setup: str) -> str:
    lines = setup.splitlines()
    return "\n".join([*lines[:lines.index("import keras") + 1], "import optuna",
                      *lines[lines.index("import keras") + 1:]])


def _suggest_definition(spec: Any, graph: Any) -> str:
    lines = ["def suggest(trial):", '    """The trial\'s values of the search space."""',
             "    return {"]
    for p in spec.params:
        label = string(p.label(graph))
        if p.kind == "choice":
            call = f"trial.suggest_categorical({label}, {literal(list(p.choices))})"
        elif p.kind == "int":
            call = f"trial.suggest_int({label}, {int(p.low)}, {int(p.high)}" + (
                ", log=True)" if p.log else ")")
        else:
            call = f"trial.suggest_float({label}, {float(p.low)!r}, {float(p.high)!r}" + (
                ", log=True)" if p.log else ")")
        lines.append(f"        {label}: {call},")
    lines.append("    }")
    return "\n".join(lines)


def _reporter_definition() -> str:
    return '''class ReportToOptuna(keras.callbacks.Callback):
    """Gives the pruner the validation metric after every epoch; stops a pruned trial."""

    def __init__(self, trial):
        super().__init__()
        self.trial = trial
        self.pruned = False

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(METRIC)
        if value is None:
            return
        self.trial.report(float(value), epoch)
        if self.trial.should_prune():
            self.pruned = True
            self.model.stop_training = True'''


def _objective_definition(plan: TrainingPlan, spec: Any, training: dict[str, str]) -> str:
    def setting(name: str, constant: str) -> str:
        return f"hp[{string(training[name])}]" if name in training else constant

    lines = [
        "def objective(trial, data):",
        '    """Train one trial\'s model; its last validation metric."""',
        "    hp = suggest(trial)",
        "    keras.utils.set_random_seed(SEED)",
        "    x_train, y_train, x_val, y_val = data",
    ]
    body = plan.prepare_model_lines()
    body = [line.replace("model = build_model()", "model = build_model(hp)") for line in body]
    compiled = plan.compile_lines()
    rate = setting("learning_rate", "LEARNING_RATE")
    if "optimizer" in training:
        classes = ", ".join(f"{string(k)}: keras.optimizers.{v}"
                            for k, v in _OPTIMIZERS.items()
                            if k in {c for p in spec.params if p.param == "optimizer"
                                     and p.node_id is None for c in p.choices})
        body.append(f"optimizer_class = {{{classes}}}[{setting('optimizer', '')}]")
        compiled[1] = f"    optimizer=optimizer_class(learning_rate={rate}),"
    else:
        compiled[1] = compiled[1].replace("learning_rate=LEARNING_RATE", f"learning_rate={rate}")
    body += compiled
    fit = plan.fit_lines(setting("epochs", "EPOCHS"), '"trial.keras"')
    fit = fit[len(compiled):]  # fit_lines starts with the compile lines
    fit = [line.replace("model.fit(", "history = model.fit(", 1)
           .replace("batch_size=BATCH_SIZE", f"batch_size={setting('batch_size', 'BATCH_SIZE')}")
           .replace('callbacks=make_callbacks("trial.keras"),',
                    'callbacks=[*make_callbacks("trial.keras", hp), reporter],\n    verbose=0,')
           for line in fit]
    body += ["reporter = ReportToOptuna(trial)", *fit,
             "if reporter.pruned:",
             "    raise optuna.TrialPruned()",
             "return history.history[METRIC][-1]"]
    lines += [INDENT + line if line else "" for line in "\n".join(body).splitlines()]
    return "\n".join(lines)


def _main_definition(plan: TrainingPlan, spec: Any) -> str:
    samplers = {"tpe": "optuna.samplers.TPESampler()", "random": "optuna.samplers.RandomSampler()",
                "cmaes": "optuna.samplers.CmaEsSampler()",
                "grid": "optuna.samplers.GridSampler(GRID)"}
    pruners = {"median": "optuna.pruners.MedianPruner(n_warmup_steps=1)",
               "hyperband": "optuna.pruners.HyperbandPruner(min_resource=1, "
                            "max_resource=EPOCHS)",
               "none": "optuna.pruners.NopPruner()"}
    lines = [
        "def main():",
        "    parser = argparse.ArgumentParser(",
        f"        description={string('Sweep the model ' + plan.name + ' with Optuna.')}",
        "    )",
        '    parser.add_argument("--trials", type=int, default=TRIALS, help="default: %(default)s")',
        '    parser.add_argument("--storage", help="an Optuna storage URL (default: in memory)")',
        f'    parser.add_argument("--study", default={string(plan.name)})',
    ]
    if plan.data_path_kind:
        lines.append('    parser.add_argument("--data", default=DATA_PATH, '
                     'help="default: %(default)s")')
    lines.append("    args = parser.parse_args()")
    body = plan.load_statement("args.data").splitlines()
    body += [
        "data = (x_train, y_train, x_val, y_val)",
        "study = optuna.create_study(",
        "    study_name=args.study,",
        "    storage=args.storage,",
        "    load_if_exists=True,",
        "    direction=DIRECTION,",
        f"    sampler={samplers[spec.sampler]},",
        f"    pruner={pruners[spec.pruner]},",
        ")",
        "study.optimize(lambda trial: objective(trial, data), n_trials=args.trials)",
        'print(f"Best: trial {study.best_trial.number}, {METRIC} {study.best_value:.4f}, "',
        '      f"{study.best_params}")',
    ]
    lines += [INDENT + line if line else "" for line in body]
    return "\n".join(lines)
