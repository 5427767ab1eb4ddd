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

# Seeds for fuzz_gguf: each fixture GGUF (v1-v3) re-encoded small as v3 (same
# kvs and tensor infos, arrays cut to 8 elements and strings to 256 bytes, one
# block per tensor), a prefix of each ending mid-header, and a few raw
# prefixes so truncation paths start covered. The GGUF parsing is plain
# struct: the `gguf` Python package is not installed on CI.
seed_gguf() {
  local out=$1
  python3 - "$shared" "$out" <<'PY' || echo "fuzz.sh: python gguf seeding failed; raw prefixes only" >&2
import glob, os, struct, sys
shared, out = sys.argv[1], sys.argv[2]
# GGML type id -> (block size, bytes per block), as src/core/dtype.h
BLOCK = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24),
         8: (32, 34), 9: (32, 36), 10: (256, 84), 11: (256, 110), 12: (256, 144),
         13: (256, 176), 14: (256, 210), 15: (256, 292), 24: (1, 1), 25: (1, 2),
         26: (1, 4), 27: (1, 8), 28: (1, 8), 30: (1, 2)}
# GGUF scalar value types -> struct codes; 8 is STRING, 9 ARRAY
SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "B",
          10: "Q", 11: "q", 12: "d"}
STRING, ARRAY = 8, 9

class Reader:   # v1 writes counts, string/array lengths and dims as u32, v2/v3 as u64
    def __init__(self, buf): self.b, self.pos, self.lenw = buf, 0, "Q"
    def raw(self, n):
        if n > len(self.b) - self.pos: raise ValueError(f"truncated at offset {self.pos}")
        self.pos += n
        return self.b[self.pos - n:self.pos]
    def num(self, fmt): return struct.unpack("<" + fmt, self.raw(struct.calcsize(fmt)))[0]
    def count(self): return self.num(self.lenw)
    def string(self): return self.raw(self.count())
    def value(self, t):
        """Value of type t re-encoded as v3: strings cut to 256 bytes, arrays
        (nested ones too) to 8 elements. Returns (bytes, int or None)."""
        if t in SCALAR:
            raw = self.raw(struct.calcsize(SCALAR[t]))
            return raw, struct.unpack("<" + SCALAR[t], raw)[0]
        if t == STRING:
            s = self.string()[:256]
            return struct.pack("<Q", len(s)) + s, None
        if t != ARRAY: raise ValueError(f"unknown value type {t} at offset {self.pos - 4}")
        et, n = self.num("I"), self.count()
        enc = b"".join(self.value(et)[0] for _ in range(min(n, 8)))
        if et in SCALAR: self.raw((n - min(n, 8)) * struct.calcsize(SCALAR[et]))
        else:
            for _ in range(n - min(n, 8)): self.value(et)
        return struct.pack("<IQ", et, min(n, 8)) + enc, None

def shrink(buf):
    r = Reader(buf)
    if r.raw(4) != b"GGUF": raise ValueError("not GGUF")
    ver = r.num("I")
    if ver not in (1, 2, 3): raise ValueError(f"version {ver}")
    if ver == 1: r.lenw = "I"
    n_tensors, n_kv = r.count(), r.count()
    kv, align = b"", 32
    for _ in range(n_kv):
        key, t = r.string(), r.num("I")
        enc, v = r.value(t)
        if key == b"general.alignment" and v: align = v
        kv += struct.pack("<Q", len(key)) + key + struct.pack("<I", t) + enc
    infos = []
    for _ in range(n_tensors):
        name, nd = r.string(), r.num("I")
        for _ in range(nd): r.count()   # dims: the seed has its own
        infos.append((name, nd, r.num("I"), r.num("Q")))
    src_data = (r.pos + align - 1) // align * align
    info = data = b""
    for name, nd, ty, off in infos:   # shape [block, 1, ...], one block of data
        bs, ts = BLOCK.get(ty, (1, 1))
        info += struct.pack("<Q", len(name)) + name + struct.pack("<I", nd)
        info += struct.pack(f"<{nd}Q", *([bs] + [1] * nd)[:nd])
        info += struct.pack("<IQ", ty, len(data))
        blob = buf[src_data + off:src_data + off + ts].ljust(ts, b"\0")
        data += blob + b"\0" * ((-len(blob)) % align)
    head = b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + kv + info
    head += b"\0" * ((-len(head)) % align)
    return head, data

