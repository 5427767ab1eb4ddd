#!/usr/bin/env bash
# Cross-builds torchless for AArch64 and runs it under qemu-user, in two parts:
# 1. Kernels (TL_KERNELS_ONLY: src/base, core, kern, backend and their
#    tests, linked statically, in $BUILD):
#   - on "-cpu max" (dotprod + fp16): the NEON variant must be selected and
#     checked against the reference (test_kern_ref, test_kern_simd), and the
#     CPU backend's product driver must run on it (test_matmul);
#   - on a CPU without dotprod (Cortex-A53): the selector must fall back to
#     the reference, and the tests must still pass.
# 2. End to end (in $BUILD-full): the `torchless` CLI target only (not the
#    tests: aarch64 gcc 12 ICEs on some test sources), linked dynamically
#    against Debian's arm64 multiarch packages (libcjson-dev:arm64,
#    libonig5:arm64; Debian ships no static archives of them), then
#    tests/test_golden_logits.sh and tests/test_kv_q8.sh with TL_BIN pointing
#    at a `torchless` wrapper that runs it under qemu-aarch64 -cpu max: every
#    model and quant type through the NEON kernels, against llama.cpp's logits.
#    `torchless --version` must report "cpu: neon" under that wrapper.
#    libonig-dev:arm64 cannot be installed beside libonig-dev (bookworm's is not
#    Multi-Arch: same; apt would remove the amd64 one), so the dev symlink and
#    .pc file for libonig.so.5 are made in $BUILD-full/arm64-dev (the headers
#    are arch-independent and come from libonig-dev). Skipped with a SKIP line
#    when the arm64 libraries or the arm64 loader are absent, or ../shared is.
# Exits 0 with a SKIP line when the cross compiler or qemu-aarch64 is absent
# (scripts/install-deps.sh --neon installs them), nonzero when anything fails.
# BUILD_AARCH64 overrides the build directory (default build-aarch64; the
# end-to-end build goes to $BUILD_AARCH64-full).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD="${BUILD_AARCH64:-build-aarch64}"
JOBS="${JOBS:-$(nproc)}"
SYSROOT=/usr/aarch64-linux-gnu
TESTS=(test_kern_ref test_kern_simd test_quant test_matmul)
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
run max test_matmul "test_matmul: neon kernels"
run "$NO_DOTPROD_CPU" test_kern_ref "test_kern_ref: all checks passed"
run "$NO_DOTPROD_CPU" test_kern_simd "no SIMD variant on this CPU/build"

# ---- 2. end to end: the CLI, dynamically linked, against the golden logits
MA=/usr/lib/aarch64-linux-gnu
FULL="$BUILD-full"
e2e="skipped"
e2e_missing=""
for f in "$MA/libcjson.so" "$MA/pkgconfig/libcjson.pc" "$MA/libonig.so.5" \
         /usr/include/cjson/cJSON.h /usr/include/oniguruma.h /lib/ld-linux-aarch64.so.1; do
  [ -e "$f" ] || e2e_missing+=" $f"
done
if [ -n "$e2e_missing" ]; then
  echo "test-neon: SKIP: end-to-end NEON tests: missing$e2e_missing" \
       "(scripts/install-deps.sh --neon installs libcjson-dev:arm64 libonig5:arm64)"
elif ! command -v pkg-config >/dev/null 2>&1; then
  echo "test-neon: SKIP: end-to-end NEON tests: pkg-config not found"
