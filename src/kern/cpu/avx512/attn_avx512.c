/* attn_avx512.c — AVX-512 (F, BW, VL) attention tiles over an F16 cache:
 * the kern.h slots attn_qk_f16 and attn_pv_f16 (exp_sum, max_f32 and the
 * Q8_0 tiles stay AVX2's).
 *
 * The same tiles as attn_avx2.c, twice as wide, with twice the registers:
 *   qk: K comes in blocks of 8 keys with the keys in the lanes (kern.h);
 *       a zmm takes one dim of two blocks (two 16-byte loads, one insert,
 *       one conversion: 16 keys), and each row's q element enters its fma
 *       as an embedded broadcast. 8 rows x 2 such pairs (32 keys), or 4 x 4
 *       for fewer rows: 16 accumulators, scores with no horizontal sum.
 *   pv: a V row's 16 elements are one conversion from memory; 4 rows x 4
 *       vectors (64 columns), each row's weight an embedded broadcast.
 * Both differ from the reference by summation order only. Like the AVX2
 * tiles they prefetch the K and V lines 8 KiB ahead (at a head size of
 * 64), which a cache past the L2 needs.
 *
 * Tested against the reference by test_kern_simd (under an emulator here,
 * scripts/test-avx512.sh); not yet timed on AVX-512 hardware. */
#include "kern/cpu/avx512/avx512.h"

enum {
    PF_BLOCKS = 8, /* qk: K blocks ahead that it prefetches */
    PF_KEYS = 64,  /* pv: V rows ahead */
};

/* one dim d of the pair of K blocks at k (the second only when two; its
 * lanes are 0 otherwise) -> keys 0..15 of the pair as floats */
TL_AVX512_INLINE __m512 ld_pair(const uint16_t *k, int hd, int d, bool two) {
    const __m128i lo = _mm_loadu_si128((const __m128i *)(k + (size_t)d * TL_KV_KEYS));
    if (!two) return _mm512_cvtph_ps(_mm256_zextsi128_si256(lo));
    const __m128i hi = _mm_loadu_si128((const __m128i *)(k + ((size_t)hd + d) * TL_KV_KEYS));
    return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1));
}

/* dim d of a tile (below): one pair load per 16 keys, RC * PC fma */
TL_AVX512_INLINE void qk_dim(const int RC, const int PC, int hd, int d, const float *q,
                             const uint16_t *k, bool two_last, __m512 acc[16]) {
    __m512 kv[4];
#pragma GCC unroll 4
    for (int c = 0; c < PC; c++)
        kv[c] = ld_pair(k + (size_t)c * 2 * TL_KV_KEYS * hd, hd, d, c < PC - 1 || two_last);
#pragma GCC unroll 8
    for (int r = 0; r < RC; r++) {
        const __m512 qb = _mm512_set1_ps(q[(size_t)r * hd + d]);
#pragma GCC unroll 4
        for (int c = 0; c < PC; c++) acc[r * PC + c] = _mm512_fmadd_ps(qb, kv[c], acc[r * PC + c]);
    }
}

/* rows RC x block pairs PC (RC * PC <= 16) of S = Q . K^T:
 *   Q (RC, hd) rows hd apart . K (16 PC keys) -> s[r * lds + 16 c + i];
 * the last pair holds two blocks when two_last, and `last` (1..16) of its
 * keys are written. pf: prefetch as well (the tile's first rows). */
