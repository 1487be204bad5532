"""Whether a process of this machine is still running (the owner of a lock, a log or a trial).

One home for the probe because it has a trap: on Windows ``os.kill(pid, 0)`` does not
probe, it ends the process. There the answer is ``unknown`` (each caller says which guess
is safe for it).
"""

from __future__ import annotations

import os
import sys


def process_alive(pid: object, *, unknown: bool = True) -> bool:
    """Whether process ``pid`` runs on this machine; ``unknown`` where that cannot be told
    without harm (Windows) or the probe fails for another reason."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if sys.platform == "win32":
        return unknown
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    except OSError:
        return unknown
    return True
