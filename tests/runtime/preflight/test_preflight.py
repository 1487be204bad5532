"""Pre-flight checks, their fixes, and fitting templates to data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kbuilder.graph.commands import History, SetParamCommand
from kbuilder.graph.layout import COLUMN_WIDTH, ROW_HEIGHT, apply_layout
from kbuilder.graph.model import Graph
from kbuilder.graph.project import load_project, save_project
from kbuilder.graph.settings import DataSettings, TrainingSettings
from kbuilder.graph.shapes import ShapeInference
from kbuilder.graph.templates import get_template
from kbuilder.runtime.data import Dataset, dataset_from_arrays, load_data
from kbuilder.runtime.preflight import (
    AddGreyToRgb,
    AddNormalization,
    AddRescaling,
    AddResizing,
    ApplyAll,
    FitError,
    SetBatchSize,
    SetLoss,
    SetMetrics,
    SetParam,
    SetValidationSplit,
    apply_fix,
    check,
    errors,
    fit_template_to_data,
    new_project_for_data,
)
from tests.graph.helpers import add_input, add_layer, add_output

_CACHE: dict[str, Dataset] = {}


def data(name: str) -> Dataset:
    if name not in _CACHE:
        _CACHE[name] = load_data(DataSettings(source=name))
    return _CACHE[name]


def fitted(template: str, ds: Dataset) -> tuple[Graph, TrainingSettings]:
    project = new_project_for_data(template, ds.settings or DataSettings(), dataset=ds)
    return project.graph, project.training


def fitted_to_scaled(template: str, ds: Dataset) -> tuple[Graph, TrainingSettings]:
    """A template fitted to a scaled copy of ``ds``: a model without Normalization that
    then meets ``ds``'s unscaled features (fitting to ``ds`` itself adds Normalization)."""
    scaled = dataset_from_arrays(ds.x_train / np.abs(ds.x_train).max(), ds.y_train)
    return fitted(template, scaled)


def codes(findings) -> set[str]:
    return {f.code for f in findings}


def only(findings, code: str):
    matches = [f for f in findings if f.code == code]
    assert len(matches) == 1, [(f.code, f.message) for f in findings]
    return matches[0]


def fix_and_recheck(graph, ds, training, finding):
    """Apply a finding's fix and check again (the fix must make the finding go away)."""
    result = apply_fix(finding.fix, graph, training, ds.settings)
    if result.command is not None:
        History().push(result.command)
    return check(graph, ds, result.training)


def images(n: int = 40, size: int = 8, scale: float = 1.0, classes: int = 4) -> Dataset:
    rng = np.random.default_rng(0)
    x = (rng.random((n, size, size, 1)) * scale).astype(np.float32)
    return dataset_from_arrays(x, np.arange(n) % classes, source="images")


# ================================================================ fitting templates
@pytest.mark.parametrize(
    "template, name",
    [
        ("mlp_classifier", "iris"),
        ("mlp_classifier", "wine"),
        ("mlp_classifier", "breast_cancer"),
        ("mlp_classifier", "diabetes"),
        ("mlp_classifier", "digits"),
        ("cnn_classifier", "digits"),
        ("residual_cnn", "digits"),
    ],
)
def test_fitted_templates_pass_inference_and_preflight(template, name):
    ds = data(name)
    graph, training = fitted(template, ds)
    inference = ShapeInference(graph)
    inference.update()
    assert inference.errors() == []
    findings = check(graph, ds, training, inference)
    assert errors(findings) == [], [f.message for f in findings]
    head = graph.find("predictions")
    if ds.task == "regression":
        assert (head.param("units"), head.param("activation")) == (1, "linear")
        assert training.loss == "mean_squared_error"
    elif ds.num_classes == 2:
        assert (head.param("units"), head.param("activation")) == (1, "sigmoid")
        assert training.loss == "binary_crossentropy"
    else:
        assert (head.param("units"), head.param("activation")) == (ds.num_classes, "softmax")
        assert training.loss == "sparse_categorical_crossentropy"


