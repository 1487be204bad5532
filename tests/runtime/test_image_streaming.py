"""Image folders streamed from disk: bounded memory in a real training worker, unreadable
images stopped or skipped, streaming evaluation and prediction, Rescaling in the fit."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from kbuilder.graph.settings import DataSettings, TrainingSettings
from kbuilder.runtime import protocol as p
from kbuilder.runtime.client import TrainingRun, Worker
from kbuilder.runtime.data import load_data
from kbuilder.runtime.preflight import check, fit_template_to_data, new_project_for_data
from tests.runtime.test_data import write_png

SIZE = 8  # the PNGs on disk
READ_AT = (32, 32)  # what training reads them as: 12 KiB a sample as float32


def image_folder(root: Path, count: int, classes: int = 2) -> Path:
    """``count`` noisy 8x8 PNGs, each class its own brightness (learnable)."""
    rng = np.random.default_rng(count)
    for i in range(count):
        k = i % classes
        base = 40 + 170 * k
        pixels = np.clip(base + rng.integers(-30, 30, (SIZE, SIZE, 3)), 0, 255)
        write_png(root / f"class_{k}" / f"{i}.png", pixels.astype(np.uint8))
    return root


def images_settings(folder: Path, **extra) -> DataSettings:
    return DataSettings(source=f"images:{folder}", image_size=READ_AT, **extra)


def peak_rss(pid: int) -> int:
    """The worker's peak resident memory (VmHWM), bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def train(worker: Worker, folder: Path, tmp: Path, template: str = "cnn_classifier",
          epochs: int = 1, **data) -> p.Message:
    settings = images_settings(folder, **data)
    training = TrainingSettings(backend=worker.backend, epochs=epochs, batch_size=64,
                                learning_rate=3e-3)
    project = new_project_for_data(template, settings, training)
    run = TrainingRun.start(worker, project.graph.to_dict(), settings.to_dict(),
                            project.training.to_dict(),
                            str(tmp / "run"))
    return run.wait()


@pytest.fixture(scope="module")
def worker():
    w = Worker("jax")
    w.wait_ready()
    yield w
    w.shutdown()


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux /proc needed")
def test_training_memory_does_not_grow_with_the_number_of_images(worker, tmp_path):
    """2,000 and 8,000 images read at 32x32: held in memory as float32 (as kbuilder did)
    that is 23 and 94 MiB, 70 MiB more; streamed, the worker's peak RSS stays put.

    A small model (the MLP template on the flattened images) keeps the run short: the
    memory measured is the data's. Each size runs once to compile its batch shapes first.
    """
    small = image_folder(tmp_path / "small", 2000)
    large = image_folder(tmp_path / "large", 8000)
    pid = worker.ready.pid
    for folder in (small, large):  # compile every batch shape first
        assert isinstance(train(worker, folder, tmp_path / "warm", "mlp_classifier"),
                          p.Finished)
    peaks = {}
    for name, folder in (("small", small), ("large", large)):
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # peak := current
        result = train(worker, folder, tmp_path / name, "mlp_classifier")
        assert isinstance(result, p.Finished), getattr(result, "reason", result)
        peaks[name] = peak_rss(pid)
    grown = (peaks["large"] - peaks["small"]) / 2**20
    assert grown < 24, f"peak RSS grew by {grown:.1f} MiB from 2,000 to 8,000 images"
    assert result.test_metrics["accuracy"] > 0.9  # it learned from the streamed batches


def test_a_bad_image_stops_training_naming_it_or_is_skipped(worker, tmp_path):
    folder = image_folder(tmp_path / "images", 200)
    broken = folder / "class_1" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nthis is not an image")
    failed = train(worker, folder, tmp_path / "strict", validation_split=0.0,
                   test_split=0.0)
    assert isinstance(failed, p.Failed)
    assert failed.reason.startswith(f"{broken} is not a readable image"), failed.reason
    assert "--skip-bad-images" in failed.reason
    done = train(worker, folder, tmp_path / "skip", skip_bad_images=True)
    assert isinstance(done, p.Finished), getattr(done, "reason", done)
    assert "Skipped 1 unreadable image:" in done.message and str(broken) in done.message


