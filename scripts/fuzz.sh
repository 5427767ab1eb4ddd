#!/usr/bin/env bash
# fuzz.sh — build every tests/fuzz/fuzz_*.c with clang + libFuzzer in
# build-fuzz and run each for a bounded time.
#
#   scripts/fuzz.sh                 # all targets, FUZZ_SECONDS (default 60) each
#   scripts/fuzz.sh fuzz_gguf       # only the named targets
#   FUZZ_SECONDS=600 FUZZ_JOBS=2 scripts/fuzz.sh fuzz_gguf
#
# Corpora live in build-fuzz/corpus/<target> (kept between runs, seeded from
# the small fixtures under ../shared when present); crashes are written to
# build-fuzz/crashes/<target>/. Exit status is non-zero if any target crashed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-fuzz"
secs=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
shared=${TL_SHARED:-$root/../shared}
CC=${CC_FUZZ:-clang}

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="$CC" -DTL_FUZZ=ON \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$root"/tests/fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target "${targets[@]}"

# Seeds for fuzz_gguf: each fixture GGUF re-encoded small (same kvs and
# tensor infos, arrays cut to 8 elements, one block per tensor), plus a few
# raw prefixes so truncation paths start covered.
seed_gguf() {
  local out=$1
  mkdir -p "$out"
  [ -d "$shared/fixtures/models" ] || { echo "fuzz.sh: no $shared, empty seed corpus" >&2; return 0; }
  python3 - "$shared" "$out" <<'PY' || echo "fuzz.sh: python gguf seeding failed; raw prefixes only" >&2
import glob, os, struct, sys
import gguf
shared, out = sys.argv[1], sys.argv[2]
files = sorted(glob.glob(f"{shared}/fixtures/models/*.gguf")) + sorted(glob.glob(f"{shared}/fixtures/tokenizer/*.gguf"))
for path in files:
    r = gguf.GGUFReader(path)
    kv = b""; n_kv = 0
    for k, f in r.fields.items():
        if k.startswith("GGUF."): continue
        n_kv += 1
        key = k.encode()
        kv += struct.pack("<Q", len(key)) + key + struct.pack("<I", int(f.types[0]))
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            idx = f.data[:8]
            kv += struct.pack("<IQ", int(f.types[1]), len(idx))
            for i in idx:
                part = bytes(f.parts[i])
                if f.types[1] == gguf.GGUFValueType.STRING:
                    kv += struct.pack("<Q", len(part))
                kv += part
        elif f.types[0] == gguf.GGUFValueType.STRING:
            s = bytes(f.parts[-1])[:256]
            kv += struct.pack("<Q", len(s)) + s
        else:
            kv += bytes(f.parts[-1])
    info = b""; data = b""; off = 0
    for t in r.tensors:
        bs, ts = gguf.GGML_QUANT_SIZES[t.tensor_type]
        name = t.name.encode()
        nd = len(t.shape)
        info += struct.pack("<Q", len(name)) + name + struct.pack("<I", nd)
        info += struct.pack(f"<{nd}Q", bs, *([1] * (nd - 1)))
        info += struct.pack("<IQ", int(t.tensor_type), off)
        blob = t.data.tobytes()[:ts]
        data += blob + b"\0" * ((-len(blob)) % 32)
        off += len(blob) + (-len(blob)) % 32
    head = b"GGUF" + struct.pack("<IQQ", 3, len(r.tensors), n_kv) + kv + info
    head += b"\0" * ((-len(head)) % 32)
    name = os.path.basename(path)
    with open(f"{out}/{name}", "wb") as fh:
        fh.write(head + data)
    with open(f"{out}/{name}.prefix", "wb") as fh:
        fh.write((head + data)[: len(head) // 2])
PY
  for f in llama.f32 llama.q4_k_m; do
    [ -f "$shared/fixtures/models/$f.gguf" ] && head -c 2048 "$shared/fixtures/models/$f.gguf" > "$out/raw-$f.head"
  done
  return 0
}

status=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"; crashes="$build/crashes/$t"
  mkdir -p "$corpus" "$crashes"
  if [ -z "$(ls -A "$corpus")" ] && [ "$t" = fuzz_gguf ]; then seed_gguf "$corpus"; fi
  echo "== $t: ${secs}s, corpus $(ls "$corpus" | wc -l) files"
  par=()
  [ "$jobs" -gt 1 ] && par=(-jobs="$jobs" -workers="$jobs")   # workers log to fuzz-N.log in cwd
  if ! (cd "$build" && "$build/bin/$t" "$corpus" -max_total_time="$secs" "${par[@]}" \
        -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$crashes/" 2>"$build/$t.log"); then
    echo "!! $t failed; see $build/$t.log and $crashes/"; tail -30 "$build/$t.log"; status=1
  else
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|DONE" "$build/$t.log" | tail -3 || true
  fi
done
exit $status
