"""One converter per format family: Keras, SavedModel, ONNX, OpenVINO, LiteRT, and the
Python code and notebook (with the trained run's row encoder).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kbuilder.runtime.export.explanations import layers_in_text, not_expressible
from kbuilder.runtime.export.python_code import copy_weights, module_from_file
from kbuilder.runtime.export.report import MODEL_CODE, TRAINING_SCRIPT, WEIGHTS_FILE, ExportReport
from kbuilder.runtime.export.source import Source, all_layers, on_tensorflow
from kbuilder.runtime.export.staging import quiet
from kbuilder.runtime.export_formats import FORMATS, ExportFormat

Exporter = Callable[[Source, Path, ExportReport], list[Path]]


def _export_keras(source: Source, staged: Path, report: ExportReport) -> list[Path]:
    if source.model_path is not None and source.model_path.suffix.lower() == ".keras":
        shutil.copyfile(source.model_path, staged)  # keeps the optimizer state as trained
    else:
        source.model.save(staged)
    return [staged]


def _export_savedmodel(source: Source, staged: Path, report: ExportReport) -> list[Path]:
    if not on_tensorflow():
        return _export_natively(source, FORMATS["savedmodel"], staged, report)
    shutil.copytree(source.trace().saved_model(), staged)
    return [staged]


def _export_onnx(source: Source, staged: Path, report: ExportReport) -> list[Path]:
    if not on_tensorflow():
        return _export_natively(source, FORMATS["onnx"], staged, report)
    import tf2onnx
    from keras.src.export.tf2onnx_lib import patch_tf2onnx

    trace = source.trace()
    patch_tf2onnx()  # tf2onnx still uses numpy aliases that numpy 2 removed
    with quiet():
        tf2onnx.convert.from_function(trace.function, trace.specs, output_path=str(staged))
    _check_onnx_operators(staged, source.model)
    return [staged]


def _export_openvino(source: Source, staged: Path, report: ExportReport) -> list[Path]:
    if not on_tensorflow():
        return _export_natively(source, FORMATS["openvino"], staged, report)
    import openvino as ov

    # From the SavedModel rather than the traced function: OpenVINO's TensorFlow reader
    # converts the recurrent layers' loops only in the SavedModel's form.
    with quiet():
        converted = ov.convert_model(str(source.trace().saved_model()))
        # Keep float32 weights: compressing them to float16 would cost the parity.
        ov.save_model(converted, str(staged), compress_to_fp16=False)
    return [staged.with_suffix(".bin"), staged]  # the .xml last: it names the .bin


def _export_litert(source: Source, staged: Path, report: ExportReport) -> list[Path]:
    if not on_tensorflow():
        return _export_natively(source, FORMATS["litert"], staged, report)
    # LiteRT's own operators need fixed shapes inside recurrent layers; with a fixed batch
    # size of one they convert without TensorFlow operators (which the plain LiteRT
    # runtime on a phone does not have).
    recurrent = _recurrent_layers(source.model)
    try:
        data = _litert_bytes(source.trace(batch=1 if recurrent else None).saved_model())
    except Exception as exc:
        if recurrent or "element_shape to be static" not in str(exc):
            raise
        recurrent = layers_in_text(str(exc), source.model)[0] or ["of this model"]
        data = _litert_bytes(source.trace(batch=1).saved_model())
    if recurrent:
        names = ", ".join(f"'{n}'" for n in recurrent)
        report.notes.append(
            "The LiteRT model takes one sample at a time (a fixed batch size of 1): LiteRT "
            f"needs fixed shapes inside the recurrent layer{'s' if len(recurrent) > 1 else ''}"
            f" {names}.")
    staged.write_bytes(data)
    return [staged]


def _recurrent_layers(model: Any) -> list[str]:
    import keras

    recurrent = (keras.layers.RNN, keras.layers.Bidirectional)
    return [name for name, layer in all_layers(model) if isinstance(layer, recurrent)]


def _litert_bytes(saved_model: Path) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    # LiteRT's built-in operators only: a file that needs TensorFlow operators ("Flex")
    # does not run in the LiteRT runtime of phones and microcontrollers.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.experimental_enable_resource_variables = True  # lookup tables
    with quiet():
        return converter.convert()


def _export_natively(
    source: Source, spec: ExportFormat, staged: Path, report: ExportReport
) -> list[Path]:
    """Keras's own exporter of this worker's backend (kbuilder uses TensorFlow workers)."""
    import keras

    source.reference(1)  # Keras's exporters want a model that has been called
    with quiet():
        source.model.export(str(staged), format=spec.keras_format, verbose=False)
    report.notes.append(f"Converted by Keras's exporter on the {keras.backend.backend()} "
                        "backend.")
    if spec.name == "openvino":
        return [staged.with_suffix(".bin"), staged]
    return [staged]


def _export_python(source: Source, staged: Path, report: ExportReport) -> list[Path]:
    from kbuilder.files import atomic_write
    from kbuilder.graph import codegen

    project = source.project()
    staged.mkdir()
    code = staged / MODEL_CODE
    atomic_write(code, codegen.generate_model_code(project.graph))
    # Its --predict uses the exported weights and the trained run's row encoder.
    rows = _row_encoding(source, WEIGHTS_FILE)
    atomic_write(staged / TRAINING_SCRIPT, codegen.generate_training_script(project, rows))
    # The weights are saved from the generated model itself, so `load_weights` finds every
    # layer where the generated code puts it.
    from kbuilder.graph.backbone_build import without_pretrained_downloads

    with without_pretrained_downloads():  # the trained weights replace ImageNet's
        generated = module_from_file(code).build_model()
    copy_weights(source.model, generated)
    generated.save_weights(staged / WEIGHTS_FILE)
    report.notes.append(f"Load the trained weights with: model = build_model(); "
                        f"model.load_weights('{WEIGHTS_FILE}')")
    if rows is not None:
        report.notes.append(f"Predict on raw rows of a table file with: python "
                            f"{TRAINING_SCRIPT} --predict rows.csv -o predictions.csv (its "
                            "encode_rows turns the rows into the model's inputs).")
    return [staged]


def _export_notebook(source: Source, staged: Path, report: ExportReport) -> list[Path]:
    from kbuilder.graph import codegen

    codegen.write_notebook(source.project(), staged, _row_encoding(source, None))
    return [staged]


def _row_encoding(source: Source, model_path: str | None) -> Any:
    """The trained model's row encoder as generated code writes it out (``None``: the
    model has none, or there is no trained model; the code learns it from the data)."""
    from kbuilder.graph.codegen import RowEncoding
    from kbuilder.runtime.data.row_encoder import trained_encoder

    encoder = trained_encoder(source.model_path) if source.model_path else None
    if encoder is None:
        return None
    return RowEncoding.from_row_encoder(encoder.to_dict(), model_path)


EXPORTERS: dict[str, Exporter] = {
    "keras": _export_keras,
    "savedmodel": _export_savedmodel,
    "onnx": _export_onnx,
    "openvino": _export_openvino,
    "litert": _export_litert,
    "python": _export_python,
    "notebook": _export_notebook,
}

def _check_onnx_operators(path: Path, model: Any) -> None:
    """Refuse an ONNX file that holds operators no ONNX runtime knows.

    tf2onnx copies TensorFlow operators it cannot translate (e.g. the string ops of
    ``StringLookup``) into the file unchanged; the file is then written "successfully" but
    no runtime can open it.
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    unknown = [(n.op_type, n.name) for n in _onnx_nodes(graph)
               if n.domain in ("", "ai.onnx") and not onnx.defs.has(n.op_type)]
    if unknown:
        ops = sorted({op for op, _ in unknown})
        names, classes = layers_in_text("\n".join(name + "/" for _, name in unknown), model)
        raise not_expressible(FORMATS["onnx"], names, classes, ops)


def _onnx_nodes(graph: Any) -> Iterator[Any]:
    for node in graph.node:
        yield node
        for attribute in node.attribute:  # the bodies of loops and conditionals
            for sub in [attribute.g, *attribute.graphs]:
                if sub is not None:
                    yield from _onnx_nodes(sub)
