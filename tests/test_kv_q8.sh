#!/usr/bin/env bash
# Q8_0 KV cache (`--kv-dtype q8_0`): every architecture in F32, and some
# quantized files, must stay within cmp_logits.py's quant tier of llama.cpp's
# logits (computed with an F32 cache), with the selected SIMD kernels and
# with the scalar reference (TL_CPU=ref); a type that is not a cache type
# must be refused with a message naming it and a nonzero exit.
set -u
. "$(dirname "$0")/lib/fixtures.sh"
check() { # label model-file reference [env assignments...]
  local label=$1 model=$2 ref=$3; shift 3
  local out=$TMP/$label.out res=
  if env "$@" "$BIN" logits "$model" --tokens "$L/tokens.txt" --out "$out" --kv-dtype q8_0 2>"$TMP/err" &&
     res=$(python3 "$CMP" "$ref" "$out" 512 quant); then
    pass=$((pass+1)); echo "ok   $label: $res"
  else
    fail=$((fail+1)); echo "FAIL $label: ${res:-$(cat "$TMP/err")}"
  fi
}
for a in llama mistral qwen2 phi2 phi3 gemma gemma2; do
  check "$a.f32" "$M/$a.f32.gguf" "$L/$a.f32.logits"
done
for f in llama.q8_0 llama.q4_k_m gemma2.q8_0; do
  check "$f" "$M/$f.gguf" "$L/$f.logits"
done
for a in llama gemma2; do
  check "$a.f32-ref" "$M/$a.f32.gguf" "$L/$a.f32.logits" TL_CPU=ref
done
for bad in q4_0 f64 ""; do
  if "$BIN" logits "$M/llama.f32.gguf" --tokens "$L/tokens.txt" --out "$TMP/bad" --kv-dtype "$bad" \
       >/dev/null 2>"$TMP/err"; then
    fail=$((fail+1)); echo "FAIL --kv-dtype '$bad' was accepted"
  elif ! grep -q -- "--kv-dtype '$bad' is not a KV cache type" "$TMP/err"; then
    fail=$((fail+1)); echo "FAIL --kv-dtype '$bad': unclear message: $(cat "$TMP/err")"
  else
    pass=$((pass+1)); echo "ok   --kv-dtype '$bad' refused: $(head -1 "$TMP/err")"
  fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
