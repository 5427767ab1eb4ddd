/* f32_avx2.c — AVX2 (+FMA +F16C) row kernels of the non-matmul ops: the
 * kern.h slots dot_f32_f16, axpy_f16, axpy_q8_0, scale, silu_mul and norm_row.
 *
 * axpy_q8_0, scale and silu_mul are bit-exact with the reference (axpy_q8_0
 * multiplies then adds, as the reference, rather than fusing): silu's exp is
 * core/vmath.h's tl_vexpf evaluated lane for lane (each fmaf there is one
 * vfmadd here, each branch a blend), the division is IEEE in both. The
 * others differ from the reference by summation order only. */
#include <math.h>

#include "core/fp16.h"
#include "core/quant.h"
#include "kern/cpu/avx2/avx2.h"

TL_AVX2_INLINE __m256 ld_h8(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

// x (n,) f32 . h (n,) f16 -> float
float tl_avx2_dot_f32_f16(int n, const float *x, const uint16_t *h) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), ld_h8(h + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), ld_h8(h + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), ld_h8(h + i), a0);
    float s = tl_avx2_hsum(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += x[i] * tl_avx2_h2f(h[i]);
    return s;
}

// y (n,) += a * h (n,) f16
void tl_avx2_axpy_f16(int n, float *y, float a, const uint16_t *h) {
    const __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, ld_h8(h + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * tl_avx2_h2f(h[i]);
}

/* GCC spells _mm256_mul_ps / _mm256_add_ps as plain C operators and, with
 * -mfma, would fuse them: contraction off for this kernel only */
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
// y (n,) += a * dequant(v) (n,), v: n / 32 Q8_0 blocks
void tl_avx2_axpy_q8_0(int n, float *y, float a, const void *v) {
    const tl_block_q8_0 *vb = v;
    for (int b = 0; b < n / TL_QK8_0; b++) {
        /* a * d rounded once in scalar, as the reference; separate mul and
         * add (no fma) keep every output bit-exact with it. The adds run
         * on other ports than the muls, so the split costs no throughput. */
        const __m256 s = _mm256_set1_ps(a * tl_avx2_h2f(vb[b].d));
        const int8_t *q = vb[b].qs;
        float *yb = y + b * TL_QK8_0;
#pragma GCC unroll 4
        for (int j = 0; j < TL_QK8_0; j += 8) {
            const __m256 qf = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + j))));
            _mm256_storeu_ps(yb + j, _mm256_add_ps(_mm256_loadu_ps(yb + j), _mm256_mul_ps(s, qf)));
        }
    }
}
#pragma GCC pop_options

// y (n,) *= a
void tl_avx2_scale(int n, float *y, float a) {
    const __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), av));
    for (; i < n; i++) y[i] *= a;
}

/* exp(x), lane for lane as tl_vexpf (core/vmath.h) */
TL_AVX2_INLINE __m256 vexp8(__m256 x) {
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                      _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
    const __m256 k = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_castps_si256(_mm256_set1_ps(1.0f))));
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
        u, _mm256_mul_ps(_mm256_set1_ps(0x1.ffffecp-1f), b));
    const __m256 an = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
    const __m256 big = _mm256_cmp_ps(an, _mm256_set1_ps(126.0f), _CMP_GT_OQ);
    const __m256 norm = _mm256_fmadd_ps(j, k, k);
    if (!_mm256_movemask_ps(big)) return norm;
    /* |n| > 126: 2^n split in two factors; |n| > 192: overflow / underflow */
    const __m256i g = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ)),
                                       _mm256_set1_epi32((int)0x82000000u));
    const __m256 s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f000000)));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
    const __m256 huge = _mm256_cmp_ps(an, _mm256_set1_ps(192.0f), _CMP_GT_OQ);
    const __m256 scaled = _mm256_blendv_ps(_mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1),
                                           _mm256_mul_ps(s1, s1), huge);
    return _mm256_blendv_ps(norm, scaled, big);
}

// o (n,) = silu(g) (n,) * u (n,)
void tl_avx2_silu_mul(int n, float *o, const float *g, const float *u) {
    const __m256 one = _mm256_set1_ps(1.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, vexp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
        _mm256_storeu_ps(o + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* sum of x (n,) - m, squared, in four double lanes: each float difference
 * squared is exact in double, so only the summation order differs from the
 * reference's serial double sum */
TL_AVX2_INLINE double sumsq_dev(int n, const float *x, float m) {
    const __m256 mv = _mm256_set1_ps(m);
    __m256d a0 = _mm256_setzero_pd(), a1 = a0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), mv);
        const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(d));
        const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(d, 1));
        a0 = _mm256_fmadd_pd(lo, lo, a0);
        a1 = _mm256_fmadd_pd(hi, hi, a1);
    }
    a0 = _mm256_add_pd(a0, a1);
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a0), _mm256_extractf128_pd(a0, 1));
    double r = _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
    for (; i < n; i++) {
        const double d = x[i] - m;
        r += d * d;
    }
    return r;
}

// x (n,) -> y (n,) = (x - mean) * 1/sqrt(var + eps) * w + b
void tl_avx2_norm_row(int n, float *y, const float *x, const float *w, const float *b, float eps,
                      bool layer) {
    double mean = 0;
    if (layer) {
        __m256d a = _mm256_setzero_pd();
        int i = 0;
        for (; i + 4 <= n; i += 4) a = _mm256_add_pd(a, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
        __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
        mean = _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
        for (; i < n; i++) mean += x[i];
        mean /= n;
    }
    const float fm = (float)mean;
    const float scale = 1.0f / sqrtf((float)(sumsq_dev(n, x, fm) / n) + eps);
    /* (x - m) * scale, then * w, then + b: the reference's roundings */
    const __m256 mv = _mm256_set1_ps(fm), sv = _mm256_set1_ps(scale);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv), sv);
        if (w) v = _mm256_mul_ps(v, _mm256_loadu_ps(w + i));
        if (b) v = _mm256_add_ps(v, _mm256_loadu_ps(b + i));
        _mm256_storeu_ps(y + i, v);
    }
    for (; i < n; i++) {
        float v = (x[i] - fm) * scale;
        if (w) v *= w[i];
        if (b) v += b[i];
        y[i] = v;
    }
}
