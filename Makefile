# keras-convnets: `make train` and `make test` do all set-up themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FASHION_MNIST_DIR := /usr/share/datasets/fashion-mnist
# Extra flags, e.g. `make train TRAIN_ARGS="--epochs 3"`, `make test PYTEST_ARGS=-x`.
TRAIN_ARGS ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: install data train test test-slow bench lint format clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstall only when the package metadata changes (the install is editable).
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Fashion-MNIST from Debian's package when apt is usable as root; otherwise the
# package falls back to TensorFlow Datasets (which needs the network once).
data:
	@if ls $(FASHION_MNIST_DIR)/train-images-idx3-ubyte* >/dev/null 2>&1; then \
	  echo "Fashion-MNIST: $(FASHION_MNIST_DIR)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Installing Debian's dataset-fashion-mnist..."; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
	    || echo "apt-get failed: training will try TensorFlow Datasets."; \
	else \
	  echo "No root apt-get: Fashion-MNIST will come from TensorFlow Datasets (network needed once)."; \
	fi

train: install data
	$(VENV)/bin/keras-convnets train $(TRAIN_ARGS)

test: install data
	$(PY) -m pytest -n 2 --dist worksteal -m "not slow" $(PYTEST_ARGS)

test-slow: install data
	$(PY) -m pytest -n 2 --dist worksteal -m slow $(PYTEST_ARGS)

# keras-cv (no longer released) is only ever a benchmark peer: the bench extra.
$(VENV)/.installed-bench: pyproject.toml | $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]' || echo "bench extra failed: peers missing from it are reported as unavailable"
	touch $@

bench: install data $(VENV)/.installed-bench
	@for script in benchmarks/[!_]*.py; do \
	  echo "== $$script"; $(PY) $$script $(BENCH_ARGS) || exit 1; \
	done

lint: install
	$(VENV)/bin/ruff check keras_convnets tests benchmarks
	$(VENV)/bin/ruff format --check keras_convnets tests benchmarks

format: install
	$(VENV)/bin/ruff format keras_convnets tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
