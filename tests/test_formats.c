/* test_formats.c — safetensors validation, HF -> GGUF name/config/tokenizer
 * mapping, Hugging Face directories and Torchless files seen as the same
 * network as their GGUF copies (names, shapes, hyperparameter keys, bytes),
 * int8 -> Q8_0 conversion, and regression inputs found by the fuzzers.
 * (Logits are checked end to end by test_formats.sh.) */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "arch/hf_names.h"
#include "core/fp16.h"
#include "core/quant.h"
#include "harness.h"
#include "io/mmap.h"
#include "io/safetensors.h"
#include "model/source.h"
#include "tok/tok.h"

/* ---------------------------------------------------------- safetensors */

/* u64 header size + header + n_data bytes (value i = i). Caller frees. */
static uint8_t *st_image(const char *header, size_t n_data, size_t *size) {
    size_t h = strlen(header);
    uint8_t *b = malloc(8 + h + n_data + 1);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    for (size_t i = 0; i < n_data; i++) b[8 + h + i] = (uint8_t)i;
    *size = 8 + h + n_data;
    return b;
}

static tl_status st_try(const char *header, size_t n_data, tl_safetensors **out, tl_err *err) {
    size_t size;
    uint8_t *b = st_image(header, n_data, &size);
    tl_safetensors *st = NULL;
    tl_status rc = tl_safetensors_open_mem(b, size, &st, err);
    if (out) *out = st;
    else tl_safetensors_free(st);
    if (!out || rc != TL_OK) free(b);
    return rc;
}

static void expect_bad(const char *header, size_t n_data, tl_status want, const char *needle) {
    tl_err err = { 0 };
    tl_status rc = st_try(header, n_data, NULL, &err);
    CHECKF(rc == want, "header %s: got status %d (%s), want %d", header, rc, err.msg, want);
    CHECKF(!needle || strstr(err.msg, needle), "header %s: message '%s' lacks '%s'", header, err.msg, needle);
}

