#!/usr/bin/env bash
# device-pack.sh — the folder that bench/host-check.sh runs from on a host
# that lacks our Debian libraries (the device machine, lent for minutes):
# build here, carry the folder, run there with HC_PREBUILT=DIR.
#
#   bench/device-pack.sh [DIR]          (DIR default build-dev/pkg)
#
# DIR gets:
#   bin/     torchless, kbench, decbench, membw, test_kern_simd, test_matmul:
#            a Release build of the working tree (build-dev/), stripped; the
#            kernels are chosen at run time, so one build serves every CPU
#   lib/     the shared libraries they need beyond glibc (libcjson, libonig,
#            libgomp, ...), found with ldd
#   shared/  the llama.* fixture models with their golden logits, tokens.txt
#            and tools/cmp_logits.py (host-check's logits step, native kernels)
#   peers/{llama,ik}/llama-bench   when LLAMA_BIN / IK_BIN name the build/bin
#            of a llama-bench built to run there (bench/build-peers.sh
#            avx512), checked to need no library beyond glibc's and
#            OpenMP's (libgomp, carried in lib/)
# and prints the command to run there. The device tool carries 64 MiB at
# most: the script says when DIR is larger (ik_llama.cpp's static
# llama-bench is ~33 MB, the fixture subset ~16 MB, our binaries ~3 MB).
set -eu
cd "$(dirname "$0")/.."
DIR=${1:-build-dev/pkg}
case $DIR in # the device copies the working tree: DIR travels as a path in it
  /* | ..*) echo "device-pack: DIR is a path inside the repository (carry names it)" >&2; exit 2 ;;
esac
SH=${TL_SHARED:-../shared}
B=build-dev

cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release >/dev/null
BINS="torchless kbench decbench membw test_kern_simd test_matmul"
# shellcheck disable=SC2086
cmake --build "$B" -j"$(nproc)" --target $BINS >/dev/null

rm -rf "$DIR"
mkdir -p "$DIR/bin" "$DIR/lib"
for b in $BINS; do
  cp "$B/bin/$b" "$DIR/bin/"
  strip "$DIR/bin/$b"
done

# the libraries ldd resolves outside glibc's own (libc, libm, ld.so, ...)
glibc='(linux-vdso|libc|libm|libdl|librt|libpthread|ld-linux[-a-z0-9_]*)\.so'
for b in $BINS; do ldd "$DIR/bin/$b"; done | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' |
  sort -u | while read -r name path; do
  if ! echo "$name" | grep -Eq "^$glibc"; then cp -L "$path" "$DIR/lib/$name"; fi
done

if [ -d "$SH/fixtures/models" ]; then
  mkdir -p "$DIR/shared/fixtures/models" "$DIR/shared/fixtures/logits" "$DIR/shared/tools"
  for m in "$SH"/fixtures/models/llama.*.gguf; do
    n=$(basename "$m" .gguf)
    [ -f "$SH/fixtures/logits/$n.logits" ] || continue
    cp "$m" "$DIR/shared/fixtures/models/"
    cp "$SH/fixtures/logits/$n.logits" "$DIR/shared/fixtures/logits/"
  done
  cp "$SH/fixtures/logits/tokens.txt" "$DIR/shared/fixtures/logits/"
  cp "$SH/tools/cmp_logits.py" "$DIR/shared/tools/"
else
  echo "device-pack: no $SH/fixtures: the logits step will be skipped there"
fi

peer_args=
for p in llama:LLAMA_BIN ik:IK_BIN; do
  name=${p%%:*} var=${p#*:}
  src=${!var:-}
  [ -n "$src" ] || continue
  if [ ! -x "$src/llama-bench" ]; then
    echo "device-pack: $var=$src has no llama-bench" >&2
    exit 1
  fi
  needs=$(ldd "$src/llama-bench" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}')
  extra=$(echo "$needs" | grep -Ev "^($glibc|libgomp)" | cut -d' ' -f1 || true)
  if [ -n "$extra" ]; then
    echo "device-pack: $src/llama-bench needs $(echo "$extra" | tr '\n' ' ')(not carried: build it" \
      "static, bench/build-peers.sh avx512)" >&2
    exit 1
  fi
  # OpenMP's runtime, which a static libstdc++ build still loads
  echo "$needs" | awk '$1 ~ /^libgomp/' | while read -r n path; do cp -L "$path" "$DIR/lib/$n"; done
  mkdir -p "$DIR/peers/$name"
  cp "$src/llama-bench" "$DIR/peers/$name/"
  strip "$DIR/peers/$name/llama-bench" 2>/dev/null || true
  [ "$name" = llama ] && peer_args="$peer_args LLAMA_BIN=\$PWD/$DIR/peers/llama"
  [ "$name" = ik ] && peer_args="$peer_args IK_BIN=\$PWD/$DIR/peers/ik"
done

kib=$(du -sk "$DIR" | cut -f1)
echo "device-pack: $DIR, $((kib / 1024)) MiB ($(git describe --always --dirty))"
[ "$kib" -gt $((64 * 1024)) ] && echo "device-pack: over the 64 MiB a device run carries" >&2
echo "run there (carry [\"$DIR\"]):"
echo "  HC_PREBUILT=$DIR$peer_args TL_SHARED=\$PWD/$DIR/shared REPS=3 ROUNDS=1 HC_DEADLINE=370 bash bench/host-check.sh 2 \$OUT"
