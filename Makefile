# The two commands of the README are `make serve` and `make test`; every target creates the
# virtual environment and installs what it needs by itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
HOST ?= 127.0.0.1
MPG_PORT ?= 8080
IMAGE_PORT ?= 8081
FUNCTION := $(BIN)/functions-framework --source functions/main.py --host $(HOST)

.PHONY: install serve test lint models bench checkov clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"

# Runtime only: what Cloud Functions installs from functions/requirements.txt.
$(RUNTIME_STAMP): functions/requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r functions/requirements.txt
	touch $@

# Training and test tools: the dependency groups of pyproject.toml.
$(DEV_STAMP): pyproject.toml $(RUNTIME_STAMP)
	$(BIN)/pip install --quiet --group train --group dev
	touch $@

install: $(DEV_STAMP)

# THREADS as deployed (terraform/README.md): 1 for predict_mpg, 2 per CPU for classify_image.
serve: $(RUNTIME_STAMP)
	@test -f model_bucket/image/LATEST || echo "note: no image model in model_bucket/image yet;" \
		"classify_image answers 503 until 'make models' imports one."
	@echo "predict_mpg on http://$(HOST):$(MPG_PORT)  classify_image on http://$(HOST):$(IMAGE_PORT)"
	@trap 'kill $$(jobs -p) 2>/dev/null' INT TERM EXIT; \
	THREADS=$${THREADS:-1} $(FUNCTION) --target predict_mpg --port $(MPG_PORT) & \
	THREADS=$${THREADS:-$$((2 * $$(nproc)))} $(FUNCTION) --target classify_image \
		--port $(IMAGE_PORT) & \
	wait

test: lint
	$(BIN)/python -m pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check .

# The MPG model is trained here; the image model is imported from IMAGENET_TFLITE when it is
# set (labels beside it), else built with Keras (needs the network for ImageNet weights).
# IMAGE_FLOAT=1 stores the quantized model's float32 twin instead (checked on SHARED_IMAGES):
# faster on CPUs without AVX-512 VNNI, 4x the file and ~40 MB more memory (benchmarks/RESULTS.md).
IMAGE_FLOAT ?=
models: $(DEV_STAMP)
	$(BIN)/python -m train.mpg
	if [ -n "$$IMAGENET_TFLITE" ]; then \
		$(BIN)/python -m train.image import --tflite "$$IMAGENET_TFLITE" \
			--labels "$$(dirname "$$IMAGENET_TFLITE")/imagenet_labels.txt" \
			$(if $(IMAGE_FLOAT),--float $${SHARED_IMAGES:+--parity-images "$$SHARED_IMAGES"}); \
	else \
		$(BIN)/python -m train.image keras --weights imagenet; \
	fi

SHARED ?= $(abspath ../shared)

# Benchmarks -> benchmarks/RESULTS.md and results.png: both functions against their floor, the
# lesson and the peers (BentoML, LitServe), and gs:// cold starts against the Cloud Storage
# emulator (~9 min; the first run also creates the peers' environments under benchmarks/.work,
# once). BENCH_ARGS=--quick for a smoke run without the peers; BENCH_ARGS=--no-peers to skip them.
bench: $(DEV_STAMP)
	SHARED_IMAGES="$${SHARED_IMAGES:-$(SHARED)/images}" \
	IMAGENET_TFLITE="$${IMAGENET_TFLITE:-$(SHARED)/models/mobilenet_v2_imagenet_quant/mobilenet_v2_1.0_224_quant.tflite}" \
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# Checkov runs from its own virtual environment: its pins clash with pytest's.
checkov:
	scripts/checkov.sh

clean:
	rm -rf $(VENV) .venv-checkov .pytest_cache .ruff_cache
