# Two entry points for people: `make run` (the app) and `make test` (the linters, then the
# whole suite).
# Both create the virtual environment on first use from the pinned constraints.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Libraries Qt's xcb platform needs for a real window on a bare Debian/Ubuntu.
QT_SYSTEM_LIBS := libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 \
	libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 \
	libxcb-xkb1 libegl1 libgl1 libfontconfig1 libdbus-1-3

.PHONY: run test test-fast env system-libs lint bench package clean

env: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

# Installs the system libraries for a real window when they are missing (needs root or sudo).
system-libs:
	@missing=""; for p in $(QT_SYSTEM_LIBS); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ] && command -v apt-get >/dev/null; then \
		echo "Installing Qt system libraries:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; fi

run: $(STAMP) system-libs
	$(BIN)/kbuilder gui

# The linters first: they take seconds, the suite minutes (CI runs this through .ci/run).
# The suite runs in JOBS processes (pytest-xdist), each test file in one of them (its
# module fixtures are shared): one per core, at most 4 (each loads three backends, and
# worker tests start processes of their own). `make test JOBS=0` runs it in this process.
JOBS ?= $(shell $(PYTHON) -c 'import os; print(min(4, os.cpu_count() or 1))')
test: lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -p no:cacheprovider \
		-n $(JOBS) --dist loadfile $(PYTEST_ARGS)

# The quick path while working: the tests not marked slow, in parallel the same way.
test-fast: lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -p no:cacheprovider \
		-n $(JOBS) --dist loadfile -m "not slow" $(PYTEST_ARGS)

# ruff, and the import contracts of pyproject.toml ([tool.importlinter]) on this checkout.
lint: $(STAMP)
	$(BIN)/ruff check kbuilder tests bench
	PYTHONPATH=$(CURDIR) $(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/python bench/shape_update.py
	$(BIN)/python bench/import_large.py
	QT_QPA_PLATFORM=offscreen $(BIN)/python bench/gui_startup.py
	QT_QPA_PLATFORM=offscreen $(BIN)/python bench/gui_canvas.py
	QT_QPA_PLATFORM=offscreen $(BIN)/python bench/gui_training.py
	$(BIN)/python bench/train_overhead.py

# The installer: the PyInstaller bundle (dist/kbuilder/) and the .deb (dist/*.deb), then the
# packaging tests on what was built (install into a temporary root, the installed app's
# `selftest --bundle`, the desktop entry). Slow (~20-30 min on two cores), so not part of
# `make test`. Needs Debian's dpkg-dev and desktop-file-utils (installed here if missing).
PACKAGE_TOOLS := dpkg-dev desktop-file-utils

package: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[package]"
	@missing=""; for p in $(PACKAGE_TOOLS); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ] && command -v apt-get >/dev/null; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing; fi
	bash packaging/build.sh $(BIN)/python
	KBUILDER_PACKAGE_TEST=1 KBUILDER_PACKAGE_DEB="$$(ls -t dist/kbuilder_*.deb | head -1)" \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/packaging

clean:
	rm -rf $(VENV)
