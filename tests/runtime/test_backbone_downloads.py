"""A pretrained network's weights download reports Progress from the training worker."""

from __future__ import annotations

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
