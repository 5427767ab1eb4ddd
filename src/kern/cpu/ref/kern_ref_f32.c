/* kern_ref_f32.c — scalar reference row kernels of the non-matmul ops
 * (attention, norms, gated activations): the kern.h slots attn_qk_f16,
 * attn_pv_f16, attn_qk_q8_0, attn_pv_q8_0, exp_sum, max_f32, axpy_q8_0,
 * scale, silu_mul, gelu_mul, norm_row and rope. They are the ground truth the
 * SIMD variants are tested against (tests/test_kern_simd.c), so they stay
 * plain loops in the arithmetic order the backend used before it had
 * kernels for them. */
#include <math.h>

#include "core/fp16.h"
#include "core/gelu.h"
#include "core/quant.h"
#include "core/vmath.h"
#include "kern/kern.h"

/* no implicit fused multiply-add: the same bytes on every target */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

// Q (R, hd) . K (nt, hd) f16 in blocks of 8 keys, dim-major (kern.h)
// -> S (R, nt) rows lds apart, each dot summed in order in float
void tl_ref_attn_qk_f16(int R, int nt, int hd, const float *q, const uint16_t *k, float *s,
                        size_t lds) {
    for (int r = 0; r < R; r++)
        for (int i = 0; i < nt; i++) {
            const float *qr = q + (size_t)r * hd;
            const uint16_t *ki = k + (size_t)(i / TL_KV_KEYS) * TL_KV_KEYS * hd + i % TL_KV_KEYS;
            float acc = 0.0f;
            for (int d = 0; d < hd; d++) acc += qr[d] * tl_f16_to_f32(ki[(size_t)d * TL_KV_KEYS]);
            s[(size_t)r * lds + i] = acc;
        }
}

// O (R, hdv) += P (R, nt) rows ldp apart @ V (nt, hdv) f16 rows ldv apart,
// key by key in order
void tl_ref_attn_pv_f16(int R, int nt, int hdv, float *o, const float *p, size_t ldp,
                        const uint16_t *v, size_t ldv) {
    for (int r = 0; r < R; r++)
        for (int i = 0; i < nt; i++) {
            const float a = p[(size_t)r * ldp + i];
            const uint16_t *vi = v + (size_t)i * ldv;
            float *orow = o + (size_t)r * hdv;
            for (int d = 0; d < hdv; d++) orow[d] += a * tl_f16_to_f32(vi[d]);
        }
}

// Q (R, hd) Q8_0 rows hd / 32 blocks apart . K (nt, hd) Q8_0 rows ldk bytes
// apart -> S (R, nt) rows lds apart: the reference vec_dot Q8_0 per pair
void tl_ref_attn_qk_q8_0(int R, int nt, int hd, const void *q, const void *k, size_t ldk, float *s,
                         size_t lds) {
    const tl_vec_dot_fn dot = tl_kern_ref()->vec_dot[TL_DTYPE_Q8_0];
    const size_t ldq = (size_t)(hd / TL_QK8_0) * sizeof(tl_block_q8_0);
    for (int r = 0; r < R; r++)
        for (int i = 0; i < nt; i++)
            dot(hd, &s[(size_t)r * lds + i], (const uint8_t *)k + (size_t)i * ldk,
                (const uint8_t *)q + (size_t)r * ldq);
}

// max of x (n,)
float tl_ref_max_f32(int n, const float *x) {
    float m = x[0];
    for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

// x (n,) -> exp(x - m) in place, summed in order
float tl_ref_exp_sum(int n, float *x, float m) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = tl_vexpf(x[i] - m);
        s += x[i];
    }
    return s;
}

// y (32,) += s * q (32,) int8; restrict: int8 may alias y, and without it
// the loop stays scalar (the reference is also the attention kernel of CPUs
// without a SIMD variant)
static inline void madd_q8_block(float *restrict y, float s, const int8_t *restrict q) {
    for (int j = 0; j < TL_QK8_0; j++) y[j] += s * (float)q[j];
}

