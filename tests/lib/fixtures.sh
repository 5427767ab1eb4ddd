# fixtures.sh — sourced by the shell tests: locates ../shared and the built
# binary, skips (exit 77) when the fixtures are absent, and sets
#   SHARED BIN M (models) L (logits) CMP (cmp_logits.py) TMP (removed on exit)
#   pass=0 fail=0
SHARED=${TL_SHARED:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/shared}
BIN=${TL_BIN:-build/bin}/torchless
if [ ! -d "$SHARED/fixtures/models" ]; then
  echo "SKIP: $SHARED/fixtures not found (set TL_SHARED)"; exit 77
fi
M=$SHARED/fixtures/models L=$SHARED/fixtures/logits CMP=$SHARED/tools/cmp_logits.py
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0
