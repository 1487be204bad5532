"""The model's observer mechanism (graph/events.py): order, unsubscribe, failing observers."""

import logging

from kbuilder.graph.events import EventGroup, Signal


def test_callbacks_are_called_in_connection_order_with_the_arguments():
    signal, calls = Signal("node_added"), []
    signal.connect(lambda *a: calls.append(("first", a)))
    signal.connect(lambda *a: calls.append(("second", a)))
    signal.emit("n1", 2)
    signal.emit("n2", 3)
    assert calls == [("first", ("n1", 2)), ("second", ("n1", 2)),
                     ("first", ("n2", 3)), ("second", ("n2", 3))]


def test_a_callback_connected_twice_is_called_once_and_disconnect_stops_it():
    signal, calls = Signal("edge_removed"), []

    def record(*args):
        calls.append(args)

    assert signal.connect(record) is record  # usable as a decorator
    signal.connect(record)
    signal.emit(1)
    signal.disconnect(record)
    signal.emit(2)
    signal.disconnect(record)  # not connected any more: nothing happens
    assert calls == [(1,)]
    assert "0 connected" in repr(signal)


def test_a_callback_may_disconnect_itself_while_the_signal_is_emitted():
    signal, calls = Signal("updated"), []

    def once(*args):
        calls.append("once")
        signal.disconnect(once)

    signal.connect(once)
    signal.connect(lambda *a: calls.append("always"))
    signal.emit()
    signal.emit()
    assert calls == ["once", "always", "always"]  # the one after it was not skipped


def test_a_failing_observer_is_logged_and_the_others_still_hear(caplog):
    signal, calls = Signal("node_changed"), []

    def broken(*args):
        raise RuntimeError("view bug")

    signal.connect(broken)
    signal.connect(lambda *a: calls.append(a))
    with caplog.at_level(logging.ERROR, logger="kbuilder.events"):
        signal.emit("n1", "params")
    assert calls == [("n1", "params")]
    (record,) = caplog.records
    assert "node_changed" in record.getMessage() and record.exc_info[0] is RuntimeError


def test_an_event_group_holds_one_independent_signal_per_name():
    events = EventGroup("node_added", "node_removed")
    added, removed = [], []
    events.node_added.connect(added.append)
    events.node_removed.connect(removed.append)
    events.node_added.emit("a")
    assert added == ["a"] and removed == []
    assert events.node_added.name == "node_added"
    assert events.node_added is not events.node_removed
