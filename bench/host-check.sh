#!/usr/bin/env bash
# host-check.sh — one command for a machine of another CPU kind (an AVX-512
# host lent for a few minutes, say): which kernels CPUID selects there, the
# kernel and logits tests run natively on it, and the speed of each kernel
# variant it can run, side by side in one process where that matters.
#
#   bench/host-check.sh [THREADS=2] [OUTDIR]
#
# OUTDIR defaults to $OUT (the folder the device tool brings back), else
# build-host/check. The fixtures are ../shared, or TL_SHARED, or ./shared
# when the tree was copied with one inside it.
#
# Steps, each timed (the whole is sized for a 10-minute slot on a 16-core
# host), the most wanted first, so that a run cut short still says most:
#   1. CPU model and flags; a Release build in build-host/ (a build/ carried
#      from another CPU is left alone; -march is never native, the variants
#      are chosen at run time). HC_PREBUILT=DIR instead takes DIR/bin (and
#      DIR/lib on the library path): a build made elsewhere and carried, for
#      a host that lacks our Debian libraries (the device machine has none);
#      bench/device-pack.sh makes DIR and prints the command to run there.
#   2. test_kern_simd and test_matmul (every variant this CPU runs against the
#      reference), test_golden_logits (llama.cpp's logits, native kernels and
#      TL_CPU=ref) when ../shared (or TL_SHARED) is there; with only some of
#      the fixture models there (a carried subset), those present, native.
#   3. The TinyLlama-shaped speed files in SPEED (default /tmp/speed), made
#      with `torchless synth` + `torchless quantize` when missing.
#   4. bench/compare.sh against llama.cpp and ik_llama.cpp when LLAMA_BIN or
#      IK_BIN name their build/bin directories (built by hand, or carried).
#   5. For each variant (avx512 when the CPU has AVX-512F/BW/VL, then avx2):
#      `torchless bench -p 128 -n 32` on the four files, `-p 2` and `-p 4`
#      (the few-token decode tiles) on Q4_0 and Q4_K_M, and
#      `kbench` of every weight type (prefill and decode tiles, one thread;
#      BF16 also row-major, KB_NOPACK=1) and of the attention tiles; then
#      decbench on the first variant; membw when compare.sh (which probes
#      it) did not run; with HC_MORE_THREADS=N, compare.sh on Q4_0 and
#      Q4_K_M at N threads. HC_DEADLINE=S skips what would start after S s.
# Everything is printed and also written to OUTDIR/host-check.log.
set -u
cd "$(dirname "$0")/.."
T=${1:-2}
OUT=${2:-${OUT:-build-host/check}}
[ -z "${TL_SHARED:-}" ] && [ ! -d ../shared ] && [ -d shared ] && export TL_SHARED=$PWD/shared
SPEED=${SPEED:-/tmp/speed}
REPS=${REPS:-3}
B=build-host
mkdir -p "$OUT" "$SPEED"
exec > >(tee "$OUT/host-check.log") 2>&1
t0=$SECONDS
step() { echo; echo "== $* ($((SECONDS - t0)) s)"; }
# HC_DEADLINE=S: the steps after the comparison start only before S seconds
late() { [ -n "${HC_DEADLINE:-}" ] && [ $((SECONDS - t0)) -ge "$HC_DEADLINE" ]; }

step "cpu"
grep -m1 "model name" /proc/cpuinfo
nproc
flags=" $(grep -m1 "^flags" /proc/cpuinfo | cut -d: -f2) "
has() { case $flags in *" $1 "*) return 0 ;; esac; return 1; }
for f in avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16 amx_int8; do
  has "$f" && printf '%s ' "$f"
done
echo
variants="avx2"
has avx512f && has avx512bw && has avx512vl && variants="avx512 avx2"
echo "variants to time: $variants"

if [ -n "${HC_PREBUILT:-}" ]; then
  B=$HC_PREBUILT
  step "prebuilt ($B)"
  export LD_LIBRARY_PATH=$PWD/$B/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
else
  step "build ($B)"
  cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release >/dev/null &&
    cmake --build "$B" -j"$(nproc)" >/dev/null || { echo "host-check: build failed"; exit 1; }
fi
TL=$B/bin/torchless
"$TL" --version || { echo "host-check: $TL does not run here"; exit 1; }

