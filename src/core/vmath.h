/* vmath.h — scalar, bit-exact emulations of the float arithmetic llama.cpp's
 * x86 CPU backend (AVX2 + FMA build) uses for the non-matmul ops.
 *
 * Why: on a real 30-layer model, a 1-ulp difference in one activation flips
 * a rounding tie in the next Q8 activation quantization, and the massive
 * residual activations of small models amplify that into 0.1-level logit
 * differences. Matching the reference's exp, silu and summation orders
 * bit for bit keeps the whole forward pass within ~1e-5 of it.
 *
 * Everything here is plain C with fmaf (one rounding, exactly as vfmadd),
 * so a SIMD variant can vectorise it lane for lane and stay bit-exact. */
#ifndef TL_CORE_VMATH_H
#define TL_CORE_VMATH_H

#include <math.h>
#include <stdint.h>

#include "core/fp16.h"

/* exp(x) as GGML's vector ggml_v_expf (AVX2/AVX-512/NEON, all with FMA):
 * a Cody-Waite reduction to 2^n * e^b and a degree-5 polynomial, ~1.5 ulp,
 * with explicit handling of |n| > 126 (scaled in two steps) and |n| > 192
 * (overflow to inf / underflow to 0). Not libm's expf: they differ in the
 * last bit on ~30% of inputs. exp(-inf) = 0. */
static inline float tl_vexpf(float x) {
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const uint32_t e = tl_f32_bits(z) << 23;
    const float k = tl_f32_from_bits(e + tl_f32_bits(1.0f));
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                              fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                         u, 0x1.ffffecp-1f * b);
    if (!(fabsf(n) > 126.0f)) return fmaf(j, k, k);
    const uint32_t g = n <= 0.0f ? 0x82000000u : 0u;
    const float s1 = tl_f32_from_bits(g + 0x7f000000u);
    if (fabsf(n) > 192.0f) return s1 * s1;
    const float s2 = tl_f32_from_bits(e - g);
    return fmaf(s2, j, s2) * s1;
}

/* silu(x) = x / (1 + exp(-x)) with tl_vexpf, as ggml_v_silu. */
static inline float tl_vsilu(float x) { return x / (1.0f + tl_vexpf(0.0f - x)); }

/* y (n,) = silu(x) (n,) as ggml_vec_silu_f32 on AVX2: the vector form on the
 * first n & ~7 elements, libm's expf on the tail. In place is fine. */
static inline void tl_vsilu_row(float *y, const float *x, int n) {
    const int nv = n & ~7;
    int i = 0;
    for (; i < nv; i++) y[i] = tl_vsilu(x[i]);
    for (; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
}

/* Horizontal sum of 8 lanes as the AVX hsum idiom (extract-high + low,
 * movehl, movehdup): ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)). Used by
 * GGML's soft_max partial sums and llamafile's tinyBLAS dot products. */
static inline float tl_hsum8_movehl(const float l[8]) {
    const float a0 = l[0] + l[4], a1 = l[1] + l[5], a2 = l[2] + l[6], a3 = l[3] + l[7];
    return (a0 + a2) + (a1 + a3);
}

/* Horizontal sum of 8 lanes as GGML_F32x8_REDUCE's tail (low + high, then
 * two hadds): ((l0+l4)+(l1+l5)) + ((l2+l6)+(l3+l7)). */
static inline float tl_hsum8_hadd(const float l[8]) {
    const float a0 = l[0] + l[4], a1 = l[1] + l[5], a2 = l[2] + l[6], a3 = l[3] + l[7];
    return (a0 + a1) + (a2 + a3);
}

/* x (n,) . y (n,) -> float, as ggml_vec_dot_f32 on AVX2: four 8-lane FMA
 * accumulators over steps of 32, folded 0+=2, 1+=3, 0+=1, reduced with
 * tl_hsum8_hadd, then the n % 32 tail added in float. */
static inline float tl_vdot_f32(const float *x, const float *y, int n) {
    float acc[4][8] = { { 0 } };
    const int np = n & ~31;
    for (int i = 0; i < np; i += 32)
        for (int a = 0; a < 4; a++)
            for (int l = 0; l < 8; l++) acc[a][l] = fmaf(x[i + 8 * a + l], y[i + 8 * a + l], acc[a][l]);
    float f[8];
    for (int l = 0; l < 8; l++) f[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    float s = tl_hsum8_hadd(f);
    for (int i = np; i < n; i++) s += x[i] * y[i];
    return s;
}

/* One RoPE pair (a, c) rotated by the angle whose cos and sin are cs, sn,
 * as the reference build's compiler does it: one product of each output
 * fused, the other rounded alone (checked bit for bit against its rope
 * output). The kern.h rope kernels do this lane for lane. */
static inline void tl_rope_pair(float *a, float *c, float cs, float sn) {
    const float x0 = *a, x1 = *c;
    *a = fmaf(x0, cs, -(x1 * sn));
    *c = fmaf(x0, sn, x1 * cs);
}

#endif
