#!/usr/bin/env bash
# --dtype: weights converted once at load. llama.hf (F32 safetensors) run as
# F16/BF16 must stay within `half` of llama.cpp's F32 logits; run as Q8_0 or
# Q6_K it must match llama.cpp's logits for llama.q8_0.gguf / llama.q6_k.gguf
# (same quantizer, same bytes) within `quant`; an unknown type is an error.
set -u
. "$(dirname "$0")/lib/fixtures.sh"
F=$SHARED/fixtures
for spec in f16:half:f32 bf16:half:f32 q8_0:quant:q8_0 q6_k:quant:q6_k; do
  IFS=: read -r d tier ref <<<"$spec"
  if "$BIN" logits "$F/models/llama.hf" --tokens "$F/logits/tokens.txt" --out "$TMP/o" \
       --kv-dtype f32 --dtype "$d" 2>"$TMP/err" &&
     res=$(python3 "$SHARED/tools/cmp_logits.py" "$F/logits/llama.$ref.logits" "$TMP/o" 512 "$tier"); then
    pass=$((pass+1)); echo "ok   --dtype $d: $res"
  else
    fail=$((fail+1)); echo "FAIL --dtype $d: ${res:-$(cat "$TMP/err")}"
  fi
done
if ! "$BIN" info "$F/models/llama.hf" --dtype q9_9 >/dev/null 2>"$TMP/err" && grep -q "q9_9" "$TMP/err"; then
  pass=$((pass+1)); echo "ok   unknown --dtype rejected: $(cat "$TMP/err")"
else
  fail=$((fail+1)); echo "FAIL unknown --dtype not rejected"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
