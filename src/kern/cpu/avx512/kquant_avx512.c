/* kquant_avx512.c — AVX-512 VNNI dot products and row-major tiles for Q4_K,
 * Q5_K and Q6_K against Q8_K activations (the kern.h vec_dot and gemm
 * slots: Q5_K has no repacked form, so this is its prefill and decode
 * kernel; for Q4_K and Q6_K it serves what cannot be repacked).
 *
 * The structure is AVX2's (kquant_avx2.c): each super-block of a row is
 * decoded once into a common form, kdec, then reused for every token of
 * the tile; KR rows are decoded together, KSB super-blocks at a time.
 * What changes is the inner product. A zmm holds 64 quants u in element
 * order; vpdpbusd against the 64 activation bytes leaves 16 int32 lanes of
 * 4 products each, |lane| <= 4 * 63 * 128 < 2^15. So each lane is also a
 * valid int16 (its upper half being the sign extension), and vpdpwssd
 * against a vector holding, per lane, (scale, 0) as an int16 pair
 * multiplies it by its sub-block's scale and accumulates in int32: two
 * instructions per 64 multiply-adds, exact for every byte (-128 included).
 * The sub-block mins (Q4_K, Q5_K) or the quant offset (Q6_K: -32 * scale,
 * same d, folded into the integer sum) enter through q8_K's bsums, as in
 * AVX2's kernel:
 *   sum = d * dx * isum  +  dm * dx * (coef . bsums).
 *
 * Every output is computed by the same sequence of operations whatever the
 * tile, so vec_dot (the 1 x 1 case of gemm) and gemm agree bit for bit. */
#include <stdbool.h>
#include <string.h>

#include "core/quant.h"
#include "kern/cpu/avx512/avx512.h"
#include "kern/cpu/tiles.h"

enum { KSB = 8, KR = 2, KC = 4 };

typedef struct kdec {
    __m512i u[4];  /* quants of elements 64g .. 64g+63 */
    __m512i sc[4]; /* per lane (4 elements of u[g]): its scale as the int16 pair (sc, 0) */
    __m256i coef;  /* int16 coefficient of each bsums entry */
    float d, dm;   /* scale of isum and of coef . bsums */
} kdec;

/* 6-bit scales (bytes 0-7) and mins (bytes 8-15) of q4_K/q5_K, as
 * tl_get_scale_min_k4 unpacks them */
TL_AVX512_INLINE __m128i k4_scales_mins(const uint8_t *q) {
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

/* q4_K/q5_K: sub-blocks of 32 elements, so lanes 0-7 of u[g] are
 * sub-block 2g and lanes 8-15 sub-block 2g+1 */
TL_AVX512_INLINE void k4_scales(kdec *o, __m128i sm) {
    const __m512i s32 = _mm512_cvtepu8_epi32(sm); /* scales 0-7, mins 0-7; high halves 0 */
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        const __m512i idx = _mm512_inserti64x4(_mm512_set1_epi32(2 * g), _mm256_set1_epi32(2 * g + 1), 1);
        o->sc[g] = _mm512_permutexvar_epi32(idx, s32);
    }
    /* each min twice: it multiplies both bsums of its sub-block */
    o->coef = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));
}

/* 32 bytes of nibbles -> 64 quants: low nibbles (32 elements), then high */
TL_AVX512_INLINE __m512i nib64(const uint8_t *qs) {
    const __m256i q = _mm256_loadu_si256((const __m256i *)qs);
    return _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1),
                            _mm512_set1_epi8(0x0F));
}

TL_AVX512_INLINE void dec_q4_K(const tl_block_q4_K *b, kdec *o) {
    k4_scales(o, k4_scales_mins(b->scales));
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) o->u[g] = nib64(b->qs + 32 * g);
    o->d = _cvtsh_ss(b->d);
    o->dm = -_cvtsh_ss(b->dmin);
}

TL_AVX512_INLINE void dec_q5_K(const tl_block_q5_K *b, kdec *o) {
    k4_scales(o, k4_scales_mins(b->scales));
    /* bit 4 of element 32s + l is bit s of qh[l]: u[g]'s halves take bits
     * 2g and 2g+1 of the same 32 bytes */
    const __m256i hb = _mm256_loadu_si256((const __m256i *)b->qh);
    const __m512i h = _mm512_inserti64x4(_mm512_castsi256_si512(hb), hb, 1);
    const __m512i b4 = _mm512_set1_epi8(0x10);
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        const __m512i sel = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << (2 * g))),
                                               _mm256_set1_epi8((char)(1 << (2 * g + 1))), 1);
        const __m512i lo = nib64(b->qs + 32 * g);
        o->u[g] = _mm512_mask_add_epi8(lo, _mm512_test_epi8_mask(h, sel), lo, b4);
    }
    o->d = _cvtsh_ss(b->d);
    o->dm = -_cvtsh_ss(b->dmin);
}

