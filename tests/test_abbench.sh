#!/usr/bin/env bash
# bench/abbench: two builds of the library in one process. Here both are
# this build's libtorchless.so (two copies, so the loader maps two): the
# table has one line per test, each side's tokens/s, both ratios and the
# pair count; bad arguments are refused with the usage line (exit 2), a
# missing library with the loader's message (exit 1). Speed itself is never
# asserted (nor meaningful on a fixture this small: see bench/abbench.c).
set -u
. "$(dirname "$0")/lib/fixtures.sh"
ok() { pass=$((pass+1)); echo "ok   $*"; }
ko() { fail=$((fail+1)); echo "FAIL $*"; }
AB=$(dirname "$BIN")/abbench
LIB=$(dirname "$BIN")/../lib/libtorchless.so
if [ ! -x "$AB" ] || [ ! -f "$LIB" ]; then
  echo "SKIP: $AB or $LIB not built"; exit 77
fi
cp "$LIB" "$TMP/a.so" && cp "$LIB" "$TMP/b.so"
num='[0-9]+\.[0-9]+'

if "$AB" "$TMP/a.so" "$TMP/b.so" "$M/llama.f32.gguf" -p 6 -n 3 -r 2 >"$TMP/out" 2>"$TMP/err" &&
   grep -Eq "^\| pp6 \| $num \| $num \| $num \| $num \| [0-2] of 2 \|$" "$TMP/out" &&
   grep -Eq "^\| tg3 \| $num \| $num \| $num \| $num \| [0-2] of 2 \|$" "$TMP/out" &&
   grep -q "A = $TMP/a.so" "$TMP/out" && grep -q "B = $TMP/b.so" "$TMP/out"; then
  ok "A/B of two copies: $(grep -E '^\| (pp|tg)' "$TMP/out" | tr '\n' ' ')"
else
  ko "A/B of two copies: $(cat "$TMP/out") $(cat "$TMP/err")"
fi

for args in "-p" "-r 0" "-p 0 -n 0" "-x 3"; do
  # shellcheck disable=SC2086
  "$AB" "$TMP/a.so" "$TMP/b.so" "$M/llama.f32.gguf" $args >"$TMP/out" 2>"$TMP/err"; rc=$?
  if [ "$rc" -eq 2 ] && grep -q "usage\|need" "$TMP/err"; then
    ok "abbench $args refused: $(head -1 "$TMP/err")"
  else
    ko "abbench $args: rc $rc: $(cat "$TMP/err")"
  fi
done

"$AB" "$TMP/none.so" "$TMP/b.so" "$M/llama.f32.gguf" >"$TMP/out" 2>"$TMP/err"; rc=$?
if [ "$rc" -eq 1 ] && grep -q "none.so" "$TMP/err"; then
  ok "missing library: $(head -1 "$TMP/err")"
else
  ko "missing library: rc $rc: $(cat "$TMP/err")"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
