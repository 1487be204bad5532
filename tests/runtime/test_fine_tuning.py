"""Two-phase fine-tuning runs in real workers: phase 1 leaves frozen weights and
BatchNorm statistics bit-identical, phase 2 changes the unfrozen layers only, on JAX,
TensorFlow and PyTorch (tiny generated 16×16 images, a nested block with BatchNorm)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kbuilder.graph.build import build_model
from kbuilder.graph.freezing import set_trainable
from kbuilder.graph.settings import DataSettings, TrainingSettings
from kbuilder.runtime import protocol as p
from kbuilder.runtime.client import TrainingRun, Worker
from tests.graph.finetune_models import tiny_backbone_graph

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    rng = np.random.default_rng(0)
    y = np.arange(48) % 3
    x = rng.random((48, 16, 16, 3)).astype("float32")
    x[..., 0] += y[:, None, None] * 0.5  # a class shows in the red channel
    path = tmp_path_factory.mktemp("images") / "tiny.npz"
    np.savez(path, x=x, y=y)
    return DataSettings(source=f"npz:{path}", test_split=0.0)


def _frozen_graph_and_weights(folder):
    """The model with its block frozen, and its initial weights (by node id, in a file)."""
    graph, history = tiny_backbone_graph()
    block = graph.find("backbone")
    history.push(set_trainable(graph, [block.id], False))
    model = build_model(graph)
    nested = model.get_layer("backbone")
    arrays, initial = {}, {}
    for sub, owner in ((block.subgraph, nested), (graph, model)):
        for node in sub.nodes:
            if node.kind == "layer" and owner.get_layer(node.name).weights:
                weights = [np.asarray(w) for w in owner.get_layer(node.name).get_weights()]
                initial[node.name] = weights
                arrays.update({f"{node.id}/{i}": w for i, w in enumerate(weights)})
    path = folder / "initial.npz"
    np.savez(path, **arrays)
    return graph, str(path), initial


def _weights(model_path) -> dict[str, list[np.ndarray]]:
    model = keras.saving.load_model(model_path)
    nested = model.get_layer("backbone")
    found = {layer.name: layer.get_weights() for layer in nested.layers if layer.weights}
    found["head"] = model.get_layer("head").get_weights()
    return found


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _train(worker, tmp_path, images, **fine_tuning):
    graph, weights_path, initial = _frozen_graph_and_weights(tmp_path)
    settings = TrainingSettings(backend=worker.backend, epochs=1, batch_size=16,
                                learning_rate=0.05, **fine_tuning)
    run = TrainingRun.start(worker, graph.to_dict(), images.to_dict(), settings.to_dict(),
                            str(tmp_path / "run"), weights_path)
    events = list(run.events())
    finished = events[-1]
    assert isinstance(finished, p.Finished) and finished.status == "completed", finished
    return events, initial, _weights(finished.artifacts["model"])


@pytest.mark.parametrize("backend", ["jax", "tensorflow", "torch"])
def test_a_two_phase_run_fine_tunes_only_the_unfrozen_layers(backend, tmp_path, images):
    worker = Worker(backend)
    try:
        worker.wait_ready()
        events, initial, after = _train(worker, tmp_path, images, fine_tune_from="conv_top",
                                        fine_tune_epochs=1, fine_tune_learning_rate=0.01)
        if backend == "jax":  # phase 1 alone: the whole block stays as it was
            (tmp_path / "one").mkdir()
            _, initial_1, after_1 = _train(worker, tmp_path / "one", images)
            assert all(_same(initial_1[n], after_1[n])
                       for n in ("conv", "bn", "conv_top", "bn_top"))
            assert not _same(initial_1["head"], after_1["head"])
    finally:
        worker.shutdown()
    started = events[0]
    assert isinstance(started, p.RunStarted) and started.epochs == 2
    phase = [e for e in events if isinstance(e, p.PhaseStarted)]
    assert len(phase) == 1 and phase[0].epoch == 1 and phase[0].learning_rate == 0.01
    assert "conv_top" in phase[0].unfrozen
    # conv_top (3·3·4·4 + 4) and the head (4·3 + 3); BatchNorm stays frozen.
    assert phase[0].trainable_params == 148 + 15
    epochs = [e.epoch for e in events if isinstance(e, p.EpochEnd)]
    assert epochs == [0, 1]  # numbered on across the phases
    assert [e.learning_rate for e in events if isinstance(e, p.EpochEnd)] == pytest.approx(
        [0.05, 0.01])
    assert len(events[-1].history["loss"]) == 2
    # Frozen in both phases: bit-identical; BatchNorm statistics never move (the block is
    # called with training=False); the unfrozen layers and the head learned.
    assert _same(initial["conv"], after["conv"]) and _same(initial["bn"], after["bn"])
    assert _same(initial["bn_top"], after["bn_top"])  # moving mean and variance too
    assert not _same(initial["conv_top"], after["conv_top"])
    assert not _same(initial["head"], after["head"])