def test_evaluation_and_prediction_stream_the_folder(worker, tmp_path):
    folder = image_folder(tmp_path / "images", 300)
    finished = train(worker, folder, tmp_path / "run", epochs=8)
    assert isinstance(finished, p.Finished)
    samples = finished.results["samples"]
    assert samples and samples[0]["image"]["shape"] == [*READ_AT, 3]
    from kbuilder.runtime.inference import run_evaluation, run_prediction

    data = images_settings(folder).to_dict()
    model = finished.artifacts["model"]
    evaluated = run_evaluation(p.StartEvaluation("e", model, data, split="test"))
    assert evaluated.samples == len(load_data(images_settings(folder)).y_test) == 60
    assert np.array(evaluated.results["confusion_matrix"]).sum() == 60
    assert evaluated.metrics["accuracy"] == pytest.approx(finished.test_metrics["accuracy"])
    # A folder of new images, no classes: one prediction per file.
    new = tmp_path / "new"
    write_png(new / "dark.png", np.full((SIZE, SIZE, 3), 40, np.uint8))
    write_png(new / "more" / "light.png", np.full((SIZE, SIZE, 3), 210, np.uint8))
    out = tmp_path / "predictions.csv"
    predicted = run_prediction(p.StartPrediction("p", model, str(out), str(new), data))
    assert predicted.samples == 2
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [Path(r["file"]).name for r in rows] == ["dark.png", "light.png"]
    # Two classes: one sigmoid unit, the probability of class_1, named by its folders.
    assert [r["predicted"] for r in rows] == ["class_0", "class_1"]
    assert float(rows[0]["p_class_1"]) < 0.5 < float(rows[1]["p_class_1"])


def test_fitting_an_image_template_adds_rescaling_and_optional_augmentation(tmp_path):
    folder = image_folder(tmp_path / "images", 20)
    settings = images_settings(folder)
    project = new_project_for_data("cnn_classifier", settings)
    graph = project.graph
    (first,) = graph.successors(graph.input_nodes()[0].id)
    rescaling = graph.node(first)
    assert rescaling.class_name == "Rescaling"
    assert rescaling.param("scale") == pytest.approx(1 / 255)
    assert graph.node(graph.successors(first)[0]).class_name == "Conv2D"
    dataset = load_data(settings)
    findings = check(graph, dataset, project.training)
    assert not [f for f in findings if f.code == "unscaled_inputs"], findings
    again = fit_template_to_data(graph, dataset)  # scaled already: no second Rescaling
    assert not any("Rescaling" in note for note in again.notes), again.notes

    augmented = new_project_for_data("cnn_classifier", settings, augment=True).graph
    chain, node = [], augmented.input_nodes()[0].id
    for _ in range(5):
        node = augmented.successors(node)[0]
        chain.append(augmented.node(node).class_name)
    assert chain == ["Rescaling", "RandomFlip", "RandomRotation", "RandomZoom", "Conv2D"]
    # Digits are scaled already: no Rescaling there.
    digits = new_project_for_data("cnn_classifier", DataSettings("digits")).graph
    assert "Rescaling" not in {n.class_name for n in digits.nodes}


def test_preflight_names_an_unreadable_image_among_those_it_samples(tmp_path):
    folder = image_folder(tmp_path / "images", 20)
    broken = folder / "class_0" / "0.png"  # the first training image
    broken.write_bytes(b"not a png")
    settings = images_settings(folder, validation_split=0.0, test_split=0.0)
    project = new_project_for_data("cnn_classifier", settings)
    findings = check(project.graph, load_data(settings),
                     project.training)
    (finding,) = [f for f in findings if f.code == "unreadable_data"]
    assert finding.severity == "error" and str(broken) in finding.message
    skipping = dataclasses.replace(settings, skip_bad_images=True)
    findings = check(project.graph, load_data(skipping),
                     project.training)
    assert not [f for f in findings if f.severity == "error"], findings
