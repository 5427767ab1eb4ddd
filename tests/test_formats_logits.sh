#!/usr/bin/env bash
# Hugging Face directories and the Torchless native format through the CLI:
# logits on fixtures/logits/tokens.txt against llama.cpp's references of the
# same networks (cmp_logits.py tiers), the Rust port's test model gives finite
# logits, and damaged files give a clear error (non-zero exit, a message,
# no crash, no hang).
set -u
. "$(dirname "$0")/lib/fixtures.sh"
ok()   { pass=$((pass+1)); echo "ok   $*"; }
bad()  { fail=$((fail+1)); echo "FAIL $*"; }
check() { # model reference tier [extra args]
  local model=$1 ref=$2 tier=$3; shift 3
  local out=$TMP/$(basename "$model").$tier.out res=
  if [ ! -e "$model" ]; then echo "skip $(basename "$model") (absent)"; return; fi
  if timeout 120 "$BIN" logits "$model" --tokens "$L/tokens.txt" --out "$out" "$@" 2>"$TMP/err" &&
     res=$(python3 "$CMP" "$ref" "$out" 512 "$tier"); then
    ok "$(basename "$model") $tier $* : $res"
  else
    bad "$(basename "$model") $tier $* : ${res:-$(head -c 400 "$TMP/err")}"
  fi
}
# F32 llama: exact with an F32 cache; F16 weights (every other family): half.
check "$M/llama.hf" "$L/llama.f32.logits" exact --kv-dtype f32
check "$M/llama.hf" "$L/llama.f32.logits" half
for a in mistral qwen2 phi2 phi3 gemma gemma2; do
  check "$M/$a.hf" "$L/$a.f32.logits" half --kv-dtype f32
done
check "$M/llama-sharded-bf16.hf" "$L/llama-sharded-bf16.hf.logits" half --kv-dtype f32
# a lone .safetensors opens the directory around it
check "$M/llama.hf/model.safetensors" "$L/llama.f32.logits" exact --kv-dtype f32
check "$M/mistral.torchless-f32.bin" "$L/mistral.f32.logits" exact --kv-dtype f32
check "$M/mistral.torchless-int8.bin" "$L/mistral.f32.logits" quant --kv-dtype f32

# HF tokenization equals the GGUF's for the same vocabulary
if [ -d "$M/llama.hf" ]; then
  inp=$SHARED/fixtures/tokenizer/ggml-vocab-llama-spm.gguf.inp
  if "$BIN" tokenize "$M/llama.hf" --inp "$inp" >"$TMP/hf.tok" 2>"$TMP/err" &&
     "$BIN" tokenize "$M/llama.f32.gguf" --inp "$inp" >"$TMP/gguf.tok" 2>>"$TMP/err" &&
     cmp -s "$TMP/hf.tok" "$TMP/gguf.tok"; then
    ok "llama.hf tokenizes $(wc -l <"$TMP/hf.tok") strings like llama.f32.gguf"
  else
    bad "llama.hf tokenization differs from llama.f32.gguf: $(head -c 300 "$TMP/err")"
  fi
fi

