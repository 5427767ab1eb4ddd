/* kquant_avx2.c — AVX2 dot products and tiles for the K-quants (Q2_K..Q6_K)
 * against Q8_K activations.
 *
 * Every K-quant super-block (256 weights) is first decoded into one common
 * form, kdec: 8 groups of 32 unsigned quants u (0..63) aligned with the
 * activation bytes, a 16-bit scale per 16 elements (ready for madd), and
 * 16 coefficients on the activation block sums (q8_K's bsums) that carry
 * what u leaves out: the sub-block mins (Q2_K, Q4_K, Q5_K: scaled by dmin)
 * or the quant offset (Q3_K: -4*scale, Q6_K: -32*scale, same scale as the
 * quants, so they are folded into the integer sum exactly). Then
 *   sum = d * dx * sum_g sc_g (u_g . y_g)  +  dm * dx * (coef . bsums)
 * with exact integer arithmetic inside the block: maddubs(u, y) cannot
 * saturate (2 * 63 * 128 < 2^15) and is exact for y = -128.
 *
 * Decoding costs about as much as a dot product, so a row is decoded once,
 * KSB super-blocks at a time into a small stack buffer, and reused for every
 * token of the tile; KR rows are decoded together so each activation chunk
 * read from L2 serves KR rows from L1. */
#include <stdbool.h>
#include <string.h>

#include "core/quant.h"
#include "kern/cpu/avx2/avx2.h"
#include "kern/cpu/tiles.h"

enum { KSB = 8, KR = 2, KC = 4 };

typedef struct kdec {
    __m256i u[8];  /* quants of elements 32g .. 32g+31 */
    __m256i sc[8]; /* int16 scale of each maddubs pair of group g */
    __m256i coef;  /* int16 coefficient of each bsums entry */
    float d, dm;   /* scale of the quant sum and of coef . bsums */
} kdec;

/* sc[g] = 16 int16: scales s8[2g] (elements 32g..+15) then s8[2g+1] */
TL_AVX2_INLINE void set_scales(kdec *o, __m128i s8) {
#pragma GCC unroll 8
    for (int g = 0; g < 8; g++) {
        const __m128i idx = _mm_set_epi64x((long long)(0x0101010101010101ull * (2 * g + 1)),
                                           (long long)(0x0101010101010101ull * (2 * g)));
        o->sc[g] = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s8, idx));
    }
}

/* the 8 6-bit scales (bytes 0-7) and mins (bytes 8-15) of q4_K/q5_K */
TL_AVX2_INLINE __m128i k4_scales_mins(const uint8_t *q) {
    uint32_t ut[4];
    memcpy(ut, q, 12);
    const uint32_t m1 = 0x3f3f3f3f, m2 = 0x0f0f0f0f, m3 = 0x03030303;
    ut[3] = ((ut[2] >> 4) & m2) | (((ut[1] >> 6) & m3) << 4);
    const uint32_t mins_lo = ut[1] & m1;
    ut[1] = (ut[2] & m2) | (((ut[0] >> 6) & m3) << 4);
    ut[2] = mins_lo;
    ut[0] &= m1;
    return _mm_set_epi32((int)ut[3], (int)ut[2], (int)ut[1], (int)ut[0]);
}

TL_AVX2_INLINE void dec_q4_K(const tl_block_q4_K *b, kdec *o) {
    const __m128i sm = k4_scales_mins(b->scales);
    set_scales(o, _mm_unpacklo_epi8(sm, sm)); /* one scale per 32: both halves */
    o->coef = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));
    const __m256i m4 = _mm256_set1_epi8(0x0F);
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
        o->u[2 * c] = _mm256_and_si256(q, m4);
        o->u[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    }
    o->d = tl_avx2_h2f(b->d);
    o->dm = -tl_avx2_h2f(b->dmin);
}

TL_AVX2_INLINE void dec_q5_K(const tl_block_q5_K *b, kdec *o) {
    const __m128i sm = k4_scales_mins(b->scales);
    set_scales(o, _mm_unpacklo_epi8(sm, sm));
    o->coef = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));
    const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
    const __m256i hb = _mm256_loadu_si256((const __m256i *)b->qh);
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
        const __m256i ml = _mm256_set1_epi8((char)(1 << (2 * c)));
        const __m256i mh = _mm256_set1_epi8((char)(1 << (2 * c + 1)));
        const __m256i hl = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, ml), ml), b4);
        const __m256i hh = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, mh), mh), b4);
        o->u[2 * c] = _mm256_or_si256(_mm256_and_si256(q, m4), hl);
        o->u[2 * c + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), hh);
    }
    o->d = tl_avx2_h2f(b->d);
    o->dm = -tl_avx2_h2f(b->dmin);
}

