/* cpu_attn.c — causal attention over the KV cache, flash style.
 *
 * For each (token, head) pair: one pass over the visible keys in tiles of
 * KEY_TILE with an online softmax: the tile's scores are computed first
 * (q . K[j] by the kernel table's dot_f32_f16 on the F16 cache), the
 * accumulator is rescaled once per tile when the running max grows, then
 * V rows are accumulated with their softmax weights (axpy_f16). No
 * (n_tok, n_ctx) score matrix is materialised. Pairs are claimed from an
 * atomic counter so both cores stay busy whatever n_tok and n_head are. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "core/fp16.h"

enum { KEY_TILE = 64 };

typedef struct attn_job {
    const tl_kern *kern;
    const tl_attn_params *p;
    const float *q;
    int q_stride;
    const tl_kv_layer *kv;
    float *out;
    float *scratch;    /* per thread: head_dim_v accumulators, KEY_TILE scores */
    atomic_int next;
} attn_job;

// q (hd,) . K[j] (hd,) over visible j -> softmax-weighted sum of V[j] (hdv,) -> out
static void attn_one(const attn_job *jb, int t, int h, float *acc, float *sc) {
    const tl_attn_params *p = jb->p;
    const tl_kern *kn = jb->kern;
    const int hd = p->head_dim, hdv = p->head_dim_v;
    const int kvh = h / (p->n_head / p->n_head_kv);
    const size_t k_row = (size_t)p->n_head_kv * hd, v_row = (size_t)p->n_head_kv * hdv;
    const float *q = jb->q + (size_t)t * jb->q_stride + (size_t)h * hd;
    const int pos = p->pos0 + t;
    const int j0 = p->window > 0 && pos - p->window + 1 > 0 ? pos - p->window + 1 : 0;
    const bool f16 = p->kv_type == TL_DTYPE_F16;
    const uint8_t *kb = (const uint8_t *)jb->kv->k, *vb = (const uint8_t *)jb->kv->v;
    const size_t es = f16 ? sizeof(tl_f16) : sizeof(float);

    float m = -INFINITY, s = 0;
    memset(acc, 0, sizeof(float) * hdv);
    for (int t0 = j0; t0 <= pos; t0 += KEY_TILE) {
        const int nt = pos + 1 - t0 < KEY_TILE ? pos + 1 - t0 : KEY_TILE;
        float tmax = -INFINITY;
        for (int i = 0; i < nt; i++) {
            const void *kr = kb + ((size_t)(t0 + i) * k_row + (size_t)kvh * hd) * es;
            float x;
            if (f16) x = kn->dot_f32_f16(hd, q, kr);
            else kn->vec_dot[TL_DTYPE_F32](hd, &x, kr, q);
            x *= p->scale;
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
            const float w = expf(sc[i] - m);
            s += w;
            const void *vr = vb + ((size_t)(t0 + i) * v_row + (size_t)kvh * hdv) * es;
            if (f16) {
                kn->axpy_f16(hdv, acc, w, vr);
            } else {
                const float *v = vr;
                for (int d = 0; d < hdv; d++) acc[d] += w * v[d];
            }
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
    float *acc = jb->scratch + (size_t)ith * (jb->p->head_dim_v + KEY_TILE);
    float *sc = acc + jb->p->head_dim_v;
    for (;;) {
        int i = atomic_fetch_add_explicit(&jb->next, 1, memory_order_relaxed);
        if (i >= total) break;
        attn_one(jb, i / jb->p->n_head, i % jb->p->n_head, acc, sc);
    }
}

void tl_cpu_attention(tl_backend *b, const tl_attn_params *p, const float *q, int q_stride,
                      const tl_kv_layer *kv, float *out) {
    tl_cpu *c = tl_cpu_of(b);
    attn_job jb = { .kern = c->kern, .p = p, .q = q, .q_stride = q_stride, .kv = kv, .out = out };
    jb.scratch = tl_cpu_scratch(c, sizeof(float) * (size_t)(p->head_dim_v + KEY_TILE) * c->n_threads);
    if (!jb.scratch) return; /* reserve() sized the scratch far above this */
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
