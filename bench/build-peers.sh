#!/usr/bin/env bash
# build-peers.sh — the peers' llama-bench, built by hand outside this
# repository, the way bench/compare.sh and bench/RESULTS.md time them.
#
#   bench/build-peers.sh native|avx512 SRC [BUILD] [extra cmake args...]
#
# SRC is a checkout of llama.cpp (ggerganov/llama.cpp) or ik_llama.cpp
# (ikawrakow/ik_llama.cpp); BUILD defaults to SRC/build (native) or
# SRC/build512. Nothing of theirs enters this repository.
#   native   for this machine: -DGGML_NATIVE=ON (what compare.sh runs here)
#   avx512   for an AVX-512 host that has none of our build tools, carried
#            there by bench/device-pack.sh: GGML_NATIVE=OFF with AVX2, FMA,
#            F16C, AVX512 (+VBMI, VNNI, BF16) on, static (no shared ggml,
#            -static-libstdc++ -static-libgcc; OpenMP's libgomp is carried).
#            ik_llama.cpp also gets -mavx512vl -mavx512dq -mavx512cd: its
#            HAVE_FANCY_SIMD kernels need them and its CMake adds only F and
#            BW (without them it runs its AVX2 paths on an AVX-512 host).
# Both: Release, no curl, no server, no tests; target llama-bench only.
set -eu
MODE=${1:?usage: bench/build-peers.sh native|avx512 SRC [BUILD] [cmake args...]}
SRC=${2:?usage: bench/build-peers.sh native|avx512 SRC [BUILD] [cmake args...]}
shift 2
case $MODE in
  native) BUILD=$SRC/build ;;
  avx512) BUILD=$SRC/build512 ;;
  *) echo "build-peers: MODE is native or avx512" >&2; exit 2 ;;
esac
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then BUILD=$1; shift; fi
[ -f "$SRC/CMakeLists.txt" ] || { echo "build-peers: $SRC is not a source tree" >&2; exit 2; }

F=(-DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF)
if [ "$MODE" = native ]; then
  F+=(-DGGML_NATIVE=ON)
else
  F+=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
    -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON
    -DBUILD_SHARED_LIBS=OFF "-DCMAKE_EXE_LINKER_FLAGS=-static-libstdc++ -static-libgcc")
  if [ -d "$SRC/ggml/src/iqk" ]; then # ik_llama.cpp
    F+=("-DCMAKE_C_FLAGS=-mavx512vl -mavx512dq -mavx512cd"
      "-DCMAKE_CXX_FLAGS=-mavx512vl -mavx512dq -mavx512cd")
  fi
fi
cmake -S "$SRC" -B "$BUILD" "${F[@]}" "$@" >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target llama-bench
echo "build-peers: $BUILD/bin/llama-bench"
