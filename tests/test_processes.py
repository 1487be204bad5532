"""The one probe of whether a process still runs."""

from __future__ import annotations

import os
import subprocess
import sys

from kbuilder import processes
from kbuilder.processes import process_alive


def test_this_process_and_a_child_are_alive_and_a_reaped_one_is_not():
    assert process_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert process_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid)


def test_nonsense_pids_are_not_processes():
    for pid in (None, "12", 0, -1, True):
        assert not process_alive(pid)


def test_on_windows_the_probe_is_not_sent(monkeypatch):
    # os.kill(pid, 0) ends the process on Windows: the caller's guess is returned instead.
    monkeypatch.setattr(processes.sys, "platform", "win32")
    monkeypatch.setattr(processes.os, "kill", lambda *_: (_ for _ in ()).throw(AssertionError))
    assert process_alive(os.getpid() + 1, unknown=False) is False
    assert process_alive(os.getpid() + 1) is True
