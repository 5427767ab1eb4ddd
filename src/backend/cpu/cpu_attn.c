/* cpu_attn.c — causal attention over the KV cache, flash style.
 *
 * For each (token, head) pair: one pass over the visible keys with an online
 * softmax (running max m, running sum s, rescaled accumulator), so no
 * (n_tok, n_ctx) score matrix is materialised. Pairs are claimed from an
 * atomic counter so both cores stay busy whatever n_tok and n_head are. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "core/fp16.h"

typedef struct attn_job {
    const tl_attn_params *p;
    const float *q;
    int q_stride;
    const tl_kv_layer *kv;
    float *out;
    float *acc;        /* per-thread (head_dim_v) accumulators */
    atomic_int next;
} attn_job;

static inline float dot_f32(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static inline float dot_f16(const float *a, const tl_f16 *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * tl_f16_to_f32(b[i]);
    return s;
}

// q (hd,) . K[j] (hd,) over j in [j0, j1] -> softmax-weighted sum of V[j] (hdv,) -> out
static void attn_one(const attn_job *jb, int t, int h, float *acc) {
    const tl_attn_params *p = jb->p;
    const int hd = p->head_dim, hdv = p->head_dim_v;
    const int kvh = h / (p->n_head / p->n_head_kv);
    const size_t k_row = (size_t)p->n_head_kv * hd, v_row = (size_t)p->n_head_kv * hdv;
    const float *q = jb->q + (size_t)t * jb->q_stride + (size_t)h * hd;
    const int pos = p->pos0 + t;
    const int j0 = p->window > 0 && pos - p->window + 1 > 0 ? pos - p->window + 1 : 0;
    const bool f16 = p->kv_type == TL_DTYPE_F16;

    float m = -INFINITY, s = 0;
    memset(acc, 0, sizeof(float) * hdv);
    for (int j = j0; j <= pos; j++) {
        float sc = f16 ? dot_f16(q, (const tl_f16 *)jb->kv->k + j * k_row + (size_t)kvh * hd, hd)
                       : dot_f32(q, (const float *)jb->kv->k + j * k_row + (size_t)kvh * hd, hd);
        sc *= p->scale;
        if (p->softcap > 0) sc = p->softcap * tanhf(sc / p->softcap);
        float w;
        if (sc > m) {
            float r = expf(m - sc); /* 0 on the first key */
            for (int i = 0; i < hdv; i++) acc[i] *= r;
            s *= r;
            m = sc;
            w = 1.0f;
        } else {
            w = expf(sc - m);
        }
        s += w;
        if (f16) {
            const tl_f16 *v = (const tl_f16 *)jb->kv->v + j * v_row + (size_t)kvh * hdv;
            for (int i = 0; i < hdv; i++) acc[i] += w * tl_f16_to_f32(v[i]);
        } else {
            const float *v = (const float *)jb->kv->v + j * v_row + (size_t)kvh * hdv;
            for (int i = 0; i < hdv; i++) acc[i] += w * v[i];
        }
    }
    float *o = jb->out + (size_t)t * p->n_head * hdv + (size_t)h * hdv;
    const float inv = s > 0 ? 1.0f / s : 0.0f;
    for (int i = 0; i < hdv; i++) o[i] = acc[i] * inv;
}

static void attn_work(void *arg, int ith, int nth) {
    (void)nth;
    attn_job *jb = arg;
    const int total = jb->p->n_tok * jb->p->n_head;
    float *acc = jb->acc + (size_t)ith * jb->p->head_dim_v;
    for (;;) {
        int i = atomic_fetch_add_explicit(&jb->next, 1, memory_order_relaxed);
        if (i >= total) break;
        attn_one(jb, i / jb->p->n_head, i % jb->p->n_head, acc);
    }
}

void tl_cpu_attention(tl_backend *b, const tl_attn_params *p, const float *q, int q_stride,
                      const tl_kv_layer *kv, float *out) {
    tl_cpu *c = tl_cpu_of(b);
    attn_job jb = { .p = p, .q = q, .q_stride = q_stride, .kv = kv, .out = out };
    jb.acc = tl_cpu_scratch(c, sizeof(float) * (size_t)p->head_dim_v * c->n_threads);
    atomic_init(&jb.next, 0);
    tl_pool_run(c->pool, attn_work, &jb);
}

void tl_cpu_kv_store(tl_backend *b, const tl_attn_params *p, tl_kv_layer *kv, const float *k,
                     int k_stride, const float *v, int v_stride) {
    (void)b;
    const size_t k_row = (size_t)p->n_head_kv * p->head_dim, v_row = (size_t)p->n_head_kv * p->head_dim_v;
    for (int t = 0; t < p->n_tok; t++) {
        const size_t row = (size_t)(p->pos0 + t);
        const float *ks = k + (size_t)t * k_stride, *vs = v + (size_t)t * v_stride;
        if (p->kv_type == TL_DTYPE_F16) {
            tl_f16 *kd = (tl_f16 *)kv->k + row * k_row, *vd = (tl_f16 *)kv->v + row * v_row;
            for (size_t i = 0; i < k_row; i++) kd[i] = tl_f32_to_f16(ks[i]);
            for (size_t i = 0; i < v_row; i++) vd[i] = tl_f32_to_f16(vs[i]);
        } else {
            memcpy((float *)kv->k + row * k_row, ks, k_row * sizeof(float));
            memcpy((float *)kv->v + row * v_row, vs, v_row * sizeof(float));
        }
    }
}
