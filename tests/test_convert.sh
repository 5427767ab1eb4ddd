#!/usr/bin/env bash
# Round trips through `torchless convert` (-> GGUF) and `torchless export`
# (-> Torchless native), checked with ../shared/tools/cmp_logits.py on
# fixtures/logits/tokens.txt:
#   HF dir -> GGUF: same logits as the HF dir, and passes against NAME.f32.logits
#   native f32 -> GGUF: exact against mistral.f32.logits
#   GGUF -> native f32: exact; -> native int8: within quant of mistral.f32
#   llama.f32.gguf -> --type q8_0: quant against llama.q8_0.logits
# plus byte-level checks where the result is known exactly (tensors of
# llama.cpp's own conversion, the original exporter's int8 payload).
set -u
. "$(dirname "$0")/lib/fixtures.sh"
ok()   { pass=$((pass+1)); echo "ok   $*"; }
bad()  { fail=$((fail+1)); echo "FAIL $*"; }
# logits MODEL OUT [args]: dumps logits of tokens.txt
logits() { local m=$1 o=$2; shift 2; "$BIN" logits "$m" --tokens "$L/tokens.txt" --out "$o" "$@" 2>"$TMP/err"; }
# cmp NAME REF GOT TIER
cmp_tier() {
  local res
  if res=$(python3 "$CMP" "$2" "$3" 512 "$4"); then ok "$1: $res"; else bad "$1: $res"; fi
}
# run LABEL CMD...: runs a conversion, failing the check with its stderr
run() {
  local label=$1; shift
  if "$@" 2>"$TMP/err" >/dev/null; then return 0; fi
  bad "$label: $(tail -3 "$TMP/err")"; return 1
}

# HF directories -> GGUF: the same logits as the directory itself, and the reference's tier
for a in llama mistral qwen2 phi2 phi3 gemma gemma2; do
  tier=half kv=()
  [ "$a" = llama ] && tier=exact kv=(--kv-dtype f32)
  out=$TMP/$a.gguf
  run "convert $a.hf" "$BIN" convert "$M/$a.hf" "$out" || continue
  if logits "$out" "$TMP/$a.c" "${kv[@]}" && logits "$M/$a.hf" "$TMP/$a.h" "${kv[@]}"; then
    cmp_tier "$a.hf -> gguf vs $a.hf" "$TMP/$a.h" "$TMP/$a.c" "$tier"
    cmp_tier "$a.hf -> gguf vs $a.f32.logits" "$L/$a.f32.logits" "$TMP/$a.c" "$tier"
  else
    bad "$a.hf -> gguf: $(cat "$TMP/err")"
  fi
  rm -f "$out"
done
if run "convert llama-sharded-bf16.hf" "$BIN" convert "$M/llama-sharded-bf16.hf" "$TMP/sh.gguf" &&
   logits "$TMP/sh.gguf" "$TMP/sh"; then
  cmp_tier "llama-sharded-bf16.hf -> gguf" "$L/llama-sharded-bf16.hf.logits" "$TMP/sh" half
fi

# llama.hf (F32) -> GGUF must hold llama.cpp's own conversion: permuted Q/K
# rows included, every tensor byte-identical to llama.f32.gguf.
if run "convert llama.hf" "$BIN" convert "$M/llama.hf" "$TMP/llama.gguf"; then
  if python3 - "$TMP/llama.gguf" "$M/llama.f32.gguf" <<'EOF'
