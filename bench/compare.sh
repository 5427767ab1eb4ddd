#!/usr/bin/env bash
# Side-by-side speed run: torchless bench and the peers' llama-bench on the
# same GGUF files, same threads, one after the other in one run, then a
# summary table with the ratios to the better peer.
#   bench/compare.sh DIR [THREADS]   (DIR holds tiny-{q4_0,q8_0,q4_k_m,f16}.gguf,
#   made by `torchless synth DIR/tiny-f16.gguf` + llama-quantize)
# Env: TL_BIN (default build/bin), LLAMA_BIN, IK_BIN (peer build/bin dirs; a
# peer is skipped when its llama-bench is missing), REPS (default 3; the
# peers' -r too), FILES (default "q4_0 q8_0 q4_k_m f16"), DEPTH (also time
# tg32 after DEPTH tokens in the cache: torchless -d, ik_llama.cpp's -gp
# DEPTH,32, llama.cpp's -d where its llama-bench has it).
set -u
DIR=${1:?usage: bench/compare.sh DIR [THREADS]}
T=${2:-2}
R=${REPS:-3}
TL=${TL_BIN:-build/bin}/torchless
LLAMA=${LLAMA_BIN:-/work/peers/llama.cpp/build/bin}/llama-bench
IK=${IK_BIN:-/work/peers/tools-arch/ik-build/bin}/llama-bench
SUMMARY=$(mktemp)
trap 'rm -f "$SUMMARY"' EXIT

# t/s of TEST (pp128 / tg32) from llama-bench's markdown table
peer_ts() { grep -E "\| +$2 +\|" "$1" | awk -F'|' '{print $(NF-1)}' | awk '{print $1}'; }

for f in ${FILES:-q4_0 q8_0 q4_k_m f16}; do
  m=$DIR/tiny-$f.gguf
  [ -f "$m" ] || { echo "missing $m"; continue; }
  echo "== $f"
  echo "\$ $TL bench $m -t $T -p 128 -n 32 -r $R"
  out=$(mktemp)
  "$TL" bench "$m" -t "$T" -p 128 -n 32 -r "$R" | tee "$out" | tail -2
  tl_pp=$(grep pp128 "$out" | awk -F'|' '{print $8}' | awk '{print $1}')
  tl_tg=$(grep tg32 "$out" | awk -F'|' '{print $8}' | awk '{print $1}')
  tl_gbs=$(grep tg32 "$out" | awk -F'|' '{print $9}' | awk '{print $1}')
  res=()
  for peer in "$LLAMA" "$IK"; do
    if [ -x "$peer" ]; then
      echo "\$ $peer -m $m -t $T -p 128 -n 32 -r $R"
      "$peer" -m "$m" -t "$T" -p 128 -n 32 -r "$R" 2>/dev/null | tee "$out" | grep -E "pp128|tg32"
      res+=("$(peer_ts "$out" pp128)" "$(peer_ts "$out" tg32)")
    else
      echo "(no $peer)"
      res+=("-" "-")
    fi
  done
  rm -f "$out"
  echo "$f $tl_pp $tl_tg $tl_gbs ${res[*]}" >> "$SUMMARY"
done

echo
echo "| file | torchless pp128 | llama.cpp pp128 | ik_llama.cpp pp128 | pp vs best peer | torchless tg32 | llama.cpp tg32 | ik_llama.cpp tg32 | tg vs best peer | torchless tg GB/s |"
echo "|---|---|---|---|---|---|---|---|---|---|"
while read -r f tp tt gb lp lt ip it; do
  awk -v f="$f" -v tp="$tp" -v tt="$tt" -v gb="$gb" -v lp="$lp" -v lt="$lt" -v ip="$ip" -v it="$it" 'BEGIN {
    bp = (lp + 0 > ip + 0) ? lp + 0 : ip + 0; bt = (lt + 0 > it + 0) ? lt + 0 : it + 0;
    rp = bp > 0 ? sprintf("%.2fx", tp / bp) : "-"; rt = bt > 0 ? sprintf("%.2fx", tt / bt) : "-";
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", f, tp, lp, ip, rp, tt, lt, it, rt, gb }'
done < "$SUMMARY"

[ -n "${DEPTH:-}" ] || exit 0
D=$DEPTH
echo
echo "== generation at depth $D"
: > "$SUMMARY"
out=$(mktemp)
for f in ${FILES:-q4_0 q8_0 q4_k_m f16}; do
  m=$DIR/tiny-$f.gguf
  [ -f "$m" ] || continue
  echo "\$ $TL bench $m -t $T -p 0 -n 32 -d $D -r $R --csv"
  "$TL" bench "$m" -t "$T" -p 0 -n 32 -d "$D" -r "$R" --csv | tee "$out"
  tl=$(cut -d, -f2 "$out")
  lt=- it=-
  if [ -x "$LLAMA" ] && "$LLAMA" --help 2>&1 | grep -q -- "-d, --n-depth"; then
    echo "\$ $LLAMA -m $m -t $T -p 0 -n 32 -d $D -r $R"
    "$LLAMA" -m "$m" -t "$T" -p 0 -n 32 -d "$D" -r "$R" 2>/dev/null | tee "$out" | grep tg32
    lt=$(grep tg32 "$out" | awk -F'|' '{print $(NF-1)}' | awk '{print $1}')
  fi
  if [ -x "$IK" ]; then
    echo "\$ $IK -m $m -t $T -p 0 -n 0 -gp $D,32 -r $R"
    "$IK" -m "$m" -t "$T" -p 0 -n 0 -gp "$D,32" -r "$R" 2>/dev/null | tee "$out" | grep tg32
    it=$(grep tg32 "$out" | awk -F'|' '{print $(NF-1)}' | awk '{print $1}')
  fi
  echo "$f $tl ${lt:--} ${it:--}" >> "$SUMMARY"
done
rm -f "$out"
echo
echo "| file | torchless tg32@d$D | llama.cpp | ik_llama.cpp | vs best peer |"
echo "|---|---|---|---|---|"
while read -r f tt lt it; do
  awk -v f="$f" -v tt="$tt" -v lt="$lt" -v it="$it" 'BEGIN {
    bt = (lt + 0 > it + 0) ? lt + 0 : it + 0; rt = bt > 0 ? sprintf("%.2fx", tt / bt) : "-";
    printf "| %s | %s | %s | %s | %s |\n", f, tt, lt, it, rt }'
done < "$SUMMARY"
