#!/usr/bin/env bash
# `torchless quantize` end to end: llama.f32.gguf quantized by the CLI to each
# type llama.cpp shipped a file for must give logits that pass cmp_logits.py's
# `quant` tier against llama.cpp's logits of that shipped file (tensor-level
# byte identity is checked by test_quantize.c); bad input must fail with a
# clear message, a non-zero exit, and no output file.
set -u
. "$(dirname "$0")/lib/fixtures.sh"
ok() { pass=$((pass+1)); echo "ok   $*"; }
ko() { fail=$((fail+1)); echo "FAIL $*"; }

for q in q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k_m q4_k_m q5_k_m q6_k; do
  out=$TMP/llama.$q.gguf
  if ! "$BIN" quantize "$M/llama.f32.gguf" "$out" "$q" 2>"$TMP/err"; then
    ko "quantize $q: $(tail -1 "$TMP/err")"; continue
  fi
  grep -q "tensors converted" "$TMP/err" || { ko "quantize $q: no summary on stderr"; continue; }
  if "$BIN" logits "$out" --tokens "$L/tokens.txt" --out "$TMP/$q.logits" 2>"$TMP/err" &&
     res=$(python3 "$CMP" "$L/llama.$q.logits" "$TMP/$q.logits" 512 quant); then
    ok "quantize $q + logits: $res"
  else
    ko "quantize $q + logits: ${res:-$(tail -1 "$TMP/err")}"
  fi
  rm -f "$out"
done

# Bad input: non-zero exit, an error naming the problem, no output left over.
expect_fail() { # description pattern args...
  local what=$1 pat=$2; shift 2
  if "$BIN" quantize "$@" >"$TMP/out" 2>"$TMP/err"; then
    ko "$what: exit 0"
  elif ! grep -qi -- "$pat" "$TMP/err"; then
    ko "$what: message lacks '$pat': $(tail -1 "$TMP/err")"
  elif [ -e "$TMP/bad.gguf" ]; then
    ko "$what: left an output file"
  else
    ok "$what: $(tail -1 "$TMP/err")"
  fi
}
expect_fail "unknown type" "Q4_X" "$M/llama.f32.gguf" "$TMP/bad.gguf" Q4_X
expect_fail "missing input" "nonexistent.gguf" "$TMP/nonexistent.gguf" "$TMP/bad.gguf" q8_0
head -c 3000 "$M/llama.f32.gguf" >"$TMP/trunc.gguf"
expect_fail "truncated input" "trunc.gguf" "$TMP/trunc.gguf" "$TMP/bad.gguf" q8_0
expect_fail "output dir missing" "no/such/dir" "$M/llama.f32.gguf" "$TMP/no/such/dir/x.gguf" q8_0
expect_fail "missing argument" "usage" "$M/llama.f32.gguf" "$TMP/bad.gguf"
expect_fail "bad thread count" "thread" "$M/llama.f32.gguf" "$TMP/bad.gguf" q8_0 --threads x

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
