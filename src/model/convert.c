/* convert.c — any loadable model -> GGUF in llama.cpp's conventions.
 *
 * Metadata comes from the source's GGUF-style keys (the Hugging Face and
 * Torchless loaders already translate config.json and tokenizer.json the way
 * convert_hf_to_gguf.py does); what the loaders express as flags is baked
 * into the weights here, so the file needs no flags:
 *   - rope_neox on a NORM-rope family (llama, mistral): Q/K rows permuted
 *     from HF halves to interleaved pairs (convert_hf_to_gguf's `permute`);
 *     NEOX families (qwen2, phi, gemma) keep HF's layout, as in llama.cpp.
 *   - norm_plus_one (Gemma): every "*norm.weight" stored as 1+w, in F32.
 * 1-D tensors are stored F32 as llama.cpp's converter does.
 *
 * Quantized output types reuse tl_quantize (llama-quantize's per-tensor
 * choices, bit-exact quantizers) on a lossless temporary GGUF rather than
 * re-implementing the mixes: the temporary costs disk, not precision. */
#include "model/convert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "arch/arch.h"
#include "base/log.h"
#include "core/fp16.h"
#include "io/gguf.h"
#include "model/source.h"
#include "torchless.h"

/* ---- shared row converter ------------------------------------------------ */

int tl_conv_threads(int n_threads) {
    int n = n_threads > 0 ? n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 4096 ? 4096 : n;
}

tl_status tl_conv_check_out_dir(const char *out, tl_err *err) {
    const char *slash = strrchr(out, '/');
    char *dir = slash ? strndup(out, (size_t)(slash - out) + (slash == out)) : strdup(".");
    if (!dir) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    const bool ok = access(dir, W_OK | X_OK) == 0;
    tl_status rc = ok ? TL_OK
                      : tl_err_set(err, TL_ERR_IO, "cannot write %s: directory %s is missing or "
                                   "not writable", out, dir);
    free(dir);
    return rc;
}

/* Rows of a spec: a permuted 1-D tensor is one element per row. */
static void conv_shape(const tl_conv_spec *c, int64_t *n_per_row, int64_t *nrows) {
    const tl_tensor *t = c->src;
    if (c->perm != TL_PERM_NONE && t->n_dims == 1) {
        *n_per_row = 1;
        *nrows = t->ne[0];
    } else {
        *n_per_row = t->ne[0];
        *nrows = tl_tensor_nrows(t);
    }
}

tl_status tl_conv_check(const tl_conv_spec *c, uint64_t *nbytes, tl_err *err) {
    const tl_tensor *t = c->src;
    const tl_dtype_traits *st = tl_dtype_traits_of(t->type), *dt = tl_dtype_traits_of(c->dst_type);
    if (!st || !dt) return tl_err_set(err, TL_ERR_FORMAT, "tensor %s: unknown type", t->name);
    const bool same = t->type == c->dst_type && !c->plus_one;
    if (!same && t->type != TL_DTYPE_F32 && !st->to_float)
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "tensor %s: cannot convert from type %s",
                          t->name, st->name);
    if (!same && c->dst_type != TL_DTYPE_F32 && !dt->from_float)
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "tensor %s: cannot convert to type %s", t->name,
                          dt->name);
    int64_t n_per_row, nrows;
    conv_shape(c, &n_per_row, &nrows);
    if (n_per_row % st->block_size || n_per_row % dt->block_size)
        return tl_err_set(err, TL_ERR_INVALID_ARG, "tensor %s: rows of %lld do not split into "
                          "%s blocks", t->name, (long long)n_per_row,
                          (n_per_row % st->block_size ? st : dt)->name);
    const size_t src_row = tl_dtype_row_size(t->type, n_per_row);
    const size_t dst_row = tl_dtype_row_size(c->dst_type, n_per_row);
    if (!src_row || !dst_row || (uint64_t)nrows > UINT64_MAX / src_row ||
        (uint64_t)src_row * (uint64_t)nrows != t->nbytes || (uint64_t)nrows > SIZE_MAX / dst_row)
        return tl_err_set(err, TL_ERR_FORMAT, "tensor %s: shape does not match its size", t->name);
    if (c->perm != TL_PERM_NONE) {
        const int64_t hd = c->head_rows, r = c->rope_rows;
        if (hd <= 0 || nrows % hd || r <= 0 || r > hd || r % 2)
            return tl_err_set(err, TL_ERR_FORMAT, "tensor %s: %lld rows do not split into heads "
                              "of %lld with %lld rotated", t->name, (long long)nrows,
                              (long long)hd, (long long)r);
    }
    *nbytes = (uint64_t)dst_row * (uint64_t)nrows;
    return TL_OK;
}