step "kernel tests against the reference, native"
"$B/bin/test_kern_simd" | tail -3
"$B/bin/test_matmul" | tail -1
for v in $variants; do TL_CPU=$v "$B/bin/test_matmul" | tail -1; done
FX=${TL_SHARED:-../shared}/fixtures
if [ -f "$FX/models/gemma2.f32.gguf" ]; then
  step "golden logits (native kernels, then ref)"
  TL_BIN=$B/bin bash tests/test_golden_logits.sh | tail -3
elif [ -d "$FX/models" ]; then
  step "golden logits, the fixture models present, native kernels"
  for m in "$FX"/models/*.gguf; do
    n=$(basename "$m" .gguf) args=
    case $n in *.f32) tier=exact args="--kv-dtype f32" ;; *.f16 | *.bf16) tier=half ;; *) tier=quant ;; esac
    [ -f "$FX/logits/$n.logits" ] || continue
    # shellcheck disable=SC2086
    if "$TL" logits "$m" --tokens "$FX/logits/tokens.txt" --out /tmp/hc.logits $args 2>/dev/null; then
      echo "$n $tier: $(python3 "$FX/../tools/cmp_logits.py" "$FX/logits/$n.logits" /tmp/hc.logits \
        512 $tier)"
    else
      echo "$n $tier: FAIL (torchless logits)"
    fi
  done
fi

step "speed files in $SPEED"
[ -f "$SPEED/tiny-f16.gguf" ] || "$TL" synth "$SPEED/tiny-f16.gguf" --seed 1 | tail -1
for q in q4_0 q8_0 q4_k_m; do
  Q=$(echo "$q" | tr a-z A-Z)
  [ -f "$SPEED/tiny-$q.gguf" ] || "$TL" quantize "$SPEED/tiny-f16.gguf" "$SPEED/tiny-$q.gguf" "$Q" | tail -1
done
ls -l "$SPEED"

if [ -n "${LLAMA_BIN:-}${IK_BIN:-}" ]; then
  step "compare.sh beside the peers"
  TL_BIN=$B/bin ROUNDS=${ROUNDS:-1} bash bench/compare.sh "$SPEED" "$T" | tee "$OUT/compare.log" | tail -12
fi

for v in $variants; do
  late && { echo "(past HC_DEADLINE: the rest skipped)"; break; }
  step "torchless bench, TL_CPU=$v, $T threads"
  for q in q4_0 q8_0 q4_k_m f16; do
    TL_CPU=$v "$TL" bench "$SPEED/tiny-$q.gguf" -t "$T" -p 128 -n 32 -r "$REPS" | grep -E "pp128|tg32"
  done
  # a few tokens at once (two sequences, a speculative draft): the decode
  # tiles of 2-4 tokens, against tg32 above (one token per weight pass)
  for q in q4_0 q4_k_m; do
    for p in 2 4; do
      TL_CPU=$v "$TL" bench "$SPEED/tiny-$q.gguf" -t "$T" -p "$p" -n 0 -r "$REPS" | grep -E "pp$p "
    done
  done
  step "kbench, every type, TL_CPU=$v (one thread: 64 rows x 64 tokens, then one token; the fastest sweep)"
  KB_BEST=1 TL_CPU=$v "$B/bin/kbench" 2048 64 64 | grep "n="
  KB_BEST=1 TL_CPU=$v KB_TYPE=BF16 KB_NOPACK=1 "$B/bin/kbench" 2048 64 64 | grep "n="
  TL_CPU=$v KB_TYPE=attn "$B/bin/kbench" | tail -8
done
v=${variants%% *}
if ! late; then
  step "decbench, TL_CPU=$v, $T threads (weights from DRAM through the backend's matmul)"
  TL_CPU=$v "$B/bin/decbench" "$T" 8 9 | tail -7
fi
if ! late && [ -z "${LLAMA_BIN:-}${IK_BIN:-}" ]; then
  step "membw $T (the DRAM read limit)"
  "$B/bin/membw" "$T" | tail -1
fi
if ! late && [ -n "${HC_MORE_THREADS:-}" ] && [ -n "${LLAMA_BIN:-}${IK_BIN:-}" ]; then
  step "compare.sh beside the peers, $HC_MORE_THREADS threads, Q4_0 and Q4_K_M"
  TL_BIN=$B/bin FILES="q4_0 q4_k_m" REPS=2 bash bench/compare.sh "$SPEED" "$HC_MORE_THREADS" | tail -5
fi

step "done"
