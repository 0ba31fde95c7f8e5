# SearchOrchestrator: `make run` serves the embedded models over gRPC, `make test` runs every test.
DOTNET  ?= dotnet
PYTHON  ?= /usr/bin/python3
CONFIG  ?= Release
# ORT=cpu builds against the CPU-only Microsoft.ML.OnnxRuntime instead of the default CUDA build (see README.md).
ORT     ?=
# GPU=1: the container image's CUDA variant (make image).
GPU     ?= 0
BUILD_FLAGS := -c $(CONFIG) --nologo $(if $(ORT),-p:OnnxRuntimePackage=$(ORT),)
CLI     := src/SearchOrchestrator.Cli/bin/$(CONFIG)/net10.0/searchorch.dll
OUT     ?= out
DEMO_STRATEGY ?= best_of_n --param n=8
DEMO_VERIFIER ?= shapes-t2i-verifier
DEMO_PROMPTS ?= --prompt "three red circles" --prompt "five blue squares" --prompt "two green squares and one blue triangle" \
  --prompt "two blue circles" --prompt "seven red circles" --prompt "three green circles and two blue squares"
DEMO_SEED ?= 1

.DEFAULT_GOAL := help
.PHONY: help run worker demo demo-counting test browser build models models-deps evaluate clean

help: ## Show this help
	@echo "SearchOrchestrator make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-12s %s\n", $$1, $$2}'

build: ## Restore and build the solution
	$(DOTNET) build SearchOrchestrator.sln $(BUILD_FLAGS)

run: build ## Serve searched generations on 127.0.0.1:50051 (gRPC, HTTP/JSON, OpenAI-compatible, the viewer at /viewer/, /metrics; Ctrl+C stops)
	$(DOTNET) $(CLI) serve

worker: build ## Serve the worker protocol on 127.0.0.1:50061 so an orchestrator can run steps here (see README, Remote workers)
	$(DOTNET) $(CLI) worker

demo: build ## Six prompts to the shapes-t2i family: a single shot and a searched result from the same seed, captioned with the compositional judge's verdict; writes out/demo.png
	@mkdir -p $(OUT)
	$(DOTNET) $(CLI) generate --model shapes-t2i $(DEMO_PROMPTS) --compare --strategy $(DEMO_STRATEGY) --verifier $(DEMO_VERIFIER) \
	  --steps 30 --guidance 2 --eta 0.5 --seed $(DEMO_SEED) --out $(OUT)/demo.png

demo-counting: build ## For each count 1..9: a single shot and the best of eight by the count verifier; writes out/demo-counting.png
	@mkdir -p $(OUT)
	$(DOTNET) $(CLI) generate --model counting --condition all --compare --strategy best_of_n --param n=8 --verifier count-verifier \
	  --steps 50 --guidance 2 --eta 0.5 --seed $(DEMO_SEED) --out $(OUT)/demo-counting.png

test: browser ## Restore, build and run every test project (installs Debian's chromium for the viewer's browser test when missing)
	$(DOTNET) test SearchOrchestrator.sln $(BUILD_FLAGS) --logger "console;verbosity=normal"

browser: ## Install Debian's chromium (needs root) when /usr/bin/chromium is missing; Playwright drives it, never downloads one
	@test -x /usr/bin/chromium || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

models-deps: ## Install Debian's python3-torch and python3-onnx (needs root)
	@$(PYTHON) -c "import torch, onnx, numpy" 2>/dev/null || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-torch python3-onnx python3-numpy; }

models: models-deps ## Retrain every embedded model and the shapes-t2i family from fixed seeds (see models/README.md)
	cd models/training && $(PYTHON) train_count_verifier.py && $(PYTHON) train_counting.py && $(PYTHON) train_count_verifier_t.py --threads 1 && $(PYTHON) train_sudoku.py --max-seconds 7200 && $(PYTHON) train_sudoku.py --resume ../sudoku/checkpoint.pt --steps 1400 --lr 1e-3 --max-seconds 7200
	cd models/training && $(PYTHON) train_shapes_t2i.py
	$(MAKE) evaluate

evaluate: build ## Measure the counting denoiser's single-shot accuracy (200 samples per count) and the sudoku model's solve rate
	$(DOTNET) $(CLI) models evaluate --model counting --samples-per-condition 200 --steps 50 --guidance 2 --seed 1
	$(DOTNET) $(CLI) bench search --model sudoku --steps 16 --strategies best_of_n

.PHONY: bench
bench: build ## Run every benchmark into bench-results/<timestamp>/ (about an hour on 2 cores; BENCH_FLAGS=--quick: a few minutes)
	$(DOTNET) $(CLI) bench all $(BENCH_FLAGS)

clean: ## Remove build outputs, generated images (out/, stray *.png from README commands) and unfinished outputs
	$(DOTNET) clean SearchOrchestrator.sln -c $(CONFIG) --nologo -v q || true
	rm -rf $(OUT) src/*/bin src/*/obj tests/*/bin tests/*/obj samples/*/bin samples/*/obj
	rm -f *.png .*.png.*.tmp samples/*/*.png samples/*/.*.png.*.tmp

IMAGE ?= searchorch:dev
.PHONY: image
image: ## Build the container image $(IMAGE) (needs Docker; GPU=1 for the CUDA variant, see samples/deploy/README.md)
	@command -v docker >/dev/null || { echo "make image: docker is not installed here; the image is samples/deploy/docker/Dockerfile"; exit 1; }
	docker build -f samples/deploy/docker/Dockerfile --build-arg GPU=$(GPU) -t $(IMAGE) .
