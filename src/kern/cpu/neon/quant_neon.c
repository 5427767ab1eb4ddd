/* quant_neon.c — NEON (dotprod) dot products and tiles for the 32-element
 * block types (Q4_0, Q4_1, Q5_0, Q5_1 against Q8_0/Q8_1 activations, Q8_0
 * against Q8_0).
 *
 * A weight block is decoded once to 32 signed bytes, the offset (8 or 16)
 * already subtracted (q4_0: -8..7, q5_0: -16..15; q4_1/q5_1 keep 0..31),
 * so one vdotq_s32 per 16 bytes gives exact int32 sums for every activation
 * byte, -128 included. vdotq's lane l sums elements 4l..4l+3 of its 16
 * bytes, so the two halves of a block give exactly the 8 lane sums of the
 * reference (kern_ref.c block_lanes); each lane then accumulates
 * fma(d_w * d_x, lane, acc) and the lanes are reduced in the reference's
 * order. The results are therefore bit-identical to the reference, not
 * merely close.
 *
 * Tiles: R weight rows x C tokens share each decoded weight block (C uses)
 * and each activation block (R uses). gemm_T walks the (nr x nc) tile with
 * full R x C tiles, then R x 1, then 1 x 1 for the edges; every output
 * takes the same operations in the same order whichever tile computes it,
 * so a tile equals vec_dot bit for bit. */
#include <math.h>
#include <string.h>

#include "core/quant.h"
#include "kern/cpu/neon/neon.h"
#include "kern/cpu/tiles.h"

/* ---- per-type decoding: weight block -> 32 signed quants (q - offset) --- */

/* 16 nibble bytes -> elements 0..15 (low nibbles), 16..31 (high) */
TL_NEON_INLINE int8x16x2_t nib32(const uint8_t *qs) {
    const uint8x16_t v = vld1q_u8(qs);
    int8x16x2_t r;
    r.val[0] = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F)));
    r.val[1] = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
    return r;
}

/* the 32 bits of qh (little-endian) -> 32 bytes, 0x10 where the bit is set */
TL_NEON_INLINE int8x16x2_t bit4_32(const uint8_t *qh) {
    uint32_t h;
    memcpy(&h, qh, 4);
    const uint8x16_t rep = vreinterpretq_u8_u32(vdupq_n_u32(h));
    static const uint8_t idx_lo[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1 };
    static const uint8_t idx_hi[16] = { 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3 };
    static const uint8_t bit[16] = { 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128 };
    const uint8x16_t bm = vld1q_u8(bit), b4 = vdupq_n_u8(0x10);
    int8x16x2_t r;
    r.val[0] = vreinterpretq_s8_u8(vandq_u8(vtstq_u8(vqtbl1q_u8(rep, vld1q_u8(idx_lo)), bm), b4));
    r.val[1] = vreinterpretq_s8_u8(vandq_u8(vtstq_u8(vqtbl1q_u8(rep, vld1q_u8(idx_hi)), bm), b4));
    return r;
}

TL_NEON_INLINE int8x16x2_t sub_off(int8x16x2_t q, int off) {
    q.val[0] = vsubq_s8(q.val[0], vdupq_n_s8((int8_t)off));
    q.val[1] = vsubq_s8(q.val[1], vdupq_n_s8((int8_t)off));
    return q;
}

TL_NEON_INLINE int8x16x2_t or32(int8x16x2_t a, int8x16x2_t b) {
    a.val[0] = vorrq_s8(a.val[0], b.val[0]);
    a.val[1] = vorrq_s8(a.val[1], b.val[1]);
    return a;
}

TL_NEON_INLINE int8x16x2_t dec_q4_0(const tl_block_q4_0 *b) { return sub_off(nib32(b->qs), 8); }
TL_NEON_INLINE int8x16x2_t dec_q4_1(const tl_block_q4_1 *b) { return nib32(b->qs); }
TL_NEON_INLINE int8x16x2_t dec_q5_0(const tl_block_q5_0 *b) {
    return sub_off(or32(nib32(b->qs), bit4_32(b->qh)), 16);
}
TL_NEON_INLINE int8x16x2_t dec_q5_1(const tl_block_q5_1 *b) {
    return or32(nib32(b->qs), bit4_32(b->qh));
}
TL_NEON_INLINE int8x16x2_t dec_q8_0(const tl_block_q8_0 *b) { return vld1q_s8_x2(b->qs); }

/* Tile: W (R rows of nb blocks) @ X^T (C rows) -> y[c * ldy + r].
 * WT/XT: weight / activation block types; MIN: the type has a min m
 * (second f16 of the block), entering as fma(m, s_x) with q8_1's s. */
