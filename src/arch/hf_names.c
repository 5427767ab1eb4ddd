/* hf_names.c — Hugging Face -> GGUF: tensor names, config.json keys and
 * tokenizer.json, following llama.cpp's convert_hf_to_gguf.py. */
#include "arch/hf_names.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/strmap.h"
#include "io/safetensors.h"

/* ------------------------------------------------------------ name tables */

static const tl_hf_rename k_global_llama[] = {
    { "model.embed_tokens", "token_embd" },
    { "model.norm", "output_norm" },
    { "lm_head", "output" },
    { NULL, NULL },
};

static const tl_hf_rename k_global_phi2[] = {
    { "model.embed_tokens", "token_embd" },
    { "model.final_layernorm", "output_norm" },
    { "lm_head", "output" },
    { NULL, NULL },
};

static const tl_hf_rename k_layer_llama[] = {
    { "input_layernorm", "attn_norm" },
    { "self_attn.q_proj", "attn_q" },
    { "self_attn.k_proj", "attn_k" },
    { "self_attn.v_proj", "attn_v" },
    { "self_attn.o_proj", "attn_output" },
    { "post_attention_layernorm", "ffn_norm" },
    { "mlp.gate_proj", "ffn_gate" },
    { "mlp.up_proj", "ffn_up" },
    { "mlp.down_proj", "ffn_down" },
    { NULL, NULL },
};

static const tl_hf_rename k_layer_qwen3[] = {
    { "input_layernorm", "attn_norm" },
    { "self_attn.q_proj", "attn_q" },
    { "self_attn.k_proj", "attn_k" },
    { "self_attn.v_proj", "attn_v" },
    { "self_attn.o_proj", "attn_output" },
    { "self_attn.q_norm", "attn_q_norm" },
    { "self_attn.k_norm", "attn_k_norm" },
    { "post_attention_layernorm", "ffn_norm" },
    { "mlp.gate_proj", "ffn_gate" },
    { "mlp.up_proj", "ffn_up" },
    { "mlp.down_proj", "ffn_down" },
    { NULL, NULL },
};

static const tl_hf_rename k_layer_phi2[] = {
    { "input_layernorm", "attn_norm" },
    { "self_attn.q_proj", "attn_q" },
    { "self_attn.k_proj", "attn_k" },
    { "self_attn.v_proj", "attn_v" },
    { "self_attn.dense", "attn_output" },
    { "mlp.fc1", "ffn_up" },
    { "mlp.fc2", "ffn_down" },
    { NULL, NULL },
};

static const tl_hf_rename k_layer_phi3[] = {
    { "input_layernorm", "attn_norm" },
    { "self_attn.qkv_proj", "attn_qkv" },
    { "self_attn.o_proj", "attn_output" },
    { "post_attention_layernorm", "ffn_norm" },
    { "mlp.gate_up_proj", "ffn_up" }, /* [gate; up] rows, as the phi3 descriptor expects */
    { "mlp.down_proj", "ffn_down" },
    { NULL, NULL },
};

/* Gemma 2 names its norms by position: the HF post_attention_layernorm is
 * applied to the attention output (GGUF post_attention_norm), the FFN input
 * norm is pre_feedforward_layernorm (GGUF ffn_norm). */
static const tl_hf_rename k_layer_gemma2[] = {
    { "input_layernorm", "attn_norm" },
    { "self_attn.q_proj", "attn_q" },
    { "self_attn.k_proj", "attn_k" },
    { "self_attn.v_proj", "attn_v" },
    { "self_attn.o_proj", "attn_output" },
    { "post_attention_layernorm", "post_attention_norm" },
    { "pre_feedforward_layernorm", "ffn_norm" },
    { "post_feedforward_layernorm", "post_ffw_norm" },
    { "mlp.gate_proj", "ffn_gate" },
    { "mlp.up_proj", "ffn_up" },
    { "mlp.down_proj", "ffn_down" },
    { NULL, NULL },
};

static const tl_hf_cfg k_extra_gemma2[] = {
    { "sliding_window", "attention.sliding_window", TL_HF_CFG_U32 },
    { "attn_logit_softcapping", "attn_logit_softcapping", TL_HF_CFG_F32 },
    { "final_logit_softcapping", "final_logit_softcapping", TL_HF_CFG_F32 },
    { NULL, NULL, 0 },
};

static const tl_hf_cfg k_extra_phi3[] = {
    { "sliding_window", "attention.sliding_window", TL_HF_CFG_U32 },
    { NULL, NULL, 0 },
};

/* Mistral maps to "llama" and its sliding_window is not written, as
 * llama.cpp's converter does (llama.cpp attends over the whole context). */
