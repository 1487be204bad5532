"""Code generation in a fresh process never imports TensorFlow.

Keras's serializer imports TensorFlow (3-9 s) the first time it is asked whether a value is
a TensorFlow object; comparing a layer's configuration with Keras's defaults asks that of
every value. The GUI writes code on the numpy backend and must not pay for TensorFlow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import keras  # noqa: F401 - imported before the clock starts, as in the app
    from kbuilder.graph.codegen import (
        generate_model_code, generate_notebook, generate_training_script,
    )
    from kbuilder.graph.project import Project
    from kbuilder.graph.templates import TEMPLATES

    graphs = {name: TEMPLATES[name].build() for name in sorted(TEMPLATES)}
    start = time.perf_counter()
    first = generate_model_code(graphs.pop("cnn_classifier"))
    first_seconds = time.perf_counter() - start
    for graph in graphs.values():
        generate_model_code(graph)
    project = Project.new(TEMPLATES["mlp_classifier"].build())
    generate_training_script(project)
    generate_notebook(project)
    print(json.dumps({"tensorflow": "tensorflow" in sys.modules,
                      "first_seconds": first_seconds, "ok": "def build_model" in first}))
""")


def test_generating_code_does_not_import_tensorflow():
    env = {**os.environ, "KERAS_BACKEND": "numpy", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["ok"]
    assert report["tensorflow"] is False
