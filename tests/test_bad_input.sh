#!/usr/bin/env bash
# Bad input through the CLI: every case must exit non-zero with a message on
# stderr, never crash (signal exit > 128) and never hang (timeout).
set -u
. "$(dirname "$0")/lib/fixtures.sh"
expect_error() { # description, command...
  local what=$1; shift
  timeout 60 "$@" >"$TMP/out" 2>"$TMP/err"
  local rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 124 ] && [ -s "$TMP/err" ]; then
    pass=$((pass+1)); echo "ok   $what: $(head -c 200 "$TMP/err" | tr '\n' ' ')"
  else
    fail=$((fail+1)); echo "FAIL $what: exit $rc, stderr: $(head -c 300 "$TMP/err")"
  fi
}
echo 1 2 3 > "$TMP/tokens.txt"
: > "$TMP/empty.gguf"
expect_error "missing file" "$BIN" logits "$TMP/nope.gguf" --tokens "$TMP/tokens.txt" --out "$TMP/o"
expect_error "empty file" "$BIN" logits "$TMP/empty.gguf" --tokens "$TMP/tokens.txt" --out "$TMP/o"
head -c 100000 /dev/urandom > "$TMP/random.bin"
expect_error "random bytes" "$BIN" info "$TMP/random.bin"
{ printf 'GGUF'; head -c 100000 /dev/urandom; } > "$TMP/random.gguf"
expect_error "GGUF magic + random bytes" "$BIN" info "$TMP/random.gguf"
src=$M/llama.q4_0.gguf
size=$(stat -c %s "$src")
for frac in 1 5 10 20 35 50 65 80 95 99; do
  cut=$((size * frac / 100))
  [ "$frac" -eq 1 ] && cut=24
  [ "$frac" -eq 5 ] && cut=200
  [ "$frac" -eq 10 ] && cut=2000
  head -c "$cut" "$src" > "$TMP/trunc.gguf"
  expect_error "truncated at $cut of $size bytes" "$BIN" logits "$TMP/trunc.gguf" --tokens "$TMP/tokens.txt" --out "$TMP/o"
done
echo "1 2 600" > "$TMP/bad_tokens.txt"
expect_error "token id out of range" "$BIN" logits "$M/llama.q4_0.gguf" --tokens "$TMP/bad_tokens.txt" --out "$TMP/o"
echo "1 -5" > "$TMP/neg_tokens.txt"
expect_error "negative token id" "$BIN" logits "$M/llama.q4_0.gguf" --tokens "$TMP/neg_tokens.txt" --out "$TMP/o"
echo "1 x 2" > "$TMP/junk_tokens.txt"
expect_error "token file with junk" "$BIN" logits "$M/llama.q4_0.gguf" --tokens "$TMP/junk_tokens.txt" --out "$TMP/o"
expect_error "directory as model" "$BIN" info "$TMP"
expect_error "unknown option" "$BIN" run "$M/llama.q4_0.gguf" hi --bogus
expect_error "synth seed not a number" "$BIN" synth "$TMP/s.gguf" --seed 12x
# --help on every command: usage on stdout, exit 0 (not an unknown option)
for cmd in run logits info tokenize bench quantize convert export synth; do
  if timeout 60 "$BIN" "$cmd" --help >"$TMP/out" 2>"$TMP/err" && grep -q "usage: torchless" "$TMP/out"; then
    pass=$((pass+1)); echo "ok   $cmd --help"
  else
    fail=$((fail+1)); echo "FAIL $cmd --help: exit $?, stdout: $(head -c 200 "$TMP/out") stderr: $(head -c 200 "$TMP/err")"
  fi
done
expect_error "bad option value" "$BIN" run "$M/llama.q4_0.gguf" hi --temperature abc
# an HF tokenizer naming id 16777215 among a few hundred tokens: refused at
# once, not padded with 16M [PADi] tokens (fuzz_native found it taking 28 s)
cp -r "$M/llama.hf" "$TMP/sparse.hf" && chmod -R u+w "$TMP/sparse.hf"
python3 -c 'import json, sys
p = sys.argv[1]; t = json.load(open(p)); t["model"]["vocab"]["zz-sparse"] = 16777215
json.dump(t, open(p, "w"))' "$TMP/sparse.hf/tokenizer.json"
expect_error "sparse tokenizer ids" "$BIN" info "$TMP/sparse.hf"
grep -q "too sparse" "$TMP/err" || { fail=$((fail+1)); echo "FAIL sparse tokenizer ids: not refused as sparse"; }
# values that parse but the sampler refuses: the library's reason reaches stderr
for bad in "--temperature nan" "--repeat-penalty 0" "--top-p -1"; do
  expect_error "sampler refuses $bad" "$BIN" run "$M/llama.q4_0.gguf" hi $bad
  grep -q "sampler:" "$TMP/err" || { fail=$((fail+1)); echo "FAIL $bad: no reason in stderr"; }
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
