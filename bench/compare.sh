#!/usr/bin/env bash
# Side-by-side speed run: torchless bench and the peers' llama-bench on the
# same GGUF files, same threads, one after the other in one run, then a
# summary table with the ratios to the better peer.
#   bench/compare.sh DIR [THREADS]   (DIR holds tiny-{q4_0,q8_0,q4_k_m,f16}.gguf,
#   made by `torchless synth DIR/tiny-f16.gguf` + llama-quantize)
# Env: TL_BIN (default build/bin), LLAMA_BIN, IK_BIN (peer build/bin dirs; a
# peer is skipped when its llama-bench is missing), REPS (default 3; the
# peers' -r too), FILES (default "q4_0 q8_0 q4_k_m f16"), ROUNDS (default 1),
# DEPTH (also time tg32 after DEPTH tokens in the cache: torchless -d,
# ik_llama.cpp's -gp DEPTH,32, llama.cpp's -d where its llama-bench has it).
#
# Where TL_BIN has membw, the DRAM read limit is probed with THREADS
# threads before the first file and after the last (its best prefetching
# pass), and the table gives torchless's tg GB/s as a share of the higher
# of the two: the figure the F16 goal (within 5% of the limit) is read from.
# Each probe takes about 40 s.
#
# ROUNDS > 1 interleaves: each file is timed ROUNDS times over (at DEPTH
# too), the three engines taking turns at going first (round r starts with engine r mod 3),
# and the table gives each engine's median over the rounds, with the range
# of the rounds' own ratios. On a shared machine whose DRAM bandwidth drifts
# by +-20% within minutes, a fixed order hands whoever runs in the fast
# minutes the win (bench/RESULTS.md round 8: F16 tg in the fixed order 0.92x,
# alternated 1.15-1.41x); rotating the order spreads the drift over all.
set -u
DIR=${1:?usage: bench/compare.sh DIR [THREADS]}
T=${2:-2}
R=${REPS:-3}
ROUNDS=${ROUNDS:-1}
TL=${TL_BIN:-build/bin}/torchless
LLAMA=${LLAMA_BIN:-/work/peers/llama.cpp/build/bin}/llama-bench
IK=${IK_BIN:-/work/peers/tools-arch/ik-build/bin}/llama-bench
SUMMARY=$(mktemp)
RAW=$(mktemp)
OUT=$(mktemp)
MEMBW=${TL_BIN:-build/bin}/membw
LIMIT=-
trap 'rm -f "$SUMMARY" "$RAW" "$OUT"' EXIT

# t/s of TEST (pp128 / tg32) from llama-bench's markdown table
peer_ts() { grep -E "\| +$2 +\|" "$1" | awk -F'|' '{print $(NF-1)}' | awk '{print $1}'; }

# one engine (0 torchless, 1 llama.cpp, 2 ik_llama.cpp) on model $1, round $2
# -> a line "round engine pp tg gbs" in RAW ("-" for what it has not)
run_engine() {
  local m=$1 r=$2 e=$3 peer
  if [ "$e" = 0 ]; then
    echo "\$ $TL bench $m -t $T -p 128 -n 32 -r $R"
    "$TL" bench "$m" -t "$T" -p 128 -n 32 -r "$R" | tee "$OUT" | tail -2
    echo "$r 0 $(grep pp128 "$OUT" | awk -F'|' '{print $8}' | awk '{print $1}') \
$(grep tg32 "$OUT" | awk -F'|' '{print $8}' | awk '{print $1}') \
$(grep tg32 "$OUT" | awk -F'|' '{print $9}' | awk '{print $1}')" >> "$RAW"
    return
  fi
  [ "$e" = 1 ] && peer=$LLAMA || peer=$IK
  if [ -x "$peer" ]; then
    echo "\$ $peer -m $m -t $T -p 128 -n 32 -r $R"
    "$peer" -m "$m" -t "$T" -p 128 -n 32 -r "$R" 2>/dev/null | tee "$OUT" | grep -E "pp128|tg32"
    echo "$r $e $(peer_ts "$OUT" pp128) $(peer_ts "$OUT" tg32) -" >> "$RAW"
  else
    echo "(no $peer)"
  fi
}

# best prefetching pass of membw -> stdout (nothing without membw)
probe_limit() {
  [ -x "$MEMBW" ] || return 0
  "$MEMBW" "$T" | awk '/^limit:/ {print $2}'
}
LIMIT_BEFORE=$(probe_limit)

