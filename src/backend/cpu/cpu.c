/* cpu.c — the CPU backend: buffers, element-wise ops, norms, RoPE, and the
 * ops table. Heavy ops live in cpu_matmul.c and cpu_attn.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/cpu.h"
#include "core/vmath.h"

void *tl_cpu_scratch(tl_cpu *c, size_t n) {
    if (n <= c->scratch_cap) return c->scratch;
    size_t cap = (n + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, cap);
    if (!p) return NULL;
    free(c->scratch);
    c->scratch = p;
    c->scratch_cap = cap;
    return p;
}

static bool cpu_supports(const tl_backend *b, tl_op op, tl_dtype type) {
    const tl_cpu *c = b->impl;
    if (op == TL_OP_MATMUL || op == TL_OP_GET_ROWS) {
        const tl_dtype_traits *tr = tl_dtype_traits_of(type);
        if (!tr) return false;
        if (op == TL_OP_GET_ROWS) return c->kern->to_float[type] || type == TL_DTYPE_F32;
        return c->kern->vec_dot[type] &&
               (tr->vec_dot_type == TL_DTYPE_F32 || c->kern->from_float[tr->vec_dot_type]);
    }
    if (op == TL_OP_ATTENTION) return tl_cpu_kv_supports(c->kern, type); /* type: the cache's */
    return true;
}

static void *cpu_alloc(tl_backend *b, size_t bytes) {
    (void)b;
    size_t cap = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, cap ? cap : 64);
    if (p) memset(p, 0, cap);
    return p;
}

static void cpu_dealloc(tl_backend *b, void *p) { (void)b; free(p); }

static tl_status cpu_reserve(tl_backend *b, int n_batch, int max_dim, tl_err *err) {
    tl_cpu *c = tl_cpu_of(b);
    /* converted activations are never larger than F32 ones, plus block slack
     * (with act_prep entries, and a buffer per distinct act_prep of a
     * matmul_multi, at most 3.9 bytes an element and 3 x 192 bytes a row);
     * per thread, attention's buffers and decode's key splits (cpu_attn.c:
     * under 40 KiB and 132 KiB a thread for head sizes up to 256) */
    size_t need = (size_t)n_batch * ((size_t)max_dim * sizeof(float) + 1024) +
                  (size_t)c->n_threads * 262144;
    if (!tl_cpu_scratch(c, need))
        return tl_err_set(err, TL_ERR_NOMEM, "cannot reserve %zu bytes of CPU scratch", need);
    return TL_OK;
}

static void cpu_copy(tl_backend *b, void *dst, const void *src, size_t bytes) {
    (void)b;
    memcpy(dst, src, bytes);
}

// table (rows, dim) gathered at ids (n,) -> out (n, dim)
static void cpu_get_rows(tl_backend *b, const tl_tensor *t, const int32_t *ids, int n, float *out) {
    tl_cpu *c = tl_cpu_of(b);
    const int64_t dim = t->ne[0];
    const size_t row = tl_tensor_row_bytes(t);
    for (int i = 0; i < n; i++) {
        const uint8_t *src = (const uint8_t *)t->data + (size_t)ids[i] * row;
        if (t->type == TL_DTYPE_F32) memcpy(out + (size_t)i * dim, src, row);
        else c->kern->to_float[t->type](src, out + (size_t)i * dim, dim);
    }
}

/* Element counts below which an element-wise job (norm, rope, glu, unary)
 * runs on the calling thread: a pool dispatch (wake, barrier, done) costs
 * about what a thread does to 8K floats in these kernels. */
enum { SMALL_JOB = 8192 };

/* y = norm(x) * w [+ bias] by rows; with d, x += d first (add_norm), row by
 * row, so each row is read once while it is in cache */
typedef struct norm_job {
    tl_norm_row_fn row;
    bool layer;
    float *x;        /* written only with d */
    const float *d, *w, *bias;
    float eps;
    int n, dim;
    float *y;
} norm_job;

// x (n,) += d (n,)
static void add_row(int n, float *restrict x, const float *restrict d) {
    for (int i = 0; i < n; i++) x[i] += d[i];
}

