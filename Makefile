# The source of truth for setting up, testing and running ClearTrace.
# `make run` and `make test` work as root on a fresh Debian 12 machine.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

# System packages the app needs: Python itself; a compiler and headers for
# pynput's evdev; dbus-daemon for the screen lock said on a session bus; the
# X libraries Qt's xcb platform plugin loads.
SYS_PKGS := python3 python3-venv python3-dev gcc linux-libc-dev dbus \
	libgl1 libegl1 libglib2.0-0 libdbus-1-3 libfontconfig1 fonts-dejavu-core \
	libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 \
	libxcb-randr0 libxcb-render-util0 libxcb-shape0

# What the tests (and screenshots) need on top: Xvfb, xdotool and a small EWMH
# window manager for the capture tests; xrandr, xrdb (x11-xserver-utils) and
# setxkbmap (x11-xkb-utils) for the screen and keyboard layouts they change;
# chromium (headless) and poppler-utils (pdftoppm, pdftotext), which the audit
# report's tests open the HTML report and the PDF with; postgresql, whose
# server binaries the tests start a throwaway cluster from (the collector's
# shared state, `org serve --state postgresql://…`).
TEST_PKGS := xvfb xdotool x11-utils x11-xserver-utils x11-xkb-utils matchbox-window-manager \
	chromium poppler-utils postgresql

# What only `make bench` needs: nginx, which balances benchmarks/fleet.py's collectors.
BENCH_PKGS := nginx

.PHONY: run test lint fmt bench screenshots sysdeps testdeps benchdeps install-missing venv venv-run clean

# Runtime dependencies only: a person who wants to use ClearTrace gets no test tools.
run: sysdeps venv-run
	@echo "starting ClearTrace (it says where its icon is once it runs; quit from its menu)" >&2
	$(VENV)/bin/cleartrace

test: sysdeps testdeps venv lint
	$(PY) -m pytest -q -n 2 --durations=15

lint: venv
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

fmt: venv
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

bench: sysdeps testdeps benchdeps venv
	@for b in benchmarks/*.py; do echo "== $$b" >&2; $(PY) $$b || exit $$?; done

# Every window and tray state, rendered on a private Xvfb into docs/screenshots/.
screenshots: sysdeps testdeps venv
	@Xvfb -displayfd 1 -screen 0 1280x900x24 -nolisten tcp 2>/dev/null > .xvfb-display & xvfb=$$!; \
	for _ in $$(seq 50); do [ -s .xvfb-display ] && break; sleep 0.1; done; \
	DISPLAY=:$$(head -1 .xvfb-display) QT_QPA_PLATFORM=xcb $(PY) -m cleartrace.ui.screenshots docs/screenshots \
		2> >(grep -v propagateSizeHints >&2); status=$$?; \
	kill $$xvfb; rm -f .xvfb-display; exit $$status

# Installs through apt-get only what dpkg says is missing, so a ready machine pays nothing.
sysdeps:
	@$(MAKE) --no-print-directory install-missing PKGS="$(SYS_PKGS)"

testdeps:
	@$(MAKE) --no-print-directory install-missing PKGS="$(TEST_PKGS)"

benchdeps:
	@$(MAKE) --no-print-directory install-missing PKGS="$(BENCH_PKGS)"

install-missing:
	@missing=$$(for p in $(PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "missing system packages: $$missing (run as root or install them)" >&2; exit 2; fi; \
		echo "installing:" $$missing >&2; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# Two stamps, either order on a fresh machine: `make run` installs the runtime
# dependencies (.installed-run), `make test` and the other targets the dev
# extra on top (.installed-dev, which also stands for the runtime ones, so a
# `make run` after `make test` installs nothing). Both follow pyproject.toml.
venv: $(VENV)/.installed-dev

venv-run: $(VENV)/.installed-run

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null || $(MAKE) sysdeps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed-run

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