static void test_safetensors(void) {
    tl_err err = { 0 };
    tl_safetensors *st = NULL;
    const char *ok = "{\"__metadata__\":{\"format\":\"pt\"},"
                     "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                     "\"s\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[24,26]},"
                     "\"e\":{\"dtype\":\"F16\",\"shape\":[0,5],\"data_offsets\":[26,26]}}   ";
    size_t size;
    uint8_t *img = st_image(ok, 26, &size);
    CHECK(tl_safetensors_open_mem(img, size, &st, &err) == TL_OK);
    if (st) {
        CHECK(tl_safetensors_n_tensors(st) == 3);
        const tl_st_tensor *w = tl_safetensors_find(st, "w");
        CHECK(w && w->type == TL_DTYPE_F32 && w->n_dims == 2 && w->shape[0] == 2 && w->shape[1] == 3 &&
              w->nbytes == 24 && (const uint8_t *)w->data == img + size - 26);
        const tl_st_tensor *s = tl_safetensors_find(st, "s");
        CHECK(s && s->n_dims == 0 && s->nbytes == 2 && s->type == TL_DTYPE_BF16);
        CHECK(tl_safetensors_find(st, "__metadata__") == NULL);
        tl_safetensors_free(st);
    }
    free(img);

    expect_bad("{}", 0, TL_OK, NULL);
    expect_bad("[]", 0, TL_ERR_FORMAT, "not a JSON object");
    expect_bad("{\"a\":1}", 0, TL_ERR_FORMAT, "not an object");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", 8, TL_ERR_FORMAT, "after the JSON");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, TL_ERR_FORMAT, "malformed");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 7, TL_ERR_FORMAT, "outside");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 12, TL_ERR_FORMAT, "needs 12");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, TL_ERR_FORMAT, "outside");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}}", 9, TL_ERR_FORMAT, "data_offsets");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,1e300]}}", 8, TL_ERR_FORMAT, "data_offsets");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, TL_ERR_FORMAT, "shape");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, TL_ERR_FORMAT, "shape");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, TL_ERR_FORMAT, "shape");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}",
               8, TL_ERR_FORMAT, "overflow");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, TL_ERR_UNSUPPORTED, "dimensions");
    expect_bad("{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, TL_ERR_UNSUPPORTED, "I64");
    expect_bad("{\"a\":{\"dtype\":\"Q9\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, TL_ERR_FORMAT, "unknown dtype");
    expect_bad("{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, TL_ERR_FORMAT, "dtype");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[6,10]}}", 10, TL_ERR_FORMAT, "overlap");
    expect_bad("{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, TL_ERR_FORMAT, "empty name");
    /* header size beyond the file, and a file shorter than the size field */
    uint8_t tiny[12] = { 200, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ' };
    CHECK(tl_safetensors_open_mem(tiny, sizeof tiny, &st, &err) == TL_ERR_FORMAT && !st);
    CHECK(tl_safetensors_open_mem(tiny, 5, &st, &err) == TL_ERR_FORMAT && !st);
    uint8_t huge[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}' };
    CHECK(tl_safetensors_open_mem(huge, sizeof huge, &st, &err) == TL_ERR_FORMAT && !st);
}

/* ---------------------------------------------------------- name maps */

static void test_names(void) {
    static const struct { const char *arch, *hf, *gguf; bool tied; } cases[] = {
        { "LlamaForCausalLM", "model.embed_tokens.weight", "token_embd.weight", false },
        { "LlamaForCausalLM", "model.layers.12.self_attn.q_proj.weight", "blk.12.attn_q.weight", false },
        { "LlamaForCausalLM", "model.layers.0.post_attention_layernorm.weight", "blk.0.ffn_norm.weight", false },
        { "LlamaForCausalLM", "lm_head.weight", "output.weight", false },
        { "LlamaForCausalLM", "lm_head.weight", NULL, true },
        { "LlamaForCausalLM", "model.layers.3.self_attn.rotary_emb.inv_freq", NULL, false },
        { "MistralForCausalLM", "model.norm.weight", "output_norm.weight", false },
        { "Qwen2ForCausalLM", "model.layers.1.self_attn.k_proj.bias", "blk.1.attn_k.bias", false },
        { "Qwen3ForCausalLM", "model.layers.2.self_attn.q_norm.weight", "blk.2.attn_q_norm.weight", false },
        { "PhiForCausalLM", "model.layers.0.self_attn.dense.bias", "blk.0.attn_output.bias", false },
        { "PhiForCausalLM", "model.layers.0.mlp.fc1.weight", "blk.0.ffn_up.weight", false },
        { "PhiForCausalLM", "model.layers.0.mlp.fc2.bias", "blk.0.ffn_down.bias", false },
        { "PhiForCausalLM", "model.final_layernorm.bias", "output_norm.bias", false },
        { "PhiForCausalLM", "lm_head.bias", "output.bias", false },
        { "Phi3ForCausalLM", "model.layers.1.self_attn.qkv_proj.weight", "blk.1.attn_qkv.weight", false },
        { "Phi3ForCausalLM", "model.layers.1.mlp.gate_up_proj.weight", "blk.1.ffn_up.weight", false },
        { "GemmaForCausalLM", "lm_head.weight", NULL, false },
        { "Gemma2ForCausalLM", "model.layers.5.input_layernorm.weight", "blk.5.attn_norm.weight", false },
        { "Gemma2ForCausalLM", "model.layers.5.post_attention_layernorm.weight", "blk.5.post_attention_norm.weight", false },
        { "Gemma2ForCausalLM", "model.layers.5.pre_feedforward_layernorm.weight", "blk.5.ffn_norm.weight", false },
        { "Gemma2ForCausalLM", "model.layers.5.post_feedforward_layernorm.weight", "blk.5.post_ffw_norm.weight", false },
    };
    char out[128];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const tl_hf_family *f = tl_hf_family_find(cases[i].arch);
        CHECK(f != NULL);
        if (!f) continue;
        tl_hf_map_result r = tl_hf_map_name(f, cases[i].hf, cases[i].tied, out, sizeof out);
        if (cases[i].gguf) CHECKF(r == TL_HF_MAPPED && !strcmp(out, cases[i].gguf), "%s -> %s", cases[i].hf, r == TL_HF_MAPPED ? out : "?");
        else CHECKF(r == TL_HF_DROP, "%s should be dropped", cases[i].hf);
    }
    const tl_hf_family *f = tl_hf_family_find("LlamaForCausalLM");
    const char *unknown[] = { "model.layers.x.self_attn.q_proj.weight", "model.layers..mlp.up_proj.weight",
                              "model.layers.01.mlp.up_proj.weight", "model.layers.1.mlp.fc1.weight",
                              "model.layers.99999999.mlp.up_proj.weight", "lm_head.weight.x" };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        CHECKF(tl_hf_map_name(f, unknown[i], false, out, sizeof out) == TL_HF_UNKNOWN, "%s mapped", unknown[i]);
    CHECK(tl_hf_map_name(f, "model.layers.1.mlp.up_proj.weight", false, out, 8) == TL_HF_UNKNOWN);
    CHECK(tl_hf_family_find("BertModel") == NULL);
}

/* ------------------------------------------------------------ config */

static tl_gguf *gguf_from_writer(tl_gguf_writer *w, void **buf) {
    size_t size = 0;
    tl_err err = { 0 };
    *buf = NULL;
    if (tl_gguf_writer_write_mem(w, buf, &size, &err) != TL_OK) {
        fprintf(stderr, "write_mem: %s\n", err.msg);
        return NULL;
    }
    tl_gguf *g = NULL;
    if (tl_gguf_open_mem(*buf, size, &g, &err) != TL_OK) fprintf(stderr, "open_mem: %s\n", err.msg);
    return g;
}

static void test_config(void) {
    const char *js = "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":4096,\"intermediate_size\":14336,"
                     "\"num_hidden_layers\":32,\"num_attention_heads\":32,\"num_key_value_heads\":8,"
                     "\"rope_theta\":500000.0,\"rms_norm_eps\":1e-05,\"max_position_embeddings\":131072,"
                     "\"rope_scaling\":{\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
                     "\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"}}";
    cJSON *cfg = cJSON_Parse(js);
    tl_gguf_writer *w = NULL;
    tl_err err = { 0 };
    CHECK(tl_gguf_writer_init(&w, &err) == TL_OK);
    float *freqs = NULL;
    int n = 0;
    CHECK(tl_hf_config_to_gguf(tl_hf_family_find("LlamaForCausalLM"), cfg, w, &freqs, &n, &err) == TL_OK);
    CHECK(n == 64 && freqs);
    if (freqs && n == 64) {
        /* llama.cpp's converter output for Llama 3.1 (float32 torch arithmetic) */
        static const float mid[] = { 1.2074838876724243f, 1.5534145832061768f, 2.026313066482544f,
                                     2.6945300102233887f, 3.684253215789795f, 5.257327079772949f };
        for (int i = 0; i < 64; i++) {
            float want = i < 29 ? 1.0f : i > 34 ? 8.0f : mid[i - 29];
            CHECKF(fabsf(freqs[i] - want) <= 1e-6f * want, "rope_freqs[%d] = %.9g, want %.9g", i, freqs[i], want);
        }
    }
    free(freqs);
    void *buf;
    tl_gguf *g = gguf_from_writer(w, &buf);
    uint32_t u = 0;
    float f = 0;
    CHECK(g && tl_gguf_get_u32(g, "llama.attention.head_count_kv", &u) && u == 8);
    CHECK(g && tl_gguf_get_u32(g, "llama.rope.dimension_count", &u) && u == 128);
    CHECK(g && tl_gguf_get_f32(g, "llama.rope.freq_base", &f) && f == 500000.0f);
    CHECK(g && tl_gguf_get_u32(g, "llama.context_length", &u) && u == 131072);
    tl_gguf_free(g);
    free(buf);
    tl_gguf_writer_free(w);
    cJSON_Delete(cfg);

    /* yarn (Qwen2.5 long context) as llama.cpp's converter writes it */
    cfg = cJSON_Parse("{\"hidden_size\":64,\"intermediate_size\":64,\"num_hidden_layers\":1,"
                      "\"num_attention_heads\":2,\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4.0,"
                      "\"original_max_position_embeddings\":32768}}");
    tl_gguf_writer_init(&w, &err);
    CHECK(tl_hf_config_to_gguf(tl_hf_family_find("Qwen2ForCausalLM"), cfg, w, &freqs, &n, &err) == TL_OK && !freqs);
    g = gguf_from_writer(w, &buf);
    tl_gguf_str ty;
    CHECK(g && tl_gguf_get_str(g, "qwen2.rope.scaling.type", &ty) && tl_gguf_str_eq(ty, "yarn"));
    CHECK(g && tl_gguf_get_f32(g, "qwen2.rope.scaling.factor", &f) && f == 4.0f);
    CHECK(g && tl_gguf_get_u32(g, "qwen2.rope.scaling.original_context_length", &u) && u == 32768);
    CHECK(g && tl_gguf_get_u32(g, "qwen2.rope.dimension_count", &u) && u == 32);
    tl_gguf_free(g);
    free(buf);
    tl_gguf_writer_free(w);
    cJSON_Delete(cfg);

    /* unsupported scaling and missing keys are errors with a message */
    static const char *bad[] = {
        "{\"hidden_size\":64,\"intermediate_size\":64,\"num_hidden_layers\":1,\"num_attention_heads\":2,"
        "\"rope_scaling\":{\"type\":\"longrope\",\"factor\":4}}",
        "{\"hidden_size\":64,\"intermediate_size\":64,\"num_hidden_layers\":1}",
        "{\"hidden_size\":\"64\",\"intermediate_size\":64,\"num_hidden_layers\":1,\"num_attention_heads\":2}",
        "{\"hidden_size\":64,\"intermediate_size\":64,\"num_hidden_layers\":1,\"num_attention_heads\":2,\"rope_theta\":\"x\"}",
        "[]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg = cJSON_Parse(bad[i]);
        tl_gguf_writer_init(&w, &err);
        tl_err_clear(&err);
        CHECKF(tl_hf_config_to_gguf(tl_hf_family_find("LlamaForCausalLM"), cfg, w, &freqs, &n, &err) != TL_OK &&
                   err.msg[0], "config %zu accepted", i);
        tl_gguf_writer_free(w);
        cJSON_Delete(cfg);
    }
}

