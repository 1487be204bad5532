"""A pretrained network's ImageNet weights: the download reports Progress from the training
worker, lands in Keras's cache (which `kbuilder doctor` lists) and is not made again."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading

import numpy as np
import pytest

from kbuilder.graph.backbone_build import report_downloads
from kbuilder.runtime import protocol as p
from kbuilder.runtime.worker import download_reporter


class _Channel(list):
    def send(self, message):
        self.append(message)


def test_download_progress_is_sent_throttled_with_the_last_block():
    channel = _Channel()
    report = download_reporter("run1", channel)
    for done in range(0, 10_001, 100):  # a burst: far more than ten a second
        report("weights_mobilenet_v3_small.h5", done, 10_000)
    assert 2 <= len(channel) < 20
    assert all(isinstance(m, p.Progress) for m in channel)
    assert channel[0].stage == "downloading weights_mobilenet_v3_small.h5"
    assert (channel[-1].done, channel[-1].total) == (10_000, 10_000)


@pytest.fixture
def weights_server(tmp_path, monkeypatch):
    """A local HTTP server with MobileNetV3Small's no-top ImageNet file (the weights of a
    randomly initialised network), put where keras.applications downloads it from;
    Keras's cache is an empty folder. Yields (the network served, the server)."""
    import h5py
    import keras
    from keras.src.applications import mobilenet_v3
    from keras.src.backend import config
    from keras.src.legacy.saving import legacy_h5_format

    served = tmp_path / "served"
    served.mkdir()
    network = keras.applications.MobileNetV3Small(include_top=False, weights=None,
                                                   input_shape=(32, 32, 3), pooling="avg")
    path = served / "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    with h5py.File(path, "w") as file:  # the legacy format Keras's ImageNet files have
        legacy_h5_format.save_weights_to_hdf5_group(file, network)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(mobilenet_v3, "BASE_WEIGHT_PATH",
                        f"http://127.0.0.1:{server.server_address[1]}/")
    top, _ = mobilenet_v3.WEIGHTS_HASHES["small_224_1.0_float"]
    monkeypatch.setitem(mobilenet_v3.WEIGHTS_HASHES, "small_224_1.0_float",
                        (top, hashlib.md5(path.read_bytes()).hexdigest()))
    (tmp_path / "keras").mkdir()  # as importing Keras makes it (else it caches in /tmp)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path / "keras"))
    try:
        yield network, server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.slow
def test_imagenet_weights_download_once_with_progress_and_then_come_from_the_cache(
        weights_server, tmp_path):
    from kbuilder.graph.build import build_model
    from kbuilder.runtime.doctor import _pretrained_weights, format_report
    from tests.graph.test_backbone_node import backbone_graph

    network, server = weights_server
    graph, node = backbone_graph(weights="imagenet", pooling="avg")
    channel = _Channel()
    # What the training worker does around building the model (worker.run_training).
    with report_downloads(download_reporter("run1", channel)):
        first = build_model(graph).get_layer(graph.node(node).name)
    file = "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    size = (tmp_path / "served" / file).stat().st_size
    assert channel and all(m.stage == f"downloading {file}" for m in channel)
    assert (channel[-1].done, channel[-1].total) == (size, size)
    cached = tmp_path / "keras" / "models" / file
    assert cached.stat().st_size == size
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    want = np.asarray(network.predict(images, verbose=0))
    np.testing.assert_allclose(np.asarray(first.predict(images, verbose=0)), want, atol=1e-6)

    listed = _pretrained_weights()
    assert listed["files"] == [{"file": file, "bytes": size, "network": "MobileNetV3Small"}]
    report = {"python": {"version": "3", "executable": "python", "platform": "linux"},
              "packages": {}, "backends": {}, "pretrained_weights": listed}
    assert file in format_report(report)

    server.shutdown()  # no server any more: the second build reads the cache
    server.server_close()
    channel.clear()
    with report_downloads(download_reporter("run2", channel)):
        second = build_model(graph).get_layer(graph.node(node).name)
    assert channel == []
    np.testing.assert_allclose(np.asarray(second.predict(images, verbose=0)), want, atol=1e-6)
