"""NumPy files (.npy, .npz) and arrays in memory, checked before they are read."""


from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from kbuilder.graph.npy import read_header
from kbuilder.graph.settings import DataSettings
from kbuilder.graph.text import plural
from kbuilder.runtime.data.dataset import FLOAT32_MAX, DataError, is_zero_one, map_x
from kbuilder.runtime.data.labels import encode_labels, infer_task
from kbuilder.runtime.data.split import Raw

# An array claiming more than this share of the computer's memory is refused before it is
# read (a damaged or hostile header could otherwise claim terabytes).
MAX_MEMORY_SHARE = 0.5


# =============================================================================== NumPy
_NUMPY_SETS = (("x", "y"), ("x_train", "y_train"))
# The target of a NumPy file with one array per model input, when no mapping names it.
TARGET_ARRAYS = ("y", "label", "labels", "target")
# Name endings of the arrays of a split the file gives itself; other names are training.
_SPLIT_ENDINGS = (("_test", "test"), ("_val", "val"), ("_train", "train"))


def load_numpy(location: str, task: str | None,
               settings: DataSettings | None = None) -> Raw:
    """Arrays ``x`` and ``y`` (or ``x_train``/``y_train``), or one array per model input.

    A file without ``x`` (or with a mapping in ``settings``) holds named arrays: each
    feeds the Input of that name (``settings.input_arrays`` maps Input names to array
    names), and the target is ``y`` (or ``label``, ``labels``, ``target``), or the arrays
    ``settings.output_arrays`` name, one per Output. ``NAME_test``/``NAME_val`` arrays
    are the file's own test and validation splits, as ``x_test`` is for ``x``.
    """
    path = Path(location)
    arrays = _read_numpy_arrays(path)
    name = path.name
    mapped = settings is not None and (settings.input_arrays or settings.output_arrays)
    lower = {k.lower(): k for k in arrays}
    for x_key, y_key in _NUMPY_SETS:
        if x_key in lower and y_key in lower and not mapped:
            break
    else:
        return _named_arrays_to_raw(arrays, name, task, str(path), settings)
    picked = {
        "x": arrays[lower[x_key]], "y": arrays[lower[y_key]],
        "x_test": arrays.get(lower.get("x_test", "")),
        "y_test": arrays.get(lower.get("y_test", "")),
        "x_val": arrays.get(lower.get("x_val", "")),
        "y_val": arrays.get(lower.get("y_val", "")),
    }
    return arrays_to_raw(picked, name, task, str(path), x_name=lower[x_key],
                          y_name=lower[y_key])


def array_groups(names: Any) -> dict[str, dict[str, str]]:
    """``{split: {base name: array name}}`` of a file's arrays (``split`` is ``"train"``,
    ``"test"`` or ``"val"``): ``image_test`` is the test split of ``image``."""
    groups: dict[str, dict[str, str]] = {"train": {}, "test": {}, "val": {}}
    for key in names:
        base, split = key, "train"
        for ending, which in _SPLIT_ENDINGS:
            if key.lower().endswith(ending) and len(key) > len(ending):
                base, split = key[: -len(ending)], which
                break
        groups[split][base] = key
    return groups