static const tl_hf_family k_families[] = {
    { .hf_arch = "LlamaForCausalLM", .arch = "llama", .global = k_global_llama,
      .layer = k_layer_llama, .llama3_rope = true },
    { .hf_arch = "MistralForCausalLM", .arch = "llama", .global = k_global_llama,
      .layer = k_layer_llama, .llama3_rope = true },
    { .hf_arch = "Qwen2ForCausalLM", .arch = "qwen2", .global = k_global_llama,
      .layer = k_layer_llama },
    { .hf_arch = "Qwen3ForCausalLM", .arch = "qwen3", .global = k_global_llama,
      .layer = k_layer_qwen3 },
    { .hf_arch = "PhiForCausalLM", .arch = "phi2", .global = k_global_phi2,
      .layer = k_layer_phi2 },
    { .hf_arch = "Phi3ForCausalLM", .arch = "phi3", .global = k_global_llama,
      .layer = k_layer_phi3, .extra_cfg = k_extra_phi3 },
    { .hf_arch = "GemmaForCausalLM", .arch = "gemma", .global = k_global_llama,
      .layer = k_layer_llama, .norm_plus_one = true, .drop_lm_head = true },
    { .hf_arch = "Gemma2ForCausalLM", .arch = "gemma2", .global = k_global_llama,
      .layer = k_layer_gemma2, .extra_cfg = k_extra_gemma2, .norm_plus_one = true,
      .drop_lm_head = true },
};

/* Keys every family maps the same way (null or absent values are skipped). */
static const tl_hf_cfg k_cfg_common[] = {
    { "max_position_embeddings", "context_length", TL_HF_CFG_U32 },
    { "hidden_size", "embedding_length", TL_HF_CFG_U32 },
    { "num_hidden_layers", "block_count", TL_HF_CFG_U32 },
    { "intermediate_size", "feed_forward_length", TL_HF_CFG_U32 },
    { "num_attention_heads", "attention.head_count", TL_HF_CFG_U32 },
    { "num_key_value_heads", "attention.head_count_kv", TL_HF_CFG_U32 },
    { "head_dim", "attention.key_length", TL_HF_CFG_U32 },
    { "head_dim", "attention.value_length", TL_HF_CFG_U32 },
    { "rope_theta", "rope.freq_base", TL_HF_CFG_F32 },
    { "rms_norm_eps", "attention.layer_norm_rms_epsilon", TL_HF_CFG_F32 },
    { "layer_norm_eps", "attention.layer_norm_epsilon", TL_HF_CFG_F32 },
    { "layer_norm_epsilon", "attention.layer_norm_epsilon", TL_HF_CFG_F32 },
    { NULL, NULL, 0 },
};

const tl_hf_family *tl_hf_family_find(const char *hf_arch) {
    if (!hf_arch) return NULL;
    for (size_t i = 0; i < sizeof k_families / sizeof k_families[0]; i++)
        if (strcmp(k_families[i].hf_arch, hf_arch) == 0) return &k_families[i];
    return NULL;
}

const char *tl_hf_known(void) {
    return "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, "
           "PhiForCausalLM, Phi3ForCausalLM, GemmaForCausalLM, Gemma2ForCausalLM";
}

/* ------------------------------------------------------------ tensor names */

static const char *lookup(const tl_hf_rename *t, const char *stem, size_t len) {
    for (; t && t->hf; t++)
        if (strlen(t->hf) == len && memcmp(t->hf, stem, len) == 0) return t->gguf;
    return NULL;
}

static bool ends_with(const char *s, size_t n, const char *suf) {
    size_t k = strlen(suf);
    return n >= k && memcmp(s + n - k, suf, k) == 0;
}

tl_hf_map_result tl_hf_map_name(const tl_hf_family *f, const char *hf, bool tied, char *out,
                                size_t cap) {
    size_t n = strlen(hf);
    if (ends_with(hf, n, ".rotary_emb.inv_freq")) return TL_HF_DROP; /* recomputed buffers */
    const char *suffix = "";
    if (ends_with(hf, n, ".weight")) suffix = ".weight";
    else if (ends_with(hf, n, ".bias")) suffix = ".bias";
    size_t stem = n - strlen(suffix);
    if (stem == 7 && memcmp(hf, "lm_head", 7) == 0 && (tied || f->drop_lm_head)) return TL_HF_DROP;

    static const char layers[] = "model.layers.";
    const size_t lp = sizeof layers - 1;
    int w;
    if (stem > lp && memcmp(hf, layers, lp) == 0) {
        const char *p = hf + lp;
        long il = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 7) il = il * 10 + (*p++ - '0'), digits++;
        if (!digits || *p != '.' || (digits > 1 && hf[lp] == '0')) return TL_HF_UNKNOWN;
        p++;
        const char *g = lookup(f->layer, p, (size_t)(hf + stem - p));
        if (!g) return TL_HF_UNKNOWN;
        w = snprintf(out, cap, "blk.%ld.%s%s", il, g, suffix);
    } else {
        const char *g = lookup(f->global, hf, stem);
        if (!g) return TL_HF_UNKNOWN;
        w = snprintf(out, cap, "%s%s", g, suffix);
    }
    return w < 0 || (size_t)w >= cap ? TL_HF_UNKNOWN : TL_HF_MAPPED;
}

/* ----------------------------------------------------------- config.json */

#define TRY(x) do { tl_status rc_ = (x); if (rc_ != TL_OK) return rc_; } while (0)
/* Writer setters remember their first failure and tl_gguf_writer_write_mem
 * reports it with a message, so their statuses are not checked here. */
