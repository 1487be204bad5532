"""Keras model files read safely: the configuration without loading the model, the
``.keras`` archive's member sizes against what its model declares, and the one way
kbuilder loads a model file (``open_model_file``)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from kbuilder.graph.keras_io.problems import ModelImportError, quoted
from kbuilder.graph.keras_io.safety import TRUST_REMEDY, check_model_config
from kbuilder.graph.tf_probe import no_tensorflow_probe

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")

# Limits against damaged or hostile files; far above any real model's configuration.
MAX_CONFIG_BYTES = 256 * 2**20

def read_model_config(path: str | Path) -> dict[str, Any]:
    """The model configuration stored in a ``.keras`` or ``.h5`` file, without loading it.

    Raises:
        ModelImportError: the file cannot be read or holds no model configuration.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ModelImportError(
            f"{quoted(path.name)} is not a Keras model file: expected a name ending in .keras or .h5."
        )
    if not path.is_file():
        raise ModelImportError(f"{quoted(path.name)} does not exist or is not a file ({path}).")
    raw = _read_keras_config(path) if suffix == ".keras" else _read_h5_config(path)
    try:
        config = json.loads(raw)
    except (ValueError, RecursionError):
        raise ModelImportError(
            f"{quoted(path.name)} is damaged: its model configuration is not valid JSON."
        ) from None
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ModelImportError(f"{quoted(path.name)} does not hold a Keras model configuration.")
    return config


def _read_keras_config(path: Path) -> bytes:
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                info = archive.getinfo("config.json")
            except KeyError:
                raise ModelImportError(
                    f"{quoted(path.name)} is not a Keras model: it has no config.json."
                ) from None
            if info.file_size > MAX_CONFIG_BYTES:
                raise ModelImportError(
                    f"{quoted(path.name)} has a model configuration too large to be real "
                    f"({info.file_size:,} bytes)."
                )
            return archive.read(info)
    except ModelImportError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError):
        raise ModelImportError(
            f"{quoted(path.name)} is not a .keras model file, or it is damaged (incomplete "
            "download or copy?)."
        ) from None
    except OSError as exc:
        raise ModelImportError(
            f"{quoted(path.name)} cannot be read: {exc.strerror or exc}."
        ) from None


def _read_h5_config(path: Path) -> bytes:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
    except (OSError, ValueError):
        raise ModelImportError(
            f"{quoted(path.name)} is not an HDF5 model file, or it is damaged (incomplete "
            "download or copy?)."
        ) from None
    if raw is None:
        raise ModelImportError(
            f"{quoted(path.name)} holds no model, only weights: open the model's .keras or "
            ".h5 file instead."
        )
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if not isinstance(raw, bytes) or len(raw) > MAX_CONFIG_BYTES:
        raise ModelImportError(f"{quoted(path.name)} has an unreadable model configuration.")
    return raw


# A weights member may unpack to this much without the model's size being checked.
_SMALL_WEIGHTS_BYTES = 64 * 2**20
# Bytes a weights file may hold per declared parameter: float64 weights and three more
# values per weight for an optimizer's state (Adam's moments), with room to spare.
_BYTES_PER_PARAM = 40
# HDF5's own bookkeeping, per variable and per file.
_BYTES_PER_VARIABLE = 16 * 2**10
_FILE_OVERHEAD = 16 * 2**20
# Any other member (metadata, a vocabulary asset) is small in any real model.
MAX_OTHER_MEMBER_BYTES = 256 * 2**20
# No model kbuilder can edit or train has weights this large.
MAX_WEIGHTS_BYTES = 16 * 2**30