typedef struct conv_job {
    const tl_conv_spec *c;
    const tl_dtype_traits *st, *dt;
    uint8_t *dst;
    size_t src_row, dst_row;
    int64_t n_per_row, nrows;
    float *scratch;
} conv_job;

// src rows (nrows, n_per_row), reordered -> f32 (+1) -> dst rows (nrows, n_per_row)
static void conv_rows(void *ctx, int ith, int nth) {
    const conv_job *j = ctx;
    const tl_conv_spec *c = j->c;
    const int64_t r0 = j->nrows * ith / nth, r1 = j->nrows * (ith + 1) / nth;
    float *buf = j->scratch + (size_t)ith * (size_t)j->n_per_row;
    const uint8_t *src = c->src->data;
    for (int64_t r = r0; r < r1; r++) {
        const int64_t sr = tl_rope_src_row(c->perm, r, c->head_rows, c->rope_rows);
        const uint8_t *s = src + (size_t)sr * j->src_row;
        uint8_t *d = j->dst + (size_t)r * j->dst_row;
        if (c->src->type == c->dst_type && !c->plus_one) {
            memcpy(d, s, j->src_row);
            continue;
        }
        if (c->src->type == TL_DTYPE_F32) memcpy(buf, s, sizeof(float) * (size_t)j->n_per_row);
        else j->st->to_float(s, buf, j->n_per_row);
        if (c->plus_one)
            for (int64_t i = 0; i < j->n_per_row; i++) buf[i] += 1.0f;
        if (c->dst_type == TL_DTYPE_F32) memcpy(d, buf, sizeof(float) * (size_t)j->n_per_row);
        else j->dt->from_float(buf, d, j->n_per_row);
    }
}

void tl_conv_run(const tl_conv_spec *c, void *dst, tl_pool *pool, float *scratch) {
    conv_job j = { .c = c, .st = tl_dtype_traits_of(c->src->type),
                   .dt = tl_dtype_traits_of(c->dst_type), .dst = dst, .scratch = scratch };
    conv_shape(c, &j.n_per_row, &j.nrows);
    j.src_row = tl_dtype_row_size(c->src->type, j.n_per_row);
    j.dst_row = tl_dtype_row_size(c->dst_type, j.n_per_row);
    tl_pool_run(pool, conv_rows, &j);
}

/* ---- GGUF writer --------------------------------------------------------- */

/* llama_ftype of a file whose weights are mostly of type t (-1: none). */
static int ftype_of(tl_dtype t) {
    static const int k_ftype[TL_DTYPE_COUNT] = {
        [TL_DTYPE_F32] = 0 + 100, [TL_DTYPE_F16] = 1 + 100, [TL_DTYPE_Q4_0] = 2 + 100,
        [TL_DTYPE_Q4_1] = 3 + 100, [TL_DTYPE_Q8_0] = 7 + 100, [TL_DTYPE_Q5_0] = 8 + 100,
        [TL_DTYPE_Q5_1] = 9 + 100, [TL_DTYPE_Q2_K] = 10 + 100, [TL_DTYPE_Q3_K] = 12 + 100,
        [TL_DTYPE_Q4_K] = 15 + 100, [TL_DTYPE_Q5_K] = 17 + 100, [TL_DTYPE_Q6_K] = 18 + 100,
        [TL_DTYPE_BF16] = 32 + 100,
    }; /* +100 so that 0 marks "no llama_ftype" */
    return (unsigned)t < TL_DTYPE_COUNT && k_ftype[t] ? k_ftype[t] - 100 : -1;
}

typedef enum out_mode { MODE_AUTO = 0, MODE_FLOAT, MODE_QUANT } out_mode;

typedef struct ctensor {
    const tl_tensor *t;
    tl_conv_spec spec;
    int n_dims;          /* trailing 1s dropped, at least 1 */
    bool work;           /* converted into data (else written from t->data) */
    void *data;
    uint64_t nbytes;
    const char *note;
} ctensor;