/* -------------------------------------------------------- tokenizer.json */

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    if (b) b[n] = 0;
    if (len) *len = (size_t)n;
    return b;
}

static bool str_kv_eq(const tl_gguf *a, const tl_gguf *b, const char *key) {
    tl_gguf_str x, y;
    bool hx = tl_gguf_get_str(a, key, &x), hy = tl_gguf_get_str(b, key, &y);
    return hx == hy && (!hx || (x.len == y.len && !memcmp(x.ptr, y.ptr, x.len)));
}

static bool arr_eq(const tl_gguf *a, const tl_gguf *b, const char *key) {
    const tl_gguf_kv *x = tl_gguf_find(a, key), *y = tl_gguf_find(b, key);
    if (!x || !y) return !x && !y;
    if (x->type != TL_GGUF_ARRAY || y->type != TL_GGUF_ARRAY || x->arr_n != y->arr_n) return false;
    for (uint64_t i = 0; i < x->arr_n; i++) {
        tl_gguf_str s, t;
        if (x->arr_type == TL_GGUF_STRING) {
            if (!tl_gguf_arr_str(a, x, i, &s) || !tl_gguf_arr_str(b, y, i, &t) || s.len != t.len ||
                memcmp(s.ptr, t.ptr, s.len)) {
                fprintf(stderr, "%s[%llu] differs\n", key, (unsigned long long)i);
                return false;
            }
        } else if (tl_gguf_arr_f64(x, i) != tl_gguf_arr_f64(y, i)) {
            fprintf(stderr, "%s[%llu]: %g vs %g\n", key, (unsigned long long)i, tl_gguf_arr_f64(x, i), tl_gguf_arr_f64(y, i));
            return false;
        }
    }
    return true;
}