for f in ${FILES:-q4_0 q8_0 q4_k_m f16}; do
  m=$DIR/tiny-$f.gguf
  [ -f "$m" ] || { echo "missing $m"; continue; }
  : > "$RAW"
  for r in $(seq 0 $((ROUNDS - 1))); do
    if [ "$ROUNDS" -gt 1 ]; then echo "== $f (round $((r + 1)) of $ROUNDS)"; else echo "== $f"; fi
    for i in 0 1 2; do run_engine "$m" "$r" $(((r + i) % 3)); done
  done
  # medians over the rounds per engine and test; the range of the rounds'
  # ratios (torchless / the better peer of the same round)
  awk -v f="$f" '
    function med(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { r = $1; e = $2; pp[r, e] = $3; tg[r, e] = $4; if (e == 0) gb[r] = $5; rounds[r] = 1 }
    END {
      for (e = 0; e < 3; e++) {
        np = nt = 0; delete P; delete G
        for (r in rounds) {
          if ((r, e) in pp && pp[r, e] != "-" && pp[r, e] != "") P[++np] = pp[r, e] + 0
          if ((r, e) in tg && tg[r, e] != "-" && tg[r, e] != "") G[++nt] = tg[r, e] + 0
        }
        mp[e] = np ? sprintf("%.2f", med(P, np)) : "-"; mt[e] = nt ? sprintf("%.2f", med(G, nt)) : "-"
      }
      n = 0; delete B; for (r in rounds) if (gb[r] != "-" && gb[r] != "") B[++n] = gb[r] + 0
      mg = n ? sprintf("%.1f", med(B, n)) : "-"
      lo_p = lo_t = 1e9; hi_p = hi_t = 0
      for (r in rounds) {
        bp = ((r, 1) in pp ? pp[r, 1] + 0 : 0); if ((r, 2) in pp && pp[r, 2] + 0 > bp) bp = pp[r, 2] + 0
        bt = ((r, 1) in tg ? tg[r, 1] + 0 : 0); if ((r, 2) in tg && tg[r, 2] + 0 > bt) bt = tg[r, 2] + 0
        if (bp > 0) { x = pp[r, 0] / bp; if (x < lo_p) lo_p = x; if (x > hi_p) hi_p = x }
        if (bt > 0) { x = tg[r, 0] / bt; if (x < lo_t) lo_t = x; if (x > hi_t) hi_t = x }
      }
      print f, mp[0], mt[0], mg, mp[1], mt[1], mp[2], mt[2], \
        (hi_p > 0 ? sprintf("%.2f-%.2f", lo_p, hi_p) : "-"), (hi_t > 0 ? sprintf("%.2f-%.2f", lo_t, hi_t) : "-")
    }' "$RAW" >> "$SUMMARY"
done

LIMIT_AFTER=$(probe_limit)
if [ -n "$LIMIT_BEFORE$LIMIT_AFTER" ]; then
  LIMIT=$(echo "${LIMIT_BEFORE:-0} ${LIMIT_AFTER:-0}" | awk '{print ($1 > $2 ? $1 : $2)}')
fi

echo
[ "$ROUNDS" -gt 1 ] && echo "medians of $ROUNDS interleaved rounds; 'rounds' = the range of each round's own ratio"
[ "$LIMIT" != - ] && echo "DRAM read limit ($MEMBW $T, best prefetching pass): ${LIMIT_BEFORE:--} GB/s before, ${LIMIT_AFTER:--} after"
echo "| file | torchless pp128 | llama.cpp pp128 | ik_llama.cpp pp128 | pp vs best peer | torchless tg32 | llama.cpp tg32 | ik_llama.cpp tg32 | tg vs best peer | torchless tg GB/s | of the limit |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
while read -r f tp tt gb lp lt ip it rp rt; do
  awk -v f="$f" -v tp="$tp" -v tt="$tt" -v gb="$gb" -v lp="$lp" -v lt="$lt" -v ip="$ip" -v it="$it" \
      -v rp="$rp" -v rt="$rt" -v nr="$ROUNDS" -v lim="$LIMIT" 'BEGIN {
    bp = (lp + 0 > ip + 0) ? lp + 0 : ip + 0; bt = (lt + 0 > it + 0) ? lt + 0 : it + 0;
    xp = bp > 0 ? sprintf("%.2fx", tp / bp) : "-"; xt = bt > 0 ? sprintf("%.2fx", tt / bt) : "-";
    if (nr > 1 && rp != "-") xp = xp " (rounds " rp ")";
    if (nr > 1 && rt != "-") xt = xt " (rounds " rt ")";
    sh = (lim != "-" && lim + 0 > 0 && gb != "-" && gb != "") ? sprintf("%.0f%%", 100 * gb / lim) : "-";
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", f, tp, lp, ip, xp, tt, lt, it, xt, gb, sh }'
done < "$SUMMARY"

[ -n "${DEPTH:-}" ] || exit 0
D=$DEPTH
echo
echo "== generation at depth $D"
: > "$SUMMARY"
LLAMA_D=0
[ -x "$LLAMA" ] && "$LLAMA" --help 2>&1 | grep -q -- "-d, --n-depth" && LLAMA_D=1

# t/s of the tg32 row, whatever its depth suffix (ik_llama.cpp: tg32@pp$D)
depth_ts() { grep tg32 "$1" | head -1 | awk -F'|' '{print $(NF-1)}' | awk '{print $1}'; }

# engine e on model $1 at depth D, round $2 -> "round engine tg" in RAW
run_depth() {
  local m=$1 r=$2 e=$3
  case $e in
    0) echo "\$ $TL bench $m -t $T -p 0 -n 32 -d $D -r $R --csv"
       "$TL" bench "$m" -t "$T" -p 0 -n 32 -d "$D" -r "$R" --csv | tee "$OUT"
       echo "$r 0 $(cut -d, -f2 "$OUT")" >> "$RAW" ;;
    1) [ "$LLAMA_D" = 1 ] || return 0  # llama-bench without -d: no depth figure
       echo "\$ $LLAMA -m $m -t $T -p 0 -n 32 -d $D -r $R"
       "$LLAMA" -m "$m" -t "$T" -p 0 -n 32 -d "$D" -r "$R" 2>/dev/null | tee "$OUT" | grep tg32
       echo "$r 1 $(depth_ts "$OUT")" >> "$RAW" ;;
    2) [ -x "$IK" ] || return 0
       echo "\$ $IK -m $m -t $T -p 0 -n 0 -gp $D,32 -r $R"
       "$IK" -m "$m" -t "$T" -p 0 -n 0 -gp "$D,32" -r "$R" 2>/dev/null | tee "$OUT" | grep tg32
       echo "$r 2 $(depth_ts "$OUT")" >> "$RAW" ;;
  esac
}

