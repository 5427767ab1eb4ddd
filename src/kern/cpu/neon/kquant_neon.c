/* kquant_neon.c — NEON (dotprod) dot products and tiles for the K-quants
 * (Q2_K..Q6_K) against Q8_K activations.
 *
 * Every K-quant super-block (256 weights) is first decoded into one common
 * form, kdec: 16 groups of 16 signed quants (int8) aligned with the
 * activation bytes, an int32 scale per group (per pair of groups for
 * Q4_K/Q5_K, whose sub-blocks are 32 long), and, for the types with
 * sub-block mins (Q2_K, Q4_K, Q5_K), 16 int16 coefficients on q8_K's bsums.
 * The quant offsets of Q3_K (-4) and Q6_K (-32) are folded into the signed
 * quants, so those types need no bsums. Then per super-block
 *   sum = d * dx * sum_g sc_g (q_g . y_g)  +  dm * dx * (coef . bsums)
 * with exact int32 arithmetic inside the block (vdotq_s32 is exact for
 * every int8 pair, -128 included; the largest block sum, Q6_K's
 * 256 * 32 * 128 * 128, is below 2^31), and float only for the two scale
 * products, accumulated in 4 lanes. The float order differs from the
 * reference's (8 lanes of element index mod 8), within the tests' bound.
 *
 * Decoding costs about as much as a dot product, so a row is decoded once,
 * KSB super-blocks at a time into a small stack buffer, and reused for every
 * token of the tile; KR rows are decoded together so each activation chunk
 * serves KR rows from L1. vec_dot is the 1 x 1 gemm, so a tile equals
 * vec_dot bit for bit. */
#include <stdbool.h>
#include <string.h>

#include "core/quant.h"
#include "kern/cpu/neon/neon.h"
#include "kern/cpu/tiles.h"

enum { KSB = 8, KR = 2, KC = 4 };

typedef struct kdec {
    int8x16_t q[16];  /* signed quants of elements 16g .. 16g+15 */
    int32_t sc[16];   /* scale of group g (pair types: of groups 2j, 2j+1 at j) */
    int16_t coef[16]; /* coefficient of bsums[j] (min types only) */
    float d, dm;      /* scale of the quant sum and of coef . bsums */
} kdec;

TL_NEON_INLINE uint8x16_t bit_to(uint8x16_t h, int bit, uint8_t val) {
    return vandq_u8(vtstq_u8(h, vdupq_n_u8((uint8_t)(1u << bit))), vdupq_n_u8(val));
}

TL_NEON_INLINE int8x16_t s8(uint8x16_t v) { return vreinterpretq_s8_u8(v); }

TL_NEON_INLINE void k4_scales(const uint8_t *scales, kdec *o) {
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        tl_get_scale_min_k4(j, scales, &sc, &m);
        o->sc[j] = sc;
        o->coef[2 * j] = o->coef[2 * j + 1] = m;
    }
}

TL_NEON_INLINE void dec_q4_K(const tl_block_q4_K *b, kdec *o) {
    k4_scales(b->scales, o);
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        /* qs[32c + l]: element 64c + l (low nibble), 64c + 32 + l (high) */
        const uint8x16_t a = vld1q_u8(b->qs + 32 * c), bb = vld1q_u8(b->qs + 32 * c + 16);
        o->q[4 * c + 0] = s8(vandq_u8(a, m4));
        o->q[4 * c + 1] = s8(vandq_u8(bb, m4));
        o->q[4 * c + 2] = s8(vshrq_n_u8(a, 4));
        o->q[4 * c + 3] = s8(vshrq_n_u8(bb, 4));
    }
    o->d = tl_neon_h2f(b->d);
    o->dm = -tl_neon_h2f(b->dmin);
}

TL_NEON_INLINE void dec_q5_K(const tl_block_q5_K *b, kdec *o) {
    k4_scales(b->scales, o);
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    const uint8x16_t h0 = vld1q_u8(b->qh), h1 = vld1q_u8(b->qh + 16);
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        /* bit 4 of element 32b + l is bit b of qh[l] */
        const uint8x16_t a = vld1q_u8(b->qs + 32 * c), bb = vld1q_u8(b->qs + 32 * c + 16);
        o->q[4 * c + 0] = s8(vorrq_u8(vandq_u8(a, m4), bit_to(h0, 2 * c, 0x10)));
        o->q[4 * c + 1] = s8(vorrq_u8(vandq_u8(bb, m4), bit_to(h1, 2 * c, 0x10)));
        o->q[4 * c + 2] = s8(vorrq_u8(vshrq_n_u8(a, 4), bit_to(h0, 2 * c + 1, 0x10)));
        o->q[4 * c + 3] = s8(vorrq_u8(vshrq_n_u8(bb, 4), bit_to(h1, 2 * c + 1, 0x10)));
    }
    o->d = tl_neon_h2f(b->d);
    o->dm = -tl_neon_h2f(b->dmin);
}