static void norm_work(void *arg, int ith, int nth) {
    const norm_job *j = arg;
    for (int r = ith; r < j->n; r += nth) {
        float *x = j->x + (size_t)r * j->dim;
        if (j->d) add_row(j->dim, x, j->d + (size_t)r * j->dim);
        j->row(j->dim, j->y + (size_t)r * j->dim, x, j->w, j->bias, j->eps, j->layer);
    }
}

/* norm (d NULL) and add_norm share the job: x is written only with d */
static void cpu_add_norm(tl_backend *b, tl_norm_kind kind, float *x, const float *d,
                         const tl_tensor *w, const tl_tensor *bias, float eps, int n, int dim,
                         float *y) {
    norm_job j = { tl_cpu_of(b)->kern->norm_row, kind == TL_NORM_LAYER, x, d,
                   w ? w->data : NULL, bias ? bias->data : NULL, eps, n, dim, y };
    /* a decode token's row or two: less work than waking the workers */
    if ((size_t)n * (size_t)dim <= SMALL_JOB) norm_work(&j, 0, 1);
    else tl_pool_run(tl_cpu_of(b)->pool, norm_work, &j);
}

static void cpu_norm(tl_backend *b, tl_norm_kind kind, const float *x, const tl_tensor *w,
                     const tl_tensor *bias, float eps, int n, int dim, float *y) {
    cpu_add_norm(b, kind, (float *)x, NULL, w, bias, eps, n, dim, y);
}

typedef struct rope_job {
    const tl_rope_params *p;
    float *x;
    int n, stride;
    const int32_t *pos;
    float corr_lo, corr_hi; /* YaRN ramp over pair indices */
    float mscale;
    float *cs;              /* per thread: rope_dims floats, cos then sin */
    tl_rope_fn rotate;      /* the kernel table's rope */
} rope_job;

/* The pair index whose wavelength makes n_rot turns over n_ctx_orig
 * positions (YaRN's correction dimension). */
static float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base) {
    return (float)n_dims * logf((float)n_ctx_orig / (n_rot * 2.0f * (float)M_PI)) / (2.0f * logf(base));
}

// x (n, stride): rotate the first rope_dims of each head by pos * theta_i
static void rope_work(void *arg, int ith, int nth) {
    const rope_job *j = arg;
    const tl_rope_params *p = j->p;
    const int half = p->rope_dims / 2;
    const float theta_scale = powf(p->theta, -2.0f / (float)p->rope_dims);
    float *cs = j->cs + (size_t)ith * 2 * half, *sn = cs + half;
    /* the angles depend on the position only: cos/sin once per token, then
     * every head; with one token (decode) the heads are split instead */
    const bool split_heads = j->n < nth;
    const int h0 = split_heads ? p->n_head * ith / nth : 0;
    const int h1 = split_heads ? p->n_head * (ith + 1) / nth : p->n_head;
    for (int t = split_heads ? 0 : ith; t < j->n; t += split_heads ? 1 : nth) {
        /* theta accumulates by multiplication and is scaled after the
         * factor division, in the reference engine's order, so positions
         * far into the context round the same way */
        float theta = (float)j->pos[t];
        for (int i = 0; i < half; i++) {
            float extrap = p->freq_factors ? theta / p->freq_factors[i] : theta;
            float th = p->freq_scale * extrap;
            if (p->ext_factor != 0.0f) {
                float y = ((float)i - j->corr_lo) / fmaxf(0.001f, j->corr_hi - j->corr_lo);
                float mix = (1.0f - fminf(1.0f, fmaxf(0.0f, y))) * p->ext_factor;
                th = th * (1.0f - mix) + extrap * mix;
            }
            cs[i] = cosf(th) * j->mscale;
            sn[i] = sinf(th) * j->mscale;
            theta *= theta_scale;
        }
        if (h1 > h0)
            j->rotate(h1 - h0, p->head_dim, p->rope_dims, p->kind == TL_ROPE_NEOX,
                      j->x + (size_t)t * j->stride + (size_t)h0 * p->head_dim, cs, sn);
    }
}