def test_fit_sets_input_shapes():
    mlp, _ = fitted("mlp_classifier", data("digits"))
    assert mlp.find("features").param("shape") == [64]  # flat: samples are flattened
    cnn, _ = fitted("cnn_classifier", data("digits"))
    assert cnn.find("image").param("shape") == [8, 8, 1]
    wine, _ = fitted("mlp_classifier", data("wine"))
    assert wine.find("features").param("shape") == [13]
    gray = dataset_from_arrays(np.zeros((20, 12, 10)), np.arange(20) % 2)
    graph, _ = fitted("cnn_classifier", gray)
    assert graph.find("image").param("shape") == [12, 10, 1]


def test_fit_text_classifier_to_token_data():
    tokens = np.random.default_rng(0).integers(0, 300, (60, 50)).astype(np.int32)
    binary = dataset_from_arrays(tokens, np.arange(60) % 2)
    graph, training = fitted("text_classifier", binary)
    assert graph.find("tokens").param("shape") == [50]
    assert training.loss == "binary_crossentropy"
    assert errors(check(graph, binary, training)) == []
    many = dataset_from_arrays(np.hstack([tokens, np.full((60, 1), 12_000)]), np.arange(60) % 6)
    graph, training = fitted("text_classifier", many)
    assert graph.find("prediction").param("units") == 6
    assert graph.find("embedding").param("input_dim") == 12_001
    assert errors(check(graph, many, training)) == []


def test_fit_is_one_undoable_edit():
    graph = get_template("cnn_classifier").build()
    before = graph.to_dict()
    fit = fit_template_to_data(graph, data("digits"))
    history = History()
    fit.apply(history)
    assert graph.find("image").param("shape") == [8, 8, 1]
    history.undo()
    assert graph.to_dict() == before
    assert fit.loss == "sparse_categorical_crossentropy" and fit.metrics == ("accuracy",)
    assert fit.notes


@pytest.mark.parametrize(
    "template, name, message",
    [
        ("cnn_classifier", "iris", "expects samples with 3 dimensions in 'image'"),
        ("conv_autoencoder", "digits", "does not end in a Dense layer"),
        ("multi_input", "iris", "has 2 inputs"),
        ("text_classifier", "iris", "takes whole-number ids"),
    ],
)
def test_fit_refuses_what_does_not_fit(template, name, message):
    with pytest.raises(FitError, match=message):
        fit_template_to_data(get_template(template).build(), data(name))


def test_new_project_for_data(tmp_path):
    settings = DataSettings(source="iris", seed=5)
    base = TrainingSettings(epochs=3, batch_size=16)
    project = new_project_for_data("mlp_classifier", settings, base, dataset=data("iris"))
    assert project.data == settings and not project.modified
    training = project.training
    assert (training.epochs, training.batch_size) == (3, 16)
    assert training.loss == "sparse_categorical_crossentropy"
    save_project(project, tmp_path / "p.kbproj")
    loaded = load_project(tmp_path / "p.kbproj")
    assert loaded.data == project.data and loaded.training == project.training
    with pytest.raises(FitError, match="Unknown template 'nope'"):
        new_project_for_data("nope", settings)


# ================================================================= loss and labels
def test_integer_labels_with_categorical_crossentropy():
    ds = data("iris")
    graph, training = fitted("mlp_classifier", ds)
    wrong = dataclasses.replace(training, loss="categorical_crossentropy")
    finding = only(check(graph, ds, wrong), "integer_labels_categorical_loss")
    assert finding.severity == "error"
    assert "class numbers (0..2)" in finding.message
    assert finding.fix == SetLoss("sparse_categorical_crossentropy")
    assert errors(fix_and_recheck(graph, ds, wrong, finding)) == []