#define SET(x) ((void)(x))

static char *akey(char *buf, size_t n, const tl_hf_family *f, const char *suffix) {
    snprintf(buf, n, "%s.%s", f->arch, suffix);
    return buf;
}

static bool is_absent(const cJSON *v) { return !v || cJSON_IsNull(v); }

static tl_status put_cfg(const tl_hf_family *f, const cJSON *cfg, const tl_hf_cfg *c,
                         tl_gguf_writer *w, tl_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, c->json);
    if (is_absent(v)) return TL_OK;
    char k[128];
    akey(k, sizeof k, f, c->key);
    if (c->kind == TL_HF_CFG_U32) {
        uint64_t u;
        if (!tl_json_uint(v, UINT32_MAX, &u))
            return tl_err_set(err, TL_ERR_FORMAT, "config.json: '%s' must be a non-negative integer",
                              c->json);
        SET(tl_gguf_writer_set_u32(w, k, (uint32_t)u));
        return TL_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return tl_err_set(err, TL_ERR_FORMAT, "config.json: '%s' must be a number", c->json);
    SET(tl_gguf_writer_set_f32(w, k, (float)v->valuedouble));
    return TL_OK;
}

static bool get_uint(const cJSON *cfg, const char *name, uint64_t *out) {
    return tl_json_uint(cJSON_GetObjectItemCaseSensitive(cfg, name), 1u << 30, out);
}

static double get_num(const cJSON *cfg, const char *name, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, name);
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : dflt;
}

/* llama3 frequency divisors, computed in float32 like the converter's
 * torch code: 1 for high frequencies, factor for low, smooth in between. */
static tl_status llama3_freqs(const cJSON *cfg, const cJSON *rs, int dim, float **out, int *n,
                              tl_err *err) {
    const float base = (float)get_num(cfg, "rope_theta", 10000.0);
    const float factor = (float)get_num(rs, "factor", 8.0);
    const float lo = (float)get_num(rs, "low_freq_factor", 1.0);
    const float hi = (float)get_num(rs, "high_freq_factor", 4.0);
    const double old_ctx = get_num(rs, "original_max_position_embeddings", 8192.0);
    const double lo_wavelen = old_ctx / lo, hi_wavelen = old_ctx / hi;
    if (dim <= 0 || dim % 2 || !(factor > 0) || lo_wavelen == hi_wavelen || !(old_ctx > 0))
        return tl_err_set(err, TL_ERR_FORMAT, "config.json: invalid llama3 rope_scaling");
    float *f = malloc(sizeof(float) * (size_t)(dim / 2));
    if (!f) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < dim / 2; i++) {
        float freq = 1.0f / powf(base, (float)(2 * i) / (float)dim);
        float wavelen = (float)(2 * M_PI) / freq;
        if (wavelen < (float)hi_wavelen) {
            f[i] = 1.0f;
        } else if (wavelen > (float)lo_wavelen) {
            f[i] = factor;
        } else {
            float smooth = ((float)old_ctx / wavelen - lo) / (float)((double)hi - (double)lo);
            f[i] = 1.0f / ((1.0f - smooth) / factor + smooth);
        }
    }
    *out = f;
    *n = dim / 2;
    return TL_OK;
}

static tl_status put_rope_scaling(const tl_hf_family *f, const cJSON *cfg, int head_dim,
                                  tl_gguf_writer *w, float **freqs, int *n_freqs, tl_err *err) {
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(cfg, "rope_scaling");
    if (is_absent(rs)) return TL_OK;
    if (!cJSON_IsObject(rs)) return tl_err_set(err, TL_ERR_FORMAT, "config.json: rope_scaling is not an object");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!cJSON_IsString(t)) t = cJSON_GetObjectItemCaseSensitive(rs, "type");
    const char *type = cJSON_IsString(t) ? t->valuestring : "default";
    char k[128];
    if (strcmp(type, "default") == 0) return TL_OK;
    if (strcmp(type, "linear") == 0) {
        double factor = get_num(rs, "factor", 0);
        if (!(factor > 0)) return tl_err_set(err, TL_ERR_FORMAT, "config.json: linear rope_scaling needs a positive factor");
        SET(tl_gguf_writer_set_str(w, akey(k, sizeof k, f, "rope.scaling.type"), "linear"));
        SET(tl_gguf_writer_set_f32(w, akey(k, sizeof k, f, "rope.scaling.factor"), (float)factor));
        return TL_OK;
    }
    if (strcmp(type, "yarn") == 0) { /* as llama.cpp's Qwen2 converter writes it */
        double factor = get_num(rs, "factor", 0);
        uint64_t orig;
        if (!(factor > 0)) return tl_err_set(err, TL_ERR_FORMAT, "config.json: yarn rope_scaling needs a positive factor");
        SET(tl_gguf_writer_set_str(w, akey(k, sizeof k, f, "rope.scaling.type"), "yarn"));
        SET(tl_gguf_writer_set_f32(w, akey(k, sizeof k, f, "rope.scaling.factor"), (float)factor));
        if (tl_json_uint(cJSON_GetObjectItemCaseSensitive(rs, "original_max_position_embeddings"), UINT32_MAX, &orig))
            SET(tl_gguf_writer_set_u32(w, akey(k, sizeof k, f, "rope.scaling.original_context_length"), (uint32_t)orig));
        static const struct { const char *json, *key; } k_beta[] = {
            { "beta_fast", "rope.scaling.yarn_beta_fast" }, { "beta_slow", "rope.scaling.yarn_beta_slow" },
        };
        for (int i = 0; i < 2; i++) {
            double b = get_num(rs, k_beta[i].json, 0);
            if (b > 0) SET(tl_gguf_writer_set_f32(w, akey(k, sizeof k, f, k_beta[i].key), (float)b));
        }
        return TL_OK;
    }
    if (strcmp(type, "llama3") == 0 && f->llama3_rope)
        return llama3_freqs(cfg, rs, head_dim, freqs, n_freqs, err);
    if (strcmp(type, "dynamic") == 0) { /* only acts beyond the trained context */
        TL_WARN("config.json: dynamic rope scaling ignored (exact within max_position_embeddings)");
        return TL_OK;
    }
    return tl_err_set(err, TL_ERR_UNSUPPORTED, "config.json: rope_scaling type '%.32s' is not supported "
                      "for %s (linear, yarn%s are)", type, f->hf_arch, f->llama3_rope ? ", llama3" : "");
}