def open_model_file(
    path: str | Path, trust: bool = False, compile: bool = False,
    remedy: str = TRUST_REMEDY,
) -> Any:
    """Load a ``.keras`` or ``.h5`` model file after checking that it is safe to.

    The one way kbuilder opens model files (import, predict, evaluate, export): the
    configuration is checked for code and unknown classes, and a ``.keras`` archive's
    members for sizes its model cannot need (a "zip bomb" unpacks gigabytes of zeros
    from a few megabytes), before Keras reads anything else.

    Args:
        path: the model file.
        trust: let Lambda layers and other code-carrying objects load (their code runs).
        compile: restore the compile settings saved with the model.
        remedy: what a refusal of code tells the user to do.

    Returns:
        The ``keras.Model``.

    Raises:
        NeedsTrustError: only code in the file stands in the way.
        ModelImportError: the file is missing, damaged, refused or cannot be loaded.
    """
    from kbuilder.graph.build import deep_recursion
    from kbuilder.graph.catalog.kbuilder_layers import register_all

    register_all()  # kbuilder's own layers (FillMissing) are known classes, not custom code
    path = Path(path)
    config = read_model_config(path)
    check_model_config(config, trust=trust, remedy=remedy)
    with deep_recursion(_layer_count(config)):
        if path.suffix.lower() == ".keras":
            check_archive_sizes(path, config, trust)
        return _load_model(path, trust, compile)


def _layer_count(config: dict[str, Any]) -> int:
    """How many layer configurations a model configuration holds, at any depth."""
    count, stack = 0, [config]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            count += isinstance(value.get("class_name"), str)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return count


def check_archive_sizes(path: Path, config: dict[str, Any], trust: bool = False) -> None:
    """Refuse a ``.keras`` archive whose members unpack to more than its model can need.

    The weights member is compared with the parameters the configuration declares
    (counted from the variables' shapes, nothing allocated) when it is large enough to
    matter; every member has a hard limit.

    Raises:
        ModelImportError: names the member, its unpacked size and what was expected.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, OSError):
        raise ModelImportError(
            f"{quoted(path.name)} is not a .keras model file, or it is damaged (incomplete "
            "download or copy?)."
        ) from None
    damaged = (
        "The file is damaged or made to exhaust memory: do not open it (if it should be a "
        "real model, save it again from Keras)."
    )
    for info in members:
        weights = info.filename.endswith(".weights.h5") or info.filename.endswith(".npz")
        limit = MAX_WEIGHTS_BYTES if weights else MAX_OTHER_MEMBER_BYTES
        if info.file_size > limit:
            raise ModelImportError(
                f"{quoted(path.name)} holds {quoted(info.filename)}, which unpacks to "
                f"{_gib(info.file_size)} (at most {_gib(limit)} is accepted). {damaged}"
            )
        if not weights or info.file_size <= _SMALL_WEIGHTS_BYTES:
            continue
        declared = _declared_params(path, config, trust)
        if declared is None:
            continue  # cannot count: the hard limit above holds
        params, variables = declared
        expected = params * _BYTES_PER_PARAM + variables * _BYTES_PER_VARIABLE + _FILE_OVERHEAD
        if info.file_size > expected:
            raise ModelImportError(
                f"{quoted(path.name)} holds weights that unpack to {_gib(info.file_size)}, but "
                f"its model has {params:,} parameters (at most {_gib(expected)} of weights). "
                f"{damaged}"
            )


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.0f} MiB"


def _declared_params(
    path: Path, config: dict[str, Any], trust: bool
) -> tuple[int, int] | None:
    """``(parameters, variables)`` of the model a ``.keras`` configuration describes.

    The model is built from the configuration with its variables declared but never
    allocated. ``None`` when it cannot be built that way (Keras then reports why when it
    loads the file).

    Raises:
        ModelImportError: the configuration declares absurdly large weights.
    """
    import keras

    from kbuilder.graph.shapes import MAX_LAYER_PARAMS, SizeError, declared_variables

    try:
        with no_tensorflow_probe(), declared_variables(limit=4 * MAX_LAYER_PARAMS) as declared:
            keras.saving.deserialize_keras_object(config, safe_mode=not trust)
    except SizeError as exc:
        raise ModelImportError(
            f"{quoted(path.name)} declares weights of {exc.count:,} numbers or more (one of "
            f"shape {exc.shape}), far more than a real model has: it is damaged or made to "
            "exhaust memory."
        ) from None
    except Exception:
        return None
    return declared.count, len(declared)


def _load_model(path: Path, trust: bool, compile: bool = False) -> Any:
    import keras

    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=not trust)
    except Exception as exc:
        from kbuilder.graph.shapes import explain_exception

        message, _ = explain_exception(exc, [])
        raise ModelImportError(
            f"{quoted(path.name)} could not be loaded as a Keras model: {message}"
        ) from exc