def test_one_hot_labels_with_sparse_loss():
    x = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    ds = dataset_from_arrays(x, np.eye(3)[np.arange(60) % 3])
    graph, training = fitted("mlp_classifier", ds)
    assert training.loss == "categorical_crossentropy"
    assert errors(check(graph, ds, training)) == []
    wrong = dataclasses.replace(training, loss="sparse_categorical_crossentropy")
    finding = only(check(graph, ds, wrong), "one_hot_labels_sparse_loss")
    assert finding.fix == SetLoss("categorical_crossentropy")


def test_softmax_units_fewer_than_classes():
    ds = data("digits")
    graph, training = fitted("cnn_classifier", ds)
    head = graph.find("predictions")
    History().push(SetParamCommand(graph, head.id, "units", 5))
    finding = only(check(graph, ds, training), "softmax_units")
    assert finding.severity == "error" and finding.node_id == head.id
    assert "labels go up to 9 (10 classes) but 'predictions' has 5 softmax units" in (
        finding.message)
    assert finding.fix == SetParam(head.id, "units", 10)
    assert errors(fix_and_recheck(graph, ds, training, finding)) == []


def test_softmax_units_more_than_classes_is_a_warning():
    ds = data("iris")
    graph, training = fitted("mlp_classifier", ds)
    History().push(SetParamCommand(graph, graph.find("predictions").id, "units", 7))
    finding = only(check(graph, ds, training), "softmax_units")
    assert finding.severity == "warning" and "7 softmax units" in finding.message


def test_label_range_without_softmax():
    ds = data("iris")
    graph, training = fitted("mlp_classifier", ds)
    head = graph.find("predictions").id
    History().push(SetParamCommand(graph, head, "units", 2))
    History().push(SetParamCommand(graph, head, "activation", "linear"))
    findings = check(graph, ds, training)
    assert only(findings, "label_range").severity == "error"
    assert only(findings, "logits_output").fix.value == "softmax"


def test_sigmoid_with_more_than_two_classes():
    ds = data("iris")
    graph, training = fitted("mlp_classifier", ds)
    head = graph.find("predictions").id
    History().push(SetParamCommand(graph, head, "activation", "sigmoid"))
    warning = only(check(graph, ds, training), "sigmoid_multiclass")
    assert warning.severity == "warning" and warning.fix.value == "softmax"
    binary = dataclasses.replace(training, loss="binary_crossentropy")
    finding = only(check(graph, ds, binary), "binary_loss_multiclass")
    assert isinstance(finding.fix, ApplyAll)
    assert SetLoss("sparse_categorical_crossentropy") in finding.fix.fixes
    assert errors(fix_and_recheck(graph, ds, binary, finding)) == []


def test_binary_loss_with_softmax():
    ds = data("breast_cancer")
    graph, training = fitted("mlp_classifier", ds)
    head = graph.find("predictions").id
    History().push(SetParamCommand(graph, head, "activation", "softmax"))
    finding = only(check(graph, ds, training), "binary_loss_with_softmax")
    assert "always outputs 1" in finding.message and finding.fix.value == "sigmoid"
    History().push(SetParamCommand(graph, head, "units", 2))
    finding = only(check(graph, ds, training), "binary_loss_with_softmax")
    assert finding.fix == SetLoss("sparse_categorical_crossentropy")
    assert errors(fix_and_recheck(graph, ds, training, finding)) == []


def test_one_sigmoid_unit_with_categorical_loss():
    ds = data("breast_cancer")
    graph, training = fitted("mlp_classifier", ds)
    wrong = dataclasses.replace(training, loss="sparse_categorical_crossentropy")
    finding = only(check(graph, ds, wrong), "sigmoid_with_categorical_loss")
    assert finding.fix == SetLoss("binary_crossentropy")


