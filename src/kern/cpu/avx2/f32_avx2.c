/* f32_avx2.c — AVX2 (+FMA +F16C) row kernels of the non-matmul ops: the
 * kern.h slots axpy_q8_0, scale, silu_mul, gelu_mul, norm_row and rope
 * (attention's tiles: attn_avx2.c).
 *
 * axpy_q8_0, scale, silu_mul, gelu_mul and rope are bit-exact with the
 * reference (rope: each fmaf there is one vfmadd here, the product it adds
 * rounded alone, as there)
 * (axpy_q8_0 multiplies then adds, as the reference, rather than fusing):
 * silu's exp is core/vmath.h's tl_vexpf evaluated lane for lane (each fmaf
 * there is one vfmadd here, each branch a blend), the division is IEEE in
 * both; gelu reads the reference's table. The norm differs from the
 * reference by summation order only. */
#include <math.h>

#include "core/fp16.h"
#include "core/gelu.h"
#include "core/quant.h"
#include "core/vmath.h"
#include "kern/cpu/avx2/avx2.h"

/* GCC spells _mm256_mul_ps / _mm256_add_ps as plain C operators and, with
 * -mfma, would fuse them: contraction off for this kernel only (clang fuses
 * only within one expression, but says so too) */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif
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
#if defined(__clang__)
#pragma clang fp contract(on)
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

// y (n,) *= a
void tl_avx2_scale(int n, float *y, float a) {
    const __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), av));
    for (; i < n; i++) y[i] *= a;
}

// o (n,) = silu(g) (n,) * u (n,)
void tl_avx2_silu_mul(int n, float *o, const float *g, const float *u) {
    const __m256 one = _mm256_set1_ps(1.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, tl_avx2_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
        _mm256_storeu_ps(o + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* gelu(x) (8,) as core/gelu.h's tl_gelu_f16: F16C's round-to-nearest-even
 * conversion gives the same f16 as tl_f32_to_f16 for every float (checked
 * for all 2^32; NaNs keep their payload, but every NaN entry of one sign is
 * the same), each f16 indexes the 65536-entry table, and the clamps test x
 * itself. Eight scalar loads from the two 64-bit halves of the indices, not
 * vgatherdps: on Zen 3 the gather is the slower (kbench, one thread, 5632 *
 * 128 elements: 1.2 vs 1.8 Gelem/s). */
TL_AVX2_INLINE __m256 gelu8(const float *tab, __m256 x) {
    const __m128i h = _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT);
    const uint64_t a = (uint64_t)_mm_cvtsi128_si64(h), b = (uint64_t)_mm_extract_epi64(h, 1);
    const __m128 y0 = _mm_setr_ps(tab[a & 0xffff], tab[(a >> 16) & 0xffff], tab[(a >> 32) & 0xffff], tab[a >> 48]);
    const __m128 y1 = _mm_setr_ps(tab[b & 0xffff], tab[(b >> 16) & 0xffff], tab[(b >> 32) & 0xffff], tab[b >> 48]);
    const __m256 y = _mm256_set_m128(y1, y0);
    const __m256 lo = _mm256_cmp_ps(x, _mm256_set1_ps(-10.0f), _CMP_LE_OQ);
    const __m256 hi = _mm256_cmp_ps(x, _mm256_set1_ps(10.0f), _CMP_GE_OQ);
    return _mm256_andnot_ps(lo, _mm256_blendv_ps(y, x, hi)); /* x <= -10: +0 */
}

// o (n,) = gelu(g) (n,) * u (n,), or gelu(g) (n,) when u is NULL
void tl_avx2_gelu_mul(int n, float *o, const float *g, const float *u) {
    const float *tab = tl_gelu_table();
    int i = 0;
    if (u) {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(o + i, _mm256_mul_ps(gelu8(tab, _mm256_loadu_ps(g + i)), _mm256_loadu_ps(u + i)));
        for (; i < n; i++) o[i] = tl_gelu_f16(tab, g[i]) * u[i];
    } else {
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, gelu8(tab, _mm256_loadu_ps(g + i)));
        for (; i < n; i++) o[i] = tl_gelu_f16(tab, g[i]);
    }
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

// x (nh, hd): the first nr dims of each head rotated by (cs, sn) (kern.h tl_rope_fn)
void tl_avx2_rope(int nh, int hd, int nr, bool neox, float *x, const float *cs, const float *sn) {
    const int half = nr / 2;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int h = 0; h < nh; h++) {
        float *xh = x + (size_t)h * hd;
        int i = 0;
        if (neox) {
            /* pairs (i, i + half): 8 of them from two loads */
            for (; i + 8 <= half; i += 8) {
                const __m256 a = _mm256_loadu_ps(xh + i), c = _mm256_loadu_ps(xh + i + half);
                const __m256 cv = _mm256_loadu_ps(cs + i), sv = _mm256_loadu_ps(sn + i);
                _mm256_storeu_ps(xh + i, _mm256_fmadd_ps(a, cv, _mm256_xor_ps(_mm256_mul_ps(c, sv), sign)));
                _mm256_storeu_ps(xh + i + half, _mm256_fmadd_ps(a, sv, _mm256_mul_ps(c, cv)));
            }
            for (; i < half; i++) tl_rope_pair(xh + i, xh + i + half, cs[i], sn[i]);
            continue;
        }
        /* pairs (2i, 2i + 1), 4 to a vector v = [a0 c0 a1 c1 ..]: every lane
         * fuses its pair's a with p = [cs0 sn0 cs1 sn1 ..] and adds c times
         * q = [-sn0 cs0 -sn1 cs1 ..], rounded alone */
        for (; i + 4 <= half; i += 4) {
            const __m256 v = _mm256_loadu_ps(xh + 2 * i);
            const __m128 c4 = _mm_loadu_ps(cs + i), s4 = _mm_loadu_ps(sn + i);
            const __m128 ns4 = _mm_xor_ps(s4, _mm_set1_ps(-0.0f));
            const __m256 p = _mm256_set_m128(_mm_unpackhi_ps(c4, s4), _mm_unpacklo_ps(c4, s4));
            const __m256 q = _mm256_set_m128(_mm_unpackhi_ps(ns4, c4), _mm_unpacklo_ps(ns4, c4));
            const __m256 prod = _mm256_mul_ps(_mm256_movehdup_ps(v), q);
            _mm256_storeu_ps(xh + 2 * i, _mm256_fmadd_ps(_mm256_moveldup_ps(v), p, prod));
        }
        for (; i < half; i++) tl_rope_pair(xh + 2 * i, xh + 2 * i + 1, cs[i], sn[i]);
    }
}