tl_status tl_hf_config_to_gguf(const tl_hf_family *f, const cJSON *cfg, tl_gguf_writer *w,
                               float **rope_freqs, int *n_rope_freqs, tl_err *err) {
    *rope_freqs = NULL;
    *n_rope_freqs = 0;
    if (!cJSON_IsObject(cfg)) return tl_err_set(err, TL_ERR_FORMAT, "config.json is not a JSON object");
    static const char *required[] = { "hidden_size", "num_hidden_layers", "num_attention_heads",
                                      "intermediate_size" };
    uint64_t v[4];
    for (int i = 0; i < 4; i++)
        if (!get_uint(cfg, required[i], &v[i]) || v[i] == 0)
            return tl_err_set(err, TL_ERR_MISSING, "config.json: '%s' missing or not a positive integer",
                              required[i]);
    const uint64_t n_embd = v[0], n_head = v[2];
    SET(tl_gguf_writer_set_str(w, "general.architecture", f->arch));
    for (const tl_hf_cfg *c = k_cfg_common; c->json; c++) TRY(put_cfg(f, cfg, c, w, err));
    for (const tl_hf_cfg *c = f->extra_cfg; c && c->json; c++) TRY(put_cfg(f, cfg, c, w, err));

    uint64_t head_dim;
    if (!get_uint(cfg, "head_dim", &head_dim) || head_dim == 0) head_dim = n_embd / n_head;
    /* rotated dims: llama.cpp's Phi-2 rule int(factor * n_embd) // n_head when
     * head_dim is implied, factor * head_dim when it is given */
    const cJSON *prf = cJSON_GetObjectItemCaseSensitive(cfg, "partial_rotary_factor");
    uint64_t rope_dims = head_dim;
    if (!is_absent(prf)) {
        if (!cJSON_IsNumber(prf) || !(prf->valuedouble > 0 && prf->valuedouble <= 1))
            return tl_err_set(err, TL_ERR_FORMAT, "config.json: partial_rotary_factor must be in (0, 1]");
        bool explicit_hd = !is_absent(cJSON_GetObjectItemCaseSensitive(cfg, "head_dim"));
        rope_dims = explicit_hd ? (uint64_t)(prf->valuedouble * (double)head_dim)
                                : (uint64_t)(prf->valuedouble * (double)n_embd) / n_head;
    }
    char k[128];
    SET(tl_gguf_writer_set_u32(w, akey(k, sizeof k, f, "rope.dimension_count"), (uint32_t)rope_dims));
    return put_rope_scaling(f, cfg, (int)head_dim, w, rope_freqs, n_rope_freqs, err);
}

/* ---------------------------------------------------------- tokenizer.json */

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

/* Split regexes of tokenizer.json files llama.cpp knows by name. */
static const struct { const char *regex; const char *pre; } k_pre_names[] = {
    { "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
      "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", "llama-bpe" },
    { "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"
      "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", "qwen2" },
};

static bool is_byte_token(const char *s) {
    static const char hex[] = "0123456789ABCDEFabcdef";
    return strlen(s) == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && s[3] && s[4] &&
           strchr(hex, s[3]) && strchr(hex, s[4]);
}

typedef struct vocab_build {
    int64_t n;
    const char **text;   /* borrowed from the JSON trees or from pad */
    int32_t *type;
    char *pad;           /* storage for "[PADn]" texts */
    tl_strmap ids;       /* text -> id */
} vocab_build;

static void vb_free(vocab_build *v) {
    free(v->text);
    free(v->type);
    free(v->pad);
    tl_strmap_free(&v->ids);
}