files = sorted(glob.glob(f"{shared}/fixtures/models/*.gguf")) + sorted(glob.glob(f"{shared}/fixtures/tokenizer/*.gguf"))
for path in files:
    try:
        with open(path, "rb") as fh: head, data = shrink(fh.read())
    except (ValueError, struct.error) as e:
        print(f"fuzz.sh: {path}: {e}; not seeded", file=sys.stderr); continue
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

# Seeds for fuzz_native: each fixture Torchless .bin re-encoded small (same
# metadata, tokenizer cut to a few entries when big, every tensor 2x2 or one
# 64-group for int8, half [2, 32] -> Q8_0 and half [64, 1] -> F32), a tied
# f16/bf16 variant, one with the payload cut short and a raw prefix.
seed_native() {
  local out=$1
  python3 - "$shared" "$out" <<'PY' || echo "fuzz.sh: python native seeding failed; raw prefix only" >&2
import glob, json, os, struct, sys
shared, out = sys.argv[1], sys.argv[2]

def encode(hdr, payload):
    j = json.dumps(hdr, ensure_ascii=False).encode()
    j += b"\0" * ((-(8 + len(j))) % 64)   # payload at a 64-byte boundary
    return struct.pack("<Q", len(j)) + j + payload

def cut_tokenizer(tok, n_vocab=16, n_merges=8):
    vocab, merges = tok["vocab"], tok.get("merges", [])
    keep = dict(list(vocab.items())[:n_vocab])
    for m in merges[:n_merges]:
        l, r = m.split(" ", 1) if isinstance(m, str) else m
        for s in (l, r, l + r):
            if s in vocab: keep[s] = vocab[s]
    return {"vocab": keep, "merges": merges[:n_merges]}

def shrink(path, f16=False, tie=False):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    hdr = json.loads(b[8:8 + n].rstrip(b"\0 ").decode())
    src = b[(8 + n + 63) // 64 * 64:]
    meta = dict(hdr["metadata"])
    tok = hdr["tokenizer"]
    if len(json.dumps(tok)) > 4096: tok = cut_tokenizer(tok)
    if tie: meta["tie_word_embeddings"] = "true"
    tensors, payload, n_int8 = {}, b"", 0
    for name, e in sorted(hdr["tensors"].items(), key=lambda kv: kv[1]["offset"]):
        if tie and name == "lm_head.weight": continue
        e = dict(e)
        payload += b"\0" * ((-len(payload)) % 4)
        if e["dtype"] == "int8":   # 64 weights, one scale: [2, 32] -> Q8_0, [64, 1] -> F32
            e["shape"] = [2, 32] if n_int8 % 2 == 0 else [64, 1]
            e["offset"] = len(payload)
            payload += src[hdr["tensors"][name]["offset"]:][:64]
            e["scale_offset"], e["scale_size"] = len(payload), 1
            s = src[hdr["tensors"][name]["scale_offset"]:][:4]
            payload += s if n_int8 % 5 else b"\0\0\0\0"   # some all-zero groups
            n_int8 += 1
        else:
            e["shape"] = [min(d, 2) for d in e["shape"]]
            if f16 and len(e["shape"]) == 1: e["dtype"] = "f16" if "input" in name else "bf16"
            size = {"f32": 4, "f16": 2, "bf16": 2}[e["dtype"]]
            cnt = 1
            for d in e["shape"]: cnt *= d
            e["offset"] = len(payload)
            payload += src[hdr["tensors"][name]["offset"]:][:cnt * size]
        tensors[name] = e
    return encode({"metadata": meta, "tokenizer": tok, "tensors": tensors}, payload)

for path in sorted(glob.glob(f"{shared}/fixtures/models/*.torchless-*.bin")) + \
            sorted(glob.glob(f"{shared}/fixtures/models/torchless-*.bin")):
    name = os.path.basename(path)
    blob = shrink(path)
    with open(f"{out}/{name}", "wb") as fh: fh.write(blob)
    if "int8" in name:   # header whole, payload cut: the range checks
        with open(f"{out}/{name}.cut", "wb") as fh: fh.write(blob[: len(blob) - 100])
    if "test_model" in name:
        with open(f"{out}/{name}.f16-tied", "wb") as fh: fh.write(shrink(path, f16=True, tie=True))
PY
  local f=$shared/fixtures/models/torchless-rs-test_model.bin
  [ -f "$f" ] && head -c 4096 "$f" > "$out/raw-test_model.head"
  return 0
}

# Seeds for fuzz_safetensors (the same bytes go to the safetensors reader and
# to the JSON translators): each fixture .safetensors re-encoded small (layers
# 0-1, every dim cut to 2), one with its data cut short, the HF dirs' JSON
# files, the llama3/qwen3 tokenizer.json cut to the byte alphabet plus a few
# merges (added tokens renumbered after them), and merged trees that carry
# config, tokenizer and tokenizer_config keys at once.
seed_safetensors() {
  local out=$1
  python3 - "$shared" "$out" <<'PY' || echo "fuzz.sh: python safetensors seeding failed; raw prefix only" >&2
import glob, hashlib, json, os, re, struct, sys
shared, out = sys.argv[1], sys.argv[2]
models, tokdir = f"{shared}/fixtures/models", f"{shared}/fixtures/tokenizer/hf"
seen = set()

def put(name, blob):
    if isinstance(blob, (dict, list)): blob = json.dumps(blob, ensure_ascii=False, indent=1).encode()
    h = hashlib.sha1(blob).digest()
    if h in seen: return blob
    seen.add(h)
    with open(f"{out}/{name}", "wb") as fh: fh.write(blob)
    return blob

def safetensors(path):   # same header, layers 0-1 only, every dim cut to 2
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    hdr, src = json.loads(b[8:8 + n]), b[8 + n:]
    new = {"__metadata__": hdr.pop("__metadata__")} if "__metadata__" in hdr else {}
    data = b""
    for k, e in sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        m = re.search(r"\.layers\.(\d+)\.", k)
        if m and int(m.group(1)) >= 2: continue
        shape = [min(d, 2) for d in e["shape"]]
        size = {"F32": 4, "F16": 2, "BF16": 2}[e["dtype"]]
        for d in shape: size *= d
        new[k] = {"dtype": e["dtype"], "shape": shape, "data_offsets": [len(data), len(data) + size]}
        data += src[e["data_offsets"][0]:][:size]
    j = json.dumps(new).encode()
    j += b" " * ((-len(j)) % 8)
    return struct.pack("<Q", len(j)) + j + data

def cut_tokenizer(tok, tok_cfg, n_merges=32):
    """vocab: ids < 256 (the byte alphabet) and the parts of the first merges
    kept; added tokens renumbered just after, so the vocabulary stays small."""
    model = dict(tok["model"])
    vocab, merges = model["vocab"], model.get("merges") or []
    keep = {k: v for k, v in vocab.items() if v < 256}
    kept_merges = []
    for m in merges[:n_merges]:
        l, r = m.split(" ", 1) if isinstance(m, str) else m
        if all(s in vocab for s in (l, r, l + r)):
            kept_merges.append(m)
            for s in (l, r, l + r): keep[s] = vocab[s]
    model["vocab"], model["merges"] = keep, kept_merges
    want = {str(tok_cfg.get(k)) for k in ("bos_token", "eos_token", "pad_token", "unk_token")}
    added = [a for i, a in enumerate(tok.get("added_tokens", [])) if i < 4 or a["content"] in want]
    nxt, remap = max(keep.values()) + 1, {}
    for i, a in enumerate(added):
        remap[str(a["id"])] = nxt + i
        added[i] = dict(a, id=nxt + i)
    cfg = dict(tok_cfg)
    if "added_tokens_decoder" in cfg:
        dec = cfg["added_tokens_decoder"]
        cfg["added_tokens_decoder"] = {str(remap[k]): v for k, v in dec.items() if k in remap}
    return dict(tok, model=model, added_tokens=added), cfg

for path in sorted(glob.glob(f"{models}/*.hf/*.safetensors")):
    d = os.path.basename(os.path.dirname(path))
    blob = put(f"{d}-{os.path.basename(path)}", safetensors(path))
    if d == "llama.hf":   # header whole, data cut: the range checks
        put(f"{d}-model.safetensors.cut", blob[: len(blob) - 10])
for d in sorted(glob.glob(f"{models}/*.hf")):
    name = os.path.basename(d)
    for f in ("config.json", "tokenizer_config.json", "tokenizer.json", "model.safetensors.index.json"):
        if os.path.exists(f"{d}/{f}") and os.path.getsize(f"{d}/{f}") <= 65536:
            put(f"{name}-{f}", open(f"{d}/{f}", "rb").read())
    if name != "mistral.hf": continue
    # the target hands the same JSON to all three translators: one tree with everything
    merged = {}
    for f in ("tokenizer.json", "tokenizer_config.json", "config.json"):
        if os.path.exists(f"{d}/{f}"): merged.update(json.load(open(f"{d}/{f}")))
    put(f"{name}-merged.json", merged)
for d in sorted(glob.glob(f"{tokdir}/*")):
    name = os.path.basename(d)
    tok, cfg = json.load(open(f"{d}/tokenizer.json")), json.load(open(f"{d}/tokenizer_config.json"))
    tok, cfg = cut_tokenizer(tok, cfg)
    put(f"{name}-tokenizer.json", tok)
    put(f"{name}-tokenizer_config.json", cfg)
    merged = dict(tok, **cfg)
    cfg_path = f"{models}/qwen2.hf/config.json"   # any config: a Qwen-style tree
    if os.path.exists(cfg_path): merged.update(json.load(open(cfg_path)))
    put(f"{name}-merged.json", merged)
PY
  local f=$shared/fixtures/models/llama.hf/model.safetensors
  [ -f "$f" ] && head -c 1024 "$f" > "$out/raw-llama.safetensors.head"
  return 0
}

# Seeds for fuzz_tokenize: the strings of each fixture vocabulary's .inp file
# (llama.cpp's tokenizer tests), each behind the byte that picks that
# vocabulary (the target loads them sorted by name) with no flags, and every
# fourth one again with add/parse/render special set.
seed_tokenize() {
  local out=$1
  python3 - "$shared/fixtures/tokenizer" "$out" <<'PY' || echo "fuzz.sh: tokenizer seeding failed" >&2
import glob, os, sys
tokdir, out = sys.argv[1], sys.argv[2]
for i, path in enumerate(sorted(glob.glob(f"{tokdir}/*.gguf"))):
    inp = path + ".inp"
    if not os.path.exists(inp): continue
    texts = open(inp, "rb").read().split(b"\n__ggml_vocab_test__\n")
    for j, t in enumerate(texts):
        if len(t) > 4096: continue
        open(f"{out}/{i}-{j}", "wb").write(bytes([i]) + t)
        if j % 4 == 0: open(f"{out}/{i}-{j}-special", "wb").write(bytes([i | 0xE0]) + t)
PY
  return 0
}

# fuzz_tokenize's vocabularies
export TL_FUZZ_VOCABS=${TL_FUZZ_VOCABS:-$shared/fixtures/tokenizer}

status=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"; crashes="$build/crashes/$t"
  mkdir -p "$corpus" "$crashes"
  # an empty corpus is seeded from ../shared's fixtures (each seed_* writes into $corpus)
  if [ -z "$(ls -A "$corpus")" ] && [ ! -d "$shared/fixtures/models" ]; then
    echo "fuzz.sh: no $shared, empty seed corpus" >&2
  elif [ -z "$(ls -A "$corpus")" ]; then
    case $t in
      fuzz_gguf) seed_gguf "$corpus" ;;
      fuzz_native) seed_native "$corpus" ;;
      fuzz_safetensors) seed_safetensors "$corpus" ;;
      fuzz_tokenize) seed_tokenize "$corpus" ;;
    esac
  fi
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
