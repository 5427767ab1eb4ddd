/* cpu_attn.c — causal attention over the KV cache, flash style.
 *
 * For each (token, head) pair: one pass over the visible keys in tiles of
 * KEY_TILE with an online softmax: the tile's scores are computed first
 * (q . K[j]), the accumulator is rescaled once per tile when the running
 * max grows, then V rows are accumulated with their softmax weights. No
 * (n_tok, n_ctx) score matrix is materialised. Pairs are claimed from an
 * atomic counter so both cores stay busy whatever n_tok and n_head are.
 *
 * The cache's element type only changes how a tile of scores is computed
 * and how a tile of V rows is accumulated (k_fmt below):
 *   F32   q . K[j] by vec_dot F32, V rows added in F32;
 *   F16   dot_f32_f16 and axpy_f16 on the half-precision rows;
 *   Q8_0  rows are blocks of 32 along head_dim (one scale each); q is
 *         quantized to Q8_0 once per (token, head), so scores are integer
 *         dot products (vec_dot Q8_0, as the reference engine converts q to
 *         K's vec_dot type); V rows by axpy_q8_0, which dequantizes on
 *         the fly with the block scale folded into the softmax weight. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "core/fp16.h"

enum { KEY_TILE = 64 };

typedef struct attn_job attn_job;

/* One cache element type. qc is the query in q_type (the F32 row itself
 * when q_type is F32); k and v point at the head's slice of the tile's first
 * row, later rows are k_row / v_row bytes apart. */
typedef struct kv_fmt {
    tl_dtype q_type;
    // q (hd,) . K[i] (hd,) for i < nt -> sc (nt,), unscaled
    void (*scores)(const attn_job *jb, const void *qc, const uint8_t *k, int nt, float *sc);
    // acc (hdv,) += w[i] * V[i] (hdv,) for i < nt
    void (*accum)(const attn_job *jb, float *acc, const float *w, const uint8_t *v, int nt);
    // x (n,) f32 -> dst (n,) cache row (all kv heads of one position)
    void (*store)(const tl_kern *kern, const float *x, void *dst, int64_t n);
} kv_fmt;

struct attn_job {
    const tl_kern *kern;
    const tl_attn_params *p;
    const kv_fmt *fmt;
    const float *q;
    int q_stride;
    const tl_kv_layer *kv;
    size_t k_row, v_row;   /* bytes per cache row (all kv heads) */
    size_t k_head, v_head; /* bytes per head within a row */
    size_t qc_bytes;       /* bytes of a query converted to fmt->q_type */
    float *out;
    uint8_t *scratch;      /* per thread: thread_bytes (see tl_cpu_attention) */
    size_t thread_bytes;
    atomic_int next;
};

static void scores_f32(const attn_job *jb, const void *qc, const uint8_t *k, int nt, float *sc) {
    const int hd = jb->p->head_dim;
    for (int i = 0; i < nt; i++) jb->kern->vec_dot[TL_DTYPE_F32](hd, &sc[i], k + i * jb->k_row, qc);
}

static void accum_f32(const attn_job *jb, float *acc, const float *w, const uint8_t *v, int nt) {
    const int hdv = jb->p->head_dim_v;
    for (int i = 0; i < nt; i++) {
        const float *vr = (const float *)(v + i * jb->v_row);
        for (int d = 0; d < hdv; d++) acc[d] += w[i] * vr[d];
    }
}

static void scores_f16(const attn_job *jb, const void *qc, const uint8_t *k, int nt, float *sc) {
    const int hd = jb->p->head_dim;
    for (int i = 0; i < nt; i++)
        sc[i] = jb->kern->dot_f32_f16(hd, qc, (const uint16_t *)(k + i * jb->k_row));
}

static void accum_f16(const attn_job *jb, float *acc, const float *w, const uint8_t *v, int nt) {
    const int hdv = jb->p->head_dim_v;
    for (int i = 0; i < nt; i++)
        jb->kern->axpy_f16(hdv, acc, w[i], (const uint16_t *)(v + i * jb->v_row));
}

