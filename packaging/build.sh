#!/usr/bin/env bash
# Build the bundle (PyInstaller) and the Linux installer (.deb): what `make package` runs.
#
# Usage: packaging/build.sh [PYTHON]   PYTHON: the environment's python (default .venv/bin/python),
# which must have kbuilder's dependencies and the `package` extra (PyInstaller) installed.
# Outputs: dist/kbuilder/ (the bundle) and dist/kbuilder_VERSION_ARCH.deb; the work files
# go to build/ (both folders are git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${1:-.venv/bin/python}"

command -v dpkg-deb >/dev/null || { echo "build.sh: dpkg-deb is missing (apt-get install dpkg-dev)" >&2; exit 2; }
start=$SECONDS
"$python" packaging/icon.py build/icons >/dev/null
# TF_CPP_MIN_LOG_LEVEL: PyInstaller imports TensorFlow many times while it looks for
# submodules; each import would print the same start-up banner.
TF_CPP_MIN_LOG_LEVEL=2 "$python" -m PyInstaller --noconfirm --log-level WARN \
    --distpath dist --workpath build/pyinstaller packaging/kbuilder.spec
echo "bundle: dist/kbuilder ($(du -sh dist/kbuilder | cut -f1)) in $((SECONDS - start)) s"
packaging/linux/build_deb.sh dist/kbuilder dist
echo "package built in $((SECONDS - start)) s"