TL_AVX2_INLINE void dec_q6_K(const tl_block_q6_K *b, kdec *o) {
    const __m128i s8 = _mm_loadu_si128((const __m128i *)b->scales);
    set_scales(o, s8);
    o->coef = _mm256_sub_epi16(_mm256_setzero_si256(),
                               _mm256_slli_epi16(_mm256_cvtepi8_epi16(s8), 5)); /* -32 sc */
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const __m256i l0 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h));
        const __m256i l1 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32));
        const __m256i hi = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
        /* top bits: pairs 0..3 of qh to bits 4-5 (16-bit shifts; the mask
         * drops what crosses bytes) */
        o->u[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                          _mm256_and_si256(_mm256_slli_epi16(hi, 4), m30));
        o->u[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                          _mm256_and_si256(_mm256_slli_epi16(hi, 2), m30));
        o->u[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                          _mm256_and_si256(hi, m30));
        o->u[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                          _mm256_and_si256(_mm256_srli_epi16(hi, 2), m30));
    }
    o->d = tl_avx2_h2f(b->d);
    o->dm = o->d;
}

/* tl_q3_K_scales (core/quant.h) a 32-bit word at a time: of the 12 bytes,
 * a0 (0-3) and a1 (4-7) hold the low 4 bits (scales 0-7 in the low
 * nibbles, 8-15 in the high ones), t (8-11) the top 2 bits, scale j's at
 * bits 2 (j / 4) of byte j % 4; less 32. (The loop over the 16 scales,
 * inlined here, took half the time of a one-token Q3_K product.) */
TL_AVX2_INLINE __m128i q3_K_scales(const uint8_t *p) {
    uint32_t a0, a1, t;
    memcpy(&a0, p, 4);
    memcpy(&a1, p + 4, 4);
    memcpy(&t, p + 8, 4);
    const uint32_t m4 = 0x0F0F0F0F, m2 = 0x03030303;
    const __m128i v = _mm_setr_epi32((int)((a0 & m4) | ((t & m2) << 4)),
                                     (int)((a1 & m4) | (((t >> 2) & m2) << 4)),
                                     (int)(((a0 >> 4) & m4) | (((t >> 4) & m2) << 4)),
                                     (int)(((a1 >> 4) & m4) | (((t >> 6) & m2) << 4)));
    return _mm_sub_epi8(v, _mm_set1_epi8(32));
}

TL_AVX2_INLINE void dec_q3_K(const tl_block_q3_K *b, kdec *o) {
    const __m128i s8 = q3_K_scales(b->scales);
    set_scales(o, s8);
    o->coef = _mm256_sub_epi16(_mm256_setzero_si256(),
                               _mm256_slli_epi16(_mm256_cvtepi8_epi16(s8), 2)); /* -4 sc */
    const __m256i m3 = _mm256_set1_epi8(3), b4 = _mm256_set1_epi8(4);
    const __m256i hm = _mm256_loadu_si256((const __m256i *)b->hmask);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * h));
#pragma GCC unroll 4
        for (int s2 = 0; s2 < 4; s2++) {
            const int g = 4 * h + s2;
            const __m256i m = _mm256_set1_epi8((char)(1 << g));
            const __m256i hb = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, m), m), b4);
            o->u[g] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * s2), m3), hb);
        }
    }
    o->d = tl_avx2_h2f(b->d);
    o->dm = o->d;
}

TL_AVX2_INLINE void dec_q2_K(const tl_block_q2_K *b, kdec *o) {
    const __m128i raw = _mm_loadu_si128((const __m128i *)b->scales);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    set_scales(o, _mm_and_si128(raw, m4));
    o->coef = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), m4));
    const __m256i m3 = _mm256_set1_epi8(3);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * h));
#pragma GCC unroll 4
        for (int s2 = 0; s2 < 4; s2++)
            o->u[4 * h + s2] = _mm256_and_si256(_mm256_srli_epi16(q, 2 * s2), m3);
    }
    o->d = tl_avx2_h2f(b->d);
    o->dm = -tl_avx2_h2f(b->dmin);
}