static void scores_q8_0(const attn_job *jb, const void *qc, const uint8_t *k, int nt, float *sc) {
    const int hd = jb->p->head_dim;
    for (int i = 0; i < nt; i++) jb->kern->vec_dot[TL_DTYPE_Q8_0](hd, &sc[i], k + i * jb->k_row, qc);
}

/* V[i] = d_b * qs per block b: axpy_q8_0 folds the block scale into the
 * weight, so no dequantized copy of the row is made */
static void accum_q8_0(const attn_job *jb, float *acc, const float *w, const uint8_t *v, int nt) {
    const int hdv = jb->p->head_dim_v;
    for (int i = 0; i < nt; i++) jb->kern->axpy_q8_0(hdv, acc, w[i], v + i * jb->v_row);
}

static void store_f32(const tl_kern *kern, const float *x, void *dst, int64_t n) {
    (void)kern;
    memcpy(dst, x, sizeof(float) * (size_t)n);
}

static void store_f16(const tl_kern *kern, const float *x, void *dst, int64_t n) {
    (void)kern;
    for (int64_t i = 0; i < n; i++) ((tl_f16 *)dst)[i] = tl_f32_to_f16(x[i]);
}

/* head_dim % 32 == 0 (checked at context creation), so a row's blocks
 * never straddle two heads; the activation quantizer, as the reference
 * engine's cache writes */
static void store_q8_0(const tl_kern *kern, const float *x, void *dst, int64_t n) {
    kern->from_float[TL_DTYPE_Q8_0](x, dst, n);
}

static const kv_fmt k_fmt[TL_DTYPE_COUNT] = {
    [TL_DTYPE_F32] = { TL_DTYPE_F32, scores_f32, accum_f32, store_f32 },
    [TL_DTYPE_F16] = { TL_DTYPE_F32, scores_f16, accum_f16, store_f16 },
    [TL_DTYPE_Q8_0] = { TL_DTYPE_Q8_0, scores_q8_0, accum_q8_0, store_q8_0 },
};

bool tl_cpu_kv_supports(const tl_kern *kern, tl_dtype type) {
    if ((unsigned)type >= TL_DTYPE_COUNT || !k_fmt[type].scores) return false;
    /* Q8_0 rows are written by from_float and read by vec_dot */
    return type != TL_DTYPE_Q8_0 || (kern->from_float[type] && kern->vec_dot[type]);
}

// q (hd,) . K[j] (hd,) over visible j -> softmax-weighted sum of V[j] (hdv,) -> out
static void attn_one(const attn_job *jb, int t, int h, float *acc, float *sc, void *qc) {
    const tl_attn_params *p = jb->p;
    const tl_kern *kn = jb->kern;
    const kv_fmt *f = jb->fmt;
    const int hd = p->head_dim, hdv = p->head_dim_v;
    const int kvh = h / (p->n_head / p->n_head_kv);
    const float *q = jb->q + (size_t)t * jb->q_stride + (size_t)h * hd;
    const int pos = p->pos0 + t;
    const int j0 = p->window > 0 && pos - p->window + 1 > 0 ? pos - p->window + 1 : 0;
    const uint8_t *kb = (const uint8_t *)jb->kv->k + kvh * jb->k_head;
    const uint8_t *vb = (const uint8_t *)jb->kv->v + kvh * jb->v_head;
    const void *qv = q;
    if (f->q_type != TL_DTYPE_F32) {
        kn->from_float[f->q_type](q, qc, hd);
        qv = qc;
    }

    float m = -INFINITY, s = 0;
    memset(acc, 0, sizeof(float) * hdv);
    for (int t0 = j0; t0 <= pos; t0 += KEY_TILE) {
        const int nt = pos + 1 - t0 < KEY_TILE ? pos + 1 - t0 : KEY_TILE;
        f->scores(jb, qv, kb + (size_t)t0 * jb->k_row, nt, sc);
        float tmax = -INFINITY;
        for (int i = 0; i < nt; i++) {
            float x = sc[i] * p->scale;
            if (p->softcap > 0) x = p->softcap * tanhf(x / p->softcap);
            sc[i] = x;
            tmax = x > tmax ? x : tmax;
        }
        if (tmax > m) {
            /* the running max grows: earlier weights shrink by e^(m - tmax)
             * (0 on the first tile, where acc and s are still 0) */
            if (s > 0) {
                const float r = expf(m - tmax);
                kn->scale(hdv, acc, r);
                s *= r;
            }
            m = tmax;
        }
        for (int i = 0; i < nt; i++) {
            sc[i] = expf(sc[i] - m);
            s += sc[i];
        }
        f->accum(jb, acc, sc, vb + (size_t)t0 * jb->v_row, nt);
    }
    float *o = jb->out + (size_t)t * p->n_head * hdv + (size_t)h * hdv;
    const float inv = s > 0 ? 1.0f / s : 0.0f;
    for (int i = 0; i < hdv; i++) o[i] = acc[i] * inv;
}