else
  # libonig.so and oniguruma.pc for arm64 (see the header: no libonig-dev:arm64)
  DEV="$PWD/$FULL/arm64-dev"
  mkdir -p "$DEV/lib" "$DEV/pkgconfig"
  ln -sfn "$MA/libonig.so.5" "$DEV/lib/libonig.so"
  onig_ver=$(dpkg-query -W -f='${Version}' libonig5:arm64 2>/dev/null | sed 's/-[^-]*$//')
  printf '%s\n' "libdir=$DEV/lib" "includedir=/usr/include" "" "Name: oniguruma" \
    "Description: Regular expression library (arm64 libonig5, dev link made by test-neon.sh)" \
    "Version: ${onig_ver:-6}" "Libs: -L\${libdir} -lonig" "Cflags: -I\${includedir}" >"$DEV/pkgconfig/oniguruma.pc.new"
  cmp -s "$DEV/pkgconfig/oniguruma.pc.new" "$DEV/pkgconfig/oniguruma.pc" 2>/dev/null ||
    mv "$DEV/pkgconfig/oniguruma.pc.new" "$DEV/pkgconfig/oniguruma.pc"
  rm -f "$DEV/pkgconfig/oniguruma.pc.new"

  echo "test-neon: configuring $FULL (aarch64, full CLI, dynamic against the arm64 multiarch libs)"
  cmake -S . -B "$FULL" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
    -DTL_CROSS_STATIC=OFF -DTL_CROSS_PKG_CONFIG_LIBDIR="$MA/pkgconfig:$DEV/pkgconfig" \
    -DCMAKE_SKIP_BUILD_RPATH=ON \
    -DTL_WERROR=ON -DCMAKE_BUILD_TYPE=Release >"$FULL/configure.log" 2>&1 ||
    { cat "$FULL/configure.log"; echo "test-neon: FAIL: configure $FULL"; exit 1; }
  t0=$SECONDS
  cmake --build "$FULL" -j "$JOBS" --target torchless >"$FULL/build.log" 2>&1 ||
    { tail -40 "$FULL/build.log"; echo "test-neon: FAIL: build torchless (aarch64)"; exit 1; }
  echo "test-neon: built $FULL/bin/torchless ($((SECONDS - t0))s)"

  # The wrapper the shell tests run as $TL_BIN/torchless. No -L: the arm64
  # loader and libc (libc6:arm64) and the libraries are at their multiarch
  # paths, where the arm64 ld.so looks.
  WRAP=$(mktemp -d)
  trap 'rm -rf "$WRAP"' EXIT
  printf '#!/bin/sh\nexec qemu-aarch64 -cpu max "%s" "$@"\n' "$PWD/$FULL/bin/torchless" >"$WRAP/torchless"
  chmod +x "$WRAP/torchless"

  # --version prints the variant tl_cpu_variant() selected: it must be neon.
  if ! ver=$("$WRAP/torchless" --version 2>&1); then
    printf '%s\n' "$ver" | tail -20
    echo "test-neon: FAIL: torchless --version under qemu-aarch64"
    fail=1
  elif ! grep -q "cpu: neon" <<<"$ver"; then
    echo "test-neon: FAIL: expected \"cpu: neon\" from torchless --version, got: $ver"
    fail=1
  else
    echo "test-neon: ok   $ver (under qemu-aarch64 -cpu max)"
    e2e="passed"
    for t in test_golden_logits test_kv_q8; do
      t0=$SECONDS rc=0
      out=$(TL_BIN="$WRAP" bash "tests/$t.sh" 2>&1) || rc=$?
      if [ "$rc" -eq 77 ]; then
        echo "test-neon: SKIP: $t: $(tail -1 <<<"$out")"
        e2e="skipped (no fixtures)"
      elif [ "$rc" -ne 0 ]; then
        grep -v '^ok ' <<<"$out" | tail -30
        echo "test-neon: FAIL: $t on aarch64 (exit $rc): $(tail -1 <<<"$out")"
        fail=1
      else
        echo "test-neon: ok   $t on aarch64 -cpu max ($((SECONDS - t0))s): $(tail -1 <<<"$out")"
      fi
    done
  fi
fi

if [ "$fail" -ne 0 ]; then
  echo "test-neon: FAILED"
  exit 1
fi
echo "test-neon: all passed (neon on -cpu max, reference fallback on -cpu $NO_DOTPROD_CPU;" \
     "end to end: $e2e)"
