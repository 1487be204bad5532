"""What a training script or notebook needs to know, decided once, and its code.

``TrainingPlan`` turns a project's data and training settings into the script's setup,
settings, callbacks, ``main`` and the notebook's cells.
"""

from __future__ import annotations

import functools
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

from kbuilder.graph.codegen import distribution_code
from kbuilder.graph.codegen.data_section import data_section, targets_by_output
from kbuilder.graph.codegen.fine_tuning_code import UNFREEZE_SOURCE
from kbuilder.graph.codegen.literals import (
    INDENT,
    CodegenError,
    import_order,
    literal,
    quote_text,
    string,
)
from kbuilder.graph.codegen.model_code import ModelFunctions, model_functions, wrapped
from kbuilder.graph.codegen.rows import RowEncoding
from kbuilder.graph.freezing import STATISTICS_LAYERS

# Losses that take class labels (so labels are mapped to 0..n-1), and those of them that
# take one-hot rows.
_CLASS_LOSSES = frozenset({
    "sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
    "categorical_hinge", "hinge", "squared_hinge",
})
_ONE_HOT_LOSSES = frozenset({"categorical_crossentropy", "categorical_hinge"})
_OPTIMIZERS = {
    "adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop", "adagrad": "Adagrad",
    "adadelta": "Adadelta", "adamax": "Adamax", "nadam": "Nadam", "ftrl": "Ftrl",
    "lion": "Lion", "lamb": "Lamb",
}
# The layers whose state the training run learns from the training data (``adapt``) when
# the project gives none, as kbuilder's own training does.
_ADAPTED = {"Normalization": "mean", "Discretization": "bin_boundaries",
            "FillMissing": "fill_values"}
# Layers after which the data is still the input's, only cleaner (see runtime.data.adapt).
_PASS_THROUGH = frozenset({"FillMissing"})