/* Walks a pre_tokenizer / normalizer / post_processor node and its Sequence children. */
typedef void (*node_fn)(const cJSON *node, void *ctx);
static void walk(const cJSON *node, const char *list_key, node_fn fn, void *ctx) {
    if (!cJSON_IsObject(node)) return;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(node, list_key);
    if (cJSON_IsArray(list)) {
        for (const cJSON *c = list->child; c; c = c->next) walk(c, list_key, fn, ctx);
        return;
    }
    fn(node, ctx);
}

static bool type_is(const cJSON *node, const char *t) {
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(node, "type");
    return cJSON_IsString(ty) && strcmp(ty->valuestring, t) == 0;
}

typedef struct pre_info {
    const char *regex[16];
    int n_regex;
    bool too_many, byte_level, byte_level_regex, space_prefix;
} pre_info;

static void pre_node(const cJSON *n, void *ctx) {
    pre_info *p = ctx;
    if (type_is(n, "Split")) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(n, "pattern");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        if (!cJSON_IsString(re)) re = cJSON_GetObjectItemCaseSensitive(pat, "String");
        if (cJSON_IsString(re)) {
            if (p->n_regex < (int)(sizeof p->regex / sizeof p->regex[0])) p->regex[p->n_regex++] = re->valuestring;
            else p->too_many = true;
        }
    } else if (type_is(n, "ByteLevel")) {
        p->byte_level = true;
        const cJSON *ur = cJSON_GetObjectItemCaseSensitive(n, "use_regex");
        if (!cJSON_IsBool(ur) || cJSON_IsTrue(ur)) p->byte_level_regex = true;
    } else if (type_is(n, "Metaspace")) {
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(n, "prepend_scheme");
        const cJSON *ap = cJSON_GetObjectItemCaseSensitive(n, "add_prefix_space");
        if (cJSON_IsString(ps)) p->space_prefix = strcmp(ps->valuestring, "never") != 0;
        else p->space_prefix = !cJSON_IsFalse(ap);
    }
}

static void norm_node(const cJSON *n, void *ctx) {
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(n, "prepend");
    if (type_is(n, "Prepend") && cJSON_IsString(pp) && strcmp(pp->valuestring, "\xe2\x96\x81") == 0)
        ((pre_info *)ctx)->space_prefix = true;
}

typedef struct post_info { int add_bos, add_eos; const char *bos, *eos; } post_info;

/* TemplateProcessing: a special token first adds BOS, one last adds EOS. */
static void post_node(const cJSON *n, void *ctx) {
    post_info *p = ctx;
    if (!type_is(n, "TemplateProcessing")) return;
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(n, "single");
    if (!cJSON_IsArray(single) || !single->child) return;
    const cJSON *first = cJSON_GetObjectItemCaseSensitive(single->child, "SpecialToken");
    const cJSON *last_item = single->child;
    while (last_item->next) last_item = last_item->next;
    const cJSON *last = cJSON_GetObjectItemCaseSensitive(last_item, "SpecialToken");
    const cJSON *fid = cJSON_GetObjectItemCaseSensitive(first, "id");
    const cJSON *lid = cJSON_GetObjectItemCaseSensitive(last, "id");
    p->add_bos = first != NULL;
    p->add_eos = last != NULL && last_item != single->child;
    if (cJSON_IsString(fid)) p->bos = fid->valuestring;
    if (p->add_eos && cJSON_IsString(lid)) p->eos = lid->valuestring;
}

static tl_status set_id(vocab_build *v, int64_t id, const char *text, int32_t type, tl_err *err) {
    if (id < 0 || id >= v->n) return tl_err_set(err, TL_ERR_FORMAT, "tokenizer.json: token id %lld out of range", (long long)id);
    v->text[id] = text;
    v->type[id] = type;
    return TL_OK;
}