static bool ends_with(const char *s, const char *suffix) {
    const size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* "blk.N.<stem>.weight" or ".bias" for stem attn_q / attn_k. */
static bool is_qk(const char *name, const char *stem) {
    if (strncmp(name, "blk.", 4) != 0) return false;
    const char *p = strchr(name + 4, '.');
    if (!p) return false;
    const size_t n = strlen(stem);
    return !strncmp(p + 1, stem, n) && (!strcmp(p + 1 + n, ".weight") || !strcmp(p + 1 + n, ".bias"));
}

typedef struct conv_ctx {
    const tl_convert_params *p;
    tl_source *s;
    const tl_arch *arch;
    tl_hparams hp;
    char arch_name[65];
    ctensor *ct;
    int64_t n;
} conv_ctx;

/* Decides every tensor's output type and transform before any work. */
static tl_status plan(conv_ctx *x, out_mode mode, tl_dtype float_type, tl_err *err) {
    tl_source *s = x->s;
    const bool permute = s->rope_neox && x->arch && x->arch->rope == TL_ROPE_NORM;
    if (s->rope_neox && !x->arch)
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "architecture '%s' is unknown: cannot tell its "
                          "GGUF rotary layout", x->arch_name);
    for (int64_t i = 0; i < x->n; i++) {
        ctensor *c = &x->ct[i];
        const tl_tensor *t = &s->tensors[i];
        c->t = t;
        c->n_dims = 1;
        for (int d = 1; d < TL_MAX_DIMS; d++)
            if (t->ne[d] > 1) c->n_dims = d + 1;
        tl_conv_spec *sp = &c->spec;
        *sp = (tl_conv_spec){ .src = t, .dst_type = t->type };
        if (c->n_dims == 1 || ends_with(t->name, "_norm.weight")) sp->dst_type = TL_DTYPE_F32;
        else if (mode == MODE_FLOAT) sp->dst_type = float_type;
        if (s->norm_plus_one && ends_with(t->name, "norm.weight")) {
            sp->plus_one = true;
            sp->dst_type = TL_DTYPE_F32;
            c->note = "norm stored as 1+w";
        }
        if (permute && (is_qk(t->name, "attn_q") || is_qk(t->name, "attn_k"))) {
            const int64_t heads = is_qk(t->name, "attn_q") ? x->hp.n_head : x->hp.n_head_kv;
            const int64_t rows = c->n_dims == 1 ? t->ne[0] : tl_tensor_nrows(t);
            sp->perm = TL_PERM_TO_PAIRS;
            sp->head_rows = heads > 0 ? rows / heads : 0;
            sp->rope_rows = x->hp.rope_dims;
            c->note = "rows permuted for interleaved RoPE";
        } else if (permute && strstr(t->name, "attn_qkv")) {
            return tl_err_set(err, TL_ERR_UNSUPPORTED, "tensor %s: fused QKV with rotate-half rows "
                              "cannot be permuted for %s", t->name, x->arch_name);
        }
        c->work = sp->dst_type != t->type || sp->plus_one || sp->perm != TL_PERM_NONE;
        tl_status rc = c->work ? tl_conv_check(sp, &c->nbytes, err) : TL_OK;
        if (!c->work) c->nbytes = t->nbytes;
        if (rc != TL_OK) return rc;
        if (c->work && tl_dtype_traits_of(t->type)->is_quant && sp->dst_type != t->type)
            TL_WARN("%s: dequantizing from %s: the output keeps the quantization error", t->name,
                    tl_dtype_name(t->type));
    }
    return TL_OK;
}

/* general.file_type from the type holding most weights of 2+ dimensions. */
static int dominant_ftype(const conv_ctx *x) {
    uint64_t per_type[TL_DTYPE_COUNT] = { 0 };
    for (int64_t i = 0; i < x->n; i++)
        if (x->ct[i].n_dims >= 2) per_type[x->ct[i].spec.dst_type] += (uint64_t)tl_tensor_nelem(x->ct[i].t);
    int best = TL_DTYPE_F32;
    for (int t = 0; t < TL_DTYPE_COUNT; t++)
        if (per_type[t] > per_type[best]) best = t;
    return ftype_of((tl_dtype)best);
}