import struct, sys
def tensors(path):
    # minimal GGUF v3 reader: name -> (type, dims, bytes)
    d = open(path, "rb").read()
    o = 4
    def u(fmt):
        nonlocal o
        v = struct.unpack_from("<" + fmt, d, o); o += struct.calcsize(fmt); return v[0]
    def s():
        nonlocal o
        n = u("Q"); v = d[o:o + n]; o += n; return v.decode()
    sizes = {0: 4, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    def skip(t):
        nonlocal o
        if t == 8: s()
        elif t == 9:
            at, n = u("I"), u("Q")
            for _ in range(n): skip(at)
        else: o += sizes[t]
    ver, nt, nkv = u("I"), u("Q"), u("Q")
    align = 32
    for _ in range(nkv):
        k = s(); t = u("I")
        if k == "general.alignment": align = u("I")
        else: skip(t)
    info = []
    for _ in range(nt):
        name = s(); nd = u("I"); ne = [u("Q") for _ in range(nd)]; ty = u("I"); off = u("Q")
        info.append((name, nd, ne, ty, off))
    base = (o + align - 1) // align * align
    offs = sorted(x[4] for x in info) + [len(d) - base]
    out = {}
    for name, nd, ne, ty, off in info:
        end = min(x for x in offs if x > off)
        n = 1
        for e in ne: n *= e
        out[name] = (ty, ne, d[base + off: base + off + (n * 4 if ty == 0 else end - off)])
    return out
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
diff = [n for n in b if n not in a or a[n] != b[n]]
if set(a) != set(b) or diff:
    print("differ:", sorted(set(a) ^ set(b)), diff[:5]); sys.exit(1)
EOF
  then ok "llama.hf -> gguf: tensors byte-identical to llama.f32.gguf"
  else bad "llama.hf -> gguf: tensors differ from llama.f32.gguf"; fi
fi

# Torchless native -> GGUF
if run "convert mistral.torchless-f32.bin" "$BIN" convert "$M/mistral.torchless-f32.bin" "$TMP/mn.gguf" &&
   logits "$TMP/mn.gguf" "$TMP/mn" --kv-dtype f32; then
  cmp_tier "mistral.torchless-f32.bin -> gguf" "$L/mistral.f32.logits" "$TMP/mn" exact
fi
if run "convert mistral.torchless-int8.bin" "$BIN" convert "$M/mistral.torchless-int8.bin" "$TMP/mi.gguf" &&
   logits "$TMP/mi.gguf" "$TMP/mi" --kv-dtype f32; then
  cmp_tier "mistral.torchless-int8.bin -> gguf" "$L/mistral.f32.logits" "$TMP/mi" quant
fi

# GGUF -> Torchless native (Q/K rows un-permuted back to rotate-half)
if run "export f32" "$BIN" export "$M/mistral.f32.gguf" "$TMP/e32.bin" &&
   logits "$TMP/e32.bin" "$TMP/e32" --kv-dtype f32; then
  cmp_tier "mistral.f32.gguf -> native f32" "$L/mistral.f32.logits" "$TMP/e32" exact
fi
if run "export int8" "$BIN" export "$M/mistral.f32.gguf" "$TMP/e8.bin" --quant int8 &&
   logits "$TMP/e8.bin" "$TMP/e8" --kv-dtype f32; then
  cmp_tier "mistral.f32.gguf -> native int8" "$L/mistral.f32.logits" "$TMP/e8" quant
  # the original exporter's numbers: same tensor table and payload bytes
  if python3 - "$TMP/e8.bin" "$M/mistral.torchless-int8.bin" <<'EOF'
import json, struct, sys
def load(p):
    d = open(p, "rb").read(); n = struct.unpack("<Q", d[:8])[0]
    assert (8 + n) % 64 == 0, "payload not 64-byte aligned"
    return json.loads(d[8:8 + n].rstrip(b"\0")), d[8 + n:]
(ja, pa), (jb, pb) = load(sys.argv[1]), load(sys.argv[2])
assert ja["tensors"] == jb["tensors"], "tensor tables differ"
assert pa == pb, "payloads differ"
assert ja["tokenizer"]["vocab"] == jb["tokenizer"]["vocab"], "vocabularies differ"
for k in ("hidden_size", "intermediate_size", "n_layers", "n_heads", "n_kv_heads", "vocab_size",
          "max_position_embeddings", "rope_theta", "norm_eps", "act_type", "quant"):
    assert ja["metadata"][k] == jb["metadata"][k], k
EOF
  then ok "native int8: tensor table, payload and metadata as the original exporter's"
  else bad "native int8: differs from mistral.torchless-int8.bin"; fi
fi

# Re-quantizing convert: the same bytes as llama-quantize's file, quant tier
if run "convert --type q8_0" "$BIN" convert "$M/llama.f32.gguf" "$TMP/q8.gguf" --type q8_0 &&
   logits "$TMP/q8.gguf" "$TMP/q8" --kv-dtype f32; then
  cmp_tier "llama.f32.gguf -> q8_0" "$L/llama.q8_0.logits" "$TMP/q8" quant
fi

# Errors are reported, never half-written
if "$BIN" export "$M/gemma.f32.gguf" "$TMP/g.bin" 2>/dev/null || [ -e "$TMP/g.bin" ]; then
  bad "export of a gemma model must fail cleanly"
else ok "export rejects non-llama architectures"; fi
if "$BIN" convert "$M/llama.hf" "$TMP/x.gguf" --type q9 2>/dev/null || [ -e "$TMP/x.gguf" ]; then
  bad "convert --type q9 must fail"
else ok "convert rejects unknown types"; fi
if ls "$TMP" | grep -q '\.tmp$'; then bad "temporary files left behind: $(ls "$TMP" | grep '\.tmp$')"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
