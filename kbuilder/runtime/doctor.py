"""Environment report: versions, installed backends and the devices each backend sees.

Package versions come from the installed distributions' metadata, so nothing heavy is
imported. Each backend is probed in its own Python process: importing TensorFlow or
initialising a GPU driver can hang, abort or print pages of logs, and none of that may reach
the caller (the GUI, the CLI or a test). The three probes run concurrently because each
spends seconds importing its backend.

Devices are named the way ``kbuilder train --device`` accepts them: ``cpu``, ``gpu:0``,
``gpu:1``, ... (``tpu:0`` ... where a backend reports TPUs).
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from typing import Any

from kbuilder.graph.settings import BACKENDS

# Display name -> distributions that provide it, in the order tried. Several packages are
# published under more than one distribution name (CPU/GPU builds, "essentials" subsets).
PACKAGES: dict[str, tuple[str, ...]] = {
    "kbuilder": ("kbuilder",),
    "keras": ("keras",),
    "numpy": ("numpy",),
    "PySide6": ("PySide6", "PySide6-Essentials"),
    "pyqtgraph": ("pyqtgraph",),
    "onnx": ("onnx",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino"),
    "openvino": ("openvino",),
}

DEFAULT_TIMEOUT = 60.0

# The probe (a script run in a fresh process; the devices come from devices.py) prints one
# line starting with this marker; anything else on stdout (a backend chatting at import
# time) is ignored.
_MARKER = "KBUILDER_PROBE "

_PROBE = f"""
import json, sys

def report(available, version=None, devices=(), error=None):
    sys.stdout.write("\\n{_MARKER}" + json.dumps({{
        "available": available, "version": version, "devices": list(devices), "error": error,
    }}) + "\\n")
    sys.stdout.flush()

def describe(exc):
    return f"{{type(exc).__name__}}: {{exc}}".strip().splitlines()[0]

def probe(backend):
    try:
        module = __import__(backend)
    except Exception as exc:
        report(False, error=describe(exc))
        return
    devices, error = [], None
    try:
        from kbuilder.runtime.devices import backend_devices

        devices = [vars(d) for d in backend_devices(backend)]
    except Exception as exc:
        error = describe(exc)
    report(True, module.__version__, devices, error)
"""


def package_version(name: str) -> str | None:
    """The installed version of a package (by display name), or ``None`` if it is missing.

    Args:
        name: a key of ``PACKAGES`` or any distribution name.

    Returns:
        The version string, or ``None`` when no providing distribution is installed.
    """
    for dist in PACKAGES.get(name, (name,)):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    if name == "kbuilder":
        # Running from a source checkout without `pip install -e .`.
        import kbuilder

        return kbuilder.__version__
    return None


def probe_backend(backend: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Import one backend in a separate Python process and list its devices.

    Args:
        backend: one of ``BACKENDS``.
        timeout: seconds after which the probe process is killed.

    Returns:
        A JSON-safe dict: ``available`` (bool), ``version`` (str or None), ``devices``
        (list of ``{"name", "kind", "detail"}``), ``error`` (str or None) and ``seconds``
        (how long the probe took).

    Raises:
        ValueError: if ``backend`` is not one of ``BACKENDS``.
    """
    if backend not in BACKENDS:
        raise ValueError(
            f"Received an invalid value for `backend`, expected one of {BACKENDS}. "
            f"Received: backend={backend!r}"
        )
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", f"{_PROBE}\nprobe({backend!r})\n"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=_probe_env(),
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        result = _failed(f"Importing {backend} did not finish within {timeout:g} s.")
    except OSError as exc:
        result = _failed(f"Could not start a Python process to probe {backend}: {exc}.")
    else:
        result = _parse_probe(backend, proc)
    result["seconds"] = round(time.perf_counter() - start, 2)
    return result


def collect_report(timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """The whole environment report, as shown by ``kbuilder doctor``.

    Args:
        timeout: seconds each backend probe may take.

    Returns:
        A JSON-safe dict with ``python`` (version, implementation, executable, platform),
        ``packages`` (display name -> version or None), ``keras_backend`` (the
        ``KERAS_BACKEND`` environment variable, or None) and ``backends`` (backend name ->
        the result of ``probe_backend``).
    """
    with ThreadPoolExecutor(max_workers=len(BACKENDS)) as pool:
        futures = {b: pool.submit(probe_backend, b, timeout) for b in BACKENDS}
        # Metadata look-ups are quick; do them while the probes import their backends.
        packages = {name: package_version(name) for name in PACKAGES}
        backends = {b: futures[b].result() for b in BACKENDS}
    return {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
            "platform": platform.platform(),
        },
        "packages": packages,
        "keras_backend": os.environ.get("KERAS_BACKEND"),
        "backends": backends,
        "pretrained_weights": _pretrained_weights(),
    }


def _pretrained_weights() -> dict[str, Any]:
    """Keras's weights cache: its folder and the files in it (no Keras import)."""
    from kbuilder.graph.backbones import cached_weights, keras_models_folder

    return {"folder": str(keras_models_folder()),
            "files": [{"file": w.file, "bytes": w.size, "network": w.family}
                      for w in cached_weights()]}


def format_report(report: dict[str, Any]) -> str:
    """The report of ``collect_report`` as aligned plain text.

    Args:
        report: a dict returned by ``collect_report``.

    Returns:
        Several lines of text, without a trailing newline.
    """
    py = report["python"]
    rows = [("Python", f"{py['version']} ({py['executable']})"), ("Platform", py["platform"])]
    rows += [(name, version or "not installed") for name, version in report["packages"].items()]
    rows.append(("KERAS_BACKEND", report.get("keras_backend") or "not set"))
    lines = [f"{label:<14} {value}" for label, value in rows]
    lines += ["", "Backends"]
    for name, info in report["backends"].items():
        if info["available"]:
            devices = ", ".join(_device_label(d) for d in info["devices"])
            line = f"  {name:<12} {info['version'] or '':<14} {devices or 'no devices'}"
        else:
            line = f"  {name:<12} {'unavailable':<14}"
        if info["error"]:
            line += f"  [{info['error']}]"
        lines.append(line.rstrip())
    weights = report.get("pretrained_weights")
    if weights is not None:
        lines += ["", f"Pretrained weights in {weights['folder']}"]
        for entry in weights["files"]:
            lines.append(f"  {entry['network'] or '(other)':<18} {entry['file']} "
                         f"({entry['bytes'] / 2**20:.1f} MB)")
        if not weights["files"]:
            lines.append("  none yet (ImageNet weights are downloaded on first use)")
    return "\n".join(lines)


def _device_label(device: dict[str, Any]) -> str:
    detail = device.get("detail")
    return f"{device['name']} ({detail})" if detail and detail != "host" else device["name"]


def _probe_env() -> dict[str, str]:
    env = dict(os.environ)
    # Quiet TensorFlow's C++ start-up logs; keep JAX from reserving most of a GPU's memory.
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    return env


def _parse_probe(backend: str, proc: subprocess.CompletedProcess) -> dict[str, Any]:
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_MARKER):
            try:
                return json.loads(line[len(_MARKER) :])
            except json.JSONDecodeError:
                break
    # No report: the process died (e.g. a native crash while loading a driver).
    last = next((ln.strip() for ln in reversed(proc.stderr.splitlines()) if ln.strip()), "")
    reason = f": {last.rstrip('.')}" if last else ""
    return _failed(f"Probing {backend} crashed ({_exit_status(proc.returncode)}){reason}.")


def _exit_status(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _failed(message: str) -> dict[str, Any]:
    return {"available": False, "version": None, "devices": [], "error": message}
