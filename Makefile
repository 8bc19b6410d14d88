# starquad — the two README commands:
#   make reproduce   set everything up, then run the main job on the embedded data
#   make test        set everything up, then run ruff and the whole test suite
# Re-running is cheap: the virtual environment is reinstalled only when pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
FASHION_MNIST_DIR ?= /usr/share/datasets/fashion-mnist
REPRODUCE_ARGS ?= --quick
PYTEST_ARGS ?=
# pytest-xdist workers for make test: one per core
TEST_WORKERS ?= auto

.PHONY: reproduce test lint setup data clean help

help:
	@echo "make reproduce  - set up and run 'starquad reproduce $(REPRODUCE_ARGS)' (report in reproduce/)"
	@echo "make test       - set up and run ruff + the whole pytest suite"
	@echo "make setup      - only create $(VENV) and install starquad with its deps"
	@echo "make data       - only install Fashion-MNIST (Debian package) if missing"

reproduce: setup data
	$(VENV)/bin/starquad reproduce $(REPRODUCE_ARGS)

test: setup data
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

setup: $(INSTALLED)
	@$(PY) -c 'from starquad.ops.dwconv import build; build()'  # the fast depthwise backward, once per machine

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "starquad needs Python >= 3.10; set PYTHON=/path/to/python3.x")'
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

data:
	@FASHION_MNIST_DIR='$(FASHION_MNIST_DIR)' bash scripts/install-fashion-mnist.sh

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
