/* quantize.c — GGUF -> GGUF re-quantization with llama-quantize's mixes.
 *
 * Which tensor gets which type follows llama.cpp's llama-quantize
 * (src/llama-quant.cpp: llama_tensor_get_type and the loop around it) so a
 * file made here is interchangeable with one made there: tensors are visited
 * in the same order (the per-layer counters of the *_M mixes depend on it),
 * get the same types, and — since neither side uses an importance matrix and
 * core/quant.c's reference quantizers are bit-exact — the same bytes.
 *
 * Deviations, all on inputs llama-quantize rejects or cannot produce here:
 * a Q2_K/Q3_K tensor whose rows are not a multiple of 256 falls back to Q4_0
 * (llama.cpp uses IQ4_NL, which this build does not have); a legacy-type
 * tensor whose rows are not a multiple of 32 falls back to F16 (llama.cpp
 * aborts); the 70B attn_v bump uses the layer count alone to spot a 70B. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "base/pool.h"
#include "core/dtype.h"
#include "core/fp16.h"
#include "io/gguf.h"
#include "model/convert.h"

/* llama.cpp's llama_ftype values: written to general.file_type. */
enum {
    FT_ALL_F32 = 0, FT_F16 = 1, FT_Q4_0 = 2, FT_Q4_1 = 3, FT_Q8_0 = 7, FT_Q5_0 = 8,
    FT_Q5_1 = 9, FT_Q2_K = 10, FT_Q3_K_S = 11, FT_Q3_K_M = 12, FT_Q3_K_L = 13,
    FT_Q4_K_S = 14, FT_Q4_K_M = 15, FT_Q5_K_S = 16, FT_Q5_K_M = 17, FT_Q6_K = 18,
    FT_BF16 = 32,
};

#define QNT_VERSION 2 /* GGML_QNT_VERSION */

typedef struct ftype_info {
    const char *name;  /* llama-quantize's spelling */
    int ftype;
    tl_dtype base;     /* type of the tensors no mix rule touches */
} ftype_info;

/* Aliases come after their target so tl_quantize_type_name lists canonical
 * names first; the alias rows map to the _M mixes as llama-quantize does. */
static const ftype_info k_ftypes[] = {
    { "F32", FT_ALL_F32, TL_DTYPE_F32 },   { "F16", FT_F16, TL_DTYPE_F16 },
    { "BF16", FT_BF16, TL_DTYPE_BF16 },    { "Q8_0", FT_Q8_0, TL_DTYPE_Q8_0 },
    { "Q4_0", FT_Q4_0, TL_DTYPE_Q4_0 },    { "Q4_1", FT_Q4_1, TL_DTYPE_Q4_1 },
    { "Q5_0", FT_Q5_0, TL_DTYPE_Q5_0 },    { "Q5_1", FT_Q5_1, TL_DTYPE_Q5_1 },
    { "Q2_K", FT_Q2_K, TL_DTYPE_Q2_K },    { "Q3_K_S", FT_Q3_K_S, TL_DTYPE_Q3_K },
    { "Q3_K_M", FT_Q3_K_M, TL_DTYPE_Q3_K }, { "Q3_K_L", FT_Q3_K_L, TL_DTYPE_Q3_K },
    { "Q4_K_S", FT_Q4_K_S, TL_DTYPE_Q4_K }, { "Q4_K_M", FT_Q4_K_M, TL_DTYPE_Q4_K },
    { "Q5_K_S", FT_Q5_K_S, TL_DTYPE_Q5_K }, { "Q5_K_M", FT_Q5_K_M, TL_DTYPE_Q5_K },
    { "Q6_K", FT_Q6_K, TL_DTYPE_Q6_K },
    { "Q3_K", FT_Q3_K_M, TL_DTYPE_Q3_K },   { "Q4_K", FT_Q4_K_M, TL_DTYPE_Q4_K },
    { "Q5_K", FT_Q5_K_M, TL_DTYPE_Q5_K },
};
#define N_FTYPES ((int)(sizeof k_ftypes / sizeof k_ftypes[0]))
#define N_CANONICAL (N_FTYPES - 3)