static void attn_work(void *arg, int ith, int nth) {
    (void)nth;
    attn_job *jb = arg;
    const int total = jb->p->n_tok * jb->p->n_head;
    float *acc = (float *)(jb->scratch + (size_t)ith * jb->thread_bytes);
    float *sc = acc + jb->p->head_dim_v;
    void *qc = sc + KEY_TILE;
    for (;;) {
        int i = atomic_fetch_add_explicit(&jb->next, 1, memory_order_relaxed);
        if (i >= total) break;
        attn_one(jb, i / jb->p->n_head, i % jb->p->n_head, acc, sc, qc);
    }
}

void tl_cpu_attention(tl_backend *b, const tl_attn_params *p, const float *q, int q_stride,
                      const tl_kv_layer *kv, float *out) {
    tl_cpu *c = tl_cpu_of(b);
    const tl_dtype kt = p->kv_type;
    attn_job jb = { .kern = c->kern, .p = p, .fmt = &k_fmt[kt], .q = q, .q_stride = q_stride,
                    .kv = kv, .out = out };
    jb.k_head = tl_dtype_row_size(kt, p->head_dim);
    jb.v_head = tl_dtype_row_size(kt, p->head_dim_v);
    jb.k_row = jb.k_head * p->n_head_kv;
    jb.v_row = jb.v_head * p->n_head_kv;
    jb.qc_bytes = tl_dtype_row_size(jb.fmt->q_type, p->head_dim);
    /* accumulators, tile scores, converted query; 64-byte strides keep
     * the threads' buffers on separate cache lines */
    jb.thread_bytes = (sizeof(float) * (size_t)(p->head_dim_v + KEY_TILE) + jb.qc_bytes + 63) & ~(size_t)63;
    jb.scratch = tl_cpu_scratch(c, jb.thread_bytes * c->n_threads);
    if (!jb.scratch) return; /* reserve() sized the scratch far above this */
    atomic_init(&jb.next, 0);
    tl_pool_run(c->pool, attn_work, &jb);
}

void tl_cpu_kv_store(tl_backend *b, const tl_attn_params *p, tl_kv_layer *kv, const float *k,
                     int k_stride, const float *v, int v_stride) {
    const tl_kern *kn = tl_cpu_of(b)->kern;
    const kv_fmt *f = &k_fmt[p->kv_type];
    const int64_t k_n = (int64_t)p->n_head_kv * p->head_dim, v_n = (int64_t)p->n_head_kv * p->head_dim_v;
    const size_t k_row = tl_dtype_row_size(p->kv_type, k_n), v_row = tl_dtype_row_size(p->kv_type, v_n);
    for (int t = 0; t < p->n_tok; t++) {
        const size_t row = (size_t)(p->pos0 + t);
        f->store(kn, k + (size_t)t * k_stride, (uint8_t *)kv->k + row * k_row, k_n);
        f->store(kn, v + (size_t)t * v_stride, (uint8_t *)kv->v + row * v_row, v_n);
    }
}