static void report(const tl_convert_params *p, const char *stage, int index, int count,
                   const char *name, tl_dtype from, tl_dtype to, int n_dims, const int64_t ne[4],
                   uint64_t from_bytes, uint64_t to_bytes, const char *note) {
    if (!p->progress) return;
    tl_convert_progress pr = {
        .stage = stage, .index = index, .count = count, .name = name,
        .from_type = tl_dtype_name(from), .to_type = tl_dtype_name(to), .n_dims = n_dims,
        .ne = { ne[0], ne[1], ne[2], ne[3] }, .from_bytes = from_bytes, .to_bytes = to_bytes,
        .note = note,
    };
    p->progress(&pr, p->progress_user);
}

static tl_status write_gguf(conv_ctx *x, const char *out, bool keep_ftype, tl_err *err) {
    tl_pool *pool = NULL;
    tl_gguf_writer *w = NULL;
    float *scratch = NULL;
    int64_t max_row = 1;
    for (int64_t i = 0; i < x->n; i++)
        if (x->ct[i].work && x->ct[i].t->ne[0] > max_row) max_row = x->ct[i].t->ne[0];
    tl_status rc = tl_pool_init(tl_conv_threads(x->p->n_threads), &pool, err);
    if (rc != TL_OK) return rc;
    scratch = malloc(sizeof(float) * (size_t)tl_pool_n_threads(pool) * (size_t)max_row);
    if (!scratch) {
        rc = tl_err_set(err, TL_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = tl_gguf_writer_init(&w, err)) != TL_OK) goto done;
    tl_gguf_writer_copy_kv(w, x->s->meta);
    int64_t ft;
    const int dom = dominant_ftype(x);
    if (!(keep_ftype && tl_gguf_get_i64(x->s->meta, "general.file_type", &ft)) && dom >= 0)
        tl_gguf_writer_set_u32(w, "general.file_type", (uint32_t)dom);
    if (!tl_gguf_find(x->s->meta, "general.name")) tl_gguf_writer_set_str(w, "general.name", "model");
    for (int64_t i = 0; i < x->n; i++) {
        ctensor *c = &x->ct[i];
        if (c->work) {
            if (!(c->data = malloc(c->nbytes ? (size_t)c->nbytes : 1))) {
                rc = tl_err_set(err, TL_ERR_NOMEM, "tensor %s: out of memory (%llu bytes)",
                                c->t->name, (unsigned long long)c->nbytes);
                goto done;
            }
            tl_conv_run(&c->spec, c->data, pool, scratch);
        }
        tl_gguf_writer_add_tensor(w, c->t->name, c->spec.dst_type, c->n_dims, c->t->ne,
                                  c->work ? c->data : c->t->data, c->nbytes);
        report(x->p, "convert", (int)i, (int)x->n, c->t->name, c->t->type, c->spec.dst_type,
               c->n_dims, c->t->ne, c->t->nbytes, c->nbytes, c->note);
    }
    rc = tl_gguf_writer_write(w, out, err);
done:
    tl_gguf_writer_free(w);
    tl_pool_free(pool);
    free(scratch);
    return rc;
}

typedef struct qfwd {
    const tl_convert_params *p;
} qfwd;

static void forward_progress(const tl_quantize_progress *q, void *user) {
    const qfwd *f = user;
    tl_convert_progress pr = {
        .stage = "quantize", .index = q->index, .count = q->count, .name = q->name,
        .from_type = q->from_type, .to_type = q->to_type, .n_dims = q->n_dims,
        .ne = { q->ne[0], q->ne[1], q->ne[2], q->ne[3] }, .from_bytes = q->from_bytes,
        .to_bytes = q->to_bytes, .note = q->note,
    };
    f->p->progress(&pr, f->p->progress_user);
}

/* Which tl_quantize name `type` is (NULL when it is not one). */
static const char *quant_name(const char *type) {
    for (int i = 0; tl_quantize_type_name(i); i++)
        if (!strcasecmp(type, tl_quantize_type_name(i))) return tl_quantize_type_name(i);
    static const char *const k_alias[] = { "Q3_K", "Q4_K", "Q5_K" };
    for (size_t i = 0; i < sizeof k_alias / sizeof k_alias[0]; i++)
        if (!strcasecmp(type, k_alias[i])) return k_alias[i];
    return NULL;
}