/* Type used when a tensor's rows do not split into the chosen type's blocks
 * (llama_tensor_get_type's convert_incompatible_tensor switch). Types absent
 * here fall back to F16. */
static const tl_dtype k_row_fallback[TL_DTYPE_COUNT] = {
    [TL_DTYPE_Q2_K] = TL_DTYPE_Q4_0, /* llama.cpp: IQ4_NL */
    [TL_DTYPE_Q3_K] = TL_DTYPE_Q4_0, /* llama.cpp: IQ4_NL */
    [TL_DTYPE_Q4_K] = TL_DTYPE_Q5_0,
    [TL_DTYPE_Q5_K] = TL_DTYPE_Q5_1,
    [TL_DTYPE_Q6_K] = TL_DTYPE_Q8_0,
};

/* Substrings of tensor names llama-quantize never quantizes. */
static const char *const k_never[] = {
    "_norm.weight", "ffn_gate_inp.weight", "ssm_conv1d.weight", "time_mix_first.weight",
    "time_mix_w1.weight", "time_mix_w2.weight", "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight", "attn_rel_b.weight",
};

/* What llama_tensor_get_type reads from the model and its running counters. */
typedef struct qstate {
    int ftype;
    bool falcon, is_70b, has_output;
    int64_t n_expert, n_gqa, n_layer;
    int n_attention_wv, i_attention_wv, i_ffn_down, i_ffn_gate, i_ffn_up;
} qstate;

typedef struct qtensor {
    const tl_gguf_tensor *t;
    char *name;           /* NUL-terminated copy */
    int layer;            /* blk.N -> N, else -1 */
    int n_dims;           /* ggml_n_dims: trailing 1s dropped, at least 1 */
    tl_dtype to;
    void *data;           /* converted bytes (owned), or NULL: copied from t */
    uint64_t nbytes;
    const char *note;
} qtensor;

static const ftype_info *find_ftype(const char *name) {
    for (int i = 0; name && i < N_FTYPES; i++)
        if (!strcasecmp(name, k_ftypes[i].name)) return &k_ftypes[i];
    return NULL;
}

static int block_size(tl_dtype t) { return tl_dtype_traits_of(t)->block_size; }

static bool has(const char *name, const char *sub) { return strstr(name, sub) != NULL; }

/* Layers 0..n/8, the last eighth, and every third in between: where
 * llama.cpp's *_M mixes spend extra bits. */
