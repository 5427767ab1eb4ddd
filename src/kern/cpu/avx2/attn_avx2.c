/* attn_avx2.c — AVX2 (+FMA +F16C) attention tiles over an F16 cache: the
 * kern.h slots attn_qk_f16, attn_pv_f16, exp_sum and max_f32.
 *
 * Both tiles keep up to 8 accumulators in registers and convert each K or V
 * vector once for every query row of the tile (the R rows share one KV head),
 * instead of once per (head, key). K is stored with 8 keys in the lanes
 * (kern.h), so qk's accumulators are scores with no horizontal sum. Both
 * differ from the reference by summation order only. exp_sum is tl_vexpf
 * lane for lane (bit-exact).
 *
 * Every loop over an accumulator array is fully unrolled (#pragma GCC
 * unroll), its init and store loops included: one loop left rolled and gcc
 * keeps the whole array on the stack, a load and store per fma (measured,
 * kbench KB_TYPE=attn R=8 hd=64, Zen 3: qk 13.5 -> 22, pv 15 -> 34 GMAC/s
 * once unrolled). */
#include <math.h>

#include "core/vmath.h"
#include "kern/cpu/avx2/avx2.h"

TL_AVX2_INLINE __m256 ld_h8(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

enum { PF_BLOCKS = 8, PF_KEYS = 64 }; /* prefetch distances: 8 KiB at a head size of 64 */

/* dim d of a tile (below): one conversion per block and one broadcast
 * per row feed RC * BC fma */
TL_AVX2_INLINE void qk_dim(const int RC, const int BC, int hd, int d, const float *q,
                           const uint16_t *k, __m256 acc[8]) {
    __m256 kv[4];
#pragma GCC unroll 4
    for (int b = 0; b < BC; b++) kv[b] = ld_h8(k + ((size_t)b * hd + d) * TL_KV_KEYS);
#pragma GCC unroll 4
    for (int r = 0; r < RC; r++) {
        const __m256 qb = _mm256_broadcast_ss(q + (size_t)r * hd + d);
#pragma GCC unroll 4
        for (int b = 0; b < BC; b++) acc[r * BC + b] = _mm256_fmadd_ps(qb, kv[b], acc[r * BC + b]);
    }
}

/* rows RC x blocks BC (RC * BC <= 8, BC <= 4) of S = Q . K^T, K in blocks of
 * 8 keys, dim-major (kern.h), so each accumulator holds 8 keys' scores;
 * pf: prefetch as well (the tile's first rows).
 *   Q (RC, hd) rows hd apart . K (8 BC keys) -> s[r * lds + 8 b + i], the
 *   last block's first `last` (1..8) lanes only */
TL_AVX2_INLINE void qk_tile(const int RC, const int BC, int hd, const float *q, const uint16_t *k,
                            float *s, size_t lds, int last, bool pf) {
    __m256 acc[8];
#pragma GCC unroll 8
    for (int a = 0; a < RC * BC; a++) acc[a] = _mm256_setzero_ps();
    int d = 0;
    for (; d + 4 <= hd; d += 4) {
        /* a cache line holds 4 dims of a block: fetch the same line of the
         * block PF_BLOCKS on, as the hardware prefetchers fall behind on
         * a cache past the L2 (see tl_avx2_attn_qk_f16) */
        if (pf)
#pragma GCC unroll 4
            for (int b = 0; b < BC; b++)
                _mm_prefetch((const char *)(k + ((size_t)(b + PF_BLOCKS) * hd + d) * TL_KV_KEYS),
                             _MM_HINT_T0);
#pragma GCC unroll 4
        for (int dd = d; dd < d + 4; dd++) qk_dim(RC, BC, hd, dd, q, k, acc);
    }
    for (; d < hd; d++) qk_dim(RC, BC, hd, d, q, k, acc);
    const __m256i mask =
        _mm256_cmpgt_epi32(_mm256_set1_epi32(last), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
#pragma GCC unroll 4
    for (int r = 0; r < RC; r++)
#pragma GCC unroll 4
        for (int b = 0; b < BC; b++) {
            float *sr = s + (size_t)r * lds + (size_t)b * TL_KV_KEYS;
            if (b < BC - 1 || last == TL_KV_KEYS) _mm256_storeu_ps(sr, acc[r * BC + b]);
            else _mm256_maskstore_ps(sr, mask, acc[r * BC + b]);
        }
}

/* RC rows against nb blocks, BC at a time, then fewer */
#define QK_ROWS(RC, BC)                                                                          \
    for (int b = 0; b < nb;) {                                                                   \
        const int bc = nb - b < (BC) ? nb - b : (BC), lb = b + bc == nb ? last : TL_KV_KEYS;     \
        const uint16_t *kb = k + (size_t)b * TL_KV_KEYS * hd;                                    \
        float *sb = sr + (size_t)b * TL_KV_KEYS;                                                 \
        if (bc == 4) qk_tile(RC, 4, hd, qr, kb, sb, lds, lb, r == 0);                            \
        else if (bc == 3) qk_tile(RC, 3, hd, qr, kb, sb, lds, lb, r == 0);                       \
        else if (bc == 2) qk_tile(RC, 2, hd, qr, kb, sb, lds, lb, r == 0);                       \
        else qk_tile(RC, 1, hd, qr, kb, sb, lds, lb, r == 0);                                    \
        b += bc;                                                                                 \
    }

// Q (R, hd) . K (nt, hd) f16 in blocks of 8 keys -> S (R, nt) rows lds apart
void tl_avx2_attn_qk_f16(int R, int nt, int hd, const float *q, const uint16_t *k, float *s,
                         size_t lds) {
    const int nb = (nt + TL_KV_KEYS - 1) / TL_KV_KEYS, last = nt - TL_KV_KEYS * (nb - 1);
    /* 4 rows x 2 blocks: 2 conversions and 4 broadcasts per 8 fma (kbench
     * KB_TYPE=attn R=8 hd=64, Zen 3: 40 GMAC/s; 4 x 2 keys with a hadd
     * tree, the row-major layout's best, ran 22-26). Fewer rows take more
     * blocks, so that at least 4 fma chains hide the fma latency. */
    for (int r = 0; r < R; r += 4) {
        const int rc = R - r < 4 ? R - r : 4;
        const float *qr = q + (size_t)r * hd;
        float *sr = s + (size_t)r * lds;
        switch (rc) {
        case 1: QK_ROWS(1, 4) break;
        case 2: QK_ROWS(2, 4) break;
        case 3: QK_ROWS(3, 2) break;
        default: QK_ROWS(4, 2) break;
        }
    }
}
#undef QK_ROWS

/* rows RC x vectors DC (RC * DC <= 8) of O += P @ V, over nt keys:
 *   o[r * hdv + 8 c ..] += sum_i p[r * ldp + i] * V[i][8 c ..]  (o, v at the tile's first column) */
TL_AVX2_INLINE void pv_tile(const int RC, const int DC, int nt, float *o, int hdv, const float *p,
                            size_t ldp, const uint16_t *v, size_t ldv, bool pf) {
    __m256 acc[8];
#pragma GCC unroll 8
    for (int r = 0; r < RC; r++)
#pragma GCC unroll 8
        for (int c = 0; c < DC; c++) acc[r * DC + c] = _mm256_loadu_ps(o + (size_t)r * hdv + 8 * c);
    for (int i = 0; i < nt; i++) {
        /* the row PF_KEYS on, at this tile's columns (as in qk_tile) */
        if (pf) _mm_prefetch((const char *)(v + (size_t)(i + PF_KEYS) * ldv), _MM_HINT_T0);
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
 * then the hdv % 8 tail in scalar; pf: prefetch each cache line once */
TL_AVX2_INLINE void pv_rows(const int RC, const int DC, int nt, int hdv, float *o, const float *p,
                            size_t ldp, const uint16_t *v, size_t ldv, bool pf) {
    int d = 0;
    for (; d + 8 * DC <= hdv; d += 8 * DC)
        pv_tile(RC, DC, nt, o + d, hdv, p, ldp, v + d, ldv, pf && d % 32 == 0);
    for (; d + 8 <= hdv; d += 8) pv_tile(RC, 1, nt, o + d, hdv, p, ldp, v + d, ldv, pf && d % 32 == 0);
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
        pv_rows(4, 2, nt, hdv, o + (size_t)r * hdv, p + (size_t)r * ldp, ldp, v, ldv, r == 0);
    /* one row x 8 vectors: 8 independent chains */
    for (; r < R; r++)
        pv_rows(1, 8, nt, hdv, o + (size_t)r * hdv, p + (size_t)r * ldp, ldp, v, ldv, r == 0);
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
