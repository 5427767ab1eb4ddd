#!/usr/bin/env bash
# Regenerates tests/real/data/* from the comparator engines (not run by the tests).
#   PEERS=/work/peers tests/real/gen/make-refs.sh
# Needs llama.cpp c392e50 (SmolLM2) and ik_llama.cpp 8337e4c (gemma3) built as in
# $PEERS/results/README.txt, with the peer tools ($PEERS/tools: greedy, tokenize, dump-logits,
# and -ik variants). dump-seq.c here is built against both libraries: it feeds the tokens one
# at a time, because the ik build gives wrong logits for batches of >= 32 tokens.
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS=${PEERS:-/work/peers}
TOOLS=$PEERS/tools
MODELS=${TORCHLESS_MODELS:-$HOME/.cache/torchless/models}
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
LC=$PEERS/llama.cpp IK=$PEERS/ik_llama.cpp
cc -O2 -std=c11 -I"$TOOLS/src" -I$LC/include -I$LC/ggml/include gen/dump-seq.c -o "$W/seq" \
   -L$LC/build/bin -lllama -lggml -lggml-base -Wl,-rpath,$LC/build/bin -lm
cc -O2 -std=c11 -DIK_LLAMA -I"$TOOLS/src" -I$IK/include -I$IK/ggml/include gen/dump-seq.c \
   -o "$W/seq-ik" -L$IK/build-lib -lllama -lggml -Wl,-rpath,$IK/build-lib \
   -Wl,--allow-shlib-undefined -lm

# name  file  vocab  suffix-of-peer-tools (""=llama.cpp, "-ik"=ik_llama.cpp)
while read -r name file nv sfx; do
  d=data/$name; mkdir -p "$d"; m=$MODELS/$file
  "$TOOLS/tokenize$sfx" "$m" data/prose.txt | tr -d '[],' | tr -s ' ' '\n' | grep . | paste -sd' ' > "$d/logits.tokens"
  # llama.cpp takes the prompt as one batch, the way it is normally run; ik one token at a
  # time (bitwise the same as its batch for < 32 tokens, checked on gemma3's first 31).
  chunk=1; [ -n "$sfx" ] || chunk=4096
  "$W/seq$sfx" "$m" "$d/logits.tokens" "$W/full" $chunk
  TL_KV=f16 "$W/seq$sfx" "$m" "$d/logits.tokens" "$W/pert" $chunk
  python3 logits_ref.py reduce "$W/full" "$W/pert" "$nv" "$d/logits.ref"
  "$TOOLS/tokenize$sfx" "$m" data/multilingual.txt | tr -d '[],' | tr -s ' ' '\n' | grep . | paste -sd' ' > "$d/tokenize.ids"
  i=0
  while IFS= read -r p; do
    i=$((i + 1))
    "$TOOLS/greedy$sfx" "$m" "$p" 32 > "$d/greedy-$i.out"
  done < data/greedy.prompts
done <<'LIST'
smollm2-135m-instruct SmolLM2-135M-Instruct.Q4_1.gguf 49152
gemma3-270m gemma-3-270m-q4_k_m.gguf 262144 -ik
LIST