/* Token list, types and the text -> id map. */
static tl_status build_vocab(vocab_build *v, const cJSON *vocab, const cJSON *added,
                             const cJSON *cfg, tl_err *err) {
    const uint64_t max_id = (1u << 24) - 1; /* the model refuses larger vocabularies anyway */
    uint64_t n = 0, id, entries = 0;
    for (const cJSON *e = vocab->child; e; e = e->next, entries++) {
        if (!tl_json_uint(e, max_id, &id))
            return tl_err_set(err, TL_ERR_FORMAT, "tokenizer.json: vocab id of '%.40s' is not a valid id", e->string);
        if (id + 1 > n) n = id + 1;
    }
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next, entries++) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(a, "content");
        if (!tl_json_uint(cJSON_GetObjectItemCaseSensitive(a, "id"), max_id, &id) || !cJSON_IsString(c))
            return tl_err_set(err, TL_ERR_FORMAT, "tokenizer.json: added token without a valid id and content");
        if (id + 1 > n) n = id + 1;
    }
    uint64_t vs;
    if (tl_json_uint(cJSON_GetObjectItemCaseSensitive(cfg, "vocab_size"), max_id + 1, &vs) && vs > n) n = vs;
    if (n == 0) return tl_err_set(err, TL_ERR_FORMAT, "tokenizer.json: empty vocabulary");
    /* every id without a token becomes a [PADi] token (an embedding row
     * padded past the tokenizer, as Qwen2.5 7B's 399 or Phi-3's 53): a few
     * hundred in real files. A handful of entries naming id 16777215 would
     * make 16M of them (seconds of work and hundreds of MB for a 6 KB
     * file): more holes than tokens + 65536 is refused. */
    if (n > 2 * entries + 65536)
        return tl_err_set(err, TL_ERR_FORMAT,
                          "tokenizer.json: ids (or vocab_size) up to %llu for %llu tokens: too sparse",
                          (unsigned long long)n, (unsigned long long)entries);
    v->n = (int64_t)n;
    v->text = calloc(n, sizeof *v->text);
    v->type = calloc(n, sizeof *v->type);
    if (!v->text || !v->type) return tl_err_set(err, TL_ERR_NOMEM, "out of memory for %llu tokens", (unsigned long long)n);
    for (const cJSON *e = vocab->child; e; e = e->next) {
        tl_json_uint(e, max_id, &id);
        if (v->text[id]) return tl_err_set(err, TL_ERR_FORMAT, "tokenizer.json: id %llu used twice", (unsigned long long)id);
        TRY(set_id(v, (int64_t)id, e->string, TT_NORMAL, err));
    }
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next) {
        const char *c = cJSON_GetObjectItemCaseSensitive(a, "content")->valuestring;
        tl_json_uint(cJSON_GetObjectItemCaseSensitive(a, "id"), max_id, &id);
        bool special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "special"));
        /* the "special" flag alone decides, as in the shipped vocab-qwen3.gguf
         * (<|fim_prefix|> is user-defined there; llama.cpp's converter would
         * guess control from the <|...|> spelling) */
        TRY(set_id(v, (int64_t)id, c, special ? TT_CONTROL : TT_USER, err));
    }
    size_t holes = 0;
    for (uint64_t i = 0; i < n; i++) holes += !v->text[i];
    if (holes) {
        v->pad = malloc(holes * 32);
        if (!v->pad) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
        char *p = v->pad;
        for (uint64_t i = 0; i < n; i++)
            if (!v->text[i]) {
                snprintf(p, 32, "[PAD%llu]", (unsigned long long)i);
                v->text[i] = p;
                v->type[i] = TT_UNUSED;
                p += 32;
            }
    }
    TRY(tl_strmap_reserve(&v->ids, n));
    for (uint64_t i = n; i-- > 0;) /* lowest id wins for duplicated texts */
        TRY(tl_strmap_put(&v->ids, v->text[i], strlen(v->text[i]), (int32_t)i));
    return TL_OK;
}

/* Merge i as "left right": a string (split at the first space) or a
 * two-string array (newer files; spaces inside parts allowed). */
static bool merge_parts(const cJSON *m, const char **l, size_t *ll, const char **r, size_t *rl) {
    if (cJSON_IsString(m)) {
        const char *sp = strchr(m->valuestring, ' ');
        if (!sp) return false;
        *l = m->valuestring, *ll = (size_t)(sp - m->valuestring);
        *r = sp + 1, *rl = strlen(sp + 1);
        return true;
    }
    if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
        cJSON_IsString(m->child->next)) {
        *l = m->child->valuestring, *ll = strlen(*l);
        *r = m->child->next->valuestring, *rl = strlen(*r);
        return true;
    }
    return false;
}

/* SentencePiece-style scores from merge ranks (see header). */
static tl_status spm_scores(vocab_build *v, const cJSON *merges, float *scores, tl_err *err) {
    int64_t *rank = malloc(sizeof(int64_t) * (size_t)v->n);
    char *buf = NULL;
    size_t cap = 0;
    if (!rank) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < v->n; i++) rank[i] = -1;
    int64_t r = 0;
    for (const cJSON *m = merges ? merges->child : NULL; m; m = m->next, r++) {
        const char *l, *rt;
        size_t ll, rl;
        if (!merge_parts(m, &l, &ll, &rt, &rl)) {
            free(rank);
            free(buf);
            return tl_err_set(err, TL_ERR_FORMAT, "tokenizer.json: merge %lld is malformed", (long long)r);
        }
        if (ll + rl + 1 > cap) {
            cap = (ll + rl + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) { free(rank); free(buf); return tl_err_set(err, TL_ERR_NOMEM, "out of memory"); }
            buf = nb;
        }
        memcpy(buf, l, ll);
        memcpy(buf + ll, rt, rl);
        int32_t id;
        if (tl_strmap_get(&v->ids, buf, ll + rl, &id) && rank[id] < 0) rank[id] = r;
    }
    int64_t below = r;
    for (int64_t i = 0; i < v->n; i++) {
        if (rank[i] >= 0) scores[i] = -(float)rank[i];
        else if (v->type[i] == TT_NORMAL) scores[i] = -(float)(below++);
        else scores[i] = 0.0f;
        if (scores[i] == 0.0f) scores[i] = 0.0f; /* no -0 */
    }
    free(rank);
    free(buf);
    return TL_OK;
}