def _named_arrays_to_raw(arrays: dict[str, np.ndarray], name: str, task: str | None,
                         path: str, settings: DataSettings | None) -> Raw:
    """A Raw whose ``x`` is ``{Input name: array}`` (and ``y`` one array per Output)."""
    groups = array_groups(arrays)
    train = groups["train"]
    held = ", ".join(sorted(arrays)) or "nothing"
    output_map = dict(settings.output_arrays) if settings else {}
    input_map = dict(settings.input_arrays) if settings else {}
    if output_map:
        targets = output_map
    else:
        found = [k for k in train if k.lower() in TARGET_ARRAYS]
        if len(found) != 1:
            raise DataError(
                f"{name} must hold arrays named x and y (or x_train and y_train), or one "
                f"array per model input and the target array y; it holds: {held}. Name the "
                "target array y, or choose the arrays of each Input and Output in the Data "
                "tab.", path=path,
            )
        targets = {"": found[0]}
    # The mapping renames; every other array (but the targets) feeds the Input of its name.
    used = set(targets.values()) | set(input_map.values())
    inputs = {**input_map, **{k: k for k in train if k not in used and k not in input_map}}
    for role, chosen in (("input", inputs), ("target", targets)):
        missing = [a for a in chosen.values() if a not in train]
        if missing:
            raise DataError(
                f"{name} has no array '{missing[0]}' (chosen as {role} of "
                f"'{_node_of(chosen, missing[0])}'); it holds: {held}.",
                path=path, column=missing[0],
            )
    if not inputs:
        raise DataError(f"{name} holds only the target array '{next(iter(targets.values()))}'"
                        "; add one array per model input.", path=path)
    wanted = [*inputs.values(), *targets.values()]
    picked: dict[str, Any] = {"x": {node: arrays[train[a]] for node, a in inputs.items()}}
    splits = {"": train}
    for split in ("test", "val"):
        given = groups[split]
        have = [a for a in wanted if a in given]
        if not have:
            continue
        if len(have) != len(wanted):
            lacking = [f"{a}_{split}" for a in wanted if a not in given]
            raise DataError(
                f"{name} has {', '.join(given[a] for a in have)} but not "
                f"{', '.join(lacking)}; give the {split} split of every array or of none.",
                path=path,
            )
        picked[f"x_{split}"] = {node: arrays[given[a]] for node, a in inputs.items()}
        splits[f"_{split}"] = given
    x_name = ", ".join(inputs.values())
    # Each target is encoded on its own (its task, its classes); the first one is what
    # the dataset's task, classes and summaries describe.
    raws = {}
    for node, target in targets.items():
        one = {**picked, **{f"y{suffix}": arrays[given[target]]
                            for suffix, given in splits.items()}}
        raws[node] = arrays_to_raw(one, name, task, path, x_name=x_name, y_name=target)
    raw = next(iter(raws.values()))
    if len(raws) > 1:
        raw.y = {node: r.y for node, r in raws.items()}
        for split in ("test", "validation"):
            if getattr(raw, split) is not None:
                setattr(raw, split, (getattr(raw, split)[0],
                                     {node: getattr(r, split)[1] for node, r in raws.items()}))
        raw.notes += [n for r in list(raws.values())[1:] for n in r.notes]
        raw.notes.append(
            f"{name} has a target per output ({', '.join(targets.values())}); the task and "
            f"classes shown are those of '{next(iter(targets.values()))}'.")
    ignored = sorted(set(train) - set(wanted))
    if ignored:
        raw.notes.append(f"{name}: the arrays {', '.join(ignored)} feed no input and are "
                         "left out.")
    return raw


