#!/usr/bin/env bash
# Side-by-side speed run: torchless bench and the peers' llama-bench on the
# same GGUF files, same threads, one after the other in one run.
#   bench/compare.sh DIR [THREADS]   (DIR holds tiny-{q4_0,q8_0,q4_k_m,f16}.gguf,
#   made by `torchless synth DIR/tiny-f16.gguf` + llama-quantize)
# Env: TL_BIN (default build/bin), LLAMA_BIN, IK_BIN (peer build/bin dirs; a
# peer is skipped when its llama-bench is missing).
set -u
DIR=${1:?usage: bench/compare.sh DIR [THREADS]}
T=${2:-2}
TL=${TL_BIN:-build/bin}/torchless
LLAMA=${LLAMA_BIN:-/work/peers/llama.cpp/build/bin}/llama-bench
IK=${IK_BIN:-/work/peers/ik_llama.cpp/build/bin}/llama-bench
for f in q4_0 q8_0 q4_k_m f16; do
  m=$DIR/tiny-$f.gguf
  [ -f "$m" ] || { echo "missing $m"; continue; }
  echo "== $f"
  echo "\$ $TL bench $m -t $T -p 128 -n 32 -r 3"
  "$TL" bench "$m" -t "$T" -p 128 -n 32 -r 3 | tail -2
  for peer in "$LLAMA" "$IK"; do
    [ -x "$peer" ] || { echo "(no $peer)"; continue; }
    echo "\$ $peer -m $m -t $T -p 128 -n 32"
    "$peer" -m "$m" -t "$T" -p 128 -n 32 2>/dev/null | grep -E "pp128|tg32"
  done
done