for f in ${FILES:-q4_0 q8_0 q4_k_m f16}; do
  m=$DIR/tiny-$f.gguf
  [ -f "$m" ] || continue
  : > "$RAW"
  for r in $(seq 0 $((ROUNDS - 1))); do
    for i in 0 1 2; do run_depth "$m" "$r" $(((r + i) % 3)); done
  done
  # per engine the median over the rounds ("-" where it has none)
  awk -v f="$f" '
    $3 != "" { v[$2, ++n[$2]] = $3 + 0 }
    END {
      printf "%s", f
      for (e = 0; e < 3; e++) {
        k = n[e] + 0
        for (i = 2; i <= k; i++) for (j = i; j > 1 && v[e, j - 1] > v[e, j]; j--) { t = v[e, j]; v[e, j] = v[e, j - 1]; v[e, j - 1] = t }
        printf " %s", k ? sprintf("%.2f", k % 2 ? v[e, (k + 1) / 2] : (v[e, k / 2] + v[e, k / 2 + 1]) / 2) : "-"
      }
      print ""
    }' "$RAW" >> "$SUMMARY"
done
echo
[ "$ROUNDS" -gt 1 ] && echo "medians of $ROUNDS interleaved rounds"
echo "| file | torchless tg32@d$D | llama.cpp | ik_llama.cpp | vs best peer |"
echo "|---|---|---|---|---|"
while read -r f tt lt it; do
  awk -v f="$f" -v tt="$tt" -v lt="$lt" -v it="$it" 'BEGIN {
    bt = (lt + 0 > it + 0) ? lt + 0 : it + 0; rt = bt > 0 ? sprintf("%.2fx", tt / bt) : "-";
    printf "| %s | %s | %s | %s | %s |\n", f, tt, lt, it, rt }'
done < "$SUMMARY"