static bool use_more_bits(int64_t i, int64_t n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* Layer index for per-layer rules: the running counter for dense models, the
 * name's blk.N for MoE (experts need not be consecutive). */
static tl_status layer_of(const qstate *qs, const qtensor *q, int counter, int64_t *out, tl_err *err) {
    *out = counter;
    if (qs->n_expert > 1) {
        if (q->layer < 0 || q->layer >= qs->n_layer)
            return tl_err_set(err, TL_ERR_FORMAT, "tensor %s: cannot tell its layer (of %lld)",
                              q->name, (long long)qs->n_layer);
        *out = q->layer;
    }
    return TL_OK;
}

/* llama_tensor_get_type for the file types above: refines the base type t of
 * a quantized file for one tensor. Advances the qs counters. */
static tl_status mix_type(qstate *qs, qtensor *q, tl_dtype t, tl_err *err) {
    const char *name = q->name;
    const int ft = qs->ftype;
    const int64_t nx = q->t->ne[0];
    int64_t il;

    if (!strcmp(name, "output.weight") || (!qs->has_output && !strcmp(name, "token_embd.weight"))) {
        /* tied embeddings are also the output projection: quantize them as one */
        if (qs->falcon || nx % block_size(t) != 0) t = TL_DTYPE_Q8_0;
        else if (t != TL_DTYPE_Q8_0) t = TL_DTYPE_Q6_K;
    } else if (!strcmp(name, "token_embd.weight")) {
        /* keeps the base type for every file type offered here */
    } else if (has(name, "attn_v.weight")) {
        const int i = qs->i_attention_wv, n = qs->n_attention_wv;
        if (ft == FT_Q2_K) t = qs->n_gqa >= 4 ? TL_DTYPE_Q4_K : TL_DTYPE_Q3_K;
        else if (ft == FT_Q3_K_M) t = i < 2 ? TL_DTYPE_Q5_K : TL_DTYPE_Q4_K;
        else if (ft == FT_Q3_K_L) t = TL_DTYPE_Q5_K;
        else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) && use_more_bits(i, n)) t = TL_DTYPE_Q6_K;
        else if (ft == FT_Q4_K_S && i < 4) t = TL_DTYPE_Q5_K;
        /* 70B: attn_v is 8x smaller than attn_q (GQA), so extra bits are cheap */
        if (qs->is_70b && (t == TL_DTYPE_Q3_K || t == TL_DTYPE_Q4_K)) t = TL_DTYPE_Q5_K;
        if (qs->n_expert == 8) t = TL_DTYPE_Q8_0;
        qs->i_attention_wv++;
    } else if (has(name, "attn_k.weight")) {
        if (qs->n_expert == 8) t = TL_DTYPE_Q8_0;
    } else if (has(name, "attn_q.weight")) {
        /* only the IQ mixes touch attn_q */
    } else if (has(name, "ffn_down")) {
        if (layer_of(qs, q, qs->i_ffn_down, &il, err) != TL_OK) return err->code;
        const int64_t nl = qs->n_layer;
        const bool more = use_more_bits(il, nl);
        if (ft == FT_Q2_K) t = TL_DTYPE_Q3_K;
        else if (ft == FT_Q3_K_M)
            t = il < nl / 16 ? TL_DTYPE_Q5_K : (!qs->falcon || more) ? TL_DTYPE_Q4_K : TL_DTYPE_Q3_K;
        else if (ft == FT_Q3_K_L) t = qs->falcon ? TL_DTYPE_Q4_K : TL_DTYPE_Q5_K;
        else if (ft == FT_Q4_K_M) {
            if (qs->falcon) t = il < nl / 16 ? TL_DTYPE_Q6_K : more ? TL_DTYPE_Q5_K : TL_DTYPE_Q4_K;
            else if (more) t = TL_DTYPE_Q6_K;
        } else if (ft == FT_Q5_K_M && more) t = TL_DTYPE_Q6_K;
        else if (ft == FT_Q4_K_S && !qs->falcon && il < nl / 8) t = TL_DTYPE_Q5_K;
        qs->i_ffn_down++;
    } else if (has(name, "attn_output.weight")) {
        if (!qs->falcon) {
            if (qs->n_expert == 8) {
                if (ft == FT_Q2_K || ft == FT_Q3_K_S || ft == FT_Q3_K_M || ft == FT_Q4_K_S ||
                    ft == FT_Q4_K_M)
                    t = TL_DTYPE_Q5_K;
            } else if (ft == FT_Q2_K) t = TL_DTYPE_Q3_K;
            else if (ft == FT_Q3_K_M) t = TL_DTYPE_Q4_K;
            else if (ft == FT_Q3_K_L) t = TL_DTYPE_Q5_K;
        } else if (ft == FT_Q3_K_L) t = TL_DTYPE_Q4_K;
    } else if (has(name, "attn_qkv.weight")) {
        if (ft == FT_Q3_K_M || ft == FT_Q3_K_L) t = TL_DTYPE_Q4_K;
        else if (ft == FT_Q4_K_M) t = TL_DTYPE_Q5_K;
        else if (ft == FT_Q5_K_M) t = TL_DTYPE_Q6_K;
    } else if (has(name, "ffn_gate")) {
        if (layer_of(qs, q, qs->i_ffn_gate, &il, err) != TL_OK) return err->code;
        qs->i_ffn_gate++;
    } else if (has(name, "ffn_up")) {
        if (layer_of(qs, q, qs->i_ffn_up, &il, err) != TL_OK) return err->code;
        qs->i_ffn_up++;
    }

    if (nx % block_size(t) != 0) {
        const tl_dtype want = t;
        t = k_row_fallback[want] ? k_row_fallback[want] : TL_DTYPE_F16;
        if (nx % block_size(t) != 0) t = TL_DTYPE_F16;
        q->note = "rows are not a multiple of the block size: fallback type";
    }
    q->to = t;
    return TL_OK;
}

