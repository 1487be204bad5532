"""The ``.kbproj`` ZIP container: its members, the limits against hostile files, and
reading ``project.json``'s bytes and ``weights.npz``'s arrays safely."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from kbuilder.graph.errors import ProjectFileError
from kbuilder.graph.npy import read_header
from kbuilder.graph.text import plural
from kbuilder.graph.text import quoted as _quote

PROJECT_MEMBER = "project.json"


WEIGHTS_MEMBER = "weights.npz"


# Limits against hostile or damaged files; far above anything kbuilder itself writes.
MAX_JSON_BYTES = 256 * 2**20


MAX_WEIGHTS_BYTES = 16 * 2**30


MAX_MEMBERS = 1000


MAX_WEIGHT_ARRAYS = 1_000_000


MAX_BLOCK_DEPTH = 32


# Each block level adds three JSON levels (graph -> nodes -> node); parameters add a few.
MAX_JSON_DEPTH = 3 * MAX_BLOCK_DEPTH + 64


MAX_ID_LENGTH = 256


@contextlib.contextmanager
def open_archive(f: IO[bytes], source: str) -> Iterator[zipfile.ZipFile]:
    try:
        archive = zipfile.ZipFile(f)
        infos = archive.infolist()
    except Exception as exc:
        # zipfile reports damaged archives through many exception types (BadZipFile,
        # EOFError, ValueError, struct.error, ...); to the user they all mean the same.
        raise ProjectFileError(
            f"{source} is not a kbuilder project (not a ZIP file, or it is truncated)."
        ) from exc
    with archive:
        if len(infos) > MAX_MEMBERS:
            raise ProjectFileError(
                f"{source} is not a kbuilder project (its ZIP archive has {len(infos)} "
                f"members; a project has at most {MAX_MEMBERS})."
            )
        for name in (PROJECT_MEMBER, WEIGHTS_MEMBER):
            if sum(info.filename == name for info in infos) > 1:
                raise ProjectFileError(f"{source} is damaged: it holds {name} twice.")
        if PROJECT_MEMBER not in archive.NameToInfo:
            raise ProjectFileError(
                f"{source} is not a kbuilder project (it has no {PROJECT_MEMBER})."
            )
        yield archive


def read_member(archive: zipfile.ZipFile, name: str, source: str) -> bytes:
    info = archive.getinfo(name)
    # Checked before reading: the declared size bounds what zipfile will decompress.
    if info.file_size > MAX_JSON_BYTES:
        raise ProjectFileError(
            f"{source}: {name} is {_size(info.file_size)}, more than the "
            f"{_size(MAX_JSON_BYTES)} a project file may hold."
        )
    with _damaged_member(source, name), archive.open(info) as member:
        return member.read()


@contextlib.contextmanager
def _damaged_member(source: str, name: str) -> Iterator[None]:
    try:
        yield
    except ProjectFileError:
        raise
    except Exception as exc:
        # Damaged members fail inside zipfile/zlib/numpy with assorted exception types.
        # The low-level reason (bad CRC, bad header...) stays on the chained exception.
        raise ProjectFileError(
            f"{source} is damaged: {name} cannot be read (the file is corrupt or incomplete)."
        ) from exc


def parse_json_bytes(raw: bytes, source: str) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProjectFileError(
            f"{source}: {PROJECT_MEMBER} is not UTF-8 text (invalid byte at position "
            f"{exc.start})."
        ) from None
    try:
        # NaN, Infinity and 1e999 parse as floats here and are refused, with their place,
        # by _check_plain_json.
        return json.loads(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as exc:
        raise ProjectFileError(
            f"{source}: {PROJECT_MEMBER} is not valid JSON ({exc.msg} at line "
            f"{exc.lineno}, column {exc.colno})."
        ) from None
    except RecursionError:
        raise ProjectFileError(
            f"{source}: {PROJECT_MEMBER} is nested too deeply to be a project."
        ) from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise ProjectFileError(f"{source}: {PROJECT_MEMBER} is not valid JSON ({exc}).") from None


def _size(n: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def read_weights(archive: zipfile.ZipFile, source: str) -> dict[str, list[np.ndarray]]:
    """The arrays of ``weights.npz``, validated as numbers; empty when there is none."""
    info = archive.NameToInfo.get(WEIGHTS_MEMBER)
    if info is None:
        return {}
    where = f"{source}: {WEIGHTS_MEMBER}"
    if info.file_size > MAX_WEIGHTS_BYTES:
        raise ProjectFileError(
            f"{where} is {_size(info.file_size)}, more than the "
            f"{_size(MAX_WEIGHTS_BYTES)} a project file may hold."
        )
    # The npz is itself a ZIP that needs random access: copy it out of the project
    # archive into an anonymous temporary file first.
    with tempfile.TemporaryFile() as tmp:
        with _damaged_member(source, WEIGHTS_MEMBER):
            with archive.open(info) as member:
                shutil.copyfileobj(member, tmp, 2**20)
            tmp.seek(0)
            inner = zipfile.ZipFile(tmp)
        with inner, _damaged_member(source, WEIGHTS_MEMBER):
            return _read_npz(inner, source)


def _read_npz(inner: zipfile.ZipFile, source: str) -> dict[str, list[np.ndarray]]:
    infos = inner.infolist()
    if len(infos) > MAX_WEIGHT_ARRAYS:
        raise ProjectFileError(
            f"{source}: {WEIGHTS_MEMBER} holds {len(infos)} arrays, more than "
            f"{MAX_WEIGHT_ARRAYS}."
        )
    total = sum(info.file_size for info in infos)
    if total > MAX_WEIGHTS_BYTES:
        raise ProjectFileError(
            f"{source}: {WEIGHTS_MEMBER} unpacks to {_size(total)}, more than the "
            f"{_size(MAX_WEIGHTS_BYTES)} a project file may hold."
        )
    found: dict[str, dict[int, np.ndarray]] = {}
    for info in infos:
        node_id, index = _weight_key(info.filename, source)
        if index in found.setdefault(node_id, {}):
            raise ProjectFileError(
                f"{source}: {WEIGHTS_MEMBER} holds {_quote(info.filename)} twice."
            )
        found[node_id][index] = _read_npy(inner, info, source)
    weights: dict[str, list[np.ndarray]] = {}
    for node_id, by_index in found.items():
        missing = sorted(set(range(len(by_index))) - set(by_index))
        if missing:
            raise ProjectFileError(
                f"{source}: {WEIGHTS_MEMBER} lacks weight {missing[0]} of node "
                f"{_quote(node_id)} (it has {plural(len(by_index), 'weight')} numbered up to "
                f"{max(by_index)})."
            )
        weights[node_id] = [by_index[i] for i in range(len(by_index))]
    return weights


def _weight_key(member_name: str, source: str) -> tuple[str, int]:
    key = member_name.removesuffix(".npy")
    node_id, _, index = key.rpartition("/")
    if (
        not member_name.endswith(".npy")
        or not node_id
        or not index.isascii()
        or not index.isdigit()
        or len(index) > 9
        or str(int(index)) != index
    ):
        raise ProjectFileError(
            f"{source}: {WEIGHTS_MEMBER} holds {_quote(member_name)}, which is not named "
            "'<node id>/<index>'."
        )
    return node_id, int(index)


def _read_npy(inner: zipfile.ZipFile, info: zipfile.ZipInfo, source: str) -> np.ndarray:
    key = info.filename.removesuffix(".npy")
    where = f"{source}: {WEIGHTS_MEMBER} array {_quote(key)}"
    fmt = np.lib.format
    # Read the header first: numpy allocates what the header claims before reading, so
    # a header claiming terabytes must be refused before np.lib.format.read_array.
    with inner.open(info) as fp:
        try:
            shape, dtype = read_header(fp)
        except ValueError as exc:
            raise ProjectFileError(f"{where} is not a NumPy array.") from exc
    if dtype.hasobject or dtype.kind not in "biufc":
        raise ProjectFileError(f"{where} is not numeric (dtype {dtype}).")
    if math.prod(shape) * dtype.itemsize > info.file_size:
        raise ProjectFileError(f"{where} is truncated (its header claims more data).")
    with inner.open(info) as fp:
        return fmt.read_array(fp, allow_pickle=False)


def check_array(value: Any, source: str, node_id: str, index: int) -> np.ndarray:
    array = np.asarray(value) if isinstance(value, np.ndarray | np.generic) else None
    if array is None or array.dtype.hasobject or array.dtype.kind not in "biufc":
        raise ProjectFileError(
            f"{source}: weight {index} of node {_quote(node_id)} is not a numeric array."
        )
    return array
