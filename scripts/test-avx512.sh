#!/usr/bin/env bash
# test-avx512.sh — run the kernel tests' AVX-512 paths on a machine without
# AVX-512, under tests/emu/run_x86.py (the Bochs CPU, reporting a Tiger Lake:
# AVX-512 F/BW/VL/DQ + VNNI, no BF16; and for the BF16 kernels a Sapphire
# Rapids, which adds AVX512_BF16).
#
#   scripts/test-avx512.sh            # build-emu/: venv, static build, run
#   TL_EMU_TESTS="test_kern_ref" scripts/test-avx512.sh    # a subset (of the
#                                     # TL_KERNELS_ONLY tests; default: test_kern_ref test_kern_simd
#                                     # test_matmul)
#
# Steps: (1) a venv with bochscpu-python in build-emu/venv (pip; an offline
# wheel directory can be given in TL_EMU_WHEELS) — when it cannot be had,
# print SKIP and exit 0; (2) a static build of the kernel tests with the
# AVX-512 kernels compiled in (the top-level CMakeLists.txt with
# TL_KERNELS_ONLY=ON, linked -static: cJSON/oniguruma have no static
# archives, and the kernel tests need neither), and of the emulator's own
# test programs; (3) those programs: AVX-512F/BW/VNNI instructions against
# scalar code, the syscalls, exit codes and fault reporting; (4) each kernel
# test under the emulator with TL_CPU=avx512 (and TL_TEST_VARIANTS=avx512:
# avx2 runs natively in ctest), failing unless it reports having checked
# the avx512 variant (test_matmul, the CPU backend's product driver, runs
# with TL_TEST_EMU=1: one thread, short batches; it must report the avx512
# kernels) — and, for test_kern_simd, with BF16's vec_dot and gemm left to
# the avx2 kernels (Tiger Lake has no AVX512_BF16; the bf16x16 repack
# needs AVX-512F alone and is avx512's there too) and split into TL_EMU_SHARDS
# processes (default: the CPU count, at least 2; TL_TEST_SHARD in the test)
# that run side by side; test_kern_simd once more on the
# Sapphire Rapids model, narrowed to BF16 (TL_TEST_TYPES=bf16: the rest of
# the table is the same on both), failing unless the avx512 BF16 kernels
# were the ones checked. Exit: 0 pass or SKIP, 1 a failure.
set -u -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${TL_EMU_BUILD:-$ROOT/build-emu}
VENV=$OUT/venv
PY=$VENV/bin/python
RUN="$ROOT/tests/emu/run_x86.py"
TESTS=${TL_EMU_TESTS:-"test_kern_ref test_kern_simd test_matmul"}
START=$(date +%s)

say() { printf 'test-avx512: %s\n' "$*"; }
die() { say "FAIL: $*"; exit 1; }
skip() { say "SKIP: $*"; exit 0; }

# ---- (1) bochscpu in a venv
mkdir -p "$OUT"
if ! TL_EMU_VENV=$VENV TL_EMU_CACHE=$OUT "$PY" "$RUN" --check >/dev/null 2>&1; then
    if [ ! -x "$PY" ]; then
        python3 -m venv "$VENV" >/dev/null 2>&1 || skip "cannot create a venv (python3-venv missing?)"
    fi
    pip_args=(install --quiet --disable-pip-version-check --no-deps --require-hashes)
    [ -n "${TL_EMU_WHEELS:-}" ] && pip_args+=(--find-links "$TL_EMU_WHEELS")
    "$PY" -m pip "${pip_args[@]}" -r "$ROOT/tests/emu/requirements.txt" >"$OUT/pip.log" 2>&1 ||
        skip "cannot install bochscpu-python (see $OUT/pip.log)"
    TL_EMU_VENV=$VENV TL_EMU_CACHE=$OUT "$PY" "$RUN" --check >"$OUT/check.log" 2>&1 ||
        skip "bochscpu does not load here (see $OUT/check.log)"
fi
export TL_EMU_VENV=$VENV TL_EMU_CACHE=$OUT  # the venv; where run_x86.py builds its glibc shim

