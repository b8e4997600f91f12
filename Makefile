# Reelhouse: `make run` starts the server, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup setup-test system-deps run test lint bench-upload bench-transcode bench-serve bench-ws

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

setup: $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	@if command -v npm >/dev/null; then npm ci --silent --no-audit --no-fund || true; fi

run: setup
	$(BIN)/python run.py

# Debian packages the tests use as real peers: ffmpeg/ffprobe, Chromium, nginx, wrk and
# GStreamer's players; npm installs the browser libraries the UI serves.
GST := gstreamer1.0-tools gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav
system-deps:
	@if ! dpkg -s ffmpeg chromium nginx wrk $(GST) >/dev/null 2>&1 || ! command -v npm >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  NPM=$$(command -v npm >/dev/null || echo npm); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq ffmpeg chromium nginx wrk $(GST) $$NPM >/dev/null; \
	fi

setup-test: $(BIN)/python system-deps
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	npm ci --silent --no-audit --no-fund

lint:
	$(BIN)/ruff check .
	$(BIN)/mypy --strict

test: setup-test lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench-upload: setup-test
	$(BIN)/python bench/upload.py

bench-transcode: setup-test
	$(BIN)/python bench/transcode.py

bench-serve: setup-test
	$(BIN)/python bench/serve.py

bench-ws: setup-test
	$(BIN)/python bench/ws.py
