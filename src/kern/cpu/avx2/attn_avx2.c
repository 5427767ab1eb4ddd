/* attn_avx2.c — AVX2 (+FMA +F16C) attention tiles over an F16 cache: the
 * kern.h slots attn_qk_f16, attn_pv_f16, exp_sum and max_f32.
 *
 * Both tiles keep up to 8 accumulators in registers and convert each K or V
 * vector once for every query row of the tile (the R rows share one KV head),
 * instead of once per (head, key). Scores are summed in 8 lanes and reduced
 * by one hadd tree per 8 of them; the outputs differ from the reference by
 * summation order only. exp_sum is tl_vexpf lane for lane (bit-exact).
 *
 * Every loop over an accumulator array is fully unrolled (#pragma GCC
 * unroll), its init and store loops included: one loop left rolled and gcc
 * keeps the whole array on the stack, a load and store per fma (measured,
 * kbench KB_TYPE=attn R=8 hd=64, Zen 3: qk 13.5 -> 22, pv 15 -> 34 GMAC/s
 * once unrolled). qk's hadd tree costs about a third of pv's speed: a K
 * layout with keys in the lanes would not need it. */
#include <math.h>

#include "core/vmath.h"
#include "kern/cpu/avx2/avx2.h"

TL_AVX2_INLINE __m256 ld_h8(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

/* lane j of the result: the sum of the 8 lanes of a[j] */
TL_AVX2_INLINE __m256 hsum8x8(const __m256 a[8]) {
    const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
    const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
    const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

/* rows RC x keys KC (RC * KC <= 8) of S = Q . K^T:
 *   Q (RC, hd) rows hd apart . K (KC, hd) rows ldk apart -> s[r * lds + i] */
TL_AVX2_INLINE void qk_tile(const int RC, const int KC, int hd, const float *q, const uint16_t *k,
                            size_t ldk, float *s, size_t lds) {
    __m256 acc[8];
#pragma GCC unroll 8
    for (int a = 0; a < 8; a++) acc[a] = _mm256_setzero_ps();
    int d = 0;
    for (; d + 8 <= hd; d += 8) {
        __m256 kv[8];
#pragma GCC unroll 8
        for (int i = 0; i < KC; i++) kv[i] = ld_h8(k + (size_t)i * ldk + d);
#pragma GCC unroll 8
        for (int r = 0; r < RC; r++) {
            const __m256 qv = _mm256_loadu_ps(q + (size_t)r * hd + d);
#pragma GCC unroll 8
            for (int i = 0; i < KC; i++) acc[r * KC + i] = _mm256_fmadd_ps(qv, kv[i], acc[r * KC + i]);
        }
    }
    const __m256 sum = hsum8x8(acc); /* lane r * KC + i */
    if (RC == 4 && KC == 2) {
        const __m128 lo = _mm256_castps256_ps128(sum), hi = _mm256_extractf128_ps(sum, 1);
        _mm_storel_pi((__m64 *)s, lo);
        _mm_storeh_pi((__m64 *)(s + lds), lo);
        _mm_storel_pi((__m64 *)(s + 2 * lds), hi);
        _mm_storeh_pi((__m64 *)(s + 3 * lds), hi);
    } else if (RC == 1 && KC == 8) {
        _mm256_storeu_ps(s, sum);
    } else {
        float out[8];
        _mm256_storeu_ps(out, sum);
        for (int r = 0; r < RC; r++)
            for (int i = 0; i < KC; i++) s[(size_t)r * lds + i] = out[r * KC + i];
    }
    for (; d < hd; d++) /* hd % 8 */
        for (int r = 0; r < RC; r++)
            for (int i = 0; i < KC; i++)
                s[(size_t)r * lds + i] += q[(size_t)r * hd + d] * tl_avx2_h2f(k[(size_t)i * ldk + d]);
}

// Q (R, hd) . K (nt, hd) f16 rows ldk apart -> S (R, nt) rows lds apart
void tl_avx2_attn_qk_f16(int R, int nt, int hd, const float *q, const uint16_t *k, size_t ldk,
                         float *s, size_t lds) {
    int r = 0;
    /* 4 rows x 2 keys: 2 conversions and 4 loads per 8 fma */
    for (; r + 4 <= R; r += 4) {
        const float *qr = q + (size_t)r * hd;
        float *sr = s + (size_t)r * lds;
        int i = 0;
        for (; i + 2 <= nt; i += 2) qk_tile(4, 2, hd, qr, k + (size_t)i * ldk, ldk, sr + i, lds);
        if (i < nt) qk_tile(4, 1, hd, qr, k + (size_t)i * ldk, ldk, sr + i, lds);
    }
    /* one row x 8 keys */
    for (; r < R; r++) {
        const float *qr = q + (size_t)r * hd;
        float *sr = s + (size_t)r * lds;
        int i = 0;
        for (; i + 8 <= nt; i += 8) qk_tile(1, 8, hd, qr, k + (size_t)i * ldk, ldk, sr + i, lds);
        for (; i < nt; i++) qk_tile(1, 1, hd, qr, k + (size_t)i * ldk, ldk, sr + i, lds);
    }
}

/* rows RC x vectors DC (RC * DC <= 8) of O += P @ V, over nt keys:
 *   o[r * hdv + 8 c ..] += sum_i p[r * ldp + i] * V[i][8 c ..]  (o, v at the tile's first column) */
TL_AVX2_INLINE void pv_tile(const int RC, const int DC, int nt, float *o, int hdv, const float *p,
                            size_t ldp, const uint16_t *v, size_t ldv) {
    __m256 acc[8];
#pragma GCC unroll 8
    for (int r = 0; r < RC; r++)
#pragma GCC unroll 8
        for (int c = 0; c < DC; c++) acc[r * DC + c] = _mm256_loadu_ps(o + (size_t)r * hdv + 8 * c);
    for (int i = 0; i < nt; i++) {
        __m256 vv[8];
#pragma GCC unroll 8
        for (int c = 0; c < DC; c++) vv[c] = ld_h8(v + (size_t)i * ldv + 8 * c);
#pragma GCC unroll 8
        for (int r = 0; r < RC; r++) {
            const __m256 pr = _mm256_broadcast_ss(p + (size_t)r * ldp + i);
#pragma GCC unroll 8
            for (int c = 0; c < DC; c++) acc[r * DC + c] = _mm256_fmadd_ps(pr, vv[c], acc[r * DC + c]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < RC; r++)
#pragma GCC unroll 8
        for (int c = 0; c < DC; c++) _mm256_storeu_ps(o + (size_t)r * hdv + 8 * c, acc[r * DC + c]);
}

/* RC rows over all hdv columns: tiles of DC vectors, then single vectors,
 * then the hdv % 8 tail in scalar */
TL_AVX2_INLINE void pv_rows(const int RC, const int DC, int nt, int hdv, float *o, const float *p,
                            size_t ldp, const uint16_t *v, size_t ldv) {
    int d = 0;
    for (; d + 8 * DC <= hdv; d += 8 * DC) pv_tile(RC, DC, nt, o + d, hdv, p, ldp, v + d, ldv);
    for (; d + 8 <= hdv; d += 8) pv_tile(RC, 1, nt, o + d, hdv, p, ldp, v + d, ldv);
    for (; d < hdv; d++)
        for (int r = 0; r < RC; r++)
            for (int i = 0; i < nt; i++)
                o[(size_t)r * hdv + d] += p[(size_t)r * ldp + i] * tl_avx2_h2f(v[(size_t)i * ldv + d]);
}

// O (R, hdv) += P (R, nt) rows ldp apart @ V (nt, hdv) f16 rows ldv apart
void tl_avx2_attn_pv_f16(int R, int nt, int hdv, float *o, const float *p, size_t ldp,
                         const uint16_t *v, size_t ldv) {
    int r = 0;
    /* 4 rows x 2 vectors: 2 conversions and 4 broadcasts per 8 fma */
    for (; r + 4 <= R; r += 4)
        pv_rows(4, 2, nt, hdv, o + (size_t)r * hdv, p + (size_t)r * ldp, ldp, v, ldv);
    /* one row x 8 vectors: 8 independent chains */
    for (; r < R; r++) pv_rows(1, 8, nt, hdv, o + (size_t)r * hdv, p + (size_t)r * ldp, ldp, v, ldv);
}

// x (n,) -> exp(x - m) (n,) as tl_vexpf; returns the sum
float tl_avx2_exp_sum(int n, float *x, float m) {
    const __m256 mv = _mm256_set1_ps(m);
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = tl_avx2_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float s = tl_avx2_hsum(acc);
    for (; i < n; i++) {
        x[i] = tl_vexpf(x[i] - m);
        s += x[i];
    }
    return s;
}

// max of x (n,)
float tl_avx2_max_f32(int n, const float *x) {
    int i = 0;
    float m = x[0];
    if (n >= 8) {
        __m256 mv = _mm256_loadu_ps(x);
        for (i = 8; i + 8 <= n; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        m = _mm_cvtss_f32(h);
    }
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}
