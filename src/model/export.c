/* export.c — any loadable llama-architecture model -> Torchless native .bin.
 *
 * Writes what the original exporter (export_mistral.py) writes, so the
 * readers of Torchless and of its Rust port load the result: a u64 header
 * size, the JSON header as Python's json.dumps formats it (", "/": "
 * separators, non-ASCII as \uXXXX) padded with NULs so the payload starts
 * 64-byte aligned, then each tensor at a 64-byte aligned offset. Metadata
 * values are strings (floats in Python's repr); tensors keep Hugging Face
 * names and the rotate-half Q/K layout, so GGUF sources are un-permuted.
 * int8: the "*_proj" weights in groups of 64 consecutive values with
 * scale = 127 / max|w| (f32) and q = round-half-even(w * scale), stored q
 * then scales; w = q / scale. These are the original's numbers exactly.
 *
 * The one deliberate difference: a model without a sliding window gets
 * sliding_window "0" rather than Python's "None", which the Rust port
 * cannot parse (this project's reader accepts both).
 *
 * Tensors are converted and written one at a time: memory stays at one
 * tensor whatever the model size. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/arch.h"
#include "arch/hf_names.h"
#include "base/strmap.h"
#include "model/convert.h"
#include "model/source.h"
#include "torchless.h"

#define NATIVE_ALIGN 64
#define NATIVE_GROUP 64

/* ---- growable text buffer ------------------------------------------------ */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_fmt(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(sbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* UTF-8 code point at s[0..n), or -1 when malformed; *len gets its length. */
static long utf8_cp(const unsigned char *s, size_t n, int *len) {
    const int l = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3
                : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (!l || (size_t)l > n) return -1;
    long cp = l == 1 ? s[0] : s[0] & (0x7F >> l);
    for (int i = 1; i < l; i++) {
        if ((s[i] & 0xC0) != 0x80) return -1;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    *len = l;
    return cp;
}

/* A JSON string as json.dumps(ensure_ascii=True) writes it. Bytes that are
 * not UTF-8 become U+FFFD (GGUF strings should never hold them). */
static void sb_json_str(sbuf *b, const char *s, size_t n) {
    sb_put(b, "\"", 1);
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        int len = 1;
        long cp = utf8_cp(u + i, n - i, &len);
        if (cp < 0) cp = 0xFFFD, len = 1;
        i += (size_t)len;
        switch (cp) {
        case '"': sb_str(b, "\\\""); continue;
        case '\\': sb_str(b, "\\\\"); continue;
        case '\n': sb_str(b, "\\n"); continue;
        case '\r': sb_str(b, "\\r"); continue;
        case '\t': sb_str(b, "\\t"); continue;
        case '\b': sb_str(b, "\\b"); continue;
        case '\f': sb_str(b, "\\f"); continue;
        default: break;
        }
        if (cp >= 0x20 && cp < 0x7F) {
            char c = (char)cp;
            sb_put(b, &c, 1);
        } else if (cp < 0x10000) {
            sb_fmt(b, "\\u%04lx", cp);
        } else {
            cp -= 0x10000;
            sb_fmt(b, "\\u%04lx\\u%04lx", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
        }
    }
    sb_put(b, "\"", 1);
}

/* Python's repr of the float32 value v (shortest digits that read back as
 * v): "1000000.0", "1e-05", "0.0001", "1e+16". */
static void py_float(char *out, size_t cap, float v) {
    if (!isfinite(v)) {
        snprintf(out, cap, "%s", isnan(v) ? "nan" : v < 0 ? "-inf" : "inf");
        return;
    }
    char e[48];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, (double)v);
        if ((float)strtod(e, NULL) == v) break;
    }
    /* e = [-]D[.DDD]e±XX -> sign, digits, decimal exponent */
    const bool neg = e[0] == '-';
    char digits[24];
    size_t nd = 0;
    const char *p = e + neg;
    for (; *p && *p != 'e'; p++)
        if (*p != '.' && nd < sizeof digits - 1) digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    const int exp10 = atoi(p + 1);
    char body[72];
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 >= 0) {
            char ip[24], fp[24];
            size_t ni = (size_t)exp10 + 1;
            for (size_t i = 0; i < ni; i++) ip[i] = i < nd ? digits[i] : '0';
            ip[ni] = 0;
            snprintf(fp, sizeof fp, "%s", nd > ni ? digits + ni : "0");
            snprintf(body, sizeof body, "%s.%s", ip, fp);
        } else {
            snprintf(body, sizeof body, "0.%.*s%s", -exp10 - 1, "0000", digits);
        }
    } else {
        snprintf(body, sizeof body, "%c%s%se%c%02d", digits[0], nd > 1 ? "." : "",
                 nd > 1 ? digits + 1 : "", exp10 < 0 ? '-' : '+', abs(exp10));
    }
    snprintf(out, cap, "%s%s", neg ? "-" : "", body);
}