def array_names(location: str) -> list[str]:
    """The names of the arrays of an ``.npz`` file or a folder of ``.npy`` files, read from
    the archive's index or the folder without loading any data; ``[]`` when unreadable."""
    path = Path(location)
    try:
        if path.is_file() and path.suffix.lower() == ".npy":
            path = path.parent
        if path.is_dir():
            return sorted(f.stem for f in path.glob("*.npy"))
        with zipfile.ZipFile(path) as archive:
            return [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
    except (OSError, zipfile.BadZipFile, ValueError):
        return []


def _node_of(mapping: dict[str, str], array: str) -> str:
    return next(node for node, a in mapping.items() if a == array) or "the model"


def _read_numpy_arrays(path: Path) -> dict[str, np.ndarray]:
    """Arrays of an ``.npz`` file, or of the ``.npy`` files in a folder (or beside a file)."""
    if not path.exists():
        raise DataError(f"{path} does not exist.", path=str(path))
    if path.is_file() and path.suffix.lower() == ".npy":
        path = path.parent
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
        if not files:
            raise DataError(f"The folder {path} has no .npy files.", path=str(path))
        return {f.stem: _load_npy(f, f.name, str(f)) for f in files}
    with path.open("rb") as f:
        magic = f.read(6)
    if magic[:1] == b"\x80":  # the first byte of a pickle (protocol 2 and later)
        raise _pickle_error(path.name, None, str(path))
    if not magic.startswith((b"PK", b"\x93NUMPY")):
        # np.load would take any other file for a pickle and say so, which misleads.
        raise DataError(
            f"{path.name} is not a NumPy .npz or .npy file. Save arrays with "
            "numpy.savez(path, x=x, y=y).", path=str(path),
        )
    if magic.startswith(b"\x93NUMPY"):
        with path.open("rb") as stream:
            _check_npy_header(stream, path.stat().st_size, path.name, str(path))
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        if "pickle" in str(exc):
            raise _pickle_error(path.name, None, str(path)) from exc
        raise DataError(
            f"{path.name} is not a NumPy .npz or .npy file ({exc}).", path=str(path)
        ) from exc
    if isinstance(archive, np.ndarray):
        raise DataError(
            f"{path.name} holds a single array; save x and y together with "
            "numpy.savez(path, x=x, y=y), or put x.npy and y.npy in one folder.",
            path=str(path),
        )
    with archive:
        out = {}
        for key in archive.files:
            try:
                member = archive.zip.getinfo(f"{key}.npy")
            except KeyError:
                member = None  # not an array: np.load gives its bytes, which go unused
            try:
                if member is not None:
                    with archive.zip.open(member) as stream:
                        _check_npy_header(stream, member.file_size, path.name, str(path), key)
                out[key] = archive[key]
            except ValueError as exc:
                if "pickle" in str(exc):
                    raise _pickle_error(path.name, key, str(path)) from exc
                raise DataError(f"{path.name}: array '{key}' cannot be read ({exc}).",
                                path=str(path), column=key) from exc
            except (OSError, zipfile.BadZipFile, EOFError) as exc:
                raise DataError(f"{path.name}: array '{key}' is damaged ({exc}).",
                                path=str(path), column=key) from exc
        return out


def read_array_file(path: Path) -> dict[str, np.ndarray]:
    """The arrays of one ``.npz`` file, or ``{"x": array}`` of one ``.npy`` file, each
    checked before it is read (see ``_check_npy_header``).

    Raises:
        DataError: the file is not a plain NumPy file, is damaged, or claims too much.
    """
    if path.suffix.lower() == ".npy" and path.is_file():
        return {"x": _load_npy(path, path.name, str(path))}
    return _read_numpy_arrays(path)


def _check_npy_header(stream: Any, size: int, name: str, path: str,
                      key: str | None = None) -> None:
    """Refuse an ``.npy`` array whose header claims more data than follows it, or more
    than the computer's memory could hold, before anything is allocated for it.

    Args:
        stream: the ``.npy`` data (a file, or a member of an ``.npz`` archive), at 0.
        size: its size in bytes (for a member: uncompressed, as the archive says).
        name: the file's name; ``key``: the array's name in an ``.npz``.
    """
    where = f"array '{key}' of {name}" if key else name
    try:
        shape, dtype = read_header(stream)
    except ValueError as exc:
        raise DataError(f"{where} is not a NumPy array ({exc}).", path=path,
                        column=key) from exc
    if dtype.hasobject:
        raise _pickle_error(name, key, path)
    claimed = math.prod(shape) * dtype.itemsize
    available = size - stream.tell()
    shown = f"a {'×'.join(map(str, shape)) or 'single-value'} array of {dtype}"
    if claimed > available:
        raise DataError(
            f"{where} is damaged or cut short: its header describes {shown} "
            f"({_size_text(claimed)}), but only {_size_text(available)} of data follow. "
            "Save the arrays again with numpy.savez(path, x=x, y=y).",
            path=path, column=key,
        )
    memory = _memory_bytes()
    if memory and claimed > memory * MAX_MEMORY_SHARE:
        raise DataError(
            f"{where} holds {shown} ({_size_text(claimed)}), more than half of this "
            f"computer's memory ({_size_text(memory)}). Use a smaller sample of the data.",
            path=path, column=key,
        )


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX
        return None


def _size_text(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if count < 1024 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError


def _load_npy(file: Path, name: str, path: str) -> np.ndarray:
    try:
        with file.open("rb") as stream:
            _check_npy_header(stream, file.stat().st_size, name, path)
        array = np.load(file, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise _pickle_error(name, None, path) from exc
        raise DataError(f"{name} is not a NumPy .npy file ({exc}).", path=path) from exc
    except (OSError, EOFError) as exc:
        raise DataError(f"{name} is not a NumPy .npy file ({exc}).", path=path) from exc
    return array


def _pickle_error(name: str, key: str | None, path: str) -> DataError:
    where = f"array '{key}' of {name}" if key else name
    return DataError(
        f"{where} holds Python objects (a pickle). kbuilder does not load pickles because "
        "they can run code. Save plain numeric arrays, e.g. numpy.savez(path, "
        "x=x.astype('float32'), y=y).",
        path=path, column=key,
    )


def arrays_to_raw(
    arrays: dict[str, Any], name: str, task: str | None, path: str,
    x_name: str = "x", y_name: str = "y",
) -> Raw:
    """Check and encode arrays from NumPy files or memory."""
    x, y = arrays["x"], _checked_array(np.asarray(arrays["y"]), name, path, y_name)
    x = map_x(lambda a: _feature_array(np.asarray(a), name, path, x_name), x)
    _check_lengths(name, path, x, y, x_name, y_name)
    extra_splits = {}
    for split in ("test", "val"):
        xs, ys = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
        if (xs is None) != (ys is None):
            raise DataError(
                f"{name} has {'x' if ys is None else 'y'}_{split} but not "
                f"{'y' if ys is None else 'x'}_{split}; give both or neither.", path=path,
            )
        if xs is not None:
            xs = map_x(lambda a, k=f"x_{split}": _feature_array(np.asarray(a), name, path, k),
                       xs)
            ys = _checked_array(np.asarray(ys), name, path, f"y_{split}")
            _check_lengths(name, path, xs, ys, f"x_{split}", f"y_{split}")
            extra_splits[split] = (xs, ys)
    if y.ndim == 0:
        raise DataError(f"{name}: {y_name} must hold one label or target per sample.",
                        path=path, column=y_name)
    ys_all = [y] + [s[1] for s in extra_splits.values()]
    if task is None:
        task = infer_task(np.concatenate([_squeeze(v) for v in ys_all]))
    raw = Raw(x, y, task, name)
    if task == "regression":
        raw.y = _squeeze(y).astype(np.float32)
        for split, (xs, ys) in extra_splits.items():
            setattr(raw, "test" if split == "test" else "validation",
                    (xs, _squeeze(ys).astype(np.float32)))
        return raw
    encode = _class_encoder(ys_all, name, path, y_name, raw.notes)
    raw.y, raw.num_classes, raw.class_names = encode(y), encode.num_classes, encode.names
    for split, (xs, ys) in extra_splits.items():
        setattr(raw, "test" if split == "test" else "validation", (xs, encode(ys)))
    return raw


def _checked_array(a: np.ndarray, name: str, path: str, key: str) -> np.ndarray:
    """``a`` if it has one row per sample and values a model can train on."""
    if a.ndim == 0:
        raise DataError(
            f"{name}: the array '{key}' is a single value (shape ()), not one row per "
            f"sample. Save an array with the samples first, e.g. shape (n, features).",
            path=path, column=key,
        )
    kind = a.dtype.kind
    if kind == "O":
        raise DataError(f"{name}: the array '{key}' holds Python objects, not numbers; "
                        "convert it to a numeric (or text) array first.",
                        path=path, column=key)
    if kind == "c":
        raise DataError(
            f"{name}: the array '{key}' holds complex numbers, which Keras models do not "
            "train on. Keep the real part (a.real), the magnitude (abs(a)), or the real "
            "and imaginary parts as two features.", path=path, column=key,
        )
    if kind in "mMV":
        raise DataError(
            f"{name}: the array '{key}' holds {a.dtype} values, not numbers; convert it "
            "to a numeric array (e.g. seconds as float32) first.", path=path, column=key,
        )
    if kind == "f" and a.dtype.itemsize > 4 and a.size:
        with np.errstate(invalid="ignore"):
            too_large = np.abs(a) > FLOAT32_MAX
        if too_large.any():
            value = a[np.unravel_index(np.argmax(too_large), a.shape)]
            raise DataError(
                f"{name}: the array '{key}' holds {value:g}, beyond what 32-bit floats "
                f"(at most ±{FLOAT32_MAX:.1e}), which models compute in, can hold. "
                "Rescale the values (e.g. other units).", path=path, column=key,
            )
    return a


def _feature_array(a: np.ndarray, name: str = "The data", path: str = "",
                   key: str = "x") -> np.ndarray:
    a = _checked_array(a, name, path, key)
    if a.ndim == 1:
        a = a[:, None]  # one feature per sample
    if a.dtype.kind in "fb" and a.dtype != np.float32:
        a = a.astype(np.float32)  # Keras computes in float32; halves the memory of float64
    return a


def _squeeze(y: np.ndarray) -> np.ndarray:
    return y.reshape(len(y)) if y.ndim == 2 and y.shape[1] == 1 else y


def _check_lengths(name: str, path: str, x: Any, y: np.ndarray, x_name: str,
                   y_name: str) -> None:
    lengths = map_x(len, x)
    values = list(lengths.values()) if isinstance(lengths, dict) else (
        lengths if isinstance(lengths, list) else [lengths])
    if len(set(values)) > 1:
        raise DataError(f"{name}: the input arrays of {x_name} have different numbers of "
                        f"samples ({values}).", path=path)
    if y.ndim and values[0] != len(y):
        raise DataError(
            f"{name}: {x_name} has {plural(values[0], 'sample')} but {y_name} has {len(y)}; "
            "there must be one label or target per sample.", path=path, column=y_name,
        )
    if values[0] == 0:
        raise DataError(f"{name}: {x_name} has no samples.", path=path, column=x_name)


class _ClassEncoder:
    """Maps labels of every split the same way (ids kept when already 0..K-1)."""

    def __init__(self, classes: np.ndarray | None, num_classes: int, names: list[str]):
        self.classes, self.num_classes, self.names = classes, num_classes, names

    def __call__(self, y: np.ndarray) -> np.ndarray:
        if y.ndim == 2 and y.shape[1] > 1:
            return y.astype(np.float32)  # one-hot or multi-label rows stay as they are
        y = _squeeze(y)
        if self.classes is None:
            return y.astype(np.int32)
        return np.searchsorted(self.classes, y if y.dtype.kind in "biuf" else y.astype(str)
                               ).astype(np.int32)


def _class_encoder(ys: list[np.ndarray], name: str, path: str, y_name: str,
                   notes: list[str]) -> _ClassEncoder:
    first = ys[0]
    if first.ndim == 2 and first.shape[1] > 1:
        if not all(is_zero_one(y) for y in ys):
            raise DataError(
                f"{name}: {y_name} has {first.shape[1]} values per sample that are not all "
                "0 or 1, so they are not one-hot class labels. Treat the data as "
                "regression, or give one class number per sample.", path=path, column=y_name,
            )
        k = first.shape[1]
        return _ClassEncoder(None, k, [str(i) for i in range(k)])
    if first.ndim > 2:
        raise DataError(f"{name}: {y_name} has shape {list(first.shape)}; class labels "
                        "need one value per sample.", path=path, column=y_name)
    values = np.concatenate([_squeeze(y) for y in ys])
    if values.dtype.kind in "biuf":
        whole = np.all(values == np.round(values))
        if whole and values.min() >= 0:
            k = int(values.max()) + 1
            if k < 2:
                raise DataError(f"{name}: every label in {y_name} is 0; a classifier needs "
                                "at least two classes.", path=path, column=y_name)
            return _ClassEncoder(None, k, [str(i) for i in range(k)])
    _, names, label_notes = encode_labels(values, f"{name} ({y_name})")
    notes += label_notes
    classes = np.unique(values) if values.dtype.kind in "biuf" else np.asarray(names)
    return _ClassEncoder(classes, len(names), names)


