#!/usr/bin/env bash
# `make run`: generate with MODEL if given, else with the default model
# (fetched on first use), answering PROMPT through its chat template.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-}
PROMPT=${2:-"Once upon a time"}
BIN=build/bin/torchless
if [ -n "$MODEL" ]; then
  exec "$BIN" run "$MODEL" "$PROMPT" --max-tokens 128
fi
MODELS=${TORCHLESS_MODELS:-$HOME/.cache/torchless/models}
if bash scripts/fetch-models.sh smollm2-135m-instruct; then
  echo "== default model: SmolLM2-135M-Instruct (Q4_1), chat template applied ==" >&2
  [ "$PROMPT" = "Once upon a time" ] && PROMPT="Write a two-sentence story about a robot who learns to paint."
  exec "$BIN" run "$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf" "$PROMPT" --chat --max-tokens 128 --temperature 0.7 --seed 42
fi
echo "== the default model could not be fetched: generating with a small random-weight model written by this build (its text is noise) ==" >&2
mkdir -p build/models
"$BIN" synth build/models/tiny-random.gguf --tiny --seed 1
exec "$BIN" run build/models/tiny-random.gguf "$PROMPT" --max-tokens 32 --seed 1