# torchless-rs test model (vocab 300, no reference): loads, logits finite
rs=$M/torchless-rs-test_model.bin
if [ -e "$rs" ]; then
  echo 0 1 2 3 4 5 6 7 8 9 10 100 200 299 > "$TMP/rs.tokens"
  if "$BIN" logits "$rs" --tokens "$TMP/rs.tokens" --out "$TMP/rs.out" 2>"$TMP/err" &&
     res=$(python3 - "$TMP/rs.out" <<'PY'
import math, struct, sys
b = open(sys.argv[1], "rb").read()
v = struct.unpack("<%df" % (len(b) // 4), b)
assert len(v) == 14 * 300, len(v)
assert all(math.isfinite(x) for x in v), "non-finite logits"
print("%d finite logits, max |x| %.3g" % (len(v), max(abs(x) for x in v)))
PY
); then ok "torchless-rs-test_model.bin: $res"
  else bad "torchless-rs-test_model.bin: ${res:-$(head -c 300 "$TMP/err")}"; fi
fi

# ---- damaged input
expect_error() { # description, command...
  local what=$1; shift
  timeout 60 "$@" >"$TMP/out" 2>"$TMP/err"
  local rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 124 ] && [ -s "$TMP/err" ] &&
     ! grep -q "Sanitizer\|runtime error" "$TMP/err"; then
    ok "$what: $(head -c 200 "$TMP/err" | tr '\n' ' ')"
  else
    bad "$what: exit $rc, stderr: $(head -c 300 "$TMP/err")"
  fi
}
echo 1 2 3 > "$TMP/tokens.txt"
# a copy of llama.hf whose safetensors file we damage
mkhf() { rm -rf "$TMP/d.hf"; mkdir "$TMP/d.hf"; cp "$M/llama.hf/"*.json "$TMP/d.hf/"; }
st=$M/llama.hf/model.safetensors
hs=$(python3 -c "import struct,sys; print(struct.unpack('<Q', open(sys.argv[1],'rb').read(8))[0])" "$st")
size=$(stat -c %s "$st")
for cut in 4 12 $((8 + hs / 2)) $((8 + hs)) $((size / 2)) $((size - 1)); do
  mkhf; head -c "$cut" "$st" > "$TMP/d.hf/model.safetensors"
  expect_error "safetensors truncated at $cut of $size" "$BIN" logits "$TMP/d.hf" --tokens "$TMP/tokens.txt" --out "$TMP/o"
done
# header edits: (python: file, transform of the header dict)
edit_header() { # name python-expression-on-h
  mkhf
  python3 - "$st" "$TMP/d.hf/model.safetensors" "$2" <<'PY'
import json, struct, sys
src, dst, expr = sys.argv[1:4]
b = open(src, "rb").read(); n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n]); data = b[8 + n:]
names = [k for k in h if k != "__metadata__"]
t0, t1 = h[names[0]], h[names[1]]
exec(expr)
if isinstance(h, (bytes, str)):
    hb = h.encode() if isinstance(h, str) else h
else:
    hb = json.dumps(h).encode()
