/* f32_neon.c — NEON row kernels of the non-matmul ops: the kern.h slots
 * axpy_q8_0, scale, silu_mul, gelu_mul, norm_row and rope (the attention
 * slots are in attn_neon.c).
 *
 * axpy_q8_0, scale, silu_mul, gelu_mul and rope are bit-exact with the
 * reference (rope: each fmaf there is one vfmaq here)
 * (axpy_q8_0 multiplies then adds, as the reference): silu's exp is neon.h's
 * tl_neon_exp4, core/vmath.h's tl_vexpf lane for lane, the division is IEEE
 * in both, and the file is compiled without fp contraction (see neon.h);
 * gelu reads the reference's table. norm_row differs from the reference by
 * summation order only. */
#include <math.h>

#include "core/fp16.h"
#include "core/gelu.h"
#include "core/quant.h"
#include "core/vmath.h"
#include "kern/cpu/neon/neon.h"

// y (4,) += s * q (4,) int16, multiply then add (see the file comment)
TL_NEON_INLINE void madd4(float *y, float32x4_t s, int16x4_t q) {
    vst1q_f32(y, vaddq_f32(vld1q_f32(y), vmulq_f32(s, vcvtq_f32_s32(vmovl_s16(q)))));
}

// y (n,) += a * dequant(v) (n,), v: n / 32 Q8_0 blocks
void tl_neon_axpy_q8_0(int n, float *y, float a, const void *v) {
    const tl_block_q8_0 *vb = v;
    for (int b = 0; b < n / TL_QK8_0; b++) {
        /* a * d rounded once in scalar, as the reference */
        const float32x4_t s = vdupq_n_f32(a * tl_neon_h2f(vb[b].d));
        float *yb = y + b * TL_QK8_0;
        for (int j = 0; j < TL_QK8_0; j += 16) {
            const int8x16_t q = vld1q_s8(vb[b].qs + j);
            const int16x8_t lo = vmovl_s8(vget_low_s8(q)), hi = vmovl_s8(vget_high_s8(q));
            madd4(yb + j, s, vget_low_s16(lo));
            madd4(yb + j + 4, s, vget_high_s16(lo));
            madd4(yb + j + 8, s, vget_low_s16(hi));
            madd4(yb + j + 12, s, vget_high_s16(hi));
        }
    }
}

// y (n,) *= a
void tl_neon_scale(int n, float *y, float a) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_n_f32(vld1q_f32(y + i), a));
    for (; i < n; i++) y[i] *= a;
}

// o (n,) = silu(g) (n,) * u (n,)
void tl_neon_silu_mul(int n, float *o, const float *g, const float *u) {
    /* the vector form on n & ~7 elements and libm's expf on the tail, as
     * the reference (which follows the reference engine's 8-wide split) */
    const int nv = n & ~7;
    const float32x4_t one = vdupq_n_f32(1.0f), zero = vdupq_n_f32(0.0f);
    int i = 0;
    for (; i < nv; i += 4) {
        const float32x4_t x = vld1q_f32(g + i);
        const float32x4_t s = vdivq_f32(x, vaddq_f32(one, tl_neon_exp4(vsubq_f32(zero, x))));
        vst1q_f32(o + i, vmulq_f32(s, vld1q_f32(u + i)));
    }
    for (; i < n; i++) o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* gelu(x) (4,) as core/gelu.h's tl_gelu_f16: fcvtn rounds to nearest even
 * (the default FPCR mode), as tl_f32_to_f16 (test_kern_simd checks every
 * f16 rounding tie; NaNs keep their payload, but every NaN entry of one sign
 * is the same); NEON has no gather, so four scalar loads, and the clamps
 * test x itself */
TL_NEON_INLINE float32x4_t gelu4(const float *tab, float32x4_t x) {
    const uint16x4_t h = vreinterpret_u16_f16(vcvt_f16_f32(x));
    float32x4_t y = vdupq_n_f32(tab[vget_lane_u16(h, 0)]);
    y = vsetq_lane_f32(tab[vget_lane_u16(h, 1)], y, 1);
    y = vsetq_lane_f32(tab[vget_lane_u16(h, 2)], y, 2);
    y = vsetq_lane_f32(tab[vget_lane_u16(h, 3)], y, 3);
    const uint32x4_t lo = vcleq_f32(x, vdupq_n_f32(-10.0f));
    const uint32x4_t hi = vcgeq_f32(x, vdupq_n_f32(10.0f));
    /* x <= -10: +0 */
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(vbslq_f32(hi, x, y)), lo));
}