static bool u32_kv_eq(const tl_gguf *a, const tl_gguf *b, const char *key) {
    uint32_t x = 0, y = 0;
    bool hx = tl_gguf_get_u32(a, key, &x), hy = tl_gguf_get_u32(b, key, &y);
    return hx == hy && x == y;
}

static int parse_ids(const char *s, size_t n, int32_t *out, int cap) {
    int k = 0;
    const char *e = s + n;
    while (s < e && k < cap) {
        while (s < e && *s == ' ') s++;
        if (s >= e) break;
        out[k++] = (int32_t)strtol(s, (char **)&s, 10);
    }
    return k;
}

/* tokenizer.json of name -> GGUF keys equal to vocab-name.gguf's; then the
 * tokenizer built from them reproduces vocab-name.gguf.out. */
static void test_tokenizer_json(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/tokenizer/hf/%s/tokenizer.json", name);
    tl_err err = { 0 };
    cJSON *tok = tl_json_parse_file(tl_test_shared(rel), &err);
    snprintf(rel, sizeof rel, "fixtures/tokenizer/hf/%s/tokenizer_config.json", name);
    cJSON *tc = tl_json_parse_file(tl_test_shared(rel), &err);
    snprintf(rel, sizeof rel, "fixtures/tokenizer/vocab-%s.gguf", name);
    tl_gguf *ref = NULL;
    tl_gguf_open(tl_test_shared(rel), &ref, &err);
    CHECKF(tok && tc && ref, "%s: fixtures unreadable: %s", name, err.msg);
    tl_gguf_writer *w = NULL;
    tl_gguf *g = NULL;
    void *buf = NULL;
    if (!tok || !tc || !ref) goto done;
    tl_gguf_writer_init(&w, &err);
    tl_status rc = tl_hf_tokenizer_to_gguf(tok, tc, NULL, w, &err);
    CHECKF(rc == TL_OK, "%s: %s", name, err.msg);
    if (rc != TL_OK || !(g = gguf_from_writer(w, &buf))) goto done;
    static const char *strs[] = { "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.chat_template" };
    for (int i = 0; i < 3; i++) CHECKF(str_kv_eq(g, ref, strs[i]), "%s: %s differs", name, strs[i]);
    static const char *arrs[] = { "tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges" };
    for (int i = 0; i < 3; i++) CHECKF(arr_eq(g, ref, arrs[i]), "%s: %s differs", name, arrs[i]);
    static const char *ids[] = { "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                 "tokenizer.ggml.padding_token_id", "tokenizer.ggml.unknown_token_id" };
    for (int i = 0; i < 4; i++) CHECKF(u32_kv_eq(g, ref, ids[i]), "%s: %s differs", name, ids[i]);
    /* llama3's file says nothing about BOS (llama.cpp forces it for llama-bpe) */
    bool b1 = false, b2 = false;
    if (tl_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b1))
        CHECKF(tl_gguf_get_bool(ref, "tokenizer.ggml.add_bos_token", &b2) && b1 == b2, "%s: add_bos_token differs", name);

    /* tokenization of the shared strings */
    tl_tok *t = NULL;
    rc = tl_tok_init_gguf(g, &t, &err);
    CHECKF(rc == TL_OK, "%s: tokenizer: %s", name, err.msg);
    if (rc != TL_OK) goto done;
    size_t il = 0, ol = 0;
    snprintf(rel, sizeof rel, "fixtures/tokenizer/vocab-%s.gguf.inp", name);
    char *inp = read_all(tl_test_shared(rel), &il);
    snprintf(rel, sizeof rel, "fixtures/tokenizer/vocab-%s.gguf.out", name);
    char *outf = read_all(tl_test_shared(rel), &ol);
    tl_tok_span *sp = NULL;
    size_t ns = 0;
    if (inp && outf && tl_tok_split_vocab_test(inp, il, &sp, &ns, &err) == TL_OK) {
        const char *line = outf, *oend = outf + ol;
        int same = 0;
        for (size_t k = 0; k < ns && line < oend; k++) {
            const char *nl = memchr(line, '\n', (size_t)(oend - line));
            size_t ll = nl ? (size_t)(nl - line) : (size_t)(oend - line);
            int32_t want[1024], got[1024];
            int nw = parse_ids(line, ll, want, 1024);
            int ng = tl_tok_encode(t, inp + sp[k].off, sp[k].len, got, 1024, false, false);
            bool eq = ng == nw && (ng <= 0 || !memcmp(got, want, sizeof(int32_t) * (size_t)ng));
            CHECKF(eq, "%s: string %zu tokenizes differently", name, k);
            same += eq;
            line = nl ? nl + 1 : oend;
        }
        CHECKF(ns > 40 && same == (int)ns, "%s: %d of %zu strings match", name, same, ns);
    } else {
        CHECKF(false, "%s: .inp/.out unreadable", name);
    }
    free(sp);
    free(inp);
    free(outf);
    tl_tok_free(t);
done:
    tl_gguf_free(g);
    free(buf);
    tl_gguf_writer_free(w);
    tl_gguf_free(ref);
    cJSON_Delete(tok);
    cJSON_Delete(tc);
}