/* "a b" merge strings for GGUF; array-form parts get spaces as U+0120 like the converter. */
static tl_status put_merges(const cJSON *merges, tl_gguf_writer *w, tl_err *err) {
    int64_t n = cJSON_GetArraySize(merges);
    if (n <= 0) return TL_OK;
    const char **strs = malloc(sizeof(char *) * (size_t)n);
    char **owned = calloc((size_t)n, sizeof(char *));
    tl_status rc = strs && owned ? TL_OK : tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    int64_t i = 0;
    for (const cJSON *m = merges->child; rc == TL_OK && m; m = m->next, i++) {
        const char *l, *r;
        size_t ll, rl;
        if (!merge_parts(m, &l, &ll, &r, &rl)) {
            rc = tl_err_set(err, TL_ERR_FORMAT, "tokenizer.json: merge %lld is malformed", (long long)i);
            break;
        }
        if (cJSON_IsString(m)) { strs[i] = m->valuestring; continue; }
        char *s = malloc(2 * (ll + rl) + 2), *p = s;
        if (!s) { rc = tl_err_set(err, TL_ERR_NOMEM, "out of memory"); break; }
        for (size_t k = 0; k < ll + rl; k++) {
            if (k == ll) *p++ = ' ';
            char c = k < ll ? l[k] : r[k - ll];
            if (c == ' ') *p++ = (char)0xC4, *p++ = (char)0xA0; /* U+0120 */
            else *p++ = c;
        }
        if (ll + rl == ll) *p++ = ' ';
        *p = 0;
        owned[i] = s;
        strs[i] = s;
    }
    if (rc == TL_OK) SET(tl_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", strs, (uint64_t)n));
    for (int64_t k = 0; owned && k < n; k++) free(owned[k]);
    free(owned);
    free(strs);
    return rc;
}

/* tokenizer_config's "<typ>_token" (string or {content}) resolved through added_tokens. */
static int64_t special_from_tok_cfg(const cJSON *tok_cfg, const cJSON *added, const char *typ,
                                    const vocab_build *v) {
    char k[32];
    snprintf(k, sizeof k, "%s_token", typ);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(tok_cfg, k);
    if (cJSON_IsObject(e)) e = cJSON_GetObjectItemCaseSensitive(e, "content");
    if (!cJSON_IsString(e)) return -1;
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(a, "content");
        uint64_t id;
        if (cJSON_IsString(c) && !strcmp(c->valuestring, e->valuestring) &&
            tl_json_uint(cJSON_GetObjectItemCaseSensitive(a, "id"), (uint64_t)v->n - 1, &id))
            return (int64_t)id;
    }
    return -1;
}

