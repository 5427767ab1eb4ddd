#!/usr/bin/env bash
# Architecture features without fixtures of their own, against reference
# logits stored in tests/data (llama.cpp's output, see tests/data/README.md):
# Qwen 3 QK-norm, Llama 3 rope_freqs, linear and YaRN RoPE scaling, Phi-3
# LongRoPE short/long factors with attention factor, sliding windows from
# metadata. test_arch_variants --write builds the GGUFs from the F32 fixtures.
set -u
SHARED=${TL_SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
BINDIR=${TL_BIN:-build/bin}
BIN=$BINDIR/torchless GEN=$BINDIR/test_arch_variants
DATA=$(cd "$(dirname "$0")" && pwd)/data
if [ ! -d "$SHARED/fixtures/models" ]; then
  echo "SKIP: $SHARED/fixtures not found (set TL_SHARED)"; exit 77
fi
L=$SHARED/fixtures/logits CMP=$SHARED/tools/cmp_logits.py
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
if ! "$GEN" --write "$TMP" >/dev/null; then echo "FAIL: cannot build the variants with $GEN"; exit 1; fi
pass=0 fail=0
# variant reference [base [kv-dtype]]: the variant must match its reference
# (exact tier), and the reference must differ from the unmodified base
# model's (else the feature was not exercised)
check() {
  local v=$1 ref=$2 base=${3:-} kv=${4:-f32}
  if "$BIN" logits "$TMP/$v.gguf" --tokens "$L/tokens.txt" --out "$TMP/$v.out" --kv-dtype "$kv" 2>"$TMP/err" &&
     res=$(python3 "$CMP" "$ref" "$TMP/$v.out" 512 exact); then
    pass=$((pass+1)); echo "ok   $v: $res"
  else
    fail=$((fail+1)); echo "FAIL $v: ${res:-$(cat "$TMP/err")}"
  fi
  if [ -n "$base" ] && python3 "$CMP" "$base" "$ref" 512 exact >/dev/null; then
    fail=$((fail+1)); echo "FAIL $v: its reference equals $(basename "$base"): nothing exercised"
  fi
  res=
}
check qwen3               "$DATA/qwen3.logits"               "$L/qwen2.f32.logits"
# ik_llama.cpp (the llama.cpp fork that has qwen3) only runs it with an F16 V cache
check qwen3               "$DATA/qwen3.ik-f16kv.logits"      "$L/qwen2.f32.logits" f16
check llama-rope-freqs    "$DATA/llama-rope-freqs.logits"    "$L/llama.f32.logits"
check llama-linear4       "$DATA/llama-linear4.logits"       "$L/llama.f32.logits"
check llama-yarn4         "$DATA/llama-yarn4.logits"         "$L/llama.f32.logits"
check phi3-longrope-short "$DATA/phi3-longrope-short.logits" "$L/phi3.f32.logits"
check phi3-longrope-long  "$DATA/phi3-longrope-long.logits"  "$DATA/phi3-longrope-short.logits"
check phi3-swa16          "$DATA/phi3-swa16.logits"          "$L/phi3.f32.logits"
check mistral-swa16       "$DATA/mistral-swa16.logits"       "$L/mistral.f32.logits"
# a window no shorter than the sequence changes nothing
check mistral-swa64       "$L/mistral.f32.logits"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