/* ---- the model ------------------------------------------------------------ */

typedef struct etensor {
    char hf[160];              /* Hugging Face name */
    const tl_tensor *t;        /* source (for lm_head of a tied model: the embedding) */
    tl_rope_perm perm;
    int64_t head_rows;
    bool int8;
    uint64_t offset, scale_offset, numel;
} etensor;

typedef struct ectx {
    const tl_export_params *p;
    tl_source *s;
    tl_hparams hp;
    etensor *et;
    int n;
    int64_t vocab;
} ectx;

static const char *gguf_stem(const tl_hf_rename *r, const char *hf) {
    for (; r->hf; r++)
        if (!strcmp(r->hf, hf)) return r->gguf;
    return NULL;
}

/* The tensors in the original's order (embedding, each layer, final norm,
 * lm_head), every source tensor accounted for. */
static tl_status collect(ectx *x, tl_err *err) {
    const tl_hf_family *fam = tl_hf_family_find("MistralForCausalLM");
    static const char *const k_layer_order[] = {
        "input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
        "self_attn.o_proj", "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj",
        "mlp.down_proj",
    };
    const int per_layer = (int)(sizeof k_layer_order / sizeof k_layer_order[0]);
    const int64_t total = 3 + (int64_t)per_layer * x->hp.n_layer;
    if (!(x->et = calloc((size_t)total, sizeof *x->et)))
        return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    const bool gguf_layout = !x->s->rope_neox;
    int used = 0;
    char gname[160];
    for (int64_t k = -1; k <= x->hp.n_layer; k++) {
        const int n_here = k < 0 ? 1 : k == x->hp.n_layer ? 2 : per_layer;
        for (int j = 0; j < n_here; j++) {
            etensor *e = &x->et[x->n];
            const char *hf, *stem;
            if (k < 0 || k == x->hp.n_layer) {
                hf = k < 0 ? "model.embed_tokens" : j == 0 ? "model.norm" : "lm_head";
                stem = gguf_stem(fam->global, hf);
                snprintf(e->hf, sizeof e->hf, "%s.weight", hf);
                snprintf(gname, sizeof gname, "%s.weight", stem);
            } else {
                hf = k_layer_order[j];
                stem = gguf_stem(fam->layer, hf);
                snprintf(e->hf, sizeof e->hf, "model.layers.%lld.%s.weight", (long long)k, hf);
                snprintf(gname, sizeof gname, "blk.%lld.%s.weight", (long long)k, stem);
            }
            if (!stem) return tl_err_set(err, TL_ERR_INTERNAL, "no GGUF name for %s", hf);
            e->t = tl_source_find(x->s, gname);
            if (e->t) used++;
            else if (!strcmp(gname, "output.weight")) e->t = tl_source_find(x->s, "token_embd.weight");
            if (!e->t) return tl_err_set(err, TL_ERR_MISSING, "tensor %s is missing", gname);
            const bool is_q = !strcmp(stem, "attn_q"), is_k = !strcmp(stem, "attn_k");
            if (gguf_layout && (is_q || is_k)) {
                const int64_t heads = is_q ? x->hp.n_head : x->hp.n_head_kv;
                e->perm = TL_PERM_TO_HALVES;
                e->head_rows = heads > 0 ? tl_tensor_nrows(e->t) / heads : 0;
            }
            e->numel = (uint64_t)tl_tensor_nelem(e->t);
            e->int8 = x->p->quant == TL_EXPORT_INT8 && strstr(e->hf, "_proj.weight") &&
                      e->numel % NATIVE_GROUP == 0;
            x->n++;
        }
    }
    if (used != x->s->n_tensors) {
        for (int64_t i = 0; i < x->s->n_tensors; i++) {
            const char *name = x->s->tensors[i].name;
            bool found = false;
            for (int j = 0; j < x->n && !found; j++) found = x->et[j].t == &x->s->tensors[i];
            if (!found)
                return tl_err_set(err, TL_ERR_UNSUPPORTED, "tensor %s has no place in the Torchless "
                                  "format (Mistral layout: no biases, no rope scaling)", name);
        }
    }
    return TL_OK;
}

