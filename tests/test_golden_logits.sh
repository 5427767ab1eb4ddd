#!/usr/bin/env bash
# Golden logits: `torchless logits` on fixtures/logits/tokens.txt must match
# llama.cpp's logits for the same GGUF within ../shared/tools/cmp_logits.py's
# tiers: exact (F32 weights + F32 KV), half (F16/BF16 weights or F16 KV),
# quant (quantized weights vs the reference of the same quantized file).
# The whole set runs twice: on the kernels this CPU selects, then on the
# scalar reference (TL_CPU=ref), so that both end-to-end paths stay within
# llama.cpp's tiers, not only each fast kernel within its reference.
set -u
. "$(dirname "$0")/lib/fixtures.sh"
check() { # model-file reference tier [extra args]; CPU: the TL_CPU of this pass
  local model=$1 ref=$2 tier=$3; shift 3
  local out=$TMP/$(basename "$model").$tier.out res=
  if env ${CPU:+TL_CPU=$CPU} "$BIN" logits "$model" --tokens "$L/tokens.txt" --out "$out" "$@" \
       2>"$TMP/err" && res=$(python3 "$CMP" "$ref" "$out" 512 "$tier"); then
    pass=$((pass+1)); echo "ok   ${CPU:-native} $(basename "$model") $* : $res"
  else
    fail=$((fail+1)); echo "FAIL ${CPU:-native} $(basename "$model") $* : ${res:-$(cat "$TMP/err")}"
  fi
}
for CPU in "" ref; do
  # Every architecture in F32 with an F32 cache: exact; with the default F16 cache: half.
  for a in llama mistral qwen2 phi2 phi3 gemma gemma2; do
    check "$M/$a.f32.gguf" "$L/$a.f32.logits" exact --kv-dtype f32
    check "$M/$a.f32.gguf" "$L/$a.f32.logits" half
    for q in q8_0 q4_k_m; do check "$M/$a.$q.gguf" "$L/$a.$q.logits" quant; done
  done
  for t in f16 bf16; do check "$M/llama.$t.gguf" "$L/llama.$t.logits" half; done
  for q in q4_0 q4_1 q5_0 q5_1 q2_k q3_k_m q5_k_m q6_k; do
    check "$M/llama.$q.gguf" "$L/llama.$q.logits" quant
  done
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
