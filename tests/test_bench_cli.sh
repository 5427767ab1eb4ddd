#!/usr/bin/env bash
# `torchless bench`: the --csv contract (exactly one `TEST,TOKENS_PER_S,STDDEV`
# line per test, names ppN / tgN, with `@dD` when timed at a depth), the
# markdown table, and refusals of bad arguments (exit 2, usage). Speed itself
# is never asserted.
set -u
. "$(dirname "$0")/lib/fixtures.sh"
ok() { pass=$((pass+1)); echo "ok   $*"; }
ko() { fail=$((fail+1)); echo "FAIL $*"; }
num='[0-9]+\.[0-9]{2}'

check_csv() { # want-regex args...
  local want=$1; shift
  if "$BIN" bench "$M/llama.f32.gguf" "$@" --csv >"$TMP/out" 2>"$TMP/err" &&
     [ "$(grep -cvE "$want" "$TMP/out")" -eq 0 ] && [ -s "$TMP/out" ]; then
    ok "bench $* --csv: $(tr '\n' ' ' <"$TMP/out")"
  else
    ko "bench $* --csv: $(cat "$TMP/out") $(tail -1 "$TMP/err")"
  fi
}
check_csv "^(pp8,$num,$num|tg4,$num,$num)\$" -p 8 -n 4 -r 2
[ "$(wc -l <"$TMP/out")" -eq 2 ] && ok "two tests, two lines" || ko "want 2 lines: $(cat "$TMP/out")"
check_csv "^(pp8@d70,$num,$num|tg4@d70,$num,$num)\$" -p 8 -n 4 -d 70 -r 2
[ "$(wc -l <"$TMP/out")" -eq 2 ] && ok "depth: two lines" || ko "depth: want 2 lines: $(cat "$TMP/out")"
check_csv "^tg3@d20,$num,$num\$" -p 0 -n 3 -d 20 -r 1

if "$BIN" bench "$M/llama.f32.gguf" -p 8 -n 2 -d 5 -r 1 >"$TMP/out" 2>"$TMP/err" &&
   grep -q "| pp8@d5 |" "$TMP/out" && grep -q "| tg2@d5 |" "$TMP/out"; then
  ok "markdown table names the depth"
else
  ko "markdown table: $(cat "$TMP/out") $(tail -1 "$TMP/err")"
fi

for args in "-d -1" "-p -2" "-r 0" "-d x"; do
  # shellcheck disable=SC2086
  "$BIN" bench "$M/llama.f32.gguf" $args >"$TMP/out" 2>"$TMP/err"; rc=$?
  if [ "$rc" -eq 2 ] && grep -qi "usage\|option" "$TMP/err"; then
    ok "bench $args refused: $(tail -1 "$TMP/err")"
  else
    ko "bench $args: rc $rc, $(tail -1 "$TMP/err")"
  fi
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