static tl_status convert(const char *src, const char *out, const tl_convert_params *p, tl_err *err) {
    out_mode mode = MODE_AUTO;
    tl_dtype float_type = TL_DTYPE_F32;
    const char *qname = NULL;
    if (p->type && strcasecmp(p->type, "auto") != 0) {
        if (!strcasecmp(p->type, "f32")) mode = MODE_FLOAT, float_type = TL_DTYPE_F32;
        else if (!strcasecmp(p->type, "f16")) mode = MODE_FLOAT, float_type = TL_DTYPE_F16;
        else if (!strcasecmp(p->type, "bf16")) mode = MODE_FLOAT, float_type = TL_DTYPE_BF16;
        else if ((qname = quant_name(p->type))) mode = MODE_QUANT;
        else
            return tl_err_set(err, TL_ERR_INVALID_ARG, "unknown output type '%s' (auto, f32, f16, "
                              "bf16, or a quantization type: torchless quantize --help)", p->type);
    }
    if (p->n_threads < 0 || p->n_threads > 4096)
        return tl_err_set(err, TL_ERR_INVALID_ARG, "n_threads %d is out of range", p->n_threads);
    tl_status rc = tl_conv_check_out_dir(out, err);
    if (rc != TL_OK) return rc;

    conv_ctx x = { .p = p };
    char *tmp = NULL;
    if ((rc = tl_source_open(src, &x.s, err)) != TL_OK) return rc;
    tl_gguf_str an;
    if (!tl_gguf_get_str(x.s->meta, "general.architecture", &an) || an.len == 0 ||
        an.len >= sizeof x.arch_name) {
        rc = tl_err_set(err, TL_ERR_MISSING, "%s: general.architecture is missing", src);
        goto done;
    }
    memcpy(x.arch_name, an.ptr, an.len);
    x.arch_name[an.len] = 0;
    x.arch = tl_arch_find(x.arch_name);
    if (x.arch && x.s->rope_neox) {
        const tl_tensor *emb = tl_source_find(x.s, "token_embd.weight");
        x.hp.n_vocab = emb ? (int)emb->ne[1] : 0;
        if ((rc = tl_arch_hparams(x.arch, x.s->meta, &x.hp, err)) != TL_OK) goto done;
    }
    x.n = x.s->n_tensors;
    if (!(x.ct = calloc(x.n ? (size_t)x.n : 1, sizeof *x.ct))) {
        rc = tl_err_set(err, TL_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = plan(&x, mode, float_type, err)) != TL_OK) goto done;
    if (mode != MODE_QUANT) {
        rc = write_gguf(&x, out, mode == MODE_AUTO && !x.s->rope_neox && !x.s->norm_plus_one, err);
        goto done;
    }
    /* lossless GGUF first, then llama-quantize's choices over it */
    const size_t n = strlen(out);
    if (!(tmp = malloc(n + 32))) {
        rc = tl_err_set(err, TL_ERR_NOMEM, "out of memory");
        goto done;
    }
    snprintf(tmp, n + 32, "%s.convert-%ld.tmp", out, (long)getpid());
    if ((rc = write_gguf(&x, tmp, false, err)) != TL_OK) goto done;
    /* the source's mappings are not needed by the second pass */
    for (int64_t i = 0; i < x.n; i++) {
        free(x.ct[i].data);
        x.ct[i].data = NULL;
    }
    tl_source_free(x.s);
    x.s = NULL;
    qfwd fwd = { .p = p };
    tl_quantize_params qp = tl_quantize_default_params();
    qp.type = qname;
    qp.pure = p->pure;
    qp.n_threads = p->n_threads;
    qp.progress = p->progress ? forward_progress : NULL;
    qp.progress_user = &fwd;
    if ((rc = tl_quantize(tmp, out, &qp)) != TL_OK) tl_err_set(err, rc, "%s", tl_last_error());
done:
    if (tmp) unlink(tmp);
    free(tmp);
    for (int64_t i = 0; x.ct && i < x.n; i++) free(x.ct[i].data);
    free(x.ct);
    tl_source_free(x.s);
    return rc;
}

/* ---- public API ----------------------------------------------------------- */

tl_convert_params tl_convert_default_params(void) {
    return (tl_convert_params){ .type = NULL, .n_threads = 0 };
}

tl_status tl_convert(const char *src, const char *out, const tl_convert_params *params) {
    const tl_convert_params p = params ? *params : tl_convert_default_params();
    tl_err err = { 0 };
    tl_status rc = !src || !out
                       ? tl_err_set(&err, TL_ERR_INVALID_ARG, "tl_convert: src and out are required")
                       : convert(src, out, &p, &err);
    tl_err_set_last(rc == TL_OK ? NULL : &err);
    return rc;
}
