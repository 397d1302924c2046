# The two commands: `make run` and `make test`. Each sets up what is missing first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# hls.js for the video player, from npm (package-lock.json), served by the app: never a CDN
HLS    := node_modules/hls.js/dist/hls.min.js
# ESLint and the rest of package.json's devDependencies: `make lint` and `make test` need them,
# `make run` does not (npm ci wipes node_modules first, so this stamp goes with it)
NODEDEV := node_modules/.dev-installed
ESLINT  := node_modules/.bin/eslint

# The suite waits on servers, processes and a browser more than it computes: more workers
# than cores (pytest-xdist; a module's tests stay on one worker, sharing its fixtures).
WORKERS ?= 3
PYTEST  := $(BIN)/python -m pytest -n $(WORKERS) --dist loadscope

.PHONY: run test test-fast setup browser nginx lint bench screenshots clean

run: setup
	$(BIN)/python app.py

# the dev packages first: their `npm ci` brings hls.js too, so setup's own one is skipped
test: $(NODEDEV) setup browser nginx
	$(BIN)/python -m ruff check .
	$(ESLINT) .
	node --test tests/js/
	$(PYTEST)

# Everything but the browser tests and the slow drills: the loop while coding.
test-fast: $(NODEDEV) setup nginx
	$(BIN)/python -m ruff check .
	$(ESLINT) .
	node --test tests/js/
	$(PYTEST) -m "not browser and not slow"

setup: $(STAMP) $(HLS)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,demo]'
	touch $@

$(HLS):
	npm ci --omit=dev --no-audit --no-fund

$(NODEDEV): package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Debian's chromium + chromedriver and a CJK font for the browser tests.
browser:
	@sh scripts/ensure-browser.sh

# Debian's nginx for deploy/'s tests and the scale-out drill (run by them as this user).
nginx:
	@sh scripts/ensure-nginx.sh

lint: $(NODEDEV) setup
	$(BIN)/python -m ruff check .
	$(ESLINT) .

bench: setup browser
	$(BIN)/python -m bench

# The README's pictures (docs/*.png), taken from a fresh demo as a newcomer first sees it
# (its history first, then ~3 min of pages); CC_DEMO_HISTORY_DAYS=14 make screenshots for a
# quick try.
screenshots: setup browser
	$(BIN)/python -m tools.screenshots $(if $(CC_DEMO_HISTORY_DAYS),--days $(CC_DEMO_HISTORY_DAYS))

clean:
	rm -rf $(VENV) var node_modules