// o (n,) = gelu(g) (n,) * u (n,), or gelu(g) (n,) when u is NULL
void tl_neon_gelu_mul(int n, float *o, const float *g, const float *u) {
    const float *tab = tl_gelu_table();
    int i = 0;
    if (u) {
        for (; i + 4 <= n; i += 4) vst1q_f32(o + i, vmulq_f32(gelu4(tab, vld1q_f32(g + i)), vld1q_f32(u + i)));
        for (; i < n; i++) o[i] = tl_gelu_f16(tab, g[i]) * u[i];
    } else {
        for (; i + 4 <= n; i += 4) vst1q_f32(o + i, gelu4(tab, vld1q_f32(g + i)));
        for (; i < n; i++) o[i] = tl_gelu_f16(tab, g[i]);
    }
}

/* sum of (x (n,) - m)^2 in two double lanes: each float difference squared
 * is exact in double, so only the summation order differs from the
 * reference's serial double sum */
TL_NEON_INLINE double sumsq_dev(int n, const float *x, float m) {
    const float32x4_t mv = vdupq_n_f32(m);
    float64x2_t a0 = vdupq_n_f64(0.0), a1 = a0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t d = vsubq_f32(vld1q_f32(x + i), mv);
        const float64x2_t lo = vcvt_f64_f32(vget_low_f32(d)), hi = vcvt_high_f64_f32(d);
        a0 = vfmaq_f64(a0, lo, lo);
        a1 = vfmaq_f64(a1, hi, hi);
    }
    double r = vaddvq_f64(vaddq_f64(a0, a1));
    for (; i < n; i++) {
        const double d = x[i] - m;
        r += d * d;
    }
    return r;
}

// x (n,) -> y (n,) = (x - mean) * 1/sqrt(var + eps) * w + b
void tl_neon_norm_row(int n, float *y, const float *x, const float *w, const float *b, float eps,
                      bool layer) {
    double mean = 0;
    if (layer) {
        float64x2_t a = vdupq_n_f64(0.0);
        int i = 0;
        for (; i + 4 <= n; i += 4) {
            const float32x4_t v = vld1q_f32(x + i);
            a = vaddq_f64(a, vaddq_f64(vcvt_f64_f32(vget_low_f32(v)), vcvt_high_f64_f32(v)));
        }
        mean = vaddvq_f64(a);
        for (; i < n; i++) mean += x[i];
        mean /= n;
    }
    const float fm = (float)mean;
    const float scale = 1.0f / sqrtf((float)(sumsq_dev(n, x, fm) / n) + eps);
    /* (x - m) * scale, then * w, then + b: the reference's roundings */
    const float32x4_t mv = vdupq_n_f32(fm);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vmulq_n_f32(vsubq_f32(vld1q_f32(x + i), mv), scale);
        if (w) v = vmulq_f32(v, vld1q_f32(w + i));
        if (b) v = vaddq_f32(v, vld1q_f32(b + i));
        vst1q_f32(y + i, v);
    }
    for (; i < n; i++) {
        float v = (x[i] - fm) * scale;
        if (w) v *= w[i];
        if (b) v += b[i];
        y[i] = v;
    }
}

/* (a, c) <- (fma(a, cv, -(c sv)), fma(a, sv, c cv)), 4 pairs: the
 * reference's two roundings per output (kern.h tl_rope_fn) */
TL_NEON_INLINE float32x4x2_t rope4(float32x4_t a, float32x4_t c, float32x4_t cv, float32x4_t sv) {
    float32x4x2_t r;
    r.val[0] = vfmaq_f32(vnegq_f32(vmulq_f32(c, sv)), a, cv);
    r.val[1] = vfmaq_f32(vmulq_f32(c, cv), a, sv);
    return r;
}

// x (nh, hd): the first nr dims of each head rotated by (cs, sn) (kern.h tl_rope_fn)
void tl_neon_rope(int nh, int hd, int nr, bool neox, float *x, const float *cs, const float *sn) {
    const int half = nr / 2;
    for (int h = 0; h < nh; h++) {
        float *xh = x + (size_t)h * hd;
        int i = 0;
        for (; i + 4 <= half; i += 4) {
            const float32x4_t cv = vld1q_f32(cs + i), sv = vld1q_f32(sn + i);
            if (neox) { /* pairs (i, i + half) */
                const float32x4x2_t r = rope4(vld1q_f32(xh + i), vld1q_f32(xh + i + half), cv, sv);
                vst1q_f32(xh + i, r.val[0]);
                vst1q_f32(xh + i + half, r.val[1]);
            } else { /* pairs (2i, 2i + 1), split by the structure load */
                const float32x4x2_t v = vld2q_f32(xh + 2 * i);
                vst2q_f32(xh + 2 * i, rope4(v.val[0], v.val[1], cv, sv));
            }
        }
        for (; i < half; i++)
            tl_rope_pair(xh + (neox ? i : 2 * i), xh + (neox ? i + half : 2 * i + 1), cs[i], sn[i]);
    }
}