/* The quantize/copy decision of llama-quantize's main loop. */
static bool quantizable(const qtensor *q) {
    const size_t n = strlen(q->name);
    if (n < 6 || strcmp(q->name + n - 6, "weight") != 0 || q->n_dims < 2) return false;
    for (size_t i = 0; i < sizeof k_never / sizeof k_never[0]; i++)
        if (has(q->name, k_never[i])) return false;
    return strcmp(q->name, "position_embd.weight") && strcmp(q->name, "token_types.weight");
}

/* N of a "blk.N." name, else -1 (llama.cpp's sscanf("blk.%d."), without its
 * undefined behaviour on numbers that overflow an int). */
static int layer_from_name(const char *name) {
    if (strncmp(name, "blk.", 4) != 0 || name[4] < '0' || name[4] > '9') return -1;
    long v = 0;
    for (const char *c = name + 4; *c >= '0' && *c <= '9'; c++)
        if ((v = v * 10 + (*c - '0')) > (1 << 24)) return -1;
    return (int)v;
}

/* llama.cpp's weight order: non-layer tensors first, then by layer number,
 * names compared bytewise within a layer. */
static int cmp_qtensor(const void *a, const void *b) {
    const qtensor *x = a, *y = b;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int64_t meta_i64(const tl_gguf *g, const char *arch, const char *suffix, int64_t dflt) {
    char key[256];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    const tl_gguf_kv *kv = tl_gguf_find(g, key);
    if (!kv) return dflt;
    if (kv->type == TL_GGUF_ARRAY) return kv->arr_n ? tl_gguf_arr_i64(kv, 0) : dflt; /* per-layer: layer 0 */
    int64_t v;
    return tl_gguf_get_i64(g, key, &v) ? v : dflt;
}

static tl_status read_hparams(const tl_gguf *g, qstate *qs, const qtensor *qt, int64_t n,
                              tl_err *err) {
    tl_gguf_str s;
    if (!tl_gguf_get_str(g, "general.architecture", &s) || s.len == 0 || s.len > 64)
        return tl_err_set(err, TL_ERR_MISSING, "general.architecture is missing");
    char arch[65];
    memcpy(arch, s.ptr, s.len);
    arch[s.len] = 0;
    int max_layer = -1;
    for (int64_t i = 0; i < n; i++) max_layer = qt[i].layer > max_layer ? qt[i].layer : max_layer;
    qs->n_layer = meta_i64(g, arch, "block_count", max_layer + 1);
    if (qs->n_layer < 0 || qs->n_layer > (1 << 20))
        return tl_err_set(err, TL_ERR_FORMAT, "%s.block_count %lld is out of range", arch,
                          (long long)qs->n_layer);
    const int64_t n_head = meta_i64(g, arch, "attention.head_count", 0);
    const int64_t n_head_kv = meta_i64(g, arch, "attention.head_count_kv", n_head);
    qs->n_gqa = n_head_kv > 0 ? n_head / n_head_kv : 0;
    qs->n_expert = meta_i64(g, arch, "expert_count", 0);
    qs->falcon = !strcmp(arch, "falcon");
    /* llama.cpp's LLM_TYPE_70B: 80 layers in these families (llama: with GQA) */
    qs->is_70b = qs->n_layer == 80 &&
                 ((!strcmp(arch, "llama") && qs->n_expert <= 1 && n_head != n_head_kv) ||
                  !strcmp(arch, "deci") || !strcmp(arch, "qwen2") || !strcmp(arch, "olmo"));
    return TL_OK;
}

/* ---- conversion ---------------------------------------------------------- */

typedef struct conv_job {
    const tl_dtype_traits *src_tr, *dst_tr;
    bool src_f32;
    const float *f16_lut; /* F16 sources: all 65536 values, else NULL */
    const uint8_t *src;
    uint8_t *dst;
    size_t src_row, dst_row;
    int64_t n_per_row, nrows;
    float *scratch;       /* n_per_row floats per thread */
} conv_job;

// src rows (nrows, n_per_row) of any type -> f32 row -> dst rows of the target type
static void conv_rows(void *ctx, int ith, int nth) {
    const conv_job *j = ctx;
    const int64_t r0 = j->nrows * ith / nth, r1 = j->nrows * (ith + 1) / nth;
    float *buf = j->scratch + (size_t)ith * (size_t)j->n_per_row;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *s = j->src + (size_t)r * j->src_row;
        const float *x = (const float *)s;
        if (j->f16_lut) {
            const tl_f16 *h = (const tl_f16 *)s;
            for (int64_t i = 0; i < j->n_per_row; i++) buf[i] = j->f16_lut[h[i]];
            x = buf;
        } else if (!j->src_f32) {
            j->src_tr->to_float(s, buf, j->n_per_row);
            x = buf;
        }
        j->dst_tr->from_float(x, j->dst + (size_t)r * j->dst_row, j->n_per_row);
    }
}