static tl_status put_specials(const cJSON *tok, const cJSON *tok_cfg, const cJSON *cfg,
                              const vocab_build *v, const post_info *post, tl_gguf_writer *w,
                              tl_err *err) {
    static const struct { const char *typ, *key; } k_special[] = {
        { "bos", "tokenizer.ggml.bos_token_id" },     { "eos", "tokenizer.ggml.eos_token_id" },
        { "unk", "tokenizer.ggml.unknown_token_id" }, { "sep", "tokenizer.ggml.seperator_token_id" },
        { "pad", "tokenizer.ggml.padding_token_id" }, { "cls", "tokenizer.ggml.cls_token_id" },
        { "mask", "tokenizer.ggml.mask_token_id" },
    };
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(tok, "added_tokens");
    for (size_t i = 0; i < sizeof k_special / sizeof k_special[0]; i++) {
        int64_t id = special_from_tok_cfg(tok_cfg, added, k_special[i].typ, v);
        if (id < 0) {
            char k[32];
            uint64_t u;
            snprintf(k, sizeof k, "%s_token_id", k_special[i].typ);
            if (tl_json_uint(cJSON_GetObjectItemCaseSensitive(cfg, k), (uint64_t)v->n - 1, &u)) id = (int64_t)u;
        }
        const char *from_post = i == 0 ? post->bos : i == 1 ? post->eos : NULL;
        int32_t pid;
        if (id < 0 && from_post && tl_strmap_get(&v->ids, from_post, strlen(from_post), &pid)) id = pid;
        if (id >= 0) SET(tl_gguf_writer_set_u32(w, k_special[i].key, (uint32_t)id));
    }
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(tok_cfg, "add_bos_token");
    if (cJSON_IsBool(b)) SET(tl_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", cJSON_IsTrue(b)));
    else if (post->add_bos >= 0) SET(tl_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", post->add_bos));
    b = cJSON_GetObjectItemCaseSensitive(tok_cfg, "add_eos_token");
    if (cJSON_IsBool(b)) SET(tl_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", cJSON_IsTrue(b)));
    else if (post->add_eos >= 0) SET(tl_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", post->add_eos));

    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(tok_cfg, "chat_template");
    if (cJSON_IsString(ct)) SET(tl_gguf_writer_set_str(w, "tokenizer.chat_template", ct->valuestring));
    for (const cJSON *e = cJSON_IsArray(ct) ? ct->child : NULL; e; e = e->next) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
        const cJSON *tpl = cJSON_GetObjectItemCaseSensitive(e, "template");
        if (!cJSON_IsString(name) || !cJSON_IsString(tpl)) continue;
        char k[256];
        if (!strcmp(name->valuestring, "default")) snprintf(k, sizeof k, "tokenizer.chat_template");
        else if (snprintf(k, sizeof k, "tokenizer.chat_template.%s", name->valuestring) >= (int)sizeof k) continue;
        SET(tl_gguf_writer_set_str(w, k, tpl->valuestring));
    }
    return TL_OK;
}

static tl_status tokenizer_keys(const cJSON *tok, const cJSON *tok_cfg, const cJSON *cfg,
                                vocab_build *v, tl_gguf_writer *w, tl_err *err) {
    if (!cJSON_IsObject(tok)) return tl_err_set(err, TL_ERR_FORMAT, "tokenizer.json is not a JSON object");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(tok, "model");
    const cJSON *mtype = cJSON_GetObjectItemCaseSensitive(model, "type");
    const char *mt = cJSON_IsString(mtype) ? mtype->valuestring : "BPE"; /* type is optional for BPE */
    if (strcmp(mt, "BPE") != 0)
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "tokenizer.json: model type '%.32s' is not supported (BPE is)", mt);
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(tok, "added_tokens");
    if (!cJSON_IsObject(vocab)) return tl_err_set(err, TL_ERR_FORMAT, "tokenizer.json: model.vocab is not an object");
    if (merges && !cJSON_IsArray(merges) && !cJSON_IsNull(merges))
        return tl_err_set(err, TL_ERR_FORMAT, "tokenizer.json: model.merges is not an array");
    if (!cJSON_IsArray(merges)) merges = NULL;
    if (added && !cJSON_IsArray(added)) added = NULL;
    TRY(build_vocab(v, vocab, added, cfg, err));

    pre_info pre = { 0 };
    walk(cJSON_GetObjectItemCaseSensitive(tok, "pre_tokenizer"), "pretokenizers", pre_node, &pre);
    walk(cJSON_GetObjectItemCaseSensitive(tok, "normalizer"), "normalizers", norm_node, &pre);
    post_info post = { .add_bos = -1, .add_eos = -1 };
    walk(cJSON_GetObjectItemCaseSensitive(tok, "post_processor"), "processors", post_node, &post);
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(tok, "decoder");

    const bool byte_fallback = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback"));
    if (byte_fallback) {
        const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
        int32_t id;
        for (int64_t i = 0; i < v->n; i++)
            if (v->type[i] == TT_NORMAL && is_byte_token(v->text[i])) v->type[i] = TT_BYTE;
        if (cJSON_IsString(unk) && tl_strmap_get(&v->ids, unk->valuestring, strlen(unk->valuestring), &id))
            v->type[id] = TT_UNKNOWN;
        float *scores = malloc(sizeof(float) * (size_t)v->n);
        if (!scores) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
        tl_status rc = spm_scores(v, merges, scores, err);
        if (rc == TL_OK) SET(tl_gguf_writer_set_arr(w, "tokenizer.ggml.scores", TL_GGUF_FLOAT32, scores, (uint64_t)v->n));
        free(scores);
        TRY(rc);
        const cJSON *asp = cJSON_GetObjectItemCaseSensitive(tok_cfg, "add_prefix_space");
        bool space_prefix = cJSON_IsBool(asp) ? cJSON_IsTrue(asp) : pre.space_prefix;
        SET(tl_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama"));
        SET(tl_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", space_prefix));
    } else if (pre.byte_level || type_is(dec, "ByteLevel")) {
        SET(tl_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2"));
        const char *name = NULL;
        if (pre.n_regex == 1) {
            for (size_t i = 0; i < sizeof k_pre_names / sizeof k_pre_names[0]; i++)
                if (!strcmp(pre.regex[0], k_pre_names[i].regex)) name = k_pre_names[i].pre;
        } else if (pre.n_regex == 0 && pre.byte_level_regex) {
            name = "gpt-2";
        }
        if (pre.too_many) return tl_err_set(err, TL_ERR_UNSUPPORTED, "tokenizer.json: too many Split pre-tokenizers");
        if (name) SET(tl_gguf_writer_set_str(w, "tokenizer.ggml.pre", name));
        else TL_WARN("tokenizer.json: pre-tokenizer not known by name; passing its %d regex(es)", pre.n_regex);
        if (pre.n_regex) SET(tl_gguf_writer_set_arr_str(w, "tokenizer.ggml.pre_regex", pre.regex, (uint64_t)pre.n_regex));
        if (merges) TRY(put_merges(merges, w, err));
    } else {
        return tl_err_set(err, TL_ERR_UNSUPPORTED,
                          "tokenizer.json: BPE without byte fallback or byte-level pre-tokenizer is not supported");
    }
    SET(tl_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", v->text, (uint64_t)v->n));
    SET(tl_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", TL_GGUF_INT32, v->type, (uint64_t)v->n));
    return put_specials(tok, tok_cfg, cfg, v, &post, w, err);
}

tl_status tl_hf_tokenizer_to_gguf(const cJSON *tok, const cJSON *tok_cfg, const cJSON *cfg,
                                  tl_gguf_writer *w, tl_err *err) {
    vocab_build v = { 0 };
    tl_status rc = tokenizer_keys(tok, tok_cfg, cfg, &v, w, err);
    vb_free(&v);
    return rc;
}