/* Checks the model is what the format can describe: the reader assumes a
 * Mistral (silu, RMSNorm, full rotary, SentencePiece-style BPE). */
static tl_status check_model(ectx *x, tl_err *err) {
    tl_gguf_str s;
    if (!tl_gguf_get_str(x->s->meta, "general.architecture", &s) || !tl_gguf_str_eq(s, "llama"))
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "the Torchless format holds llama-architecture "
                          "models (Llama, Mistral) only; this one is '%.*s'",
                          (int)(s.len < 64 ? s.len : 64), s.ptr ? s.ptr : "");
    const tl_tensor *emb = tl_source_find(x->s, "token_embd.weight");
    if (!emb) return tl_err_set(err, TL_ERR_MISSING, "token_embd.weight is missing");
    x->hp.n_vocab = (int)emb->ne[1];
    x->vocab = emb->ne[1];
    tl_status rc = tl_arch_hparams(tl_arch_find("llama"), x->s->meta, &x->hp, err);
    if (rc != TL_OK) return rc;
    if (x->hp.rope_dims != x->hp.head_dim || x->hp.head_dim_v != x->hp.head_dim)
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "partial rotary or distinct value heads cannot "
                          "be described in the Torchless format");
    if (x->hp.rope_freq_scale != 1.0f || x->hp.rope_ext_factor != 0.0f ||
        tl_source_find(x->s, "rope_freqs.weight"))
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "rope scaling cannot be described in the "
                          "Torchless format");
    if (!tl_gguf_get_str(x->s->meta, "tokenizer.ggml.model", &s) || !tl_gguf_str_eq(s, "llama"))
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "the Torchless format holds SentencePiece-style "
                          "vocabularies (tokenizer.ggml.model 'llama') only");
    const tl_gguf_kv *toks = tl_gguf_find(x->s->meta, "tokenizer.ggml.tokens");
    if (!toks || toks->type != TL_GGUF_ARRAY || toks->arr_type != TL_GGUF_STRING || !toks->arr_n)
        return tl_err_set(err, TL_ERR_MISSING, "tokenizer.ggml.tokens is missing");
    return TL_OK;
}

/* ---- header --------------------------------------------------------------- */

static void meta_entry(sbuf *b, bool *first, const char *key, const char *val) {
    sb_str(b, *first ? "" : ", ");
    *first = false;
    sb_json_str(b, key, strlen(key));
    sb_str(b, ": ");
    sb_json_str(b, val, strlen(val));
}

static void write_metadata(const ectx *x, sbuf *b) {
    const tl_hparams *hp = &x->hp;
    char v[96];
    bool first = true;
    sb_str(b, "\"metadata\": {");
#define META_INT(k, val) (snprintf(v, sizeof v, "%lld", (long long)(val)), meta_entry(b, &first, k, v))
    META_INT("hidden_size", hp->n_embd);
    META_INT("intermediate_size", hp->n_ff);
    META_INT("n_layers", hp->n_layer);
    META_INT("n_heads", hp->n_head);
    META_INT("n_kv_heads", hp->n_head_kv);
    META_INT("vocab_size", x->vocab);
    META_INT("max_position_embeddings", hp->n_ctx_train);
    META_INT("sliding_window", hp->sliding_window);
    py_float(v, sizeof v, hp->rope_theta);
    meta_entry(b, &first, "rope_theta", v);
    py_float(v, sizeof v, hp->norm_eps);
    meta_entry(b, &first, "norm_eps", v);
    meta_entry(b, &first, "act_type", "silu");
    meta_entry(b, &first, "quant", x->p->quant == TL_EXPORT_INT8 ? "int8" : "f32");
    if (hp->n_head > 0 && hp->head_dim * hp->n_head != hp->n_embd) META_INT("head_dim", hp->head_dim);
#undef META_INT
    sb_str(b, "}");
}

