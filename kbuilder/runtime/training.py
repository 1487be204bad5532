"""One training run inside a worker: data, model, compile, fit, evaluate, save.

Runs in the worker process only (it imports keras). ``prepare_run`` does everything up to
``fit`` so a failure there is reported before any progress; ``Run.finish`` evaluates on the
test split and writes the artifacts.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.files import atomic_write
from kbuilder.graph.tf_probe import no_tensorflow_probe
from kbuilder.runtime import protocol as p
from kbuilder.runtime.baseline import Baselines, compare_with_baselines, largest_unscaled
from kbuilder.runtime.diagnosis import RunFacts, diagnose


def prepare_run(request: p.StartTraining, backend: str, device: str) -> Run:
    import keras

    from kbuilder.graph.build import build_model
    from kbuilder.graph.model import Graph
    from kbuilder.graph.settings import DataSettings, TrainingSettings
    from kbuilder.runtime.data import adapt_layers, fit_targets, fit_to_model, load_data
    from kbuilder.runtime.data.adapt import table_statistics
    from kbuilder.runtime.data.dataset import values_sample
    from kbuilder.runtime.distribution import apply as apply_distribution
    from kbuilder.runtime.distribution import shard

    data_settings = DataSettings.from_dict(request.data)
    settings = TrainingSettings.from_dict(request.training)
    # On JAX and torch, Keras would import TensorFlow (seconds, after Train was pressed)
    # only to seed it; such a run never draws random numbers from it.
    with no_tensorflow_probe():
        keras.utils.set_random_seed(settings.seed)
    if settings.mixed_precision:
        # float16 needs a GPU to pay off; bfloat16 is the CPU's reduced precision.
        policy = "mixed_float16" if device.startswith("gpu") else "mixed_bfloat16"
        keras.config.set_dtype_policy(policy)
    else:
        keras.config.set_dtype_policy("float32")
    # Before the model is built: a data-parallel run creates its variables replicated.
    placement = apply_distribution(settings, device)
    dataset = load_data(data_settings)
    graph = Graph.from_dict(request.graph)
    weights = _load_weights(request.weights_path)
    model = build_model(graph, weights)
    x_train = fit_to_model(dataset.x_train, model)
    x_val = fit_to_model(dataset.x_val, model) if _rows(dataset.x_val) else None
    x_test = fit_to_model(dataset.x_test, model) if _rows(dataset.x_test) else None
    outputs = [n.name for n in graph.output_nodes()]
    targets = {split: fit_targets(y, outputs) if y is not None else None
               for split, y in (("train", dataset.y_train), ("val", dataset.y_val),
                                ("test", dataset.y_test))}
    # A streamed table's FillMissing and Normalization get the statistics of all its
    # training rows (computed as it was read), not of a sample.
    adapt_layers(model, values_sample(x_train, ADAPT_SAMPLES),
                 table_statistics(model, x_train))
    compile_model(model, settings, settings.learning_rate)
    # Data-parallel: this host's rows, their number a multiple of its devices (the
    # baselines and the scale check still look at all of them).
    all_train = x_train
    x_train, targets["train"], left_out = shard(x_train, targets["train"], placement)
    x_val, targets["val"], _ = shard(x_val, targets["val"], placement)
    run = Run(request, backend, device, settings, dataset, model, x_train, x_val, x_test,
              placement)
    run.y_train, run.y_val, run.y_test = targets["train"], targets["val"], targets["test"]
    run.left_out, run.all_train = left_out, all_train
    return run


def compile_model(model: Any, settings: Any, learning_rate: float) -> None:
    """Compile with the run's optimizer at ``learning_rate``, loss and metrics (again for
    a fine-tuning run's second phase: a change of ``trainable`` needs a new compile)."""
    import keras

    model.compile(
        optimizer=keras.optimizers.get(
            {"class_name": settings.optimizer, "config": {"learning_rate": learning_rate}}
        ),
        loss=settings.loss,
        # Several outputs: each is measured with the metrics (Keras wants one list each).
        metrics=(list(settings.metrics) if len(model.outputs) == 1
                 else [list(settings.metrics) for _ in model.outputs]),
    )


# A streamed source (an image folder) adapts Normalization layers on its first samples.
ADAPT_SAMPLES = 2048


def _rows(x: Any) -> int:
    from kbuilder.runtime.data import num_rows

    return 0 if x is None else num_rows(x)


def _load_weights(path: str | None) -> dict[str, list[np.ndarray]] | None:
    if not path:
        return None
    weights: dict[str, list[np.ndarray]] = {}
    with np.load(path, allow_pickle=False) as archive:
        for key in sorted(archive.files, key=lambda k: (k.rsplit("/", 1)[0], int(k.rsplit("/", 1)[1]))):
            node_id, _ = key.rsplit("/", 1)
            weights.setdefault(node_id, []).append(archive[key])
    return weights