TL_NEON_INLINE void dec_q6_K(const tl_block_q6_K *b, kdec *o) {
    for (int j = 0; j < 16; j++) o->sc[j] = b->scales[j];
    const uint8x16_t m4 = vdupq_n_u8(0x0F), m30 = vdupq_n_u8(0x30);
    const int8x16_t off = vdupq_n_s8(32);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        /* per 16 lanes l: ql[l] holds +0 (low) / +64 (high), ql[l + 32]
         * +32 / +96, qh[l] their top 2 bits at shifts 0, 2, 4, 6 */
#pragma GCC unroll 2
        for (int k = 0; k < 2; k++) {
            const uint8x16_t la = vld1q_u8(ql + 16 * k), lb = vld1q_u8(ql + 32 + 16 * k);
            const uint8x16_t hh = vld1q_u8(qh + 16 * k);
            const uint8x16_t e0 = vorrq_u8(vandq_u8(la, m4), vandq_u8(vshlq_n_u8(hh, 4), m30));
            const uint8x16_t e1 = vorrq_u8(vandq_u8(lb, m4), vandq_u8(vshlq_n_u8(hh, 2), m30));
            const uint8x16_t e2 = vorrq_u8(vshrq_n_u8(la, 4), vandq_u8(hh, m30));
            const uint8x16_t e3 = vorrq_u8(vshrq_n_u8(lb, 4), vandq_u8(vshrq_n_u8(hh, 2), m30));
            o->q[8 * h + 0 + k] = vsubq_s8(s8(e0), off);
            o->q[8 * h + 2 + k] = vsubq_s8(s8(e1), off);
            o->q[8 * h + 4 + k] = vsubq_s8(s8(e2), off);
            o->q[8 * h + 6 + k] = vsubq_s8(s8(e3), off);
        }
    }
    o->d = tl_neon_h2f(b->d);
    o->dm = 0.0f;
}

TL_NEON_INLINE void dec_q3_K(const tl_block_q3_K *b, kdec *o) {
    int8_t sc[16];
    tl_q3_K_scales(b->scales, sc);
    for (int j = 0; j < 16; j++) o->sc[j] = sc[j];
    const uint8x16_t m3 = vdupq_n_u8(3);
    const int8x16_t off = vdupq_n_s8(4);
    const uint8x16_t hm0 = vld1q_u8(b->hmask), hm1 = vld1q_u8(b->hmask + 16);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const uint8x16_t a = vld1q_u8(b->qs + 32 * h), bb = vld1q_u8(b->qs + 32 * h + 16);
#pragma GCC unroll 4
        for (int s = 0; s < 4; s++) {
            /* element 128h + 32s + l: bits 2s of qs[32h + l], high bit
             * 4h + s of hmask[l]; q = (low | high << 2) - 4 */
            const int8x16_t sh = vdupq_n_s8((int8_t)(-2 * s));
            const int g = 4 * h + s;
            const uint8x16_t la = vandq_u8(vshlq_u8(a, sh), m3), lb = vandq_u8(vshlq_u8(bb, sh), m3);
            o->q[2 * g] = vsubq_s8(s8(vorrq_u8(la, bit_to(hm0, g, 4))), off);
            o->q[2 * g + 1] = vsubq_s8(s8(vorrq_u8(lb, bit_to(hm1, g, 4))), off);
        }
    }
    o->d = tl_neon_h2f(b->d);
    o->dm = 0.0f;
}

TL_NEON_INLINE void dec_q2_K(const tl_block_q2_K *b, kdec *o) {
    for (int j = 0; j < 16; j++) {
        o->sc[j] = b->scales[j] & 0xF;
        o->coef[j] = b->scales[j] >> 4;
    }
    const uint8x16_t m3 = vdupq_n_u8(3);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        const uint8x16_t a = vld1q_u8(b->qs + 32 * h), bb = vld1q_u8(b->qs + 32 * h + 16);
#pragma GCC unroll 4
        for (int s = 0; s < 4; s++) {
            /* element 128h + 32s + l: bits 2s of qs[32h + l] */
            const int8x16_t sh = vdupq_n_s8((int8_t)(-2 * s));
            o->q[8 * h + 2 * s] = s8(vandq_u8(vshlq_u8(a, sh), m3));
            o->q[8 * h + 2 * s + 1] = s8(vandq_u8(vshlq_u8(bb, sh), m3));
        }
    }
    o->d = tl_neon_h2f(b->d);
    o->dm = -tl_neon_h2f(b->dmin);
}

/* coef (16,) . bsums (16,) -> 4 int32 partial sums */
TL_NEON_INLINE int32x4_t mins_dot(const kdec *d, const int16_t *bsums) {
    const int16x8_t c0 = vld1q_s16(d->coef), c1 = vld1q_s16(d->coef + 8);
    const int16x8_t b0 = vld1q_s16(bsums), b1 = vld1q_s16(bsums + 8);
    int32x4_t m = vmull_s16(vget_low_s16(c0), vget_low_s16(b0));
    m = vmlal_high_s16(m, c0, b0);
    m = vmlal_s16(m, vget_low_s16(c1), vget_low_s16(b1));
    return vmlal_high_s16(m, c1, b1);
}