TL_AVX512_INLINE void qk_tile(const int RC, const int PC, int hd, const float *q, const uint16_t *k,
                              float *s, size_t lds, bool two_last, int last, bool pf) {
    __m512 acc[16];
#pragma GCC unroll 16
    for (int a = 0; a < RC * PC; a++) acc[a] = _mm512_setzero_ps();
    int d = 0;
    for (; d + 4 <= hd; d += 4) {
        /* a cache line holds 4 dims of a block */
        if (pf)
#pragma GCC unroll 8
            for (int b = 0; b < 2 * PC; b++)
                _mm_prefetch((const char *)(k + ((size_t)(b + PF_BLOCKS) * hd + d) * TL_KV_KEYS),
                             _MM_HINT_T0);
#pragma GCC unroll 4
        for (int dd = d; dd < d + 4; dd++) qk_dim(RC, PC, hd, dd, q, k, two_last, acc);
    }
    for (; d < hd; d++) qk_dim(RC, PC, hd, d, q, k, two_last, acc);
    const __mmask16 m_last = (__mmask16)((1u << last) - 1u);
#pragma GCC unroll 8
    for (int r = 0; r < RC; r++)
#pragma GCC unroll 4
        for (int c = 0; c < PC; c++)
            _mm512_mask_storeu_ps(s + (size_t)r * lds + (size_t)c * 16, c < PC - 1 ? 0xFFFF : m_last,
                                  acc[r * PC + c]);
}

/* RC rows against all np pairs, PC at a time, then fewer */
#define QK_ROWS(RC, PC)                                                                           \
    for (int c0 = 0; c0 < np;) {                                                                  \
        const int pc = np - c0 < (PC) ? np - c0 : (PC);                                           \
        const bool end = c0 + pc == np, two = !end || two_last;                                   \
        const int lk = end ? last : 16;                                                           \
        const uint16_t *kp = k + (size_t)c0 * 2 * TL_KV_KEYS * hd;                                \
        float *sp = sr + (size_t)c0 * 16;                                                         \
        if (pc == 4) qk_tile(RC, 4, hd, qr, kp, sp, lds, two, lk, r == 0);                        \
        else if (pc == 3) qk_tile(RC, 3, hd, qr, kp, sp, lds, two, lk, r == 0);                   \
        else if (pc == 2) qk_tile(RC, 2, hd, qr, kp, sp, lds, two, lk, r == 0);                   \
        else qk_tile(RC, 1, hd, qr, kp, sp, lds, two, lk, r == 0);                                \
        c0 += pc;                                                                                 \
    }

// Q (R, hd) . K (nt, hd) f16 in blocks of 8 keys -> S (R, nt) rows lds apart
void tl_avx512_attn_qk_f16(int R, int nt, int hd, const float *q, const uint16_t *k, float *s,
                           size_t lds) {
    const int nb = (nt + TL_KV_KEYS - 1) / TL_KV_KEYS, np = (nb + 1) / 2;
    const bool two_last = nb % 2 == 0;
    const int last = nt - 16 * (np - 1);
    /* 8 rows x 2 pairs, fewer rows x 4 pairs: at least 4 fma chains */
    for (int r = 0; r < R; r += 8) {
        const int rc = R - r < 8 ? R - r : 8;
        const float *qr = q + (size_t)r * hd;
        float *sr = s + (size_t)r * lds;
        switch (rc) {
        case 1: QK_ROWS(1, 4) break;
        case 2: QK_ROWS(2, 4) break;
        case 3: QK_ROWS(3, 4) break;
        case 4: QK_ROWS(4, 4) break;
        case 5: QK_ROWS(5, 2) break;
        case 6: QK_ROWS(6, 2) break;
        case 7: QK_ROWS(7, 2) break;
        default: QK_ROWS(8, 2) break;
        }
    }
}
#undef QK_ROWS

/* rows RC x vectors DC (RC * DC <= 16) of O += P @ V over nt keys, the
 * last vector's lanes m_last only (the hdv % 16 tail; else all 16):
 *   o[r * hdv + 16 c ..] += sum_i p[r * ldp + i] * V[i][16 c ..]
 * (o, v at the tile's first column); pf: prefetch each row's lines */