static tl_status convert(qtensor *q, tl_pool *pool, float *scratch, const float *f16_lut,
                         tl_err *err) {
    const tl_gguf_tensor *t = q->t;
    const tl_dtype_traits *st = tl_dtype_traits_of(t->type), *dt = tl_dtype_traits_of(q->to);
    if (!st || !st->to_float)
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "tensor %s: cannot convert from type %s",
                          q->name, tl_dtype_name(t->type));
    if (!dt || !dt->from_float)
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "tensor %s: cannot convert to type %s", q->name,
                          tl_dtype_name(q->to));
    const int64_t n_per_row = t->ne[0];
    const int64_t nrows = t->ne[1] * t->ne[2] * t->ne[3];
    const size_t src_row = tl_dtype_row_size(t->type, n_per_row);
    const size_t dst_row = tl_dtype_row_size(q->to, n_per_row);
    if (!src_row || !dst_row || (uint64_t)src_row * (uint64_t)nrows != t->nbytes ||
        (uint64_t)nrows > SIZE_MAX / dst_row)
        return tl_err_set(err, TL_ERR_FORMAT, "tensor %s: shape does not match its size", q->name);
    q->nbytes = (uint64_t)dst_row * (uint64_t)nrows;
    q->data = malloc(q->nbytes ? (size_t)q->nbytes : 1);
    if (!q->data)
        return tl_err_set(err, TL_ERR_NOMEM, "tensor %s: out of memory (%llu bytes)", q->name,
                          (unsigned long long)q->nbytes);
    conv_job job = {
        .src_tr = st, .dst_tr = dt, .src_f32 = t->type == TL_DTYPE_F32,
        .f16_lut = t->type == TL_DTYPE_F16 ? f16_lut : NULL, .src = t->data,
        .dst = q->data, .src_row = src_row, .dst_row = dst_row, .n_per_row = n_per_row,
        .nrows = nrows, .scratch = scratch,
    };
    tl_pool_run(pool, conv_rows, &job);
    return TL_OK;
}

