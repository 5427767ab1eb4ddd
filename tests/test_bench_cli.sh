#!/usr/bin/env bash
# `torchless bench`: the --csv contract (exactly one `TEST,TOKENS_PER_S,STDDEV`
# line per test, names ppN / tgN, with `@dD` when timed at a depth), the
# markdown table and its threads column, comma lists of -p / -n / -d (every
# test at every depth, in order, one table), the warning past the trained
# context, and refusals of bad arguments (exit 2, usage, what is wrong). Speed itself
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

# comma lists, as llama-bench's: every -p and -n at every -d, in that order
# (0 in a list: no test)
check_csv "^(pp|tg)[0-9]+(@d[0-9]+)?,$num,$num\$" -p 8,16 -n 0,2,4 -d 0,20 -r 1
want="pp8 pp16 tg2 tg4 pp8@d20 pp16@d20 tg2@d20 tg4@d20"
got=$(cut -d, -f1 "$TMP/out" | tr '\n' ' ' | sed 's/ $//')
[ "$got" = "$want" ] && ok "lists: $got" || ko "lists: want '$want', got '$got'"
if "$BIN" bench "$M/llama.f32.gguf" -p 4,8 -n 2 -r 1 >"$TMP/out" 2>"$TMP/err" &&
   [ "$(grep -c '^| model |' "$TMP/out")" -eq 1 ] && [ "$(grep -c '^| llama' "$TMP/out")" -eq 3 ]; then
  ok "lists: one table, a row per test"
else
  ko "lists, table: $(cat "$TMP/out") $(tail -1 "$TMP/err")"
fi

if "$BIN" bench "$M/llama.f32.gguf" -p 8 -n 2 -d 5 -r 1 >"$TMP/out" 2>"$TMP/err" &&
   grep -q "| pp8@d5 |" "$TMP/out" && grep -q "| tg2@d5 |" "$TMP/out"; then
  ok "markdown table names the depth"
else
  ko "markdown table: $(cat "$TMP/out") $(tail -1 "$TMP/err")"
fi

# refusals name what is wrong
for case in "-d -1|-d (depth)" "-p -1|-p (prompt" "-p -2|option -p" "-r 0|-r (repetitions)" "-p 0 -n 0|nothing to time" \
            "-d 2000000|within 1048576" "-d x|option -d" "-p 8,,16|option -p" "-p 8,x|option -p" \
            "-n 4,-1|-n (generated" "-d 0,-1|-d (depth)" "-p 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17|option -p" \
            "-p 0,0 -n 0|nothing to time" "-d 1048000,0 -p 600|within 1048576"; do
  args=${case%%|*} want=${case#*|}
  # shellcheck disable=SC2086
  "$BIN" bench "$M/llama.f32.gguf" $args >"$TMP/out" 2>"$TMP/err"; rc=$?
  if [ "$rc" -eq 2 ] && grep -q "usage" "$TMP/err" && grep -qF -- "$want" "$TMP/err"; then
    ok "bench $args refused: $(head -1 "$TMP/err")"
  else
    ko "bench $args: rc $rc, want '$want': $(cat "$TMP/err")"
  fi
done

# -t 0 (all cores) reports the threads that ran, not the 0 asked for
nproc=$(getconf _NPROCESSORS_ONLN)
if "$BIN" bench "$M/llama.f32.gguf" -t 0 -p 4 -n 0 -r 1 >"$TMP/out" 2>"$TMP/err" &&
   [ "$(grep "| pp4 |" "$TMP/out" | awk -F'|' '{gsub(/ /, "", $5); print $5}')" = "$nproc" ]; then
  ok "-t 0: the table says $nproc threads"
else
  ko "-t 0: want $nproc threads: $(cat "$TMP/out") $(tail -1 "$TMP/err")"
fi

# past the trained context (2048): timed, with a warning
if "$BIN" bench "$M/llama.f32.gguf" -p 0 -n 2 -d 2047 -r 1 --csv >"$TMP/out" 2>"$TMP/err" &&
   grep -q "^tg2@d2047," "$TMP/out" && grep -q "past the model's trained context of 2048" "$TMP/err"; then
  ok "past the trained context: timed, warned"
else
  ko "past the trained context: $(cat "$TMP/out") $(cat "$TMP/err")"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
