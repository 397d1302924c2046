# The two commands: `make run` and `make test`. Each sets up what is missing first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# hls.js for the video player, from npm (package-lock.json), served by the app: never a CDN
HLS    := node_modules/hls.js/dist/hls.min.js

.PHONY: run test setup browser lint bench clean

run: setup
	$(BIN)/python app.py

test: setup browser
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest

setup: $(STAMP) $(HLS)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,demo]'
	touch $@

$(HLS):
	npm ci --omit=dev --no-audit --no-fund

# Debian's chromium + chromedriver and a CJK font for the browser tests.
browser:
	@sh scripts/ensure-browser.sh

lint: setup
	$(BIN)/python -m ruff check .

bench: setup browser
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var node_modules