/* One decoded row chunk (kb super-blocks) against C tokens whose chunks
 * start at x (rows ldx bytes apart): y[c * ldy] (+)= the partial dots. */
TL_AVX2_INLINE void kdot(const kdec *d, int kb, const uint8_t *x, size_t ldx, float *y,
                         size_t ldy, bool add, const int C, const bool fold) {
    __m256 acc[KC];
    const tl_block_q8_K *xs[KC];
    for (int c = 0; c < C; c++) {
        acc[c] = _mm256_setzero_ps();
        xs[c] = (const tl_block_q8_K *)(x + (size_t)c * ldx);
    }
    for (int s = 0; s < kb; s++) {
        __m256i sumi[KC];
        for (int c = 0; c < C; c++) sumi[c] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            const __m256i u = _mm256_load_si256(&d[s].u[g]);
            const __m256i sc = _mm256_load_si256(&d[s].sc[g]);
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) {
                const __m256i yv = _mm256_loadu_si256((const __m256i *)(xs[c][s].qs + 32 * g));
                sumi[c] = _mm256_add_epi32(sumi[c],
                                           _mm256_madd_epi16(sc, _mm256_maddubs_epi16(u, yv)));
            }
        }
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            const __m256i cm = _mm256_madd_epi16(
                d[s].coef, _mm256_loadu_si256((const __m256i *)xs[c][s].bsums));
            const float xd = xs[c][s].d;
            if (fold) {
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(sumi[c], cm)),
                                         _mm256_set1_ps(d[s].d * xd), acc[c]);
            } else {
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[c]), _mm256_set1_ps(d[s].d * xd),
                                         acc[c]);
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(cm), _mm256_set1_ps(d[s].dm * xd),
                                         acc[c]);
            }
        }
    }
    for (int c = 0; c < C; c++) {
        const float v = tl_avx2_hsum(acc[c]);
        y[(size_t)c * ldy] = add ? y[(size_t)c * ldy] + v : v;
    }
}

#define KQ_DEFINE(T, BT, FOLD)                                                                 \
    static void kdot_##T##_c(const kdec *d, int kb, const uint8_t *x, size_t ldx, float *y,    \
                             size_t ldy, bool add) {                                          \
        kdot(d, kb, x, ldx, y, ldy, add, KC, FOLD);                                           \
    }                                                                                         \
    static void kdot_##T##_1(const kdec *d, int kb, const uint8_t *x, float *y, bool add) {   \
        kdot(d, kb, x, 0, y, 0, add, 1, FOLD);                                                \
    }                                                                                         \
    void tl_avx2_gemm_##T(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy,             \
                          const void *vw, size_t ldw, const void *vx, size_t ldx) {            \
        TL_TILE_KQ_GEMM_BODY(BT, kdec, KR, KSB, KC, dec_##T, kdot_##T##_c, kdot_##T##_1)      \
    }                                                                                         \
    void tl_avx2_vec_dot_##T(int64_t n, float *s, const void *w, const void *x) {             \
        tl_avx2_gemm_##T(n, 1, 1, s, 0, w, 0, x, 0);                                          \
    }

// W (nr, n) q2_K @ X^T (nc, n) q8_K -> y[c * ldy + r]; vec_dot: w (n,) . x (n,) -> *s
KQ_DEFINE(q2_K, tl_block_q2_K, false)
// W (nr, n) q3_K @ X^T (nc, n) q8_K -> y[c * ldy + r]; vec_dot: w (n,) . x (n,) -> *s
KQ_DEFINE(q3_K, tl_block_q3_K, true)
// W (nr, n) q4_K @ X^T (nc, n) q8_K -> y[c * ldy + r]; vec_dot: w (n,) . x (n,) -> *s
KQ_DEFINE(q4_K, tl_block_q4_K, false)
// W (nr, n) q5_K @ X^T (nc, n) q8_K -> y[c * ldy + r]; vec_dot: w (n,) . x (n,) -> *s
KQ_DEFINE(q5_K, tl_block_q5_K, false)
// W (nr, n) q6_K @ X^T (nc, n) q8_K -> y[c * ldy + r]; vec_dot: w (n,) . x (n,) -> *s
KQ_DEFINE(q6_K, tl_block_q6_K, true)