static tl_status quantize_file(const char *in, const char *out, const tl_quantize_params *p,
                               tl_err *err) {
    const ftype_info *fi = find_ftype(p->type);
    if (!fi) {
        char list[512] = "";
        for (int i = 0; i < N_FTYPES; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? " " : "",
                     k_ftypes[i].name);
        return tl_err_set(err, TL_ERR_INVALID_ARG, "unknown quantization type '%s' (known: %s)",
                          p->type ? p->type : "(null)", list);
    }
    if (p->n_threads < 0 || p->n_threads > 4096)
        return tl_err_set(err, TL_ERR_INVALID_ARG, "n_threads %d is out of range", p->n_threads);
    tl_status rc = tl_conv_check_out_dir(out, err);
    if (rc != TL_OK) return rc;

    tl_gguf *g = NULL;
    tl_gguf_writer *w = NULL;
    tl_pool *pool = NULL;
    qtensor *qt = NULL;
    float *scratch = NULL, *f16_lut = NULL;
    int64_t nt = 0;

    if ((rc = tl_gguf_open(in, &g, err)) != TL_OK) return rc; /* message names the file */
    int64_t n_split = 1;
    if (tl_gguf_get_i64(g, "split.count", &n_split) && n_split > 1) {
        rc = tl_err_set(err, TL_ERR_UNSUPPORTED, "%s is one of %lld split files: merge them first "
                        "(llama-gguf-split --merge)", in, (long long)n_split);
        goto done;
    }
    nt = tl_gguf_n_tensors(g);
    qt = calloc(nt ? (size_t)nt : 1, sizeof *qt);
    if (!qt) { rc = tl_err_set(err, TL_ERR_NOMEM, "out of memory"); goto done; }
    for (int64_t i = 0; i < nt; i++) {
        qtensor *q = &qt[i];
        q->t = tl_gguf_tensor_at(g, i);
        q->name = strndup(q->t->name.ptr, (size_t)q->t->name.len);
        if (!q->name) { rc = tl_err_set(err, TL_ERR_NOMEM, "out of memory"); goto done; }
        if (strlen(q->name) != q->t->name.len) {
            rc = tl_err_set(err, TL_ERR_FORMAT, "tensor %lld has a NUL byte in its name",
                            (long long)i);
            goto done;
        }
        q->layer = layer_from_name(q->name);
        q->n_dims = 1;
        for (int d = 1; d < 4; d++)
            if (q->t->ne[d] > 1) q->n_dims = d + 1;
        q->to = q->t->type;
    }
    qsort(qt, (size_t)nt, sizeof *qt, cmp_qtensor);

    qstate qs = { .ftype = fi->ftype };
    if ((rc = read_hparams(g, &qs, qt, nt, err)) != TL_OK) goto done;
    for (int64_t i = 0; i < nt; i++) {
        if (has(qt[i].name, "attn_v.weight") || has(qt[i].name, "attn_qkv.weight") ||
            has(qt[i].name, "attn_kv_b.weight"))
            qs.n_attention_wv++;
        else if (!strcmp(qt[i].name, "output.weight"))
            qs.has_output = true;
    }

    /* Decide every type first: errors surface before any work, and the
     * requantization warning can be given once. */
    int n_requant = 0;
    int64_t max_row = 1; /* longest row converted: sizes the per-thread scratch */
    const bool base_quant = tl_dtype_traits_of(fi->base)->is_quant;
    for (int64_t i = 0; i < nt; i++) {
        qtensor *q = &qt[i];
        if (!quantizable(q)) continue;
        q->to = fi->base;
        if (!p->pure && base_quant) {
            if ((rc = mix_type(&qs, q, fi->base, err)) != TL_OK) goto done;
        } else if (q->t->ne[0] % block_size(q->to) != 0) {
            q->to = k_row_fallback[q->to] ? k_row_fallback[q->to] : TL_DTYPE_F16;
            if (q->t->ne[0] % block_size(q->to) != 0) q->to = TL_DTYPE_F16;
            q->note = "rows are not a multiple of the block size: fallback type";
        }
        if (q->to == q->t->type) continue;
        const tl_dtype_traits *st = tl_dtype_traits_of(q->t->type);
        if (!st->to_float || !tl_dtype_traits_of(q->to)->from_float) {
            rc = tl_err_set(err, TL_ERR_UNSUPPORTED, "tensor %s: cannot convert %s to %s", q->name,
                            st->name, tl_dtype_name(q->to));
            goto done;
        }
        n_requant += st->is_quant;
        if (q->t->ne[0] > max_row) max_row = q->t->ne[0];
    }
    if (n_requant)
        TL_WARN("%s: requantizing %d tensor(s) from quantized types: quality is lost", in,
                n_requant);

    const int nth = p->n_threads > 0 ? p->n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if ((rc = tl_pool_init(nth > 0 ? (nth > 4096 ? 4096 : nth) : 1, &pool, err)) != TL_OK) goto done;
    scratch = malloc((size_t)tl_pool_n_threads(pool) * (size_t)max_row * sizeof *scratch);
    if (!scratch) { rc = tl_err_set(err, TL_ERR_NOMEM, "out of memory"); goto done; }

    /* F16 is what most checkpoints ship as; a table beats the branchy
     * scalar conversion and gives the very same floats. */
    f16_lut = malloc(65536 * sizeof *f16_lut);
    if (!f16_lut) { rc = tl_err_set(err, TL_ERR_NOMEM, "out of memory"); goto done; }
    for (uint32_t h = 0; h < 65536; h++) f16_lut[h] = tl_f16_to_f32((tl_f16)h);

    if ((rc = tl_gguf_writer_init(&w, err)) != TL_OK) goto done;
    tl_gguf_writer_copy_kv(w, g);
    tl_gguf_writer_set_u32(w, "general.quantization_version", QNT_VERSION);
    tl_gguf_writer_set_u32(w, "general.file_type", (uint32_t)fi->ftype);

    for (int64_t i = 0; i < nt; i++) {
        qtensor *q = &qt[i];
        const tl_gguf_tensor *t = q->t;
        const bool conv = q->to != t->type;
        if (conv) {
            if ((rc = convert(q, pool, scratch, f16_lut, err)) != TL_OK) goto done;
        } else {
            q->nbytes = t->nbytes;
        }
        tl_gguf_writer_add_tensor(w, q->name, q->to, q->n_dims, t->ne, conv ? q->data : t->data,
                                  q->nbytes);
        if (p->progress) {
            tl_quantize_progress pr = {
                .index = (int)i, .count = (int)nt, .name = q->name,
                .from_type = tl_dtype_name(t->type), .to_type = tl_dtype_name(q->to),
                .n_dims = q->n_dims, .ne = { t->ne[0], t->ne[1], t->ne[2], t->ne[3] },
                .from_bytes = t->nbytes, .to_bytes = q->nbytes, .converted = conv,
                .requantized = conv && tl_dtype_traits_of(t->type)->is_quant, .note = q->note,
            };
            p->progress(&pr, p->progress_user);
        }
    }
    rc = tl_gguf_writer_write(w, out, err); /* atomic: temp file + rename */

done:
    tl_gguf_writer_free(w);
    tl_pool_free(pool);
    free(scratch);
    free(f16_lut);
    for (int64_t i = 0; qt && i < nt; i++) {
        free(qt[i].name);
        free(qt[i].data);
    }
    free(qt);
    tl_gguf_free(g);
    return rc;
}

/* ---- public API ----------------------------------------------------------- */

tl_quantize_params tl_quantize_default_params(void) {
    return (tl_quantize_params){ .type = "Q4_K_M", .n_threads = 0 };
}

const char *tl_quantize_type_name(int i) {
    return i >= 0 && i < N_CANONICAL ? k_ftypes[i].name : NULL;
}

const char *tl_quantize_ftype_name(uint32_t ftype) {
    for (int i = 0; i < N_CANONICAL; i++)
        if ((uint32_t)k_ftypes[i].ftype == ftype) return k_ftypes[i].name;
    return NULL;
}

tl_status tl_quantize(const char *in, const char *out, const tl_quantize_params *params) {
    const tl_quantize_params p = params ? *params : tl_quantize_default_params();
    tl_err err = { 0 };
    tl_status rc = !in || !out
                       ? tl_err_set(&err, TL_ERR_INVALID_ARG, "tl_quantize: in and out are required")
                       : quantize_file(in, out, &p, &err);
    tl_err_set_last(rc == TL_OK ? NULL : &err);
    return rc;
}
