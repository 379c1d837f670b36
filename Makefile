# The two commands of the README are `make serve` and `make test`; every target creates the
# virtual environment and installs what it needs by itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
NODE_STAMP := node_modules/.installed
HOST ?= 127.0.0.1
MPG_PORT ?= 8080
IMAGE_PORT ?= 8081
FUNCTION := $(BIN)/functions-framework --source functions/main.py --host $(HOST)

.PHONY: install bytecode serve test lint models bench checkov clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"

# Runtime: what Cloud Functions installs from functions/requirements.txt, plus the project
# itself (editable, no dependencies) so that modelserve, train and benchmarks import.
$(RUNTIME_STAMP): functions/requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r functions/requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# Training and test tools: the dependency groups of pyproject.toml.
$(DEV_STAMP): pyproject.toml $(RUNTIME_STAMP)
	$(BIN)/pip install --quiet --group train --group dev
	touch $@

# Postman's runner (newman) for tests/integration/test_postman.py, pinned in package-lock.json.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(DEV_STAMP)

# The project's own modules compiled once, as pip compiles what it installs: with
# PYTHONDONTWRITEBYTECODE set (as on these machines), every function process, server and
# training subprocess would otherwise compile functions/ from source at start (measured:
# +26 ms on predict_mpg's cold start, +36 ms on classify_image's). Only changed files recompile.
bytecode: $(RUNTIME_STAMP)
	$(BIN)/python -m compileall -q functions train benchmarks tests

# THREADS and WORKERS as deployed: each function's declaration (modelserve/declarations.py).
# predict_mpg starts first and never waits for classify_image's one-time model step
# (scripts/image-model.sh).
RULE_OF = $(BIN)/python -m modelserve.declarations
serve: bytecode
	@echo "predict_mpg on http://$(HOST):$(MPG_PORT)  classify_image on http://$(HOST):$(IMAGE_PORT)"
	@trap 'kill $$(jobs -p) 2>/dev/null' INT TERM EXIT; \
	THREADS=$${THREADS:-$$($(RULE_OF) threads predict_mpg)} \
	WORKERS=$${WORKERS:-$$($(RULE_OF) workers predict_mpg)} \
		$(FUNCTION) --target predict_mpg --port $(MPG_PORT) & \
	scripts/image-model.sh $(BIN); \
	THREADS=$${THREADS:-$$($(RULE_OF) threads classify_image)} \
	WORKERS=$${WORKERS:-$$($(RULE_OF) workers classify_image)} \
		$(FUNCTION) --target classify_image --port $(IMAGE_PORT) & \
	wait

# The Google provider's resource schema (npm, 32 MB packed), unpacked once for
# tests/unit/test_terraform_provider_schema.py to compare its vendored argument names with.
PROVIDER_GOOGLE_VERSION := 16.12.1
PROVIDER_GOOGLE := node_modules/.cache/cdktf-provider-google-$(PROVIDER_GOOGLE_VERSION)
$(PROVIDER_GOOGLE)/package.json: | $(NODE_STAMP)
	mkdir -p $(PROVIDER_GOOGLE)
	cd $(dir $(PROVIDER_GOOGLE)) && npm pack --silent @cdktf/provider-google@$(PROVIDER_GOOGLE_VERSION) \
		&& tar -xzf cdktf-provider-google-$(PROVIDER_GOOGLE_VERSION).tgz --strip-components=1 \
			-C cdktf-provider-google-$(PROVIDER_GOOGLE_VERSION) \
		&& rm cdktf-provider-google-$(PROVIDER_GOOGLE_VERSION).tgz

# pytest-xdist: two workers per CPU, since many tests wait on a real server or subprocess;
# each test file runs whole on one worker (its module fixtures, e.g. a training, built once),
# and the longest files are handed out first, in the order tests/conftest.py sorts them
# (--no-loadscope-reorder: xdist would otherwise order files by their count of tests).
PYTEST_WORKERS ?= $(shell expr 2 \* $$(nproc))
test: lint bytecode $(NODE_STAMP) $(PROVIDER_GOOGLE)/package.json
	CDKTF_PROVIDER_GOOGLE=$(abspath $(PROVIDER_GOOGLE)) $(BIN)/python -m pytest \
		-n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

lint: $(DEV_STAMP)
	$(BIN)/ruff check .

# The MPG model is trained here; the image model is imported from IMAGENET_TFLITE when it is
# set (labels beside it), else built with Keras (needs the network for ImageNet weights).
models: $(DEV_STAMP)
	$(BIN)/python -m train.mpg
	if [ -n "$$IMAGENET_TFLITE" ]; then \
		$(BIN)/python -m train.image import --tflite "$$IMAGENET_TFLITE" \
			--labels "$$(dirname "$$IMAGENET_TFLITE")/imagenet_labels.txt"; \
	else \
		$(BIN)/python -m train.image keras --weights imagenet; \
	fi

SHARED ?= $(abspath ../shared)

# Benchmarks -> benchmarks/RESULTS.md and results.png: both functions against their floor, the
# lesson and the peers (BentoML, LitServe), and gs:// cold starts against the Cloud Storage
# emulator (~9 min; the first run also creates the peers' environments under benchmarks/.work,
# once). BENCH_ARGS=--quick for a smoke run without the peers; BENCH_ARGS=--no-peers to skip them.
bench: $(DEV_STAMP) bytecode
	SHARED_IMAGES="$${SHARED_IMAGES:-$(SHARED)/images}" \
	IMAGENET_TFLITE="$${IMAGENET_TFLITE:-$(SHARED)/models/mobilenet_v2_imagenet_quant/mobilenet_v2_1.0_224_quant.tflite}" \
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# Checkov runs from its own virtual environment: its pins clash with pytest's.
checkov:
	scripts/checkov.sh

clean:
	rm -rf $(VENV) .venv-checkov .pytest_cache .ruff_cache node_modules
