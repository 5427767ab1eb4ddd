#!/usr/bin/env bash
# Cross-builds the CPU kernels for AArch64 (TL_KERNELS_ONLY: src/base, core,
# kern and their tests, linked statically) and runs the kernel tests under
# qemu-user:
#   - on "-cpu max" (dotprod + fp16): the NEON variant must be selected and
#     checked against the reference (test_kern_ref, test_kern_simd);
#   - on a CPU without dotprod (Cortex-A53): the selector must fall back to
#     the reference, and the tests must still pass.
# Exits 0 with a SKIP line when the cross compiler or qemu-aarch64 is absent
# (scripts/install-deps.sh installs them), nonzero when anything fails.
# BUILD_AARCH64 overrides the build directory (default build-aarch64).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD="${BUILD_AARCH64:-build-aarch64}"
JOBS="${JOBS:-$(nproc)}"
SYSROOT=/usr/aarch64-linux-gnu
TESTS=(test_kern_ref test_kern_simd test_quant)
NO_DOTPROD_CPU=cortex-a53

for tool in aarch64-linux-gnu-gcc qemu-aarch64 cmake; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "test-neon: SKIP: $tool not found (scripts/install-deps.sh installs gcc-aarch64-linux-gnu, qemu-user)"
    exit 0
  fi
done

echo "test-neon: configuring $BUILD (aarch64, kernels only)"
mkdir -p "$BUILD"
cmake -S . -B "$BUILD" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
  -DTL_KERNELS_ONLY=ON -DTL_WERROR=ON -DCMAKE_BUILD_TYPE=Release >"$BUILD/configure.log" 2>&1 ||
  { cat "$BUILD/configure.log"; echo "test-neon: FAIL: configure"; exit 1; }
cmake --build "$BUILD" -j "$JOBS" --target "${TESTS[@]}"

fail=0
# run CPU TEST EXPECT: runs one test under qemu on CPU and checks that its
# output contains EXPECT (which variant it compared), besides exiting 0.
run() {
  local cpu=$1 t=$2 expect=$3 out rc=0
  local t0=$SECONDS
  out=$(qemu-aarch64 -cpu "$cpu" -L "$SYSROOT" "$BUILD/bin/$t" 2>&1) || rc=$?
  if [ "$rc" -ne 0 ]; then
    printf '%s\n' "$out" | tail -30
    echo "test-neon: FAIL: $t on $cpu (exit $rc)"
    fail=1
  elif [ -n "$expect" ] && ! grep -q "$expect" <<<"$out"; then
    printf '%s\n' "$out" | tail -30
    echo "test-neon: FAIL: $t on $cpu: expected \"$expect\" in its output"
    fail=1
  else
    echo "test-neon: ok   $t on $cpu ($((SECONDS - t0))s): $(tail -1 <<<"$out")"
  fi
}

run max test_kern_ref "checking variant neon against ref"
run max test_kern_simd "checking variant neon"
run max test_quant ""
run "$NO_DOTPROD_CPU" test_kern_ref "test_kern_ref: all checks passed"
run "$NO_DOTPROD_CPU" test_kern_simd "no SIMD variant on this CPU/build"

if [ "$fail" -ne 0 ]; then
  echo "test-neon: FAILED"
  exit 1
fi
echo "test-neon: all passed (neon on -cpu max, reference fallback on -cpu $NO_DOTPROD_CPU)"