open(dst, "wb").write(struct.pack("<Q", len(hb)) + hb + data)
PY
  expect_error "safetensors: $1" "$BIN" logits "$TMP/d.hf" --tokens "$TMP/tokens.txt" --out "$TMP/o"
}
edit_header "bad JSON" 'h = json.dumps(h)[:-7] + "}}"'
edit_header "header is an array" 'h = "[1, 2, 3]"'
edit_header "trailing garbage after JSON" 'h = json.dumps(h) + "xyz"'
edit_header "offsets beyond the file" 't0["data_offsets"] = [len(data) - 4, len(data) + 4092]'
edit_header "end before begin" 't0["data_offsets"] = [t0["data_offsets"][1], t0["data_offsets"][0]]'
edit_header "overlapping tensors" 't1["data_offsets"] = [t0["data_offsets"][0], t0["data_offsets"][0] + t1["data_offsets"][1] - t1["data_offsets"][0]]'
edit_header "size != dtype x shape" 't0["shape"] = [t0["shape"][0], t0["shape"][1] + 1]'
edit_header "shape overflow" 't0["shape"] = [2**40, 2**40, 2**40]'
edit_header "negative dimension" 't0["shape"] = [-1] + t0["shape"][1:]'
edit_header "fractional offset" 't0["data_offsets"] = [0.5, t0["data_offsets"][1]]'
edit_header "unknown dtype" 't0["dtype"] = "Q4"'
edit_header "unsupported dtype" 't0["dtype"] = "I64"'
edit_header "five dimensions" 't0["shape"] = [1, 1, 1] + t0["shape"]'
edit_header "missing data_offsets" 'del t0["data_offsets"]'
edit_header "unmappable tensor name" 'h["model.layers.0.mystery.weight"] = h.pop(names[0])'
mkhf; cp "$st" "$TMP/d.hf/"; echo '{"architectures": ["LlamaForCausalLM"], "hidden_size": 256' > "$TMP/d.hf/config.json"
expect_error "config.json malformed" "$BIN" logits "$TMP/d.hf" --tokens "$TMP/tokens.txt" --out "$TMP/o"
mkhf; cp "$st" "$TMP/d.hf/"; python3 -c "import json,sys; c=json.load(open(sys.argv[1])); c['architectures']=['BertModel']; json.dump(c, open(sys.argv[1],'w'))" "$TMP/d.hf/config.json"
expect_error "unsupported architecture" "$BIN" logits "$TMP/d.hf" --tokens "$TMP/tokens.txt" --out "$TMP/o"
mkhf; cp "$st" "$TMP/d.hf/"; rm "$TMP/d.hf/tokenizer.json"
expect_error "tokenizer.json missing" "$BIN" logits "$TMP/d.hf" --tokens "$TMP/tokens.txt" --out "$TMP/o"
mkhf
expect_error "no weights" "$BIN" logits "$TMP/d.hf" --tokens "$TMP/tokens.txt" --out "$TMP/o"
# sharded: index pointing at a missing shard / outside the directory
rm -rf "$TMP/s.hf"; mkdir "$TMP/s.hf"; cp "$M/llama-sharded-bf16.hf/"* "$TMP/s.hf/"; chmod u+w "$TMP/s.hf"/*
rm "$TMP/s.hf/model-00002-of-00002.safetensors"
expect_error "sharded: a shard missing" "$BIN" logits "$TMP/s.hf" --tokens "$TMP/tokens.txt" --out "$TMP/o"
cp "$M/llama-sharded-bf16.hf/model-00002-of-00002.safetensors" "$TMP/s.hf/"
sed -i 's#"model-00002-of-00002.safetensors"#"../x.safetensors"#' "$TMP/s.hf/model.safetensors.index.json"
expect_error "sharded: shard path outside the directory" "$BIN" logits "$TMP/s.hf" --tokens "$TMP/tokens.txt" --out "$TMP/o"

# native format
nb=$M/mistral.torchless-int8.bin
nsize=$(stat -c %s "$nb")
for cut in 8 100 12000 13000 $((nsize / 2)) $((nsize - 1)); do
  head -c "$cut" "$nb" > "$TMP/t.bin"
  expect_error "native truncated at $cut of $nsize" "$BIN" logits "$TMP/t.bin" --tokens "$TMP/tokens.txt" --out "$TMP/o"
done
edit_native() { # name python-on-h
  python3 - "$nb" "$TMP/n.bin" "$2" <<'PY'
import json, struct, sys
src, dst, expr = sys.argv[1:4]
b = open(src, "rb").read(); n = struct.unpack("<Q", b[:8])[0]
h, _ = json.JSONDecoder().raw_decode(b[8:8 + n].decode())
T = h["tensors"]; q = T["model.layers.0.self_attn.q_proj.weight"]; e = T["model.embed_tokens.weight"]
exec(expr)
hb = json.dumps(h).encode()
pad = (-(8 + len(hb))) % 64
open(dst, "wb").write(struct.pack("<Q", len(hb) + pad) + hb + b"\0" * pad + b[8 + n:])
PY
  expect_error "native: $1" "$BIN" logits "$TMP/n.bin" --tokens "$TMP/tokens.txt" --out "$TMP/o"
}
edit_native "offset beyond payload" 'e["offset"] = 1 << 40'
edit_native "scales beyond payload" 'q["scale_offset"] = 1 << 40'
edit_native "wrong scale count" 'q["scale_size"] = 7'
edit_native "overlapping tensors" 'T["model.layers.0.self_attn.k_proj.weight"]["offset"] = q["offset"]'
edit_native "unknown dtype" 'q["dtype"] = "int4"'
edit_native "metadata not a number" 'h["metadata"]["hidden_size"] = "lots"'
edit_native "metadata value not a string" 'h["metadata"]["hidden_size"] = 256'
edit_native "tokenizer missing" 'del h["tokenizer"]'
edit_native "shape mismatch" 'e["shape"] = [512, 128]'
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