def test_classification_with_regression_loss():
    ds = data("iris")
    graph, training = fitted("mlp_classifier", ds)
    wrong = dataclasses.replace(training, loss="mean_squared_error")
    finding = only(check(graph, ds, wrong), "classification_with_regression_loss")
    assert finding.fix.loss == "sparse_categorical_crossentropy"


def test_regression_target_with_classification_loss_and_metric():
    ds = data("diabetes")
    graph, training = fitted("mlp_classifier", ds)
    wrong = dataclasses.replace(training, loss="sparse_categorical_crossentropy",
                                metrics=("accuracy",))
    findings = check(graph, ds, wrong)
    finding = only(findings, "regression_with_classification_loss")
    assert finding.fix == SetLoss("mean_squared_error", ("mean_absolute_error",))
    assert only(findings, "metric_task").severity == "warning"
    after = fix_and_recheck(graph, ds, wrong, finding)
    assert errors(after) == [] and "metric_task" not in codes(after)
    assert only(after, "large_targets").severity == "warning"  # targets up to ~346


def test_regression_output_activation_and_units():
    ds = data("diabetes")
    graph, training = fitted("mlp_classifier", ds)
    head = graph.find("predictions").id
    History().push(SetParamCommand(graph, head, "activation", "sigmoid"))
    finding = only(check(graph, ds, training), "regression_activation")
    assert "only outputs values from 0 to 1" in finding.message
    assert errors(fix_and_recheck(graph, ds, training, finding)) == []
    History().push(SetParamCommand(graph, head, "units", 3))
    finding = only(check(graph, ds, training), "label_shape")
    assert finding.fix.value == 1


def test_output_without_flatten():
    graph, history = Graph("convs"), History()
    x = add_input(history, graph, [8, 8, 1])
    c = add_layer(history, graph, "Conv2D", x, filters=4, kernel_size=[3, 3])
    d = add_layer(history, graph, "Dense", c, name="predictions", units=10,
                  activation="softmax")
    add_output(history, graph, d)
    finding = only(check(graph, data("digits"), TrainingSettings()), "output_shape")
    assert "Flatten or GlobalAveragePooling" in finding.message


# ============================================================================ inputs
def test_input_shape_mismatch():
    ds = data("digits")
    graph = get_template("cnn_classifier").build()  # made for 28x28 images
    finding = only(check(graph, ds, TrainingSettings()), "input_shape")
    assert finding.message.startswith(
        "Input 'image' takes samples of shape (28, 28, 1) but each sample of the data has "
        "shape (8, 8, 1).")
    assert finding.fix == SetParam(graph.find("image").id, "shape", [8, 8, 1])
    assert "input_shape" not in codes(fix_and_recheck(graph, ds, TrainingSettings(),
                                                      finding))


def deep_rgb_cnn() -> Graph:
    """A model for 96×96 RGB images whose stride-2 convolutions need a large input."""
    graph, history = Graph("g"), History()
    x = add_input(history, graph, [96, 96, 3], name="image")
    for i in range(5):
        x = add_layer(history, graph, "Conv2D", x, name=f"expanded_conv_{i}", filters=4,
                      kernel_size=3, strides=2)
    x = add_layer(history, graph, "GlobalAveragePooling2D", x)
    add_output(history, graph, add_layer(history, graph, "Dense", x, name="predictions",
                                         units=10, activation="softmax"))
    apply_layout(graph)
    return graph