/* ----------------------------------------- HF / native vs the GGUF copy */

/* Same tensor names and shapes; the same "<arch>.*" hyperparameter keys and
 * values; bytes equal where neither layout nor norm convention differs. */
static void compare_with_gguf(const char *model_rel, const char *gguf_rel, bool bytes_equal) {
    tl_err err = { 0 };
    tl_source *a = NULL, *b = NULL;
    tl_status ra = tl_source_open(tl_test_shared(model_rel), &a, &err);
    CHECKF(ra == TL_OK, "%s: %s", model_rel, err.msg);
    tl_status rb = tl_source_open(tl_test_shared(gguf_rel), &b, &err);
    CHECKF(rb == TL_OK, "%s: %s", gguf_rel, err.msg);
    if (ra != TL_OK || rb != TL_OK) goto done;
    CHECKF(a->rope_neox && !b->rope_neox, "%s: rope flags", model_rel);
    CHECKF(a->n_tensors == b->n_tensors, "%s: %lld tensors vs %lld", model_rel, (long long)a->n_tensors, (long long)b->n_tensors);
    for (int64_t i = 0; i < b->n_tensors; i++) {
        const tl_tensor *y = &b->tensors[i], *x = tl_source_find(a, y->name);
        CHECKF(x != NULL, "%s: no '%s'", model_rel, y->name);
        if (!x) continue;
        bool same_shape = true;
        for (int d = 0; d < TL_MAX_DIMS; d++) same_shape &= x->ne[d] == y->ne[d];
        CHECKF(same_shape, "%s: '%s' shape differs", model_rel, y->name);
        /* Q/K rows are permuted in the GGUF (interleaved RoPE); norms of Gemma are 1+w there */
        bool comparable = bytes_equal && x->type == y->type && !strstr(y->name, "attn_q.") && !strstr(y->name, "attn_k.");
        if (comparable) CHECKF(x->nbytes == y->nbytes && !memcmp(x->data, y->data, x->nbytes), "%s: '%s' bytes differ", model_rel, y->name);
    }
    tl_gguf_str arch;
    CHECK(tl_gguf_get_str(b->meta, "general.architecture", &arch));
    CHECKF(str_kv_eq(a->meta, b->meta, "general.architecture"), "%s: architecture differs", model_rel);
    for (int64_t i = 0; i < tl_gguf_n_kv(b->meta); i++) {
        const tl_gguf_kv *kv = tl_gguf_kv_at(b->meta, i);
        if (kv->key.len <= arch.len || memcmp(kv->key.ptr, arch.ptr, arch.len) || kv->key.ptr[arch.len] != '.')
            continue;
        char key[160];
        snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.ptr);
        const tl_gguf_kv *mine = tl_gguf_find(a->meta, key);
        float fa = 0, fb = 0;
        int64_t ia = -1, ib = -2;
        bool eq = mine && ((tl_gguf_get_i64(a->meta, key, &ia) && tl_gguf_get_i64(b->meta, key, &ib) && ia == ib) ||
                           (kv->type == TL_GGUF_FLOAT32 && tl_gguf_get_f32(a->meta, key, &fa) &&
                            tl_gguf_get_f32(b->meta, key, &fb) && fa == fb));
        CHECKF(eq, "%s: key %s differs from the GGUF's", model_rel, key);
    }