static void cpu_rope(tl_backend *b, const tl_rope_params *p, float *x, int n, int stride,
                     const int32_t *pos) {
    tl_cpu *c = tl_cpu_of(b);
    rope_job j = { p, x, n, stride, pos, 0, 0, p->attn_factor, NULL, c->kern->rope };
    j.cs = tl_cpu_scratch(c, sizeof(float) * (size_t)(p->rope_dims / 2) * 2 * (size_t)c->n_threads);
    if (!j.cs) return; /* reserve() sized the scratch far above this: cannot happen */
    if (p->ext_factor != 0.0f) {
        j.corr_lo = fmaxf(0.0f, floorf(yarn_corr_dim(p->rope_dims, p->n_ctx_orig, p->beta_fast, p->theta)));
        j.corr_hi = fminf((float)(p->rope_dims - 1),
                          ceilf(yarn_corr_dim(p->rope_dims, p->n_ctx_orig, p->beta_slow, p->theta)));
        j.mscale *= 1.0f + 0.1f * logf(1.0f / p->freq_scale);
    }
    if ((size_t)n * (size_t)p->n_head * (size_t)p->head_dim <= SMALL_JOB) rope_work(&j, 0, 1);
    else tl_pool_run(tl_cpu_of(b)->pool, rope_work, &j);
}

/* SiLU as the reference engine's vector silu (core/vmath.h), not libm:
 * its exp differs in the last bit often enough to flip Q8 rounding ties. */
static inline float silu(float x) { return tl_vsilu(x); }

/* GELU (tanh form, Phi-2, Gemma) is the kernels' gelu_mul: the reference
 * engine's f16 table (core/gelu.h), which puts logits 20-80x closer to its
 * output than the float formula. */
typedef struct glu_job {
    tl_act_kind act;
    tl_silu_mul_fn silu_mul;
    tl_gelu_mul_fn gelu_mul;
    const float *gate, *up;
    int stride, n, d;
    float *out;
} glu_job;

static void glu_work(void *arg, int ith, int nth) {
    const glu_job *j = arg;
    /* fewer rows than threads (decode): split each row in column ranges,
     * multiples of 8 but the last, so silu_mul's n % 8 tail rule still
     * falls on the row's own tail */
    const bool split = j->n < nth;
    const int per = split ? ((j->d + nth - 1) / nth + 7) & ~7 : j->d;
    const int c0 = split ? (ith * per < j->d ? ith * per : j->d) : 0;
    const int c1 = split ? (c0 + per < j->d ? c0 + per : j->d) : j->d;
    for (int t = split ? 0 : ith; t < j->n; t += split ? 1 : nth) {
        const float *g = j->gate + (size_t)t * j->stride, *u = j->up + (size_t)t * j->stride;
        float *o = j->out + (size_t)t * j->d;
        if (j->act == TL_ACT_SILU)
            j->silu_mul(c1 - c0, o + c0, g + c0, u + c0);
        else
            j->gelu_mul(c1 - c0, o + c0, g + c0, u + c0);
    }
}

static void cpu_glu(tl_backend *b, tl_act_kind act, const float *gate, const float *up, int stride,
                    int n, int d, float *out) {
    const tl_kern *k = tl_cpu_of(b)->kern;
    glu_job j = { act, k->silu_mul, k->gelu_mul, gate, up, stride, n, d, out };
    if ((size_t)n * (size_t)d <= SMALL_JOB) glu_work(&j, 0, 1);
    else tl_pool_run(tl_cpu_of(b)->pool, glu_work, &j);
}

typedef struct unary_job {
    tl_unary op;
    float arg;
    float *x;
    size_t count;
    const tl_kern *kern;
} unary_job;

/* Element-wise, so any split computes the same bytes; the per-thread
 * ranges start at multiples of 8 all the same, so a vector kernel's tail
 * only ever falls at the end of x. */