def test_a_model_for_larger_images_gets_a_resizing_adapter():
    ds = data("digits")  # 8×8 grey images
    graph = deep_rgb_cnn()
    image = graph.find("image").id
    finding = only(check(graph, ds, TrainingSettings()), "input_shape")
    # Setting the input to 8×8 would break the convolutions: not offered.
    assert "does not work on (8, 8, 1) samples ('expanded_conv_" in finding.message
    assert "Resizing layer to 96×96" in finding.message and "grey to RGB" in finding.message
    assert finding.fix == ApplyAll((SetParam(image, "shape", [8, 8, 1]),
                                    AddResizing(image, 96, 96), AddGreyToRgb(image)))
    names = {image: "image"}
    assert finding.fix.label(names.get) == (
        "Set shape of 'image' to [8, 8, 1] and Resize to 96×96 after 'image' and "
        "Grey to RGB after 'image'")
    assert finding.fix.to_dict() == {"action": "apply_all", "fixes": [
        {"action": "set_param", "node_id": image, "param": "shape", "value": [8, 8, 1]},
        {"action": "add_resizing", "after": image, "height": 96, "width": 96},
        {"action": "add_grey_to_rgb", "after": image}]}
    before = graph.to_dict()
    history = History()
    history.push(apply_fix(finding.fix, graph, TrainingSettings()).command)
    assert not errors(check(graph, ds, TrainingSettings()))
    grey, resize = graph.find("grey_to_rgb"), graph.find("resizing")
    assert [e.src for e in graph.edges_into(grey.id)] == [image] * 3
    assert graph.successors(grey.id) == [resize.id]
    assert graph.successors(resize.id) == [graph.find("expanded_conv_0").id]
    inference = ShapeInference(graph)
    inference.update()
    assert inference.result(resize.id).outputs[0].shape == (None, 96, 96, 3)
    ys = sorted(n.position[1] for n in graph.nodes)
    assert all(b - a >= ROW_HEIGHT for a, b in zip(ys, ys[1:], strict=False))
    history.undo()
    assert graph.to_dict() == before
    history.redo()  # the same nodes again
    assert graph.find("grey_to_rgb").id == grey.id


def test_the_input_shape_fix_is_kept_where_the_model_works_with_it():
    graph = deep_rgb_cnn()
    # Same channels, and a model that works on 64×64: set the input, no adapter.
    x = np.zeros((20, 64, 64, 3), np.float32)
    ds = dataset_from_arrays(x, np.arange(20) % 10, source="images")
    finding = only(check(graph, ds, TrainingSettings()), "input_shape")
    assert isinstance(finding.fix, SetParam) and finding.fix.value == [64, 64, 3]
    # Not images: no adapter and no dead-end fix, a sentence saying what to do.
    tabular = dataset_from_arrays(np.zeros((20, 5), np.float32), np.arange(20) % 10)
    finding = only(check(graph, tabular, TrainingSettings()), "input_shape")
    assert finding.fix is None and "Use data of shape (96, 96, 3)" in finding.message


def test_input_reshaped_differently_is_a_warning():
    ds = images(size=8)
    graph, history = Graph("g"), History()
    x = add_input(history, graph, [4, 16, 1], name="image")
    f = add_layer(history, graph, "Flatten", x)
    add_output(history, graph, add_layer(history, graph, "Dense", f, name="predictions",
                                         units=4, activation="softmax"))
    assert only(check(graph, ds, TrainingSettings()), "input_reshaped").severity == "warning"


def test_input_dtype_and_token_range():
    ds = data("iris")
    graph = get_template("text_classifier").build()
    History().push(SetParamCommand(graph, graph.find("tokens").id, "shape", [4]))
    finding = only(check(graph, ds, TrainingSettings()), "input_dtype")
    assert "fractional values" in finding.message and finding.fix.value == "float32"
    tokens = dataset_from_arrays(np.full((30, 4), 20_000, np.int32), np.arange(30) % 2)
    finding = only(check(graph, tokens, TrainingSettings()), "token_range")
    assert finding.fix == SetParam(graph.find("embedding").id, "input_dim", 20_001)


def test_inputs_count():
    graph = get_template("multi_input").build()
    finding = only(check(graph, data("iris"), TrainingSettings()), "inputs_count")
    assert "2 inputs ('tabular', 'image')" in finding.message