done:
    tl_source_free(a);
    tl_source_free(b);
}

/* int8 tensors become Q8_0 with d = 1/scale: q kept, w = q/scale up to f16(d). */
static void test_native_int8(void) {
    tl_mmap m;
    tl_err err = { 0 };
    if (tl_mmap_open(tl_test_shared("fixtures/models/mistral.torchless-int8.bin"), &m, &err) != TL_OK) {
        CHECKF(false, "%s", err.msg);
        return;
    }
    tl_source *s = calloc(1, sizeof *s);
    tl_status rc = tl_source_open_native_mem(m.data, m.size, s, &err);
    if (rc == TL_OK) rc = tl_source_index(s, &err);
    CHECKF(rc == TL_OK, "%s", err.msg);
    if (rc == TL_OK) {
        const tl_tensor *q = tl_source_find(s, "blk.0.attn_q.weight");
        const tl_tensor *e = tl_source_find(s, "token_embd.weight");
        CHECK(q && q->type == TL_DTYPE_Q8_0 && q->ne[0] == 256 && q->ne[1] == 256);
        CHECK(e && e->type == TL_DTYPE_F32 && (const uint8_t *)e->data >= m.data &&
              (const uint8_t *)e->data < m.data + m.size); /* zero-copy */
        /* the file's own q and scales for this tensor */
        uint64_t hs = 0;
        for (int i = 0; i < 8; i++) hs |= (uint64_t)m.data[i] << (8 * i);
        cJSON *h = tl_json_parse((const char *)m.data + 8, hs, "hdr", &err);
        const cJSON *jt = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(h, "tensors"),
                                                           "model.layers.0.self_attn.q_proj.weight");
        const uint8_t *payload = m.data + (8 + hs + 63) / 64 * 64;
        if (q && jt) {
            const int8_t *qi = (const int8_t *)(payload + (uint64_t)cJSON_GetObjectItem(jt, "offset")->valuedouble);
            const float *sc = (const float *)(payload + (uint64_t)cJSON_GetObjectItem(jt, "scale_offset")->valuedouble);
            const tl_block_q8_0 *blk = q->data;
            int bad = 0;
            for (int64_t i = 0; i < 256 * 256; i++) {
                float want = (float)qi[i] / sc[i / 64];
                float got = tl_f16_to_f32(blk[i / 32].d) * (float)blk[i / 32].qs[i % 32];
                bad += fabsf(got - want) > fabsf(want) * 1e-3f + 1e-9f;
            }
            CHECKF(bad == 0, "%d weights off by more than f16 rounding of the scale", bad);
        }
        cJSON_Delete(h);
    }
    tl_source_free(s);
    tl_mmap_free(&m);
}