typedef struct vtok {
    int32_t id;
    float score;
} vtok;

static int cmp_vtok(const void *a, const void *b) {
    const vtok *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* vocab {piece: id} and merges. A source without merges (GGUF
 * SentencePiece vocabularies carry scores instead) gets them rebuilt as
 * Hugging Face's SentencePiece converter does: every split of a normal
 * piece into two pieces of the vocabulary, pieces taken by falling score,
 * which is the order the reader ranks merges in. */
static tl_status write_tokenizer(const ectx *x, sbuf *b, tl_err *err) {
    const tl_gguf *g = x->s->meta;
    const tl_gguf_kv *toks = tl_gguf_find(g, "tokenizer.ggml.tokens");
    const tl_gguf_kv *scores = tl_gguf_find(g, "tokenizer.ggml.scores");
    const tl_gguf_kv *types = tl_gguf_find(g, "tokenizer.ggml.token_type");
    const tl_gguf_kv *merges = tl_gguf_find(g, "tokenizer.ggml.merges");
    const uint64_t n = toks->arr_n;
    if (n > INT32_MAX) return tl_err_set(err, TL_ERR_FORMAT, "vocabulary too large");
    tl_strmap map = { 0 };
    vtok *order = NULL;
    tl_status rc = tl_strmap_reserve(&map, (size_t)n);
    sb_str(b, "\"tokenizer\": {\"vocab\": {");
    for (uint64_t i = 0; rc == TL_OK && i < n; i++) {
        tl_gguf_str t;
        if (!tl_gguf_arr_str(g, toks, i, &t)) {
            rc = tl_err_set(err, TL_ERR_FORMAT, "token %llu is unreadable", (unsigned long long)i);
            break;
        }
        sb_str(b, i ? ", " : "");
        sb_json_str(b, t.ptr, (size_t)t.len);
        sb_fmt(b, ": %llu", (unsigned long long)i);
        int32_t prev;
        if (!tl_strmap_get(&map, t.ptr, (size_t)t.len, &prev))
            rc = tl_strmap_put(&map, t.ptr, (size_t)t.len, (int32_t)i);
        if (rc != TL_OK) rc = tl_err_set(err, rc, "out of memory");
    }
    sb_str(b, "}, \"merges\": [");
    if (rc == TL_OK && merges && merges->type == TL_GGUF_ARRAY && merges->arr_type == TL_GGUF_STRING) {
        for (uint64_t i = 0; i < merges->arr_n; i++) {
            tl_gguf_str m;
            if (!tl_gguf_arr_str(g, merges, i, &m)) {
                rc = tl_err_set(err, TL_ERR_FORMAT, "merge %llu is unreadable", (unsigned long long)i);
                break;
            }
            sb_str(b, i ? ", " : "");
            sb_json_str(b, m.ptr, (size_t)m.len);
        }
    } else if (rc == TL_OK) {
        if (!(order = malloc(sizeof *order * (size_t)n))) rc = tl_err_set(err, TL_ERR_NOMEM, "out of memory");
        int64_t m = 0;
        for (uint64_t i = 0; rc == TL_OK && i < n; i++) {
            const int64_t type = types && i < types->arr_n ? tl_gguf_arr_i64(types, i) : 1;
            if (type != 1) continue; /* normal pieces only: not control, byte, unused, user */
            order[m++] = (vtok){ (int32_t)i, scores && i < scores->arr_n ? (float)tl_gguf_arr_f64(scores, i) : 0.0f };
        }
        if (rc == TL_OK) qsort(order, (size_t)m, sizeof *order, cmp_vtok);
        bool first = true;
        for (int64_t k = 0; rc == TL_OK && k < m; k++) {
            tl_gguf_str t;
            tl_gguf_arr_str(g, toks, (uint64_t)order[k].id, &t);
            if (memchr(t.ptr, ' ', (size_t)t.len)) continue; /* "a b" could not be split back */
            for (size_t cut = 1; cut < t.len; cut++) {
                if (((unsigned char)t.ptr[cut] & 0xC0) == 0x80) continue; /* inside a code point */
                int32_t id;
                if (!tl_strmap_get(&map, t.ptr, cut, &id) ||
                    !tl_strmap_get(&map, t.ptr + cut, (size_t)t.len - cut, &id))
                    continue;
                sb_str(b, first ? "" : ", ");
                first = false;
                sbuf tmp = { 0 };
                sb_put(&tmp, t.ptr, cut);
                sb_put(&tmp, " ", 1);
                sb_put(&tmp, t.ptr + cut, (size_t)t.len - cut);
                if (tmp.oom) rc = tl_err_set(err, TL_ERR_NOMEM, "out of memory");
                else sb_json_str(b, tmp.p, tmp.n);
                free(tmp.p);
            }
        }
    }
    sb_str(b, "]}");
    free(order);
    tl_strmap_free(&map);
    return rc;
}

static void write_tensors(ectx *x, sbuf *b) {
    uint64_t off = 0;
    sb_str(b, "\"tensors\": {");
    for (int i = 0; i < x->n; i++) {
        etensor *e = &x->et[i];
        off = (off + NATIVE_ALIGN - 1) / NATIVE_ALIGN * NATIVE_ALIGN;
        e->offset = off;
        off += e->numel * (e->int8 ? 1 : 4);
        sb_str(b, i ? ", " : "");
        sb_json_str(b, e->hf, strlen(e->hf));
        sb_fmt(b, ": {\"dtype\": \"%s\", \"shape\": [", e->int8 ? "int8" : "f32");
        for (int d = e->t->n_dims - 1; d >= 0; d--)
            sb_fmt(b, "%lld%s", (long long)e->t->ne[d], d ? ", " : "");
        sb_fmt(b, "], \"offset\": %llu", (unsigned long long)e->offset);
        if (e->int8) {
            off = (off + NATIVE_ALIGN - 1) / NATIVE_ALIGN * NATIVE_ALIGN;
            e->scale_offset = off;
            off += e->numel / NATIVE_GROUP * 4;
            sb_fmt(b, ", \"scale_offset\": %llu, \"scale_size\": %llu",
                   (unsigned long long)e->scale_offset, (unsigned long long)(e->numel / NATIVE_GROUP));
        }
        sb_str(b, "}");
    }
    sb_str(b, "}");
}

/* ---- payload -------------------------------------------------------------- */

typedef struct q8_job {
    const float *w;
    int8_t *q;
    float *scales;
    int64_t n_groups;
} q8_job;

// w (n_groups*64,) -> q (n_groups*64,) int8, scales (n_groups,) with w ~ q / scale
static void q8_groups(void *ctx, int ith, int nth) {
    const q8_job *j = ctx;
    for (int64_t g = j->n_groups * ith / nth; g < j->n_groups * (ith + 1) / nth; g++) {
        const float *w = j->w + g * NATIVE_GROUP;
        float mx = 0.0f;
        for (int i = 0; i < NATIVE_GROUP; i++) mx = fmaxf(mx, fabsf(w[i]));
        /* an all-zero group: the original divides by zero (scale inf, q nan);
         * any finite scale gives the same zero weights and every reader copes */
        const float scale = mx > 0.0f ? 127.0f / mx : 1.0f;
        j->scales[g] = scale;
        for (int i = 0; i < NATIVE_GROUP; i++) {
            float q = nearbyintf(w[i] * scale); /* round half to even, as torch.round */
            j->q[g * NATIVE_GROUP + i] = (int8_t)(q > 127.0f ? 127.0f : q < -127.0f ? -127.0f : q);
        }
    }
}

static tl_status write_all(FILE *f, const void *p, size_t n, const char *path, tl_err *err) {
    if (n && fwrite(p, 1, n, f) != n)
        return tl_err_set(err, TL_ERR_IO, "writing %s: %s", path, strerror(errno));
    return TL_OK;
}

static tl_status write_payload(ectx *x, FILE *f, const char *path, tl_err *err) {
    tl_pool *pool = NULL;
    float *w = NULL, *scratch = NULL;
    void *q = NULL;
    int64_t max_row = 1;
    uint64_t max_numel = 1;
    for (int i = 0; i < x->n; i++) {
        if (x->et[i].t->ne[0] > max_row) max_row = x->et[i].t->ne[0];
        if (x->et[i].numel > max_numel) max_numel = x->et[i].numel;
    }
    if (max_numel > SIZE_MAX / sizeof(float)) return tl_err_set(err, TL_ERR_NOMEM, "tensor too large");
    tl_status rc = tl_pool_init(tl_conv_threads(x->p->n_threads), &pool, err);
    if (rc != TL_OK) return rc;
    w = malloc(sizeof(float) * (size_t)max_numel);
    q = malloc((size_t)max_numel + sizeof(float) * (size_t)(max_numel / NATIVE_GROUP + 1));
    scratch = malloc(sizeof(float) * (size_t)tl_pool_n_threads(pool) * (size_t)max_row);
    if (!w || !q || !scratch) {
        rc = tl_err_set(err, TL_ERR_NOMEM, "out of memory");
        goto done;
    }
    static const char k_zeros[NATIVE_ALIGN] = { 0 };
    uint64_t pos = 0; /* relative to the payload */
    for (int i = 0; rc == TL_OK && i < x->n; i++) {
        etensor *e = &x->et[i];
        tl_conv_spec spec = { .src = e->t, .dst_type = TL_DTYPE_F32, .perm = e->perm,
                              .head_rows = e->head_rows, .rope_rows = e->head_rows };
        uint64_t nbytes;
        if ((rc = tl_conv_check(&spec, &nbytes, err)) != TL_OK) break;
        tl_conv_run(&spec, w, pool, scratch);
        const void *data = w;
        size_t n = (size_t)e->numel * sizeof(float);
        if (e->int8) {
            q8_job j = { .w = w, .q = q, .scales = (float *)((int8_t *)q + e->numel),
                         .n_groups = (int64_t)(e->numel / NATIVE_GROUP) };
            tl_pool_run(pool, q8_groups, &j);
            data = q;
            n = (size_t)e->numel;
        }
        rc = write_all(f, k_zeros, (size_t)(e->offset - pos), path, err);
        if (rc == TL_OK) rc = write_all(f, data, n, path, err);
        pos = e->offset + n;
        if (rc == TL_OK && e->int8) {
            rc = write_all(f, k_zeros, (size_t)(e->scale_offset - pos), path, err);
            if (rc == TL_OK) rc = write_all(f, (int8_t *)q + e->numel, (size_t)e->numel / NATIVE_GROUP * 4, path, err);
            pos = e->scale_offset + e->numel / NATIVE_GROUP * 4;
        }
        if (rc == TL_OK && x->p->progress) {
            tl_convert_progress pr = {
                .stage = "export", .index = i, .count = x->n, .name = e->hf,
                .from_type = tl_dtype_name(e->t->type), .to_type = e->int8 ? "int8" : "f32",
                .n_dims = e->t->n_dims, .ne = { e->t->ne[0], e->t->ne[1], e->t->ne[2], e->t->ne[3] },
                .from_bytes = e->t->nbytes,
                .to_bytes = e->int8 ? e->numel + e->numel / NATIVE_GROUP * 4 : e->numel * 4,
                .note = e->perm != TL_PERM_NONE ? "rows un-permuted to rotate-half RoPE"
                        : e->t != tl_source_find(x->s, "output.weight") && !strcmp(e->hf, "lm_head.weight")
                            ? "tied: copy of the embedding" : NULL,
            };
            x->p->progress(&pr, x->p->progress_user);
        }
    }
done:
    tl_pool_free(pool);
    free(w);
    free(q);
    free(scratch);
    return rc;
}

static tl_status export_native(const char *src, const char *out, const tl_export_params *p,
                               tl_err *err) {
    if (p->quant != TL_EXPORT_F32 && p->quant != TL_EXPORT_INT8)
        return tl_err_set(err, TL_ERR_INVALID_ARG, "unknown export quantization %d", (int)p->quant);
    if (p->n_threads < 0 || p->n_threads > 4096)
        return tl_err_set(err, TL_ERR_INVALID_ARG, "n_threads %d is out of range", p->n_threads);
    tl_status rc = tl_conv_check_out_dir(out, err);
    if (rc != TL_OK) return rc;
    ectx x = { .p = p };
    sbuf b = { 0 };
    FILE *f = NULL;
    char *tmp = NULL;
    if ((rc = tl_source_open(src, &x.s, err)) != TL_OK) return rc;
    if ((rc = check_model(&x, err)) != TL_OK) goto done;
    if ((rc = collect(&x, err)) != TL_OK) goto done;

    sb_str(&b, "{");
    write_metadata(&x, &b);
    sb_str(&b, ", ");
    if ((rc = write_tokenizer(&x, &b, err)) != TL_OK) goto done;
    sb_str(&b, ", ");
    write_tensors(&x, &b);
    sb_str(&b, "}");
    if (b.oom) {
        rc = tl_err_set(err, TL_ERR_NOMEM, "out of memory building the header");
        goto done;
    }
    const size_t pad = (NATIVE_ALIGN - (8 + b.n) % NATIVE_ALIGN) % NATIVE_ALIGN;
    const uint64_t hsize = (uint64_t)b.n + pad;
    uint8_t h8[8];
    for (int i = 0; i < 8; i++) h8[i] = (uint8_t)(hsize >> (8 * i));

    const size_t n = strlen(out);
    if (!(tmp = malloc(n + 32))) {
        rc = tl_err_set(err, TL_ERR_NOMEM, "out of memory");
        goto done;
    }
    snprintf(tmp, n + 32, "%s.export-%ld.tmp", out, (long)getpid());
    if (!(f = fopen(tmp, "wb"))) {
        rc = tl_err_set(err, TL_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        goto done;
    }
    static const char k_zeros[NATIVE_ALIGN] = { 0 };
    rc = write_all(f, h8, 8, tmp, err);
    if (rc == TL_OK) rc = write_all(f, b.p, b.n, tmp, err);
    if (rc == TL_OK) rc = write_all(f, k_zeros, pad, tmp, err);
    if (rc == TL_OK) rc = write_payload(&x, f, tmp, err);
    if (fclose(f) != 0 && rc == TL_OK) rc = tl_err_set(err, TL_ERR_IO, "writing %s: %s", tmp, strerror(errno));
    f = NULL;
    if (rc == TL_OK && rename(tmp, out) != 0)
        rc = tl_err_set(err, TL_ERR_IO, "cannot rename %s to %s: %s", tmp, out, strerror(errno));
done:
    if (f) fclose(f);
    if (tmp && rc != TL_OK) unlink(tmp);
    free(tmp);
    free(b.p);
    free(x.et);
    tl_source_free(x.s);
    return rc;
}

/* ---- public API ----------------------------------------------------------- */

tl_export_params tl_export_default_params(void) {
    return (tl_export_params){ .quant = TL_EXPORT_F32, .n_threads = 0 };
}

tl_status tl_export_native(const char *src, const char *out, const tl_export_params *params) {
    const tl_export_params p = params ? *params : tl_export_default_params();
    tl_err err = { 0 };
    tl_status rc = !src || !out
                       ? tl_err_set(&err, TL_ERR_INVALID_ARG, "tl_export_native: src and out are required")
                       : export_native(src, out, &p, &err);
    tl_err_set_last(rc == TL_OK ? NULL : &err);
    return rc;
}