def test_unscaled_image_inputs_and_the_rescaling_fix():
    ds = images(scale=255.0)
    graph, training = fitted("cnn_classifier", ds)
    finding = only(check(graph, ds, training), "unscaled_inputs")
    image = graph.find("image").id
    assert finding.severity == "warning" and finding.node_id == image
    assert finding.fix == AddRescaling(image, 1 / 255, 0.0)
    assert "Rescaling layer (scale 1/255) right after 'image'" in finding.message
    before = graph.to_dict()
    result = apply_fix(finding.fix, graph, training)
    history = History()
    history.push(result.command)
    rescaling = graph.find("rescaling")
    assert graph.successors(image) == [rescaling.id]
    assert "unscaled_inputs" not in codes(check(graph, ds, training))
    history.undo()
    assert graph.to_dict() == before
    assert "unscaled_inputs" not in codes(check(graph, images(scale=1.0), training))


def test_unscaled_features_name_the_column_and_normalization_fixes_it():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.random(60), rng.random(60) * 5000]).astype(np.float32)
    ds = dataset_from_arrays(x, np.arange(60) % 3, feature_names=["ratio", "income"])
    graph, training = fitted_to_scaled("mlp_classifier", ds)
    finding = only(check(graph, ds, training), "unscaled_features")
    assert finding.column == "income" and "column 'income'" in finding.message
    after = fix_and_recheck(graph, ds, training, finding)
    assert "unscaled_features" not in codes(after)
    assert "not_adaptable" not in codes(after)  # the new layer sits right after the input


def test_an_inserted_layer_pushes_the_nodes_below_aside():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.random(60), rng.random(60) * 5000]).astype(np.float32)
    ds = dataset_from_arrays(x, np.arange(60) % 3, feature_names=["ratio", "income"])
    graph, training = fitted_to_scaled("mlp_classifier", ds)
    before = graph.to_dict()
    finding = only(check(graph, ds, training), "unscaled_features")
    history = History()
    history.push(apply_fix(finding.fix, graph, training).command)
    norm = graph.find("normalization")
    features = graph.find("features")
    assert norm.position == (features.position[0], features.position[1] + ROW_HEIGHT)
    positions = [n.position for n in graph.nodes]
    for i, (ax, ay) in enumerate(positions):  # no two nodes closer than a layout row
        for bx, by in positions[i + 1:]:
            assert abs(ax - bx) >= COLUMN_WIDTH or abs(ay - by) >= ROW_HEIGHT
    history.undo()  # one edit: the nodes go back too
    assert graph.to_dict() == before


def test_nan_in_data_names_the_column():
    x = np.random.default_rng(0).random((40, 3)).astype(np.float32)
    x[5, 2] = np.nan
    ds = dataset_from_arrays(x, np.arange(40) % 2, feature_names=["a", "b", "c"],
                             settings=DataSettings(test_split=0.0, validation_split=0.0))
    graph, training = fitted("mlp_classifier", ds)
    finding = only(check(graph, ds, training), "nan_in_data")
    assert finding.severity == "error" and finding.column == "c"
    x[5, 2] = np.inf
    ds = dataset_from_arrays(x, np.arange(40) % 2,
                             settings=DataSettings(test_split=0.0, validation_split=0.0))
    assert "infinite values" in only(check(graph, ds, training), "nan_in_data").message


def test_not_adaptable_normalization():
    graph, history = Graph("g"), History()
    x = add_input(history, graph, [4])
    d = add_layer(history, graph, "Dense", x, units=8)
    n = add_layer(history, graph, "Normalization", d, name="late_norm")
    add_output(history, graph, add_layer(history, graph, "Dense", n, name="predictions",
                                         units=3, activation="softmax"))
    finding = only(check(graph, data("iris"), TrainingSettings()), "not_adaptable")
    assert finding.node_id == n and "cannot be adapted automatically" in finding.message


def test_model_errors_are_findings():
    graph, history = Graph("g"), History()
    add_input(history, graph, [4])
    add_layer(history, graph, "Dense", name="loose", units=3)
    finding = only(check(graph, data("iris"), TrainingSettings()), "model_error")
    assert finding.node_id == graph.find("loose").id