/* Inputs the fuzzers found (kept as regression cases). */
static void test_fuzz_regressions(void) {
    /* none has crashed so far; the shapes below exercise the paths they probed */
    static const char *native[] = {
        "{\"metadata\":{},\"tokenizer\":{\"vocab\":{}},\"tensors\":{}}",
        "{\"metadata\":{\"hidden_size\":\"1e400\"},\"tokenizer\":{\"vocab\":{\"a\":0}},\"tensors\":{}}",
        "{\"metadata\":{},\"tokenizer\":{\"vocab\":{\"a\":16777216}},\"tensors\":{}}",
        "{\"metadata\":{},\"tokenizer\":{\"vocab\":{\"a\":0},\"merges\":[\"a\",\"a a\",7]},\"tensors\":{}}",
        "{\"metadata\":{\"hidden_size\":\"4\",\"intermediate_size\":\"4\",\"n_layers\":\"1\",\"n_heads\":\"1\"},"
        "\"tokenizer\":{\"vocab\":{\"a\":0}},\"tensors\":{\"model.embed_tokens.weight\":{\"dtype\":\"int8\","
        "\"shape\":[64,1],\"offset\":0,\"scale_offset\":64,\"scale_size\":1}}}",
    };
    for (size_t i = 0; i < sizeof native / sizeof native[0]; i++) {
        size_t hl = strlen(native[i]), size = (8 + hl + 63) / 64 * 64 + 256;
        uint8_t *b = calloc(1, size);
        uint64_t h = (size - 256) - 8;
        for (int k = 0; k < 8; k++) b[k] = (uint8_t)(h >> (8 * k));
        memcpy(b + 8, native[i], hl);
        tl_source *s = calloc(1, sizeof *s);
        tl_err err = { 0 };
        tl_status rc = tl_source_open_native_mem(b, size, s, &err);
        CHECKF(rc == TL_OK || err.msg[0], "native case %zu: failure without a message", i);
        tl_source_free(s);
        free(b);
    }
}

int main(void) {
    test_safetensors();
    test_names();
    test_config();
    test_fuzz_regressions();
    tl_test_require_shared();
    test_tokenizer_json("llama3");
    test_tokenizer_json("qwen3");
    static const char *fam[] = { "llama", "mistral", "qwen2", "phi2", "phi3", "gemma", "gemma2" };
    char a[128], b[128];
    for (size_t i = 0; i < sizeof fam / sizeof fam[0]; i++) {
        snprintf(a, sizeof a, "fixtures/models/%s.hf", fam[i]);
        snprintf(b, sizeof b, "fixtures/models/%s.f32.gguf", fam[i]);
        compare_with_gguf(a, b, !strcmp(fam[i], "llama"));
    }
    /* the shards are their own BF16 rounding: shapes and keys only */
    compare_with_gguf("fixtures/models/llama-sharded-bf16.hf", "fixtures/models/llama.bf16.gguf", false);
    compare_with_gguf("fixtures/models/mistral.torchless-f32.bin", "fixtures/models/mistral.f32.gguf", true);
    test_native_int8();
    return tl_test_finish("test_formats", 0);
}