# ---- (2) static builds
have_avx512=0
ls "$ROOT"/src/kern/cpu/avx512/*.c >/dev/null 2>&1 && have_avx512=1
BIN=$OUT/kern/bin
cmake -S "$ROOT" -B "$OUT/kern" -DTL_KERNELS_ONLY=ON -DTL_WERROR=ON -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_EXE_LINKER_FLAGS=-static >"$OUT/cmake.log" 2>&1 ||
    { tail -30 "$OUT/cmake.log"; die "cmake configure failed (full log: $OUT/cmake.log)"; }
# shellcheck disable=SC2086
cmake --build "$OUT/kern" -j2 --target $TESTS >>"$OUT/cmake.log" 2>&1 ||
    { tail -30 "$OUT/cmake.log"; die "build failed (full log: $OUT/cmake.log)"; }
for p in avx512_smoke emu_selftest; do
    cc -O2 -static -Wall -Wextra -Werror -o "$BIN/$p" "$ROOT/tests/emu/$p.c" >>"$OUT/cmake.log" 2>&1 ||
        { tail -30 "$OUT/cmake.log"; die "cannot build tests/emu/$p.c"; }
done
BUILT=$(date +%s)
say "built in $((BUILT - START))s"

# ---- (3) the emulator itself
"$PY" "$RUN" --cpu avx512 "$BIN/avx512_smoke" >"$OUT/avx512_smoke.log" 2>&1 ||
    { cat "$OUT/avx512_smoke.log"; die "avx512_smoke failed under the emulator"; }
grep -q "SMOKE OK" "$OUT/avx512_smoke.log" || die "avx512_smoke printed no verdict"
# syscalls, exit codes, faults: mode:expected-exit-status[:cpu]
for c in mem:0 "exit 3":3 segv:139 abort:134 vnni:0 vnni:132:avx512-novnni; do
    IFS=: read -r mode want cpu <<<"$c"
    # shellcheck disable=SC2086  # "exit 3" is two arguments
    TL_EMU_SELFTEST=yes "$PY" "$RUN" --cpu "${cpu:-avx512}" "$BIN/emu_selftest" $mode \
        >"$OUT/emu_selftest.log" 2>&1
    rc=$?
    [ "$rc" = "$want" ] || { cat "$OUT/emu_selftest.log"; die "emu_selftest $mode (cpu ${cpu:-avx512}): exit $rc, want $want"; }
done
say "emulator runs AVX-512F/BW/VNNI, syscalls and faults: ok"

if [ "$have_avx512" = 0 ]; then
    skip "src/kern/cpu/avx512 has no sources yet: nothing to compare (emulator ok)"
fi

# ---- (4) kernel tests, concurrently (each is single-threaded). A run is
# test:cpu:types:shard; its log is $OUT/test[.cpu][.shard-i-of-n].log
# (.cpu: not the default model).
SHARDS=${TL_EMU_SHARDS:-$(nproc 2>/dev/null || echo 2)}
[ "$SHARDS" -ge 2 ] 2>/dev/null || SHARDS=2
runs=()
for t in $TESTS; do
    [ -x "$BIN/$t" ] || die "$BIN/$t was not built"
    if [ "$t" = test_kern_simd ]; then
        for ((i = 0; i < SHARDS; i++)); do runs+=("$t:avx512::$i/$SHARDS"); done
        runs+=("$t:avx512bf16:bf16:")
    else
        runs+=("$t:avx512::")
    fi
done
job_log() {
    local l=$OUT/$1
    [ "$2" = avx512 ] || l=$l.$2
    [ -z "$3" ] || l=$l.shard-${3%/*}-of-${3#*/}
    echo "$l"
}
pids=()
for j in "${runs[@]}"; do
    IFS=: read -r t cpu types shard <<<"$j"
    log=$(job_log "$t" "$cpu" "$shard")
    rm -f "$log.status"
    (
        s=$(date +%s)
        TL_CPU=avx512 TL_TEST_VARIANTS=avx512 TL_TEST_TYPES=$types TL_TEST_SHARD=$shard TL_TEST_EMU=1 \
            "$PY" "$RUN" --cpu "$cpu" --stats "$BIN/$t" >"$log.log" 2>&1
        rc=$?
        echo "rc=$rc seconds=$(( $(date +%s) - s ))" >"$log.status"
    ) &
    pids+=($!)
done
wait "${pids[@]}"

fail=0
for j in "${runs[@]}"; do
    IFS=: read -r t cpu types shard <<<"$j"
    log=$(job_log "$t" "$cpu" "$shard")
    name="$t${types:+ ($types)}${shard:+ (shard $shard)} on $cpu"
    status=$(cat "$log.status" 2>/dev/null || echo "rc=? seconds=?")
    rc=${status#rc=}
    rc=${rc%% *}
    # which BF16 kernels the avx512 variant must hold on this model
    bf16_want=
    [ "$t" = test_kern_simd ] && bf16_want=$([ "$cpu" = avx512bf16 ] && echo avx512 || echo avx2)
    if [ "$rc" != 0 ]; then
        tail -20 "$log.log"
        say "$name: FAIL ($status; log $log.log)"
        fail=1
    elif [ "$t" = test_matmul ] && ! grep -q "test_matmul: avx512 kernels" "$log.log"; then
        grep -i "kernels" "$log.log" | head
        say "$name: FAIL: the backend did not run the avx512 kernels"
        fail=1
    elif [[ $t == test_kern_* ]] && ! grep -q "checking variant avx512" "$log.log"; then
        grep -i "variant\|TL_CPU\|cpu kernels" "$log.log" | head
        say "$name: FAIL: the avx512 variant was not checked (not compiled in, or not usable on the emulated CPU)"
        fail=1
    elif [ -n "$bf16_want" ] && ! grep -qx "checking variant avx512: bf16 kernels from $bf16_want" "$log.log"; then
        grep -i "bf16" "$log.log" | head
        say "$name: FAIL: the avx512 variant's BF16 kernels should be $bf16_want's here"
        fail=1
    else
        say "$name: ok ($status${bf16_want:+; bf16 kernels: $bf16_want})"
    fi
done
say "total $(( $(date +%s) - START ))s"
[ "$fail" = 0 ] || exit 1
say "PASS"