class Run:
    """The prepared pieces of one run."""

    def __init__(self, request, backend, device, settings, dataset, model, x_train, x_val,
                 x_test, placement=None):
        self.request, self.backend, self.device = request, backend, device
        self.settings, self.dataset, self.model = settings, dataset, model
        self.x_train, self.x_val, self.x_test = x_train, x_val, x_test
        # The targets as model.fit takes them (a list by output for several outputs).
        self.y_train, self.y_val, self.y_test = dataset.y_train, dataset.y_val, dataset.y_test
        self.run_dir = Path(request.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        from kbuilder.runtime.distribution import local_batch

        # ``placement``: where a data-parallel run computes (None: one device). Each host
        # feeds its share of the global batch per step.
        self.placement = placement
        self.left_out = 0  # training rows left out so that the devices divide them
        self.all_train = x_train  # every training row (x_train: this host's share)
        self.batch_size = local_batch(settings.batch_size, placement)
        self.steps_per_epoch = max(1, -(-_rows(x_train) // self.batch_size))
        self.total_steps = self.steps_per_epoch * settings.total_epochs
        self.started = time.perf_counter()

    def started_message(self) -> p.RunStarted:
        d = self.dataset
        return p.RunStarted(
            run_id=self.request.run_id, backend=self.backend, device=self.device,
            epochs=self.settings.total_epochs, steps_per_epoch=self.steps_per_epoch,
            train_samples=_rows(self.x_train), val_samples=_rows(d.x_val),
            test_samples=_rows(d.x_test), data_fingerprint=d.fingerprint,
            data_summary=p.jsonable(d.summary()),
            devices=self.placement.local_devices if self.placement else 1,
            processes=self.placement.processes if self.placement else 1,
        )

    def callbacks(self) -> list[Any]:
        import keras

        s = self.settings
        # No TerminateOnNaN: its batch hook would make Keras wait for every step's
        # results; the progress callback stops on NaN itself.
        callbacks: list[Any] = []
        has_val = self.x_val is not None
        default_monitor = "val_loss" if has_val else "loss"
        if s.early_stopping is not None:
            options = {"monitor": default_monitor, "patience": 3,
                       "restore_best_weights": True, **s.early_stopping}
            callbacks.append(keras.callbacks.EarlyStopping(**options))
        if s.reduce_lr_on_plateau is not None:
            options = {"monitor": default_monitor, "factor": 0.5, "patience": 2,
                       **s.reduce_lr_on_plateau}
            callbacks.append(keras.callbacks.ReduceLROnPlateau(**options))
        if s.checkpoint is not None:
            options = {"monitor": default_monitor, "save_best_only": True, **s.checkpoint}
            callbacks.append(keras.callbacks.ModelCheckpoint(
                str(self.run_dir / "checkpoint.keras"), **options))
        if s.tensorboard:
            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(self.run_dir / "logs")))
        return callbacks

    def fit(self, reporter: Any) -> None:
        """``model.fit`` with the reporter's callback list (see ``ProgressReporter``); a
        fine-tuning run then unfreezes, recompiles and fits its second phase, its epochs
        numbered on from the first (``runtime/fine_tuning.py``)."""
        s = self.settings
        self._fit_epochs(reporter, 0, s.epochs)
        if not s.fine_tunes or reporter.stopped or reporter.nan:
            return
        from kbuilder.runtime.fine_tuning import trainable_count, unfreeze

        unfrozen = unfreeze(self.model, s.fine_tune_from)
        compile_model(self.model, s, s.phase_two_learning_rate)
        reporter.phase_started(2, s.epochs, s.phase_two_learning_rate, unfrozen,
                               trainable_count(self.model))
        self._fit_epochs(reporter, s.epochs, s.total_epochs)

    def _fit_epochs(self, reporter: Any, first: int, end: int) -> None:
        from kbuilder.runtime.data.feed import keras_feed, keras_validation

        callbacks = reporter.callback_list(self.model, self.callbacks(), end)
        # Data-parallel: a streamed table's batches divide over this host's devices.
        multiple = self.placement.local_devices if self.placement is not None else 1
        self.model.fit(
            **keras_feed(self.x_train, self.y_train, self.batch_size, shuffle=True,
                         seed=self.settings.seed + first, multiple=multiple),
            validation_data=keras_validation(self.x_val, self.y_val, self.batch_size,
                                             multiple),
            initial_epoch=first,
            epochs=end,
            verbose=0,
            callbacks=callbacks,
        )

    def finish(self, status: str, message: str, history: dict,
               first_loss: float | None = None) -> p.Finished:
        """Save the model, evaluate on the test split and describe the results.

        A run that learned nothing useful gets a ``diagnosis`` (``runtime.diagnosis``),
        also added to ``message``; ``first_loss`` is the loss of the first batch.
        """
        if self.placement is not None:
            import keras

            # The test split is judged on one device per host with the trained weights
            # (replicated): its rows need not divide over the devices.
            keras.distribution.set_distribution(None)
        artifacts = {"model": str(self.run_dir / "model.keras")}
        with no_tensorflow_probe():  # saving asks about TensorFlow types: not on JAX/torch
            self.model.save(artifacts["model"])
        if self.dataset.row_encoder is not None:  # raw rows -> inputs, beside the model
            from kbuilder.runtime.data.row_encoder import FILE_NAME

            artifacts["row_encoder"] = str(self.dataset.row_encoder.save(
                self.run_dir / FILE_NAME))
        if (self.run_dir / "checkpoint.keras").exists():
            artifacts["checkpoint"] = str(self.run_dir / "checkpoint.keras")
        if (self.run_dir / "logs").exists():
            artifacts["tensorboard"] = str(self.run_dir / "logs")
        from kbuilder.runtime.data.feed import keras_feed, skipped_note

        test_metrics: dict[str, Any] = {}
        results: dict[str, Any] = {}
        baselines = None
        if self.request.evaluate and self.x_test is not None and status != "nan":
            test_metrics = p.jsonable(self.model.evaluate(
                **keras_feed(self.x_test, self.y_test, self.batch_size), verbose=0,
                return_dict=True,
            ))
            results = self.results()
            baselines = self.baselines(results)
        skipped = skipped_note(self.x_train, self.x_val, self.x_test)
        if skipped:  # unreadable images left out (skip_bad_images)
            message = f"{message} {skipped}"
            results["skipped_images"] = getattr(self.x_train, "skipped", [])
        diagnosis = ""
        if status != "nan":  # a NaN loss is explained already
            diagnosis = diagnose(self.facts(history, test_metrics, first_loss, baselines))
        message = " ".join(t for t in (message, baselines.summary() if baselines else "",
                                       diagnosis) if t)
        elapsed = round(time.perf_counter() - self.started, 3)
        finished = p.Finished(
            run_id=self.request.run_id, status=status, message=message, history=history,
            test_metrics=test_metrics, results=p.jsonable(results), artifacts=artifacts,
            seconds=elapsed, diagnosis=diagnosis,
            baselines=baselines.to_dict() if baselines else {},
        )
        atomic_write(self.run_dir / "result.json", json.dumps(
            {"status": status, "history": history, "test_metrics": test_metrics}, indent=1))
        return finished

    def baselines(self, results: dict[str, Any]) -> Baselines | None:
        """The test figure beside a majority/mean and a linear baseline (``runtime.baseline``)."""
        if isinstance(self.dataset.y_train, dict):
            return None  # a target per output: no one figure to compare
        # Category codes of a table (row_encoder) are not tokens: the linear model gets them.
        token_ids = self.dataset.row_encoder is None and any(
            str(t.dtype).startswith(("int", "uint")) for t in self.model.inputs)
        return compare_with_baselines(self.dataset, self.all_train, self.x_test, results,
                                      token_ids=token_ids)

    def facts(self, history: dict, test_metrics: dict, first_loss: float | None,
              baselines: Baselines | None = None) -> RunFacts:
        """What ``diagnose`` needs: the loss curve, the learning rate, the accuracy of the
        test split (else validation, else training) beside its majority share, the
        baselines, and whether unscaled inputs reach a model without a scaling layer."""
        d = self.dataset
        accuracy, split, y = test_metrics.get("accuracy"), "test", d.y_test
        for key, name, labels in (("val_accuracy", "validation", d.y_val),
                                  ("accuracy", "training", d.y_train)):
            if accuracy is None and history.get(key):
                accuracy, split, y = history[key][-1], name, labels
        majority = None
        if (d.task == "classification" and y is not None and _rows(y)
                and d.label_format in ("integer", "one_hot")):
            majority = float(np.bincount(d.labels_as_ids(y)).max() / _rows(y))
        return RunFacts(
            epoch_losses=list(history.get("loss", [])), first_loss=first_loss,
            learning_rate=self.settings.learning_rate, optimizer=self.settings.optimizer,
            accuracy=accuracy, accuracy_split=split, majority_share=majority,
            baselines=baselines, epochs_planned=self.settings.total_epochs,
            early_stopping=self.settings.early_stopping is not None,
            unscaled=self.unscaled(),
            scaling_layer="Rescaling" if len(self.model.inputs[0].shape) >= 4 else "Normalization",
        )

    def unscaled(self) -> str:
        """Where the inputs are far from unit scale, when no layer of the model scales them."""
        from kbuilder.runtime.preflight import SCALING_LAYERS, UNSCALED_LIMIT

        if any(type(layer).__name__ in SCALING_LAYERS for layer in self.model.layers):
            return ""
        if self.dataset.row_encoder is None and any(
                str(t.dtype).startswith(("int", "uint")) for t in self.model.inputs):
            return ""  # ids: their size is no scale (a table's category codes are small)
        return largest_unscaled(self.all_train, self.dataset.feature_names, UNSCALED_LIMIT)

    def results(self) -> dict[str, Any]:
        from kbuilder.runtime.data.dataset import first_target
        from kbuilder.runtime.data.feed import keras_feed, readable, readable_part
        from kbuilder.runtime.evaluation import describe_results

        outputs = self.model.predict(**keras_feed(self.x_test, None, self.batch_size),
                                     verbose=0)
        keep = readable(self.x_test)  # unreadable images skipped: not judged
        return describe_results(self.dataset, first_target(self.dataset.y_test)[keep],
                                outputs[keep] if not isinstance(outputs, list | tuple)
                                else [o[keep] for o in outputs],
                                x=readable_part(self.dataset.x_test, keep))