TL_AVX512_INLINE void dec_q6_K(const tl_block_q6_K *b, kdec *o) {
    /* sub-blocks of 16 elements: lanes 4i .. 4i+3 of u[g] are sub-block 4g + i */
    const __m128i s8 = _mm_loadu_si128((const __m128i *)b->scales);
    const __m512i s32 = _mm512_and_si512(_mm512_cvtepi8_epi32(s8), _mm512_set1_epi32(0xFFFF));
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) {
        const __m512i idx = _mm512_add_epi32(
            _mm512_set1_epi32(4 * g),
            _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3));
        o->sc[g] = _mm512_permutexvar_epi32(idx, s32);
    }
    o->coef = _mm256_sub_epi16(_mm256_setzero_si256(),
                               _mm256_slli_epi16(_mm256_cvtepi8_epi16(s8), 5)); /* -32 sc */
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        /* l: ql[64h .. +63]; its low nibbles are elements 128h + 0..63, its
         * high nibbles 128h + 64..127. hh: qh[32h .. +31], then the same
         * shifted down 2, so the bit pairs of 128h + 0..63 sit at bits 0-1
         * and those of 128h + 64..127 at bits 4-5 */
        const __m512i l = _mm512_loadu_si512(b->ql + 64 * h);
        const __m256i hi = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
        const __m512i hh = _mm512_inserti64x4(_mm512_castsi256_si512(hi), _mm256_srli_epi16(hi, 2), 1);
        /* lo | (hs & m30); 16-bit shifts, what crosses a byte is masked off */
        o->u[2 * h] = _mm512_ternarylogic_epi32(_mm512_and_si512(l, m4), _mm512_slli_epi16(hh, 4), m30, 0xF8);
        o->u[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), hh, m30, 0xF8);
    }
    o->d = _cvtsh_ss(b->d);
    o->dm = o->d;
}

/* One decoded row chunk (kb super-blocks) against C tokens whose chunks
 * start at x (rows ldx bytes apart): y[c * ldy] (+)= the partial dots. */
TL_AVX512_INLINE void kdot(const kdec *d, int kb, const uint8_t *x, size_t ldx, float *y,
                           size_t ldy, bool add, const int C, const bool fold) {
    __m512 acc[KC];
    const tl_block_q8_K *xs[KC];
    for (int c = 0; c < C; c++) {
        acc[c] = _mm512_setzero_ps();
        xs[c] = (const tl_block_q8_K *)(x + (size_t)c * ldx);
    }
    for (int s = 0; s < kb; s++) {
        __m512i isum[KC];
        for (int c = 0; c < C; c++) isum[c] = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) {
            const __m512i u = _mm512_load_si512(&d[s].u[g]);
            const __m512i sc = _mm512_load_si512(&d[s].sc[g]);
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) {
                const __m512i yv = _mm512_loadu_si512(xs[c][s].qs + 64 * g);
                isum[c] = _mm512_dpwssd_epi32(isum[c], _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, yv), sc);
            }
        }
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            const __m512i cm = _mm512_zextsi256_si512(_mm256_madd_epi16(
                d[s].coef, _mm256_loadu_si256((const __m256i *)xs[c][s].bsums)));
            const float xd = xs[c][s].d;
            if (fold) {
                acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(isum[c], cm)),
                                         _mm512_set1_ps(d[s].d * xd), acc[c]);
            } else {
                acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[c]), _mm512_set1_ps(d[s].d * xd), acc[c]);
                acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(cm), _mm512_set1_ps(d[s].dm * xd), acc[c]);
            }
        }
    }
    for (int c = 0; c < C; c++) {
        const float v = tl_avx512_hsum(acc[c]);
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
    void tl_avx512_gemm_##T(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy,           \
                            const void *vw, size_t ldw, const void *vx, size_t ldx) {          \
        TL_TILE_KQ_GEMM_BODY(BT, kdec, KR, KSB, KC, dec_##T, kdot_##T##_c, kdot_##T##_1)      \
    }                                                                                         \
    void tl_avx512_vec_dot_##T(int64_t n, float *s, const void *w, const void *x) {           \
        tl_avx512_gemm_##T(n, 1, 1, s, 0, w, 0, x, 0);                                        \
    }

// W (nr, n) q4_K @ X^T (nc, n) q8_K -> y[c * ldy + r]; vec_dot: w (n,) . x (n,) -> *s
KQ_DEFINE(q4_K, tl_block_q4_K, false)
// W (nr, n) q5_K @ X^T (nc, n) q8_K -> y[c * ldy + r]; vec_dot: w (n,) . x (n,) -> *s
KQ_DEFINE(q5_K, tl_block_q5_K, false)
// W (nr, n) q6_K @ X^T (nc, n) q8_K -> y[c * ldy + r]; vec_dot: w (n,) . x (n,) -> *s
KQ_DEFINE(q6_K, tl_block_q6_K, true)
