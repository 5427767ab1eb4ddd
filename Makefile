# Thin wrapper over CMake. `make run` and `make test` do all set-up.
BUILD ?= build
JOBS  ?= $(shell nproc)
MAKEFLAGS += --no-print-directory
CMAKE_FLAGS ?=
MODEL ?=
PROMPT ?= Once upon a time

.PHONY: all deps build run test test-asan test-real test-neon test-avx512 fuzz-smoke clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@bash scripts/run-default.sh "$(MODEL)" "$(PROMPT)"

test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Real models (fetched on first use; a model that cannot be fetched is skipped).
test-real: build
	@bash tests/real/run.sh $(BUILD)

# The whole suite once more under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTL_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build build-asan -j $(JOBS)
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS)

# The NEON kernels, cross-built for AArch64 and tested under qemu-user
# (build-aarch64), then the whole CLI (build-aarch64-full, against Debian's
# arm64 multiarch libraries) through the golden-logit tests; prints SKIP
# when the cross tools (or, for the second part, the arm64 libraries) are absent.
test-neon: deps
	@bash scripts/install-deps.sh --neon
	@bash scripts/test-neon.sh

# The AVX-512/VNNI kernels, run under a Bochs-CPU user-mode emulator
# (tests/emu/) on machines without AVX-512; prints SKIP when bochscpu cannot
# be installed from PyPI.
test-avx512: deps
	@bash scripts/test-avx512.sh

# Every fuzz target (GGUF, safetensors + config/tokenizer.json, native, text
# tokenization) for a bounded time; FUZZ_SECONDS=600 for a real session.
fuzz-smoke:
	@bash scripts/install-deps.sh --fuzz
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-20} bash scripts/fuzz.sh

clean:
	rm -rf build build-asan build-fuzz