# ========================================================================== training
def test_no_validation_data():
    ds = load_data(DataSettings(source="iris", validation_split=0.0))
    graph, training = fitted("mlp_classifier", ds)
    finding = only(check(graph, ds, training), "no_validation")
    assert finding.severity == "warning"
    assert finding.fix == SetValidationSplit(0.2)
    result = apply_fix(finding.fix, graph, training, ds.settings)
    assert result.data.validation_split == 0.2
    stopping = dataclasses.replace(training, early_stopping={"monitor": "val_loss"})
    finding = only(check(graph, ds, stopping), "monitor_without_validation")
    assert finding.severity == "error" and "early stopping" in finding.message


def test_batch_larger_than_the_data():
    ds = images(n=20)
    graph, training = fitted("cnn_classifier", ds)
    finding = only(check(graph, ds, dataclasses.replace(training, batch_size=64)),
                   "batch_size")
    assert finding.fix == SetBatchSize(8)  # 12 training samples


def test_findings_are_json_safe():
    import json

    ds = images(scale=255.0, n=20)
    graph = get_template("cnn_classifier").build()
    findings = check(graph, ds, TrainingSettings(loss="categorical_crossentropy",
                                                 batch_size=64))
    assert findings[0].severity == "error"  # errors come first
    json.dumps([f.to_dict() for f in findings])


def test_each_kind_of_fix_says_what_it_does_and_has_a_json_form():
    names = {"n1": "dense", "n2": "image"}.get
    cases = [
        (SetParam("n1", "units", 3), "Set units of 'dense' to 3",
         {"action": "set_param", "node_id": "n1", "param": "units", "value": 3}),
        (SetLoss("huber"), "Use the loss huber", {"action": "set_loss", "loss": "huber"}),
        (SetLoss("mean_squared_error", ("mean_absolute_error",)),
         "Use the loss mean_squared_error", {"action": "set_loss", "loss": "mean_squared_error",
                                             "metrics": ["mean_absolute_error"]}),
        (SetMetrics(("auc", "accuracy")), "Use the metrics auc, accuracy",
         {"action": "set_metrics", "metrics": ["auc", "accuracy"]}),
        (AddRescaling("n2", 1 / 255), "Add Rescaling after 'image'",
         {"action": "add_rescaling", "after": "n2", "scale": 1 / 255, "offset": 0.0}),
        (AddNormalization("n2"), "Add Normalization after 'image'",
         {"action": "add_normalization", "after": "n2"}),
        (SetValidationSplit(0.25), "Set the validation split to 0.25",
         {"action": "set_validation_split", "value": 0.25}),
        (SetBatchSize(16), "Set the batch size to 16", {"action": "set_batch_size", "value": 16}),
    ]
    for fix, label, data in cases:
        assert fix.label(names) == label
        assert fix.to_dict() == data


def test_settings_fixes_change_settings_only_and_a_split_needs_the_data_settings():
    graph = get_template("mlp_classifier").build()
    result = apply_fix(ApplyAll((SetLoss("huber"), SetBatchSize(4))), graph, TrainingSettings())
    assert result.command is None and result.data is None
    assert (result.training.loss, result.training.batch_size) == ("huber", 4)
    with pytest.raises(ValueError, match="needs the data settings"):
        apply_fix(SetValidationSplit(0.2), graph, TrainingSettings())


def test_a_missing_channel_axis_is_not_a_layout_change():
    ds = dataset_from_arrays(np.zeros((30, 8, 8), np.float32), np.arange(30) % 3)
    graph = get_template("cnn_classifier").build()
    History().push(SetParamCommand(graph, graph.find("image").id, "shape", [8, 8, 1]))
    found = codes(check(graph, ds, TrainingSettings()))
    assert "input_shape" not in found and "input_reshaped" not in found