/* One decoded row chunk (kb super-blocks) against C tokens whose chunks
 * start at x (rows ldx bytes apart): y[c * ldy] (+)= the partial dots.
 * pair: one scale per two groups (Q4_K, Q5_K); mins: coef . bsums term. */
TL_NEON_INLINE void kdot(const kdec *d, int kb, const uint8_t *x, size_t ldx, float *y,
                         size_t ldy, bool add, const int C, const bool pair, const bool mins) {
    float32x4_t acc[KC];
    const tl_block_q8_K *xs[KC];
    const int32x4_t zero = vdupq_n_s32(0);
    for (int c = 0; c < C; c++) {
        acc[c] = vdupq_n_f32(0.0f);
        xs[c] = (const tl_block_q8_K *)(x + (size_t)c * ldx);
    }
    for (int s = 0; s < kb; s++) {
        int32x4_t isum[KC];
        for (int c = 0; c < C; c++) isum[c] = zero;
        if (pair) {
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                const int8x16_t qa = d[s].q[2 * j], qb = d[s].q[2 * j + 1];
                const int32_t sc = d[s].sc[j];
#pragma GCC unroll 4
                for (int c = 0; c < C; c++) {
                    const int8_t *yq = xs[c][s].qs + 32 * j;
                    const int32x4_t p = vdotq_s32(vdotq_s32(zero, qa, vld1q_s8(yq)), qb, vld1q_s8(yq + 16));
                    isum[c] = vmlaq_n_s32(isum[c], p, sc);
                }
            }
        } else {
#pragma GCC unroll 16
            for (int g = 0; g < 16; g++) {
                const int8x16_t q = d[s].q[g];
                const int32_t sc = d[s].sc[g];
#pragma GCC unroll 4
                for (int c = 0; c < C; c++) {
                    const int32x4_t p = vdotq_s32(zero, q, vld1q_s8(xs[c][s].qs + 16 * g));
                    isum[c] = vmlaq_n_s32(isum[c], p, sc);
                }
            }
        }
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            const float xd = xs[c][s].d;
            acc[c] = vfmaq_n_f32(acc[c], vcvtq_f32_s32(isum[c]), d[s].d * xd);
            if (mins)
                acc[c] = vfmaq_n_f32(acc[c], vcvtq_f32_s32(mins_dot(&d[s], xs[c][s].bsums)),
                                     d[s].dm * xd);
        }
    }
    for (int c = 0; c < C; c++) {
        const float v = vaddvq_f32(acc[c]);
        y[(size_t)c * ldy] = add ? y[(size_t)c * ldy] + v : v;
    }
}

#define KQ_DEFINE(T, BT, PAIR, MINS)                                                           \
    static void kdot_##T##_c(const kdec *d, int kb, const uint8_t *x, size_t ldx, float *y,    \
                             size_t ldy, bool add) {                                          \
        kdot(d, kb, x, ldx, y, ldy, add, KC, PAIR, MINS);                                     \
    }                                                                                         \
    static void kdot_##T##_1(const kdec *d, int kb, const uint8_t *x, float *y, bool add) {   \
        kdot(d, kb, x, 0, y, 0, add, 1, PAIR, MINS);                                          \
    }                                                                                         \
    void tl_neon_gemm_##T(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy,             \
                          const void *vw, size_t ldw, const void *vx, size_t ldx) {            \
        TL_TILE_KQ_GEMM_BODY(BT, kdec, KR, KSB, KC, dec_##T, kdot_##T##_c, kdot_##T##_1)      \
    }                                                                                         \
    void tl_neon_vec_dot_##T(int64_t n, float *s, const void *w, const void *x) {             \
        tl_neon_gemm_##T(n, 1, 1, s, 0, w, 0, x, 0);                                          \
    }

// W (nr, n) q2_K @ X^T (nc, n) q8_K -> y[c * ldy + r]; vec_dot: w (n,) . x (n,) -> *s
KQ_DEFINE(q2_K, tl_block_q2_K, false, true)
// W (nr, n) q3_K @ X^T (nc, n) q8_K -> y[c * ldy + r]; vec_dot: w (n,) . x (n,) -> *s
KQ_DEFINE(q3_K, tl_block_q3_K, false, false)
// W (nr, n) q4_K @ X^T (nc, n) q8_K -> y[c * ldy + r]; vec_dot: w (n,) . x (n,) -> *s
KQ_DEFINE(q4_K, tl_block_q4_K, true, true)
// W (nr, n) q5_K @ X^T (nc, n) q8_K -> y[c * ldy + r]; vec_dot: w (n,) . x (n,) -> *s
KQ_DEFINE(q5_K, tl_block_q5_K, true, true)
// W (nr, n) q6_K @ X^T (nc, n) q8_K -> y[c * ldy + r]; vec_dot: w (n,) . x (n,) -> *s
KQ_DEFINE(q6_K, tl_block_q6_K, false, false)
