# SearchOrchestrator: `make run` serves the embedded models over gRPC, `make test` runs every test.
DOTNET  ?= dotnet
PYTHON  ?= /usr/bin/python3
CONFIG  ?= Release
# GPU=1 builds against Microsoft.ML.OnnxRuntime.Gpu instead of the CPU package (see README.md).
GPU     ?= 0
BUILD_FLAGS := -c $(CONFIG) --nologo $(if $(filter 1,$(GPU)),-p:UseOnnxRuntimeGpu=true,)
CLI     := src/SearchOrchestrator.Cli/bin/$(CONFIG)/net10.0/searchorch.dll
OUT     ?= out

.DEFAULT_GOAL := help
.PHONY: help run worker demo test browser build models models-deps evaluate clean

help: ## Show this help
	@echo "SearchOrchestrator make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-12s %s\n", $$1, $$2}'

build: ## Restore and build the solution
	$(DOTNET) build SearchOrchestrator.sln $(BUILD_FLAGS)

run: build ## Serve searched generations on 127.0.0.1:50051 (gRPC, HTTP/JSON, OpenAI-compatible, the viewer at /viewer/, /metrics; Ctrl+C stops)
	$(DOTNET) $(CLI) serve

worker: build ## Serve the worker protocol on 127.0.0.1:50061 so an orchestrator can run steps here (see README, Remote workers)
	$(DOTNET) $(CLI) worker

demo: build ## Generate two images for each count 1..9 with the embedded models; writes out/generated.png
	@mkdir -p $(OUT)
	$(DOTNET) $(CLI) generate --model counting --condition all --samples 18 --steps 50 --guidance 2 --seed 1 --out $(OUT)/generated.png

test: browser ## Restore, build and run every test project (installs Debian's chromium for the viewer's browser test when missing)
	$(DOTNET) test SearchOrchestrator.sln $(BUILD_FLAGS) --logger "console;verbosity=normal"

browser: ## Install Debian's chromium (needs root) when /usr/bin/chromium is missing; Playwright drives it, never downloads one
	@test -x /usr/bin/chromium || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

models-deps: ## Install Debian's python3-torch and python3-onnx (needs root)
	@$(PYTHON) -c "import torch, onnx, numpy" 2>/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-torch python3-onnx python3-numpy; }

models: models-deps ## Retrain every embedded model from its fixed seed (about an hour on 2 cores; see models/README.md)
	cd models/training && $(PYTHON) train_count_verifier.py && $(PYTHON) train_counting.py && $(PYTHON) train_sudoku.py
	$(MAKE) evaluate

evaluate: build ## Measure the counting denoiser's single-shot accuracy (200 samples per count) and the sudoku model's solve rate
	$(DOTNET) $(CLI) models evaluate --model counting --samples-per-condition 200 --steps 50 --guidance 2 --seed 1
	$(DOTNET) $(CLI) bench search --model sudoku --steps 16 --strategies best_of_n

.PHONY: bench
bench: build ## Run every benchmark into bench-results/<timestamp>/ (about an hour on 2 cores; BENCH_FLAGS=--quick: a few minutes)
	$(DOTNET) $(CLI) bench all $(BENCH_FLAGS)

clean: ## Remove build outputs and generated images
	$(DOTNET) clean SearchOrchestrator.sln -c $(CONFIG) --nologo -v q || true
	rm -rf $(OUT) src/*/bin src/*/obj tests/*/bin tests/*/obj samples/*/bin samples/*/obj