@dataclass
class TrainingPlan:
    """What a training script or notebook needs to know, decided once."""

    name: str
    data: Any  # DataSettings
    training: Any  # TrainingSettings
    model: ModelFunctions
    adapted: list[tuple[str, str]] = field(default_factory=list)
    rows: RowEncoding | None = None  # the trained run's row encoder (model encoding)

    @classmethod
    def of(cls, project: Any, rows: RowEncoding | None = None) -> TrainingPlan:
        from kbuilder.graph.settings import DataSettings

        data = project.data or DataSettings()
        training = project.training
        model = model_functions(project.graph)
        tables = {n.name for n in project.graph.input_nodes()
                  if not (rows is not None and rows.image_columns
                          and len(n.param("shape") or []) == 3)}  # images: by column
        if rows is not None and (data.kind != "csv" or data.table_encoding != "model"
                                 or rows.input_names != tables):
            rows = None  # trained for other data or another model: learned from the data
        plan = cls(project.graph.name, data, training, model, rows=rows)
        plan.adapted = plan._layers_to_adapt()
        return plan

    # ------------------------------------------------------------------ facts
    @property
    def kind(self) -> str:
        from kbuilder.graph.settings import SKLEARN_DATASETS

        kind = self.data.kind
        if kind == "builtin":
            return "sklearn" if self.data.location in SKLEARN_DATASETS else "keras"
        return kind

    @property
    def data_path_kind(self) -> bool:
        return self.kind in ("csv", "npz", "images")

    @property
    def class_labels(self) -> bool:
        return self.training.loss in _CLASS_LOSSES

    @property
    def one_hot(self) -> bool:
        return self.training.loss in _ONE_HOT_LOSSES

    @property
    def has_validation(self) -> bool:
        return self.data.validation_split > 0

    @property
    def has_test(self) -> bool:
        return self.kind == "keras" or self.data.test_split > 0

    @property
    def data_description(self) -> str:
        d, name = self.data, self.data.location
        split = (f"{_percent(d.validation_split)} of the samples validate after each epoch "
                 f"and {_percent(d.test_split)} are held out for the final test")
        if self.kind == "sklearn":
            return f"the scikit-learn dataset {quote_text(name)}; {split}"
        if self.kind == "keras":
            return (f"the Keras dataset {quote_text(name)} (downloaded on first use) with "
                    f"its own test set; {_percent(d.validation_split)} of its training "
                    "samples validate after each epoch")
        what = {"csv": "the CSV file", "npz": "the NumPy file", "images": "the image folder"}
        return f"{what[self.kind]} {quote_text(name)}; {split}"

    def _layers_to_adapt(self) -> list[tuple[str, str]]:
        """``(layer name, data expression)`` of the top-level layers that learn state from
        the data of a model input they take straight, or through a ``FillMissing``
        (adapted on the filled data), in the order a run adapts them."""
        graph = self.model.graph
        inputs = graph.input_nodes()
        if len(inputs) > 1 and not self.arrays_by_input:
            return []
        data_of: dict[str, str] = {}  # node id -> the expression of the data it gives
        for i, node in enumerate(inputs):
            data_of[node.id] = f"x_train[{i}]" if len(inputs) > 1 else "x_train"
            if self.image_inputs:  # x_train by Input name, its images still files
                data_of[node.id] = f"x_train[{string(node.name)}]"
        adapted = []
        for node in map(graph.node, graph.topological_order()):  # FillMissing first
            sources = [e.src for e in graph.edges_into(node.id)]
            if len(sources) != 1 or sources[0] not in data_of or node.shared_with:
                continue
            data = data_of[sources[0]]
            state = _ADAPTED.get(node.class_name or "")
            if state is not None and node.params.get(state) is None:
                adapted.append((node.name, data))
            if node.class_name in _PASS_THROUGH:
                data_of[node.id] = f"model.get_layer({string(node.name)})({data})"
        return adapted

    @property
    def arrays_by_input(self) -> bool:
        """Whether the data gives one array per model input (by name): a NumPy file for a
        model of several inputs, or with arrays chosen for the inputs."""
        if self.kind == "csv" and (self.data.table_encoding == "model" or self.image_inputs):
            return True  # a table's raw inputs (or features) and images, by Input name
        return self.kind == "npz" and (len(self.model.graph.input_nodes()) > 1
                                       or bool(self.data.input_arrays)
                                       or bool(self.data.output_arrays))

    # ----------------------------------------------------------------- setup
    def setup_code(self, script: bool = True) -> str:

        section = self.data_section
        stdlib = {"import os", *section.stdlib}
        if script:
            stdlib.add("import argparse")
        if self.training.tensorboard:
            stdlib.add("import importlib.util")
        lines = sorted(stdlib, key=import_order)
        lines += [
            "",
            "# Keras reads the backend when it is first imported, so choose it before that.",
            f'os.environ["KERAS_BACKEND"] = {string(self.training.backend)}',
        ]
        device = self.training.device
        if self.distributed:
            lines += distribution_code.environment_lines(self.training)
        elif device == "cpu":
            lines.append('os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # train on the CPU')
        else:
            lines.append(f'os.environ.setdefault("CUDA_VISIBLE_DEVICES", '
                         f'{string(device.split(":")[1])})  # the GPU chosen in kbuilder')
        third = {"import keras", "from keras import layers", *section.third_party}
        lines += ["", *sorted(third, key=import_order)]
        return "\n".join(lines)

    def settings_code(self) -> str:
        t = self.training
        shape = self.model.input_shapes[0] if self.model.input_shapes else ()
        if self.arrays_by_input:
            names = [n.name for n in self.model.graph.input_nodes()]
            shapes = {n: tuple(s) for n, s in zip(names, self.model.input_shapes, strict=True)}
            shape_line = ("# One sample of each model input (no batch dimension), by Input name.\n"
                          f"INPUT_SHAPES = {literal(shapes)}")
        else:
            shape_line = (f"INPUT_SHAPE = {literal(tuple(shape))}  "
                          "# one sample as the model takes it (no batch dimension)")
        lines = [
            "# Settings from the kbuilder project.",
            f"SEED = {t.seed}  # seed of the weights' initialisation, shuffling and dropout",
            f"EPOCHS = {t.epochs}",
            f"BATCH_SIZE = {t.batch_size}",
            f"LEARNING_RATE = {literal(float(t.learning_rate))}",
            *([
                "# Phase 2 (fine-tuning): unfreeze from this layer on (None: everything),",
                "# train this many more epochs at this lower learning rate.",
                f"FINE_TUNE_FROM = {literal(t.fine_tune_from)}",
                f"FINE_TUNE_EPOCHS = {t.fine_tune_epochs}",
                f"FINE_TUNE_LEARNING_RATE = {literal(float(t.phase_two_learning_rate))}",
                f"STATISTICS_LAYERS = {literal(sorted(STATISTICS_LAYERS))}",
            ] if t.fine_tunes else []),
            shape_line,
            *self.data_section.settings,
        ]
        return "\n".join(lines)

    # ------------------------------------------------------------------ data
    @functools.cached_property
    def data_section(self) -> Any:

        inputs_count = len(self.model.graph.input_nodes())
        in_model = self.data.table_encoding == "model"  # several inputs, all from columns
        if self.kind == "csv" and not in_model and not self.image_inputs and (
                inputs_count > 1 or any(role == "image_path" for _, role in self.data.roles)):
            # Not yet: the flat features beside the image-path column's streaming reader.
            raise CodegenError(
                "kbuilder cannot write a training script yet for a table that feeds "
                f"{'several inputs' if inputs_count > 1 else 'an image Input'} other than "
                "one Input of its columns beside image Inputs (each taking a column of image "
                "paths). Give the model that shape (e.g. the multi_input template), or train "
                "it in kbuilder and export the trained model.")
        inputs = ([n.name for n in self.model.graph.input_nodes()] if self.arrays_by_input
                  else None)
        outputs = ([n.name for n in self.model.graph.output_nodes()] if self.arrays_by_input
                   else None)
        return data_section(self.data, self.kind, self.training.loss if self.one_hot else None,
                            input_names=inputs, rows=self.rows, output_names=outputs,
                            image_inputs=self.image_inputs or None,
                            table_input=self.table_input)

    @property
    def image_inputs(self) -> dict[str, str | None]:
        """A table for a model with image Inputs (its other Inputs the table's: in "flat"
        encoding one Input of features): each image Input and the column of image paths
        chosen for it (None: paired by shape, as kbuilder does)."""
        if self.kind != "csv":
            return {}
        inputs = self.model.graph.input_nodes()
        images = [n for n in inputs if len(n.param("shape") or []) == 3]
        if not images or (self.data.table_encoding != "model" and (
                len(inputs) - len(images) != 1 or self.table_input is None)):
            return {}
        chosen = dict(self.data.input_arrays)
        return {n.name: chosen.get(n.name) for n in images}

    @property
    def table_input(self) -> str | None:
        """In "flat" encoding beside image Inputs: the Input of the table's encoded columns
        (the one chosen for "features", else the only flat Input)."""
        chosen = {array: node for node, array in self.data.input_arrays}
        flat = [n.name for n in self.model.graph.input_nodes()
                if len(n.param("shape") or []) == 1]
        if "features" in chosen:
            return chosen["features"]
        return flat[0] if len(flat) == 1 else None

    @property
    def targets_by_output(self) -> bool:
        """Whether the data gives one target per model output (a NumPy file)."""

        return self.arrays_by_input and targets_by_output(
            self.data, [n.name for n in self.model.graph.output_nodes()])

    def count(self, split: str) -> str:
        """The expression of the number of samples of a split (``train``, ``val``, ``test``)."""
        # Targets per output are a list (one array each): count the first input's rows.
        return f"len(x_{split}[0])" if self.targets_by_output else f"len(y_{split})"

    def data_definitions(self) -> list[str]:
        return list(self.data_section.definitions)

    @property
    def distributed(self) -> bool:
        """A data-parallel run: the script distributes too (``distribution_code``)."""
        return self.training.distribute != "none"

    def distribution_definitions(self) -> list[str]:
        return [distribution_code.DEFINITIONS] if self.distributed else []

    def load_statement(self, path_expr: str = "DATA_PATH", share: bool = False) -> str:
        """The data loaded and fitted to the model; ``share``: a data-parallel script's
        host keeps its share of the training and validation rows."""
        call = f"load_data({path_expr})" if self.data_path_kind else "load_data()"
        fit = "fit_to_inputs" if self.arrays_by_input else "fit_to_input"
        lines = [f"(x_train, y_train), (x_val, y_val), (x_test, y_test) = {call}"]
        if not self.data_section.streams:
            lines.append(f"x_train, x_val, x_test = ({fit}(x) for x in "
                         "(x_train, x_val, x_test))")
        if self.targets_by_output:
            lines.append("y_train, y_val, y_test = (fit_targets(y) for y in "
                         "(y_train, y_val, y_test))")
        if self.one_hot and self.targets_by_output:
            lines += ["for i, targets in enumerate(zip(y_train, y_val, y_test, strict=True)):",
                      '    if targets[0].dtype.kind in "iu":  # class ids; values stay values',
                      "        y_train[i], y_val[i], y_test[i] = one_hot(*targets)"]
        elif self.one_hot:
            lines.append("y_train, y_val, y_test = one_hot(y_train, y_val, y_test)")
        if share:
            lines += distribution_code.share_lines()
        if self.data_section.streams:  # image files: read batch by batch while training
            batches = self.data_section.batches
            lines += [
                f"train_batches = {batches}(x_train, y_train, shuffle=True)",
                f"val_batches = {batches}(x_val, y_val) if len(y_val) else None",
                f"test_batches = {batches}(x_test, y_test)",
            ]
        lines.append('print("Samples for training, validation and test:", '
                     f"({self.count('train')}, {self.count('val')}, {self.count('test')}))")
        return "\n".join(lines)

    def mismatch_lines(self) -> list[str]:
        """A clear stop when the data cannot feed the model as it is."""
        graph = self.model.graph
        inputs = [n.name for n in graph.input_nodes()]
        if len(inputs) > 1 and not self.arrays_by_input:
            message = (
                f"This model takes {len(inputs)} inputs ({', '.join(inputs)}), but the data "
                "gives one array per sample. Edit load_data() to give one array per input, "
                "then remove this stop."
            )
        elif self.model.output_count > 1 and not self.targets_by_output:
            message = (
                f"This model has {self.model.output_count} outputs, but the data gives one "
                "target per sample. Edit load_data() to give one target array per output, "
                "then remove this stop."
            )
        else:
            return []
        chunks = textwrap.wrap(message, 72)
        literals = [string(c + " ") for c in chunks[:-1]] + [string(chunks[-1])]
        return ["raise SystemExit(", *(INDENT + lit for lit in literals), ")"]

    # ----------------------------------------------------------------- model
    def prepare_model_lines(self) -> list[str]:
        lines = []
        if self.training.mixed_precision:
            policy = "mixed_float16" if self.training.device.startswith("gpu") else "mixed_bfloat16"
            lines.append(f'keras.config.set_dtype_policy("{policy}")  # mixed precision')
        lines.append("model = build_model()")
        if self.adapted:
            lines.append("# Layers without given statistics learn them from the training data.")
            # Streamed images: the first 2048 training images, as kbuilder adapts them.
            streamed = "fit_to_input(read_images(x_train[:2048]))"
            folder = self.data_section.streams and self.data_section.batches == "ImageBatches"
            lines += [f"model.get_layer({string(n)}).adapt({streamed if folder else data})"
                      for n, data in self.adapted]
        return lines

    def compile_lines(self, learning_rate: str = "LEARNING_RATE") -> list[str]:
        t = self.training
        optimizer = _OPTIMIZERS[t.optimizer]
        return [
            "model.compile(",
            f"    optimizer=keras.optimizers.{optimizer}(learning_rate={learning_rate}),",
            f"    loss={string(t.loss)},",
            f"    metrics={literal(self.metrics)},",
            ")",
        ]

    @property
    def metrics(self) -> list[Any]:
        """The metrics as compile takes them: one list per output when there are several
        (as kbuilder's training gives them)."""
        if self.model.output_count > 1:
            return [list(self.training.metrics) for _ in range(self.model.output_count)]
        return list(self.training.metrics)

    def callbacks_definition(self) -> str:
        t = self.training
        monitor = "val_loss" if self.has_validation else "loss"
        calls = ["keras.callbacks.TerminateOnNaN()"]
        if t.early_stopping is not None:
            options = {"monitor": monitor, "patience": 3, "restore_best_weights": True,
                       **t.early_stopping}
            calls.append(_callback("EarlyStopping", [], options))
        if t.reduce_lr_on_plateau is not None:
            options = {"monitor": monitor, "factor": 0.5, "patience": 2,
                       **t.reduce_lr_on_plateau}
            calls.append(_callback("ReduceLROnPlateau", [], options))
        if t.checkpoint is not None:
            options = {"monitor": monitor, "save_best_only": True, **t.checkpoint}
            calls.append(_callback("ModelCheckpoint", ["checkpoint_path(output)"], options))
        body = ["def make_callbacks(output):",
                '    """The callbacks set in kbuilder."""',
                "    callbacks = ["]
        for call in calls:
            lines = wrapped("", call, depth=2)
            body += [INDENT * 2 + line for line in lines[:-1]] + [INDENT * 2 + lines[-1] + ","]
        body.append("    ]")
        if t.tensorboard:
            body += [
                '    if importlib.util.find_spec("tensorboard") is None:',
                '        print("TensorBoard is not installed (pip install tensorboard), so '
                'no logs are written.")',
                "    else:",
                "        callbacks.append(keras.callbacks.TensorBoard(log_dir=logs_folder(output)))",
            ]
        body.append("    return callbacks")
        parts = [UNFREEZE_SOURCE] if t.fine_tunes else []
        if t.checkpoint is not None:
            parts.append(
                "def checkpoint_path(output):\n"
                '    """Where the checkpoint callback keeps the best model: next to the '
                'output."""\n'
                '    return os.path.splitext(output)[0] + ".best.keras"'
            )
        if t.tensorboard:
            parts.append(
                "def logs_folder(output):\n"
                '    """Where TensorBoard logs go: `logs` next to the output (run '
                '`tensorboard --logdir` on it)."""\n'
                '    return os.path.join(os.path.dirname(output) or ".", "logs")'
            )
        parts.append("\n".join(body))
        return "\n\n\n".join(parts)

    def fit_lines(self, epochs: str, output: str) -> list[str]:
        lines = self.compile_lines()
        if self.data_section.streams:
            data = ["    train_batches,", "    validation_data=val_batches,"]
        else:
            data = ["    x_train,", "    y_train,",
                    f"    validation_data=(x_val, y_val) if {self.count('val')} else None,"]
        batch = [] if self.data_section.streams else ["    batch_size=BATCH_SIZE,"]
        lines += [
            "model.fit(",
            *data,
            f"    epochs={epochs},",
            *batch,
            f"    callbacks=make_callbacks({output}),",
            ")",
        ]
        if self.training.fine_tunes:  # as kbuilder's worker does (runtime/fine_tuning.py)
            lines += [
                "# Phase 2: unfreeze, compile again (trainable takes effect at compile time)",
                "# at the lower learning rate, and go on; the epochs are numbered on.",
                "unfreeze(model, FINE_TUNE_FROM)",
                *self.compile_lines("FINE_TUNE_LEARNING_RATE"),
                "model.fit(",
                *data,
                f"    initial_epoch={epochs},",
                f"    epochs={epochs} + FINE_TUNE_EPOCHS,",
                *batch,
                f"    callbacks=make_callbacks({output}),",
                ")",
            ]
        return lines

    def evaluate_lines(self, output: str) -> list[str]:
        lines = []
        checkpoint = self.training.checkpoint
        if checkpoint is not None and checkpoint.get("save_best_only", True):
            lines += [
                "# Go on with the best epoch's weights (the checkpoint), not the last epoch's.",
                f"if os.path.exists(checkpoint_path({output})):",
                f"    model.load_weights(checkpoint_path({output}))",
            ]
        if self.has_test:
            data = ("test_batches," if self.data_section.streams
                    else "x_test, y_test, batch_size=BATCH_SIZE,")
            lines += [
                f"if {self.count('test')}:",
                f"    results = model.evaluate({data} return_dict=True, verbose=0)",
            ]
            lines += [
                "    for name, value in results.items():",
                '        print(f"test {name}: {value:.4f}")',
            ]
        lines += [
            f"model.save({output})",
            f'print(f"Saved the trained model to {{{output}}}")',
        ]
        return lines

    # ---------------------------------------------------------------- script
    def main_definition(self) -> str:
        lines = [
            "def main():",
            "    parser = argparse.ArgumentParser(",
            f"        description={string('Train the model ' + self.name + ' as set up in kbuilder.')}",
            "    )",
            '    parser.add_argument("--epochs", type=int, default=EPOCHS, '
            'help="default: %(default)s")',
        ]
        predicts = self.data_section.predicts
        if predicts:  # -o names the predictions too
            lines += [
                "    parser.add_argument(",
                '        "-o", "--output",',
                '        help="where to save the trained model (default: model.keras), or with '
                '--predict "',
                '        "the predictions (default: RAW.predictions.csv)",',
                "    )",
            ]
        else:
            lines.append('    parser.add_argument("--output", default="model.keras", '
                         'help="where to save the trained model")')
        if self.data_path_kind:
            lines.append('    parser.add_argument("--data", default=DATA_PATH, '
                         'help="default: %(default)s")')
        if predicts:
            lines += [
                '    parser.add_argument("--predict", metavar="RAW.csv",',
                '                        help="predict on raw rows of a table file with a '
                'trained model instead of training")',
                '    parser.add_argument("--model", default=TRAINED_MODEL,',
                '                        help="the trained model --predict uses (default: '
                '%(default)s)")',
            ]
        lines.append("    args = parser.parse_args()")
        if predicts:
            lines += [INDENT + line for line in self.predict_lines()]
            lines.append('    args.output = args.output or "model.keras"')
        lines.append("")
        if self.distributed:
            lines += [INDENT + line for line in distribution_code.main_lines()]
        lines.append("    keras.utils.set_random_seed(SEED)")
        body = [
            *self.mismatch_lines(),
            *self.load_statement("args.data", share=self.distributed).splitlines(),
            *self.prepare_model_lines(),
            "model.summary()",
            *self.fit_lines("args.epochs", "args.output"),
            *(distribution_code.after_fit_lines() if self.distributed else []),
            *self.evaluate_lines("args.output"),
        ]
        lines += [INDENT + line if line else "" for line in body]
        return "\n".join(lines)

    def predict_lines(self) -> list[str]:
        """``main``'s ``--predict``: the trained model's predictions on raw rows."""
        return [
            "if args.predict:",
            "    if not (NUMERIC_COLUMNS or VOCABULARIES)"
            f"{' or not IMAGE_COLUMNS' if self.image_inputs else ''}:"
            "  # no trained run's encoder: the data's",
            "        load_data(args.data)",
            "    predictions = predict_csv(load_trained(args.model), args.predict)",
            '    output = args.output or os.path.splitext(args.predict)[0] + ".predictions.csv"',
            "    save_csv(predictions, output)",
            '    print(f"Wrote {len(predictions)} predictions to {output}")',
            "    return",
        ]

    # -------------------------------------------------------------- notebook
    def notebook_intro(self) -> str:
        t = self.training
        return "\n".join([
            f"# Training {_markdown_text(self.name)}",
            "",
            "Written out by kbuilder. Run the cells in order to build, train, evaluate and "
            "save the model as set up in the project.",
            "",
            f"- **Data:** {_markdown_text(self.data_description)}.",
            f"- **Training:** {t.optimizer} (learning rate {t.learning_rate:g}), loss "
            f"`{t.loss}`, metrics {', '.join(f'`{m}`' for m in t.metrics) or 'none'}; "
            f"{t.epochs} epoch{'s' if t.epochs != 1 else ''} of batches of {t.batch_size}"
            + (f", then {t.fine_tune_epochs} of fine-tuning from "
               f"`{t.fine_tune_from or 'every layer'}` at learning rate "
               f"{t.phase_two_learning_rate:g}" if t.fine_tunes else "") + "; "
            f"seed {t.seed}.",
            f"- **Backend:** {t.backend} on {t.device}. Keras reads the backend when it is "
            "first imported: restart the kernel after changing it.",
        ])

    def notebook_cells(self) -> list[tuple[str, str]]:
        """``(cell type, source)`` pairs of the notebook."""
        data_code = "\n\n\n".join(self.data_definitions()) + "\n\n\n" + "\n".join(
            [*self.mismatch_lines(), self.load_statement(share=self.distributed)]
        )
        seed = "\n\nkeras.utils.set_random_seed(SEED)"
        # Data-parallel: the hosts joined and the distribution set before the seed, the
        # data and the model, as in the script's main().
        distribution = [
            ("markdown", "## Data-parallel\n\n`distribute()` puts a copy of the model on "
             "every device and splits each batch between them (`keras.distribution`); "
             "`BATCH_SIZE` is the global batch."),
            ("code", "\n\n\n".join(self.distribution_definitions()) + "\n\n\n"
             + "\n".join(distribution_code.main_lines()) + seed),
        ] if self.distributed else []
        fit = self.fit_lines("EPOCHS", "OUTPUT")
        if self.distributed:
            fit += distribution_code.after_fit_lines()
        return [
            ("markdown", self.notebook_intro()),
            ("code", self.setup_code(script=False) + "\n\n" + self.settings_code()
             + '\nOUTPUT = "model.keras"  # where the trained model is saved'
             + ("" if self.distributed else seed)),
            *distribution,
            ("markdown", "## Data\n\n" + _markdown_text(_sentence(self.data_description))),
            ("code", data_code),
            ("markdown", "## Model\n\n`build_model()` builds the model layer by layer with "
             "Keras's Functional API."),
            ("code", "\n\n\n".join(self.model.definitions) + "\n\n\n"
             + "\n".join([*self.prepare_model_lines(), "model.summary()"])),
            ("markdown", "## Training"),
            ("code", self.callbacks_definition() + "\n\n\n" + "\n".join(fit)),
            ("markdown", "## Evaluation and saving"),
            ("code", "\n".join(self.evaluate_lines("OUTPUT"))),
            *(self.predict_cells() if self.data_section.predicts else []),
        ]

    def predict_cells(self) -> list[tuple[str, str]]:
        return [
            ("markdown", "## Predictions on raw rows\n\n`predict_csv` reads a table file laid "
             "out like the training data (the target column may be left out) and gives the "
             "model's prediction for each row; `encode_rows` is the one step outside the "
             "model, from raw rows to its inputs (category codes)."),
            ("code", "\n".join([
                "RAW_ROWS = DATA_PATH  # a table file of rows to predict on",
                "predictions = predict_csv(model, RAW_ROWS)",
                'save_csv(predictions, "predictions.csv")',
                "predictions.head()",
            ])),
        ]


def _callback(name: str, args: list[str], options: dict[str, Any], extra: str = "") -> str:
    items = list(args) + [
        f"{k}={literal(v)}" for k, v in options.items() if str(k).isidentifier()
    ]
    if extra:
        items.append(extra)
    return f"keras.callbacks.{name}({', '.join(items)})"


def _percent(fraction: float) -> str:
    return f"{fraction * 100:g} %"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _markdown_text(text: str) -> str:
    """Text that Markdown shows as it is (one line, markup characters escaped)."""
    text = " ".join(text.split())
    return re.sub(r"([\\`*_\[\]|<>])", r"\\\1", text)
