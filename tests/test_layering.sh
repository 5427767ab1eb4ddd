#!/usr/bin/env bash
# Dependencies point one way:
#   base <- core <- {io, kern} <- {tok, arch} <- backend <- model <- serve <- api
# A file may include headers of its own module and of modules below it only.
set -u
cd "$(dirname "$0")/.."
declare -A rank=([base]=0 [core]=1 [io]=2 [kern]=2 [tok]=3 [arch]=3 [backend]=4 [model]=5 [serve]=6 [api]=7)
bad=0 files=0
while IFS= read -r f; do
  files=$((files+1))
  mod=$(echo "$f" | cut -d/ -f2)
  [ -n "${rank[$mod]:-}" ] || continue
  while IFS= read -r inc; do
    dep=${inc%%/*}
    [ -n "${rank[$dep]:-}" ] || continue
    if [ "$dep" != "$mod" ] && { [ "${rank[$dep]}" -gt "${rank[$mod]}" ] ||
         { [ "${rank[$dep]}" -eq "${rank[$mod]}" ]; }; }; then
      echo "FAIL $f includes $inc ($mod may not depend on $dep)"; bad=$((bad+1))
    fi
  done < <(grep -oE '^#include "[a-z]+/[^"]+"' "$f" | sed 's/#include "//; s/"$//')
done < <(find src -name '*.[ch]')
# model code never includes a backend's own headers, only backend/backend.h
if grep -rnE '#include "backend/(cpu|cuda|hip|opencl|metal)/' src/model src/serve src/api; then
  echo "FAIL model/serve/api include a concrete backend"; bad=$((bad+1))
fi
# ISA macros stay inside their kernel folders
if grep -rnE '__AVX2__|__AVX512F__|__ARM_NEON' src --include='*.[ch]' | grep -vE '^src/kern/cpu/(avx2|avx512|neon)/'; then
  echo "FAIL ISA macros outside src/kern/cpu/<isa>/"; bad=$((bad+1))
fi
echo "$((files - bad)) passed, $bad failed"
[ "$bad" -eq 0 ]
