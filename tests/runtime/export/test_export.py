"""Exports to every format, each checked against Keras, from models trained on every backend.

Every template and two imported architectures (a small MobileNetV2 and a Sequential
regressor) are trained for one step on JAX, four of them also on TensorFlow and torch (one
subprocess per backend, in parallel), and saved as ``.keras``. Each file is exported to every format with
the parity check on: the converted formats by two TensorFlow workers, ``keras``/``python``/
``notebook`` by a JAX worker, all three running at once. Workers keep a model's trace between
its formats, so each file is traced once per worker.

The exports are then opened again in fresh processes that import only their runtime
(onnxruntime, OpenVINO, TensorFlow, the LiteRT interpreter) and where ``kbuilder`` cannot be
imported, and compared with the model run by Keras's numpy backend in this process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import subprocess
import sys
import sysconfig
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from kbuilder import cli
from kbuilder.graph.templates import TEMPLATES
from kbuilder.runtime import export, export_formats
from kbuilder.runtime import protocol as p
from kbuilder.runtime.client import TrainingRun, Worker
from kbuilder.runtime.export import explanations, parity
from kbuilder.runtime.export import source as export_source

ROOT = Path(__file__).resolve().parents[3]
BACKENDS = ("jax", "tensorflow", "torch")
IMPORTED = ("mobilenet_v2", "regressor")
MODELS = (*TEMPLATES, *IMPORTED)
# Every model trained on JAX; on TensorFlow and torch, the models whose saved weights differ
# most between backends (convolutions, an LSTM, depthwise convolutions and batch
# normalisation, two inputs). The exports all run in TensorFlow workers whatever trained the
# model, so the whole matrix would repeat the same conversions (it cost CI 6.5 minutes).
OTHER_BACKEND_MODELS = ("cnn_classifier", "sequence_classifier", "multi_input",
                        "mobilenet_v2")


def models_for(backend: str) -> tuple[str, ...]:
    return MODELS if backend == "jax" else OTHER_BACKEND_MODELS


CASES = [(model, backend) for backend in BACKENDS for model in models_for(backend)]
CONVERTED = ("savedmodel", "onnx", "openvino", "litert")
KERAS_RUN = ("keras", "python", "notebook")
OUTPUTS = {
    "keras": "model.keras", "savedmodel": "savedmodel", "onnx": "model.onnx",
    "openvino": "model.xml", "litert": "model.tflite", "python": "python",
    "notebook": "model.ipynb",
}


# ====================================================================== the models
def make_model(name: str):
    """A template's model, or one of the imported architectures (built with Keras)."""
    import keras

    if name == "mobilenet_v2":
        return keras.applications.MobileNetV2(alpha=0.35, input_shape=(32, 32, 3),
                                              weights=None, classes=10)
    if name == "regressor":
        return keras.Sequential([
            keras.Input((16,), name="measurements"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(1, bias_initializer=keras.initializers.Constant(300.0)),
        ], name="regressor")
    from kbuilder.graph.build import build_model

    return build_model(TEMPLATES[name].build())


def train_one_step(backend: str, folder: str) -> None:
    """Run in a subprocess with ``KERAS_BACKEND=backend``: one ``fit`` step per model."""
    import keras

    assert keras.backend.backend() == backend
    for name in models_for(backend):
        keras.utils.set_random_seed(0)
        model = make_model(name)
        x = export.sample_inputs(model, batch=8, seed=1)
        rng = np.random.default_rng(2)
        y = [rng.random((8, *o.shape[1:])).astype("float32") for o in model.outputs]
        # TensorFlow: eager is 5x faster than tracing for one step of these small models.
        model.compile(optimizer="sgd", loss="mse", run_eagerly=backend == "tensorflow")
        model.fit(x[0] if len(x) == 1 else x, y[0] if len(y) == 1 else y, batch_size=8,
                  epochs=1, verbose=0)
        model.save(Path(folder) / f"{name}-{backend}.keras")


# One step's numbers do not matter; XLA's optimisations would triple JAX's compile time.
FAST_XLA = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


@pytest.fixture(scope="module")
def training(tmp_path_factory) -> tuple[Path, dict[str, subprocess.Popen]]:
    """The three trainings, started in parallel (exports begin as each one ends)."""
    folder = tmp_path_factory.mktemp("trained")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu",
           "TF_CPP_MIN_LOG_LEVEL": "2", "XLA_FLAGS": FAST_XLA}
    processes = {
        backend: subprocess.Popen(
            [sys.executable, "-c", "import sys; from tests.runtime.export.test_export import "
             "train_one_step; train_one_step(*sys.argv[1:])", backend, str(folder)],
            cwd=ROOT, env={**env, "KERAS_BACKEND": backend},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for backend in BACKENDS
    }
    yield folder, processes
    for process in processes.values():
        if process.poll() is None:
            process.kill()
            process.communicate()


def trained_on(training, backend: str) -> dict[str, Path]:
    """The models trained on ``backend``, once its training has ended."""
    folder, processes = training
    log, _ = processes[backend].communicate(timeout=600)
    assert processes[backend].returncode == 0, f"training on {backend} failed:\n{log[-3000:]}"
    return {m: folder / f"{m}-{backend}.keras" for m in models_for(backend)}


@pytest.fixture(scope="module")
def trained(training) -> dict[tuple[str, str], Path]:
    return {(m, b): path for b in BACKENDS for m, path in trained_on(training, b).items()}


# ====================================================================== the exports
def serve(worker: Worker, todo: queue.Queue, results: dict) -> None:
    """Run groups of ``(key, request)`` jobs from ``todo`` on ``worker`` until ``None``."""
    while (group := todo.get()) is not None:
        for key, request in group:
            results[key] = TrainingRun(worker, request).wait()


def run_jobs(workers: list[Worker], groups: list[list[tuple]]) -> dict:
    """Run groups of jobs, a group at a time per worker, the workers in parallel."""
    todo: queue.Queue = queue.Queue()
    for group in [*groups, *[None] * len(workers)]:
        todo.put(group)
    results: dict = {}
    threads = [threading.Thread(target=serve, args=(w, todo, results)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def export_request(source: Path, folder: Path, format: str) -> p.StartExport:
    return p.StartExport(f"{source.stem}-{format}", str(source), format,
                         str(folder / OUTPUTS[format]), verify=True)


@pytest.fixture(scope="module")
def workers():
    started = [Worker("tensorflow"), Worker("tensorflow")]
    yield started
    for worker in started:
        worker.shutdown()


# SavedModel first: OpenVINO and LiteRT convert from the SavedModel it writes, and every
# format after the first reuses the worker's loaded model and Keras reference.
ORDER = ("savedmodel", "openvino", "litert", "onnx", "keras", "python", "notebook")


@pytest.fixture(scope="module")
def exported(training, workers, tmp_path_factory) -> dict[tuple[str, str, str], p.Message]:
    root = tmp_path_factory.mktemp("exports")
    todo: queue.Queue = queue.Queue()
    results: dict = {}
    threads = [threading.Thread(target=serve, args=(w, todo, results)) for w in workers]
    for thread in threads:
        thread.start()
    try:
        for backend in ("torch", "tensorflow", "jax"):  # the quickest trainings first
            for model, source in trained_on(training, backend).items():
                folder = root / f"{model}-{backend}"
                folder.mkdir()
                todo.put([((model, backend, f), export_request(source, folder, f))
                          for f in ORDER])
    finally:
        for _ in threads:
            todo.put(None)
        for thread in threads:
            thread.join()
    return results


@pytest.mark.parametrize("format", list(OUTPUTS))
@pytest.mark.parametrize("model, backend", CASES)
def test_export_matches_keras(exported, model, backend, format):
    result = exported[(model, backend, format)]
    assert isinstance(result, p.Exported), getattr(result, "reason", result)
    (row,) = result.report
    assert row["verdict"] == "pass", row
    assert row["format"] == format and row["max_abs_diff"] <= row["tolerance"]
    expected = 1e-4 if format in CONVERTED else 1e-6
    assert expected <= row["tolerance"] <= expected * 1e3  # scaled by the output size only
    assert result.files and all(Path(f).is_file() for f in result.files)
    folder = Path(result.output).parent
    assert not [f for f in folder.iterdir() if f.name.startswith(".")], "staging left behind"


def test_export_writes_the_expected_files(exported):
    files = {f: exported[("cnn_classifier", "torch", f)].files for f in OUTPUTS}
    assert [Path(f).suffix for f in files["openvino"]] == [".bin", ".xml"]
    assert {Path(f).name for f in files["python"]} == {"model.py", "train.py",
                                                       "model.weights.h5"}
    assert any(Path(f).name == "saved_model.pb" for f in files["savedmodel"])
    code = Path(files["python"][0]).with_name("model.py").read_text()
    assert "def build_model():" in code and "load_model" not in code
    notes = exported[("sequence_classifier", "jax", "litert")].notes
    assert any("fixed batch size of 1" in n and "'lstm'" in n for n in notes)


# ============================================================ opened without kbuilder
RUNTIMES = {
    "onnx": """
        import onnxruntime

        def run(path, feed):
            session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
            return session.run(None, {i.name: feed[i.name] for i in session.get_inputs()})
        """,
    "openvino": """
        import openvino

        core = openvino.Core()

        def run(path, feed):
            compiled = core.compile_model(path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
            result = compiled({i.get_any_name(): feed[i.get_any_name()]
                               for i in compiled.inputs})
            return [result[o] for o in compiled.outputs]
        """,
    "savedmodel": """
        import tensorflow as tf

        def run(path, feed):
            serve = tf.saved_model.load(path).signatures["serving_default"]
            outputs = serve(**{k: tf.constant(v) for k, v in feed.items()})
            return [outputs[f"output_{i}"].numpy() for i in range(len(outputs))]
        """,
    "litert": """
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            import warnings

            import tensorflow as tf

            warnings.simplefilter("ignore")
            Interpreter = tf.lite.Interpreter

        def run(path, feed):
            runner = Interpreter(model_path=path).get_signature_runner()
            fixed = any(d["shape_signature"][0] != -1
                        for d in runner.get_input_details().values())
            batches = ([{k: v[i:i + 1] for k, v in feed.items()}
                        for i in range(len(next(iter(feed.values()))))] if fixed else [feed])
            parts = [runner(**batch) for batch in batches]
            return [np.concatenate([part[f"output_{i}"] for part in parts])
                    for i in range(len(parts[0]))]
        """,
}
LOADER = """
import importlib.util
import json
import sys

sys.path[:0] = json.loads(sys.argv[3])  # the environment's packages, without its .pth hooks
import numpy as np

assert importlib.util.find_spec("kbuilder") is None, "kbuilder can be imported"
{runtime}
outputs = {{}}
for key, path, inputs in json.loads(sys.argv[1]):
    with np.load(inputs) as arrays:
        feed = dict(arrays)
    for i, value in enumerate(run(path, feed)):
        outputs[f"{{key}}/{{i}}"] = np.asarray(value)
np.savez(sys.argv[2], **outputs)
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}})))
"""


@pytest.fixture(scope="module")
def references(trained, tmp_path_factory) -> dict[tuple[str, str], tuple[Path, list]]:
    """Per trained model: its parity inputs (as .npz, by input name) and the outputs of
    Keras's numpy backend (this process), independent of every exporter."""
    import keras

    folder = tmp_path_factory.mktemp("inputs")
    found = {}
    for key, path in trained.items():
        model = keras.saving.load_model(path, compile=False)
        inputs = export.sample_inputs(model)
        names = export_source.tensorflow_names([t.name for t in model.inputs])
        npz = folder / f"{path.stem}.npz"
        np.savez(npz, **dict(zip(names, inputs, strict=True)))
        outputs = model(inputs[0] if len(inputs) == 1 else inputs, training=False)
        found[key] = npz, [keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(outputs)]
    return found


@pytest.mark.parametrize("format", list(RUNTIMES))
def test_exports_open_in_their_runtime_without_kbuilder(exported, references, format,
                                                        tmp_path):
    jobs = [[f"{model}-{backend}", exported[(model, backend, format)].output,
             str(references[(model, backend)][0])] for model, backend in references]
    script = LOADER.format(runtime=textwrap.dedent(RUNTIMES[format]))
    packages = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_BACKEND")}
    done = subprocess.run(
        # -S: no site hooks, so the editable install of kbuilder is not on the path either.
        [sys.executable, "-S", "-c", script, json.dumps(jobs), str(tmp_path / "out.npz"),
         json.dumps(packages)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    assert "kbuilder" not in modules
    if format in ("onnx", "openvino"):
        assert "keras" not in modules and "tensorflow" not in modules
    with np.load(tmp_path / "out.npz") as outputs:
        for (model, backend), (_, want) in references.items():
            limit = export.tolerance(export.FORMATS[format], want)
            for i, expected in enumerate(want):
                got = outputs[f"{model}-{backend}/{i}"]
                assert got.shape == expected.shape, (model, backend)
                assert np.max(np.abs(got - expected)) <= limit, (model, backend)


# ====================================================================== failures
def _save_text_model(path: Path) -> None:
    import keras

    text = keras.Input((1,), dtype="string", name="review")
    ids = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=6,
                                         vocabulary=["good", "bad", "film"])(text)
    x = keras.layers.Embedding(22, 4)(ids)
    x = keras.layers.GlobalAveragePooling1D()(x)
    keras.Model(text, keras.layers.Dense(1, activation="sigmoid")(x)).save(path)


def test_a_layer_the_format_cannot_express_is_named_and_nothing_is_left(workers, tmp_path):
    model = tmp_path / "reviews.keras"
    _save_text_model(model)
    out = tmp_path / "out"
    out.mkdir()
    previous = out / "reviews.tflite"
    previous.write_bytes(b"an earlier export")
    results = run_jobs(workers[:1], [[
        ("litert", p.StartExport("t1", str(model), "litert", str(previous))),
        ("onnx", p.StartExport("t2", str(model), "onnx", str(out / "reviews.onnx"))),
    ]])
    for format, title in (("litert", "LiteRT"), ("onnx", "ONNX")):
        failed = results[format]
        assert isinstance(failed, p.Failed), failed
        assert f"{title} cannot express the layer 'text_vectorization' (TextVectorization)" \
            in failed.reason
        assert "token ids" in failed.reason
    assert sorted(f.name for f in out.iterdir()) == ["reviews.tflite"]
    assert previous.read_bytes() == b"an earlier export"  # an earlier export is kept


@pytest.mark.skipif(importlib.util.find_spec("jax2onnx") is not None,
                    reason="jax2onnx is installed")
def test_a_missing_package_is_named(tmp_path):
    import keras

    model = tmp_path / "m.keras"
    keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(2)]).save(model)
    # A JAX worker exports ONNX with Keras's own exporter, which needs jax2onnx; kbuilder
    # itself exports from TensorFlow (`export_backend`), so users meet this only through
    # the Python API.
    worker = Worker("jax")
    try:
        (failed,) = run_jobs([worker], [[
            ("onnx", p.StartExport("t3", str(model), "onnx", str(tmp_path / "m.onnx")))]]
        ).values()
    finally:
        worker.shutdown()
    assert isinstance(failed, p.Failed)
    assert "needs the Python package 'jax2onnx'" in failed.reason
    assert "pip install jax2onnx" in failed.reason
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("format, output, message", [
    ("onnx", "model.xml", "ending in '.onnx'"),
    ("openvino", "model.onnx", "ending in '.xml'"),
    ("savedmodel", "model.tflite", "is a folder"),
    ("python", "model.py", "is a folder"),
    ("litert", "missing/model.tflite", "does not exist"),
    ("tflite", "model.tflite", "Unknown export format 'tflite'"),
])
def test_a_wrong_output_is_explained(tmp_path, format, output, message):
    with pytest.raises(export.ExportError, match=message):
        export.check_output(format, tmp_path / output)


def test_an_export_that_does_not_match_keras_is_not_written(tmp_path, monkeypatch):
    import keras

    model = keras.Sequential([keras.Input((3,), name="x"), keras.layers.Dense(2)])
    model.save(tmp_path / "m.keras")
    runtime, run = parity.RUNNERS["keras"]
    monkeypatch.setitem(parity.RUNNERS, "keras", (
        runtime, lambda *args: [o + 0.5 for o in run(*args)]))
    with pytest.raises(export.ExportError, match=r"differ by up to 0\.5 .*Nothing was written"):
        export.export_model(tmp_path / "m.keras", "keras", tmp_path / "copy.keras")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["m.keras"]


def test_missing_packages_are_recognised():
    assert explanations.missing_package(ModuleNotFoundError("No module named 'tf2onnx'")) == "tf2onnx"
    wrapped = RuntimeError("conversion failed")
    wrapped.__cause__ = ImportError("This requires the jax2onnx module. You can install it via "
                                    "`pip install jax2onnx`")
    assert explanations.missing_package(wrapped) == "jax2onnx"
    assert explanations.missing_package(ValueError("other")) is None


def test_the_cli_offers_every_export_format():
    assert export.FORMATS is export_formats.FORMATS  # one table, not a copy
    with pytest.raises(cli.CliError) as refused:
        cli.build_parser().parse_args(["export", "m.keras", "--format", "bogus", "-o", "x"])
    for name in export_formats.FORMATS:
        assert f"'{name}'" in str(refused.value), refused.value


# ====================================================================== the CLI
def run(*argv):
    return cli.main([str(a) for a in argv])


def test_cli_exports_a_project_and_prints_the_parity_table(tmp_path, capsys):
    project = tmp_path / "p.kbproj"
    assert run("new", "--template", "mlp_classifier", "-o", project) == 0
    capsys.readouterr()
    assert run("export", project, "--format", "onnx", "-o", tmp_path / "m.onnx",
               "--verify") == 0
    out = capsys.readouterr().out
    assert "has no trained run: exporting its untrained model" in out
    assert "onnxruntime" in out and "pass" in out and "max abs diff" in out
    assert (tmp_path / "m.onnx").is_file()
    assert run("export", project, "--format", "onnx", "-o", tmp_path / "m.xml") == 2
    assert "ending in '.onnx'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def openvino_worker():
    worker = Worker("openvino")
    worker.wait_ready()
    yield worker
    worker.shutdown()


def test_predict_runs_on_keras_openvino_backend(trained, tmp_path, capsys):
    import keras

    model = keras.saving.load_model(trained[("cnn_classifier", "torch")], compile=False)
    x = export.sample_inputs(model, batch=5)[0]
    np.save(tmp_path / "x.npy", x)
    assert run("predict", trained[("cnn_classifier", "torch")], "--input", tmp_path / "x.npy",
               "--backend", "openvino", "-o", tmp_path / "p.csv") == 0
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert len(rows) == 6 and rows[0].startswith("predicted,confidence")
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    got = np.array([[float(v) for v in row.split(",")[2:]] for row in rows[1:]])
    assert np.max(np.abs(got - expected)) < 1e-4


def test_the_openvino_backend_refuses_to_train(openvino_worker, tmp_path):
    assert openvino_worker.ready.backend == "openvino"
    request = p.StartTraining("t", {"nodes": []}, {"source": "iris"}, {}, str(tmp_path))
    failed = TrainingRun(openvino_worker, request).wait()
    assert isinstance(failed, p.Failed)
    assert "only runs trained models" in failed.reason and "cannot train" in failed.reason