TL_AVX512_INLINE void pv_tile(const int RC, const int DC, int nt, float *o, int hdv, const float *p,
                              size_t ldp, const uint16_t *v, size_t ldv, __mmask16 m_last, bool pf) {
    __m512 acc[16];
#pragma GCC unroll 4
    for (int r = 0; r < RC; r++)
#pragma GCC unroll 4
        for (int c = 0; c < DC; c++)
            acc[r * DC + c] =
                _mm512_maskz_loadu_ps(c < DC - 1 ? 0xFFFF : m_last, o + (size_t)r * hdv + 16 * c);
    for (int i = 0; i < nt; i++) {
        const uint16_t *vi = v + (size_t)i * ldv;
        if (pf) /* a line holds 2 vectors of a row */
#pragma GCC unroll 2
            for (int c = 0; c < DC; c += 2)
                _mm_prefetch((const char *)(vi + (size_t)PF_KEYS * ldv + 16 * c), _MM_HINT_T0);
        __m512 vv[4];
#pragma GCC unroll 4
        for (int c = 0; c < DC; c++)
            vv[c] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(c < DC - 1 ? 0xFFFF : m_last, vi + 16 * c));
#pragma GCC unroll 4
        for (int r = 0; r < RC; r++) {
            const __m512 pr = _mm512_set1_ps(p[(size_t)r * ldp + i]);
#pragma GCC unroll 4
            for (int c = 0; c < DC; c++) acc[r * DC + c] = _mm512_fmadd_ps(pr, vv[c], acc[r * DC + c]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < RC; r++)
#pragma GCC unroll 4
        for (int c = 0; c < DC; c++)
            _mm512_mask_storeu_ps(o + (size_t)r * hdv + 16 * c, c < DC - 1 ? 0xFFFF : m_last,
                                  acc[r * DC + c]);
}

/* RC rows over all hdv columns: tiles of 4 vectors, then fewer, the last
 * one masked to the columns left */
TL_AVX512_INLINE void pv_rows(const int RC, int nt, int hdv, float *o, const float *p, size_t ldp,
                              const uint16_t *v, size_t ldv, bool pf) {
    for (int d = 0; d < hdv;) {
        const int left = hdv - d, dc = left >= 64 ? 4 : (left + 15) / 16;
        const int tail = left >= 64 ? 16 : left - 16 * (dc - 1);
        const __mmask16 m = (__mmask16)((1u << tail) - 1u);
        float *od = o + d;
        const uint16_t *vd = v + d;
        if (dc == 4) pv_tile(RC, 4, nt, od, hdv, p, ldp, vd, ldv, m, pf);
        else if (dc == 3) pv_tile(RC, 3, nt, od, hdv, p, ldp, vd, ldv, m, pf);
        else if (dc == 2) pv_tile(RC, 2, nt, od, hdv, p, ldp, vd, ldv, m, pf);
        else pv_tile(RC, 1, nt, od, hdv, p, ldp, vd, ldv, m, pf);
        d += 16 * dc;
    }
}

// O (R, hdv) += P (R, nt) rows ldp apart @ V (nt, hdv) f16 rows ldv apart
void tl_avx512_attn_pv_f16(int R, int nt, int hdv, float *o, const float *p, size_t ldp,
                           const uint16_t *v, size_t ldv) {
    /* 4 rows x 4 vectors: 4 conversions and 4 broadcasts per 16 fma */
    for (int r = 0; r < R; r += 4) {
        const int rc = R - r < 4 ? R - r : 4;
        float *or_ = o + (size_t)r * hdv;
        const float *pr = p + (size_t)r * ldp;
        switch (rc) {
        case 1: pv_rows(1, nt, hdv, or_, pr, ldp, v, ldv, r == 0); break;
        case 2: pv_rows(2, nt, hdv, or_, pr, ldp, v, ldv, r == 0); break;
        case 3: pv_rows(3, nt, hdv, or_, pr, ldp, v, ldv, r == 0); break;
        default: pv_rows(4, nt, hdv, or_, pr, ldp, v, ldv, r == 0); break;
        }
    }
}