// y (n,) += a * dequant(v) (n,), v: n / 32 Q8_0 blocks
void tl_ref_axpy_q8_0(int n, float *y, float a, const void *v) {
    /* the weight and the block scale are one multiplier, so a block is
     * 32 int8->float conversions and multiply-adds with no dequantized copy */
    const tl_block_q8_0 *vb = v;
    for (int b = 0; b < n / TL_QK8_0; b++)
        madd_q8_block(y + b * TL_QK8_0, a * tl_f16_to_f32(vb[b].d), vb[b].qs);
}

// O (R, hdv) += P (R, nt) rows ldp apart @ dequant(V) (nt, hdv), V Q8_0
// rows ldv bytes apart: axpy_q8_0 per row and key, keys in order
void tl_ref_attn_pv_q8_0(int R, int nt, int hdv, float *o, const float *p, size_t ldp,
                         const void *v, size_t ldv) {
    for (int r = 0; r < R; r++)
        for (int i = 0; i < nt; i++)
            tl_ref_axpy_q8_0(hdv, o + (size_t)r * hdv, p[(size_t)r * ldp + i],
                             (const uint8_t *)v + (size_t)i * ldv);
}

// y (n,) *= a
void tl_ref_scale(int n, float *y, float a) {
    for (int i = 0; i < n; i++) y[i] *= a;
}

// o (n,) = silu(g) (n,) * u (n,)
void tl_ref_silu_mul(int n, float *o, const float *g, const float *u) {
    /* silu of the gate, then the product: two roundings, as the reference
     * engine's separate silu and mul ops; its vector silu covers n & ~7
     * elements and libm's expf the tail */
    const int nv = n & ~7;
    int i = 0;
    for (; i < nv; i++) o[i] = tl_vsilu(g[i]) * u[i];
    for (; i < n; i++) o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

// o (n,) = gelu(g) (n,) * u (n,), or gelu(g) (n,) when u is NULL
void tl_ref_gelu_mul(int n, float *o, const float *g, const float *u) {
    /* gelu then the product, two roundings, as the reference engine's
     * separate gelu and mul ops */
    const float *tab = tl_gelu_table();
    if (u)
        for (int i = 0; i < n; i++) o[i] = tl_gelu_f16(tab, g[i]) * u[i];
    else
        for (int i = 0; i < n; i++) o[i] = tl_gelu_f16(tab, g[i]);
}

// x (n,) -> y (n,) = (x - mean) * 1/sqrt(var + eps) * w + b
void tl_ref_norm_row(int n, float *y, const float *x, const float *w, const float *b, float eps,
                     bool layer) {
    /* sums in double, as the reference engine does: a 4096-wide row of
     * activations loses digits in a float accumulator */
    double mean = 0;
    if (layer) {
        for (int i = 0; i < n; i++) mean += x[i];
        mean /= n;
    }
    const float fm = (float)mean;
    double var = 0;
    for (int i = 0; i < n; i++) {
        const double d = x[i] - fm;
        var += d * d;
    }
    const float scale = 1.0f / sqrtf((float)(var / n) + eps);
    for (int i = 0; i < n; i++) {
        float v = (x[i] - fm) * scale;
        if (w) v *= w[i];
        if (b) v += b[i];
        y[i] = v;
    }
}

// x (nh, hd): the first nr dims of each head rotated by (cs, sn) (kern.h tl_rope_fn)
void tl_ref_rope(int nh, int hd, int nr, bool neox, float *x, const float *cs, const float *sn) {
    const int half = nr / 2;
    for (int h = 0; h < nh; h++) {
        float *xh = x + (size_t)h * hd;
        for (int i = 0; i < half; i++)
            tl_rope_pair(xh + (neox ? i : 2 * i), xh + (neox ? i + half : 2 * i + 1), cs[i], sn[i]);
    }
}
