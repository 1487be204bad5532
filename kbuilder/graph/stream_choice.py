"""Whether a table is streamed from disk or read whole: ``stream=auto`` decided.

A table's ``stream`` option is ``yes`` (read in blocks, ``runtime/data/table_stream.py``),
``no`` (read whole) or ``auto``, the default of new data settings: streamed when reading it
whole would take more than ``MEMORY_SHARE`` of this computer's memory. Reading a CSV file
whole takes about ``DECODED_PER_BYTE`` times its size at the peak (bench/data_scale.py:
a 145 MB file of 10^6 rows peaks 450 MB above the imports); a Parquet file is compressed,
so more per byte.

The memory compared with is the computer's whole memory (``MemTotal``), not what is free
at the moment: the choice decides how the rows are split (streamed: by a hash of each
row's line; read whole: a stratified shuffle), so it must not change from one run to the
next, nor between a run and the training script generated for it, because another
program happens to hold memory meanwhile.

The loader, the generated scripts (``codegen``), the Data tab and the CLI all ask
``stream_choice``, so they agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kbuilder.graph.settings import DataSettings, SettingsError, TableSpec

MEMORY_SHARE = 0.25  # stream when reading whole would take more than this share
DECODED_PER_BYTE = {"csv": 3.0, "tsv": 3.0, "parquet": 6.0}


@dataclass(frozen=True)
class StreamChoice:
    """Whether the table streams, and why, as a sentence for the Data tab and the CLI."""

    stream: bool
    reason: str
    automatic: bool  # decided by ``stream=auto`` (else the user's yes or no)

    def sentence(self, name: str) -> str:
        """``"data.csv streams from disk: the file is 3.1 GB; ..."`` (the Data tab's note
        and the CLI's data line)."""
        return f"{name} {self.reason}."


def computer_memory() -> int | None:
    """This computer's memory in bytes (Linux: ``MemTotal`` of /proc/meminfo; elsewhere
    the physical pages), or ``None`` where neither tells."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # Windows has no sysconf
        return None


def data_line(settings: DataSettings) -> str | None:
    """``"Data: people.csv is read whole into memory: ..."`` for a table source whose
    streaming ``stream=auto`` decides; ``None`` for other sources and explicit choices."""
    if settings.kind != "csv":
        return None
    try:
        spec = settings.table()
    except SettingsError:
        return None
    choice = stream_choice(spec)
    return f"Data: {choice.sentence(Path(spec.path).name)}" if choice.automatic else None


def stream_choice(spec: TableSpec, memory: int | None = None,
                  share: float = MEMORY_SHARE) -> StreamChoice:
    """How the table ``spec`` names is read.

    Args:
        spec: the table and its options (``DataSettings.table()``); ``spec.stream`` is
            ``True``, ``False``/``None`` (read whole) or ``"auto"``.
        memory: the memory to compare with in bytes (default: ``computer_memory()``;
            tests give a small one).
        share: the share of ``memory`` beyond which ``auto`` streams.
    """
    if spec.stream is True:
        return StreamChoice(True, "streams from disk, as chosen", False)
    if spec.stream != "auto":
        return StreamChoice(False, "is read whole into memory, as chosen", False)
    if spec.format == "excel":
        return StreamChoice(False, "is read whole into memory: an Excel sheet cannot be "
                            "streamed", True)
    try:
        size = Path(spec.path).stat().st_size
    except OSError:  # a missing file: the loader says so, in its own words
        return StreamChoice(False, "is read whole into memory", True)
    memory = computer_memory() if memory is None else memory
    if not memory:
        return StreamChoice(False, "is read whole into memory (this computer's memory is "
                            "unknown; choose streaming for a file larger than memory)", True)
    decoded = size * DECODED_PER_BYTE.get(spec.format, 3.0)
    limit = memory * share
    whole = f"read whole it would take about {_size(decoded)}"
    if decoded > limit:
        return StreamChoice(True, f"streams from disk: the file is {_size(size)}; {whole}, "
                            f"more than {_share(share)} of this computer's "
                            f"{_size(memory)} of memory", True)
    return StreamChoice(False, f"is read whole into memory: the file is {_size(size)}; {whole}, "
                        f"less than {_share(share)} of this computer's {_size(memory)} of "
                        "memory", True)


def _share(share: float) -> str:
    return {0.25: "a quarter", 0.5: "half", 1 / 3: "a third"}.get(share, f"{share:.0%}")


def _size(count: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{int(count)} bytes"


__all__ = ["MEMORY_SHARE", "StreamChoice", "computer_memory", "data_line", "stream_choice"]