static void unary_work(void *arg, int ith, int nth) {
    const unary_job *j = arg;
    const size_t per = ((j->count + (size_t)nth - 1) / (size_t)nth + 7) & ~(size_t)7;
    const size_t i0 = (size_t)ith * per < j->count ? (size_t)ith * per : j->count;
    const size_t i1 = i0 + per < j->count ? i0 + per : j->count;
    float *x = j->x;
    /* kernels take int counts: a range in int-sized pieces, multiples of 8 */
    for (size_t c0 = i0; c0 < i1; c0 += (size_t)1 << 30) {
        const size_t c1 = i1 - c0 > ((size_t)1 << 30) ? c0 + ((size_t)1 << 30) : i1;
        const int n = (int)(c1 - c0);
        switch (j->op) {
        case TL_UNARY_SILU:
            for (size_t i = c0; i < c1; i++) x[i] = silu(x[i]);
            break;
        case TL_UNARY_GELU_TANH: j->kern->gelu_mul(n, x + c0, x + c0, NULL); break;
        case TL_UNARY_SCALE: j->kern->scale(n, x + c0, j->arg); break;
        case TL_UNARY_SOFTCAP:
            for (size_t i = c0; i < c1; i++) x[i] = j->arg * tanhf(x[i] / j->arg);
            break;
        }
    }
}

// x (count,) -> op(x) (count,), in place
static void cpu_unary(tl_backend *b, tl_unary op, float arg, float *x, size_t count) {
    tl_cpu *c = tl_cpu_of(b);
    unary_job j = { op, arg, x, count, c->kern };
    if (count <= SMALL_JOB) unary_work(&j, 0, 1);
    else tl_pool_run(c->pool, unary_work, &j);
}

typedef struct add_job {
    float *y;
    const float *x;
    size_t count;
} add_job;

static void add_work(void *arg, int ith, int nth) {
    const add_job *j = arg;
    float *restrict y = j->y;
    const float *restrict x = j->x;
    for (size_t i = j->count * (size_t)ith / (size_t)nth; i < j->count * (size_t)(ith + 1) / (size_t)nth; i++)
        y[i] += x[i];
}

static void cpu_add(tl_backend *b, float *y, const float *x, size_t count) {
    const add_job j = { y, x, count };
    if (count <= SMALL_JOB) add_work((void *)&j, 0, 1);
    else tl_pool_run(tl_cpu_of(b)->pool, add_work, (void *)&j);
}

static void cpu_free(tl_backend *b) {
    if (!b) return;
    tl_cpu *c = b->impl;
    if (c) {
        tl_pool_free(c->pool);
        tl_cpu_packed_free(c);
        free(c->scratch);
        free(c);
    }
    free(b);
}

static size_t cpu_weight_memory(const tl_backend *b) { return ((const tl_cpu *)b->impl)->packed_bytes; }

static const tl_backend_ops k_cpu_ops = {
    .name = "cpu",
    .free = cpu_free,
    .supports = cpu_supports,
    .alloc = cpu_alloc,
    .dealloc = cpu_dealloc,
    .reserve = cpu_reserve,
    .prepare = tl_cpu_prepare,
    .weight_memory = cpu_weight_memory,
    .upload = cpu_copy,
    .download = cpu_copy,
    .get_rows = cpu_get_rows,
    .matmul = tl_cpu_matmul,
    .matmul_multi = tl_cpu_matmul_multi,
    .norm = cpu_norm,
    .add_norm = cpu_add_norm,
    .rope = cpu_rope,
    .kv_store = tl_cpu_kv_store,
    .attention = tl_cpu_attention,
    .glu = cpu_glu,
    .unary = cpu_unary,
    .add = cpu_add,
};

tl_status tl_backend_cpu_init(int n_threads, tl_backend **out, tl_err *err) {
    *out = NULL;
    tl_backend *b = calloc(1, sizeof *b);
    tl_cpu *c = calloc(1, sizeof *c);
    if (!b || !c) {
        free(b);
        free(c);
        return tl_err_set(err, TL_ERR_NOMEM, "out of memory creating the CPU backend");
    }
    b->ops = &k_cpu_ops;
    b->impl = c;
    c->kern = tl_kern_get();
    const char *rp = getenv("TL_REPACK");
    c->no_repack = rp && strcmp(rp, "0") == 0;
    if (n_threads <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = nc > 0 ? (int)nc : 1;
    }
    tl_status st = tl_pool_init(n_threads, &c->pool, err);
    if (st != TL_OK) {
        cpu_free(b);
        return st;
    }
    c->n_threads = tl_pool_n_threads(c->pool);
    *out = b;
    return TL_OK;
}

void tl_backend_free(tl_backend *b) {
    if (b) b->ops->free(b);
}