def test_multi_label_needs_binary_crossentropy():
    rng = np.random.default_rng(0)
    y = (rng.random((60, 4)) > 0.5).astype(np.float32)
    y[0] = [1, 1, 0, 0]  # certainly not one-hot
    ds = dataset_from_arrays(rng.normal(size=(60, 5)).astype(np.float32), y)
    assert ds.label_format == "multi_label"
    graph, training = fitted("mlp_classifier", ds)
    assert training.loss == "binary_crossentropy"
    assert graph.find("predictions").param("activation") == "sigmoid"
    assert errors(check(graph, ds, training)) == []
    wrong = dataclasses.replace(training, loss="categorical_crossentropy")
    finding = only(check(graph, ds, wrong), "multi_label_loss")
    assert finding.fix == SetLoss("binary_crossentropy")


# ------------------------------------------------------- several inputs, missing values
def two_input_data(image_name: str = "image") -> Dataset:
    rng = np.random.default_rng(0)
    x = {"tabular": rng.normal(size=(40, 7)).astype("float32"),
         image_name: rng.random((40, 12, 12, 3)).astype("float32")}
    return dataset_from_arrays(x, np.arange(40) % 3)


def test_fitting_a_template_of_two_inputs_sets_each_input_from_its_array():
    ds = two_input_data()
    graph = get_template("multi_input").build()
    fit = fit_template_to_data(graph, ds)
    fit.apply()
    assert graph.find("tabular").param("shape") == [7]
    assert graph.find("image").param("shape") == [12, 12, 3]
    assert graph.find("prediction").param("units") == 3
    assert fit.loss == "sparse_categorical_crossentropy"
    assert not [f for f in check(graph, ds, TrainingSettings(loss=fit.loss))
                if f.severity == "error"]


def test_an_input_without_its_array_is_named_in_fitting_and_in_the_checks():
    ds = two_input_data(image_name="scan")
    graph = get_template("multi_input").build()
    with pytest.raises(FitError, match="has no array for 'image'; its arrays are 'tabular', "
                       "'scan'"):
        fit_template_to_data(graph, ds)
    finding = only(check(graph, ds, TrainingSettings(loss="binary_crossentropy")),
                   "input_without_data")
    assert finding.node_id == graph.find("image").id
    x = {**two_input_data().x_train, "notes": np.zeros((24, 2), "float32")}
    ds = dataset_from_arrays(x, np.arange(24) % 3)
    fit_template_to_data(graph, ds).apply()
    assert "'notes' of the data feeds no Input" in only(
        check(graph, ds, TrainingSettings()), "unused_arrays").message


def fill_then_normalize(ds: Dataset, fill: bool = True) -> Graph:
    h, g = History(), Graph("gaps")
    x = add_input(h, g, [3], name="rows")
    if fill:
        x = add_layer(h, g, "FillMissing", x)
    x = add_layer(h, g, "Normalization", x)
    add_output(h, g, add_layer(h, g, "Dense", x, units=2, activation="softmax"))
    return g


def test_missing_values_filled_in_the_model_are_no_error():
    x = np.random.default_rng(1).normal(loc=500, size=(30, 3)).astype("float32")
    x[::4, 1] = np.nan
    ds = dataset_from_arrays(x, np.arange(30) % 2)
    training = TrainingSettings()
    found = codes(check(fill_then_normalize(ds), ds, training))
    assert "nan_in_data" not in found and "unscaled_features" not in found
    assert "not_adaptable" not in found  # Normalization is adapted on the filled data
    assert "nan_in_data" in codes(check(fill_then_normalize(ds, fill=False), ds, training))
    x[3, 2] = np.inf  # FillMissing fills gaps, not infinities
    ds = dataset_from_arrays(x, np.arange(30) % 2)
    assert "nan_in_data" in codes(check(fill_then_normalize(ds), ds, training))