#define Q32_TILE(NAME, WT, XT, R, C, MIN, DEC)                                                \
    static void NAME(int64_t nb, float *y, size_t ldy, const uint8_t *w, size_t ldw,          \
                     const uint8_t *x, size_t ldx) {                                         \
        float32x4_t lo[R][C], hi[R][C];                                                      \
        float accm[R][C];                                                                    \
        for (int r = 0; r < R; r++)                                                          \
            for (int c = 0; c < C; c++)                                                      \
                lo[r][c] = hi[r][c] = vdupq_n_f32(0.0f), accm[r][c] = 0.0f;                  \
        const int32x4_t zero = vdupq_n_s32(0);                                               \
        for (int64_t b = 0; b < nb; b++) {                                                   \
            int8x16x2_t yv[C];                                                               \
            float dy[C], sy[C];                                                              \
            _Pragma("GCC unroll 8") for (int c = 0; c < C; c++) {                            \
                const XT *xb = (const XT *)(x + (size_t)c * ldx) + b;                        \
                yv[c] = vld1q_s8_x2(xb->qs);                                                 \
                dy[c] = tl_neon_h2f(xb->d);                                                  \
                sy[c] = MIN ? tl_neon_h2f(((const uint16_t *)xb)[1]) : 0.0f;                 \
            }                                                                                \
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                            \
                const WT *wb = (const WT *)(w + (size_t)r * ldw) + b;                        \
                const int8x16x2_t q = DEC(wb);                                               \
                const float dw = tl_neon_h2f(wb->d);                                         \
                const float mw = MIN ? tl_neon_h2f(((const uint16_t *)wb)[1]) : 0.0f;        \
                _Pragma("GCC unroll 8") for (int c = 0; c < C; c++) {                        \
                    const int32x4_t pl = vdotq_s32(zero, q.val[0], yv[c].val[0]);            \
                    const int32x4_t ph = vdotq_s32(zero, q.val[1], yv[c].val[1]);            \
                    const float d = dw * dy[c];                                              \
                    lo[r][c] = vfmaq_n_f32(lo[r][c], vcvtq_f32_s32(pl), d);                  \
                    hi[r][c] = vfmaq_n_f32(hi[r][c], vcvtq_f32_s32(ph), d);                  \
                    if (MIN) accm[r][c] = fmaf(mw, sy[c], accm[r][c]);                       \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
        for (int r = 0; r < R; r++)                                                          \
            for (int c = 0; c < C; c++)                                                      \
                y[(size_t)c * ldy + r] = tl_neon_hsum8_movehl(lo[r][c], hi[r][c]) + accm[r][c]; \
    }

/* Tile shapes: 2 rows x 4 tokens keeps 16 accumulators, 8 activation and
 * 2 weight registers live (28 of 32); single-token (decode) tiles share one
 * activation block across 4 rows. Not tuned on hardware yet. */
#define Q32_DEFINE(T, WT, XT, MIN)                                                            \
    Q32_TILE(tile_##T##_2x4, WT, XT, 2, 4, MIN, dec_##T)                                      \
    Q32_TILE(tile_##T##_4x1, WT, XT, 4, 1, MIN, dec_##T)                                      \
    Q32_TILE(tile_##T##_1x1, WT, XT, 1, 1, MIN, dec_##T)                                      \
    void tl_neon_vec_dot_##T(int64_t n, float *s, const void *w, const void *x) {             \
        tile_##T##_1x1(n / 32, s, 0, w, 0, x, 0);                                             \
    }                                                                                        \
    void tl_neon_gemm_##T(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy,            \
                          const void *w, size_t ldw, const void *x, size_t ldx) {             \
        tl_tile_walk(n / 32, nr, nc, y, ldy, w, ldw, x, ldx, 2, 4, tile_##T##_2x4, 4,        \
                     tile_##T##_4x1, tile_##T##_1x1);                                                                \
    }

// w (n,) q4_0 . x (n,) q8_0 -> *s ; W (nr, n) @ X^T (nc, n) -> y   (n % 32 == 0)
Q32_DEFINE(q4_0, tl_block_q4_0, tl_block_q8_0, 0)
// w (n,) q4_1 . x (n,) q8_1 -> *s ; W (nr, n) @ X^T (nc, n) -> y   (n % 32 == 0)
Q32_DEFINE(q4_1, tl_block_q4_1, tl_block_q8_1, 1)
// w (n,) q5_0 . x (n,) q8_0 -> *s ; W (nr, n) @ X^T (nc, n) -> y   (n % 32 == 0)
Q32_DEFINE(q5_0, tl_block_q5_0, tl_block_q8_0, 0)
// w (n,) q5_1 . x (n,) q8_1 -> *s ; W (nr, n) @ X^T (nc, n) -> y   (n % 32 == 0)
Q32_DEFINE(q5_1, tl_block_q5_1, tl_block_q8_1, 1)
// w (n,) q8_0 . x (n,) q8_0 -> *s ; W (nr, n) @ X^T (nc, n) -> y   (n % 32 == 0)
Q32_DEFINE(q8_0, tl_block_q8_0, tl_block_q8_0, 0)
