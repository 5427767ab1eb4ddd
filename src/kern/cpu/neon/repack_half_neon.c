/* repack_half_neon.c — F16 and BF16 weights repacked 4 rows to a group
 * (the kern.h repack slot), and the NEON tiles over them: one set of
 * tiles, whose weight conversion is the type's. The port of
 * repack_half_avx2.c's design to NEON's registers.
 *
 * Why: without a repack, BF16 had no NEON gemm at all (the driver looped
 * vec_dot over every row and token), and gemm_f16 (kern_neon.c) converts
 * both operands at every step and reduces each output across lanes. Here a
 * float32x4 holds one row per lane, so
 *   - the activations come as f32 rows that carry f16 (bf16) values (the
 *     slot's act form, tl_neon_act_f16r / tl_neon_act_bf16r, made once per
 *     token and product), four elements of a token in one register, and
 *     enter each FMA by lane (vfmaq_laneq_f32): no broadcast at all;
 *   - a weight vector, 4 rows' element k, is converted once (fcvtl, or a
 *     widening shift for bf16, the top half of an f32) and serves every
 *     token of the tile;
 *   - lane i of an accumulator is row r0 + i's output: it is loaded and
 *     stored as 4 floats, nothing is reduced across lanes.
 * Each output sums its products in k order in one f32 lane: it differs
 * from the reference (double sums) by float rounding only (an f16 x f16
 * product is exact in f32, a bf16 x bf16 one too).
 *
 * Packed groups of 4 rows, the same for both types: for each element k =
 * 0 .. n-1, the 4 rows' 16-bit values, 8 bytes at 8k; a row is 2n bytes,
 * any n. A 16-byte load is elements (k, k+1) of the group; a 64-byte line
 * holds 8 elements.
 *
 * Tiles: G groups (4 G rows) x C tokens of accumulators; of the 32 q
 * registers, G C accumulators, C activation vectors (4 elements each) and
 * 2 G converted weight vectors with the G loads they come from. Prefill
 * runs 2 groups x CT = 6 tokens (24 registers; 2 conversions per 12 FMAs),
 * the last token tile narrower. One or two tokens (decode) take 4 groups,
 * and prefetch the weights, which they stream once from DRAM.
 *
 * Speed: untimed (tested under qemu only; no ARM machine). Instructions
 * per multiply-add in the inner loops (aarch64-linux-gnu-objdump -d of
 * gcc 12 -O2; an fmla is 4):
 *            prefill                               decode (1 token)
 *   F16      0.69 (f16_tile_4x4) -> 0.37 (2 x 6)   1.19 (f16_tile_4x1) -> 0.73-0.92 (4 x 1)
 *   BF16     1.38 (vec_dot_bf16) -> 0.37 (2 x 6)   1.38 -> 0.73-0.92
 * (decode: the loop with and without its prefetch; the old tiles' final
 * cross-lane sums not counted). Decode converts a weight vector per fmla;
 * it streams from DRAM, where that should not be what limits it. */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/fp16.h"
#include "kern/cpu/neon/neon.h"
#include "kern/cpu/tiles.h"

enum {
    CT = TL_HALF_CT,  /* tokens per prefill tile (of 2 groups), 6 */
    GD = TL_HALF_GD,  /* groups per tile of 1 or 2 tokens, 4 */
    PF_AHEAD = 1024,  /* decode: weight bytes prefetched ahead of each group's stream */
};
static_assert(4 * sizeof(uint16_t) == 8, "an element of a group: 4 rows' 16-bit values");
/* The walk over tiles is tl_tile_half_gemm (tiles.h), as AVX2's: its K
 * segments are whole lines (8 elements) of every group. */

/* 4 rows' 16-bit values -> floats: f16 by fcvtl, bf16 by a shift into the
 * top half. lo: the low 4 of v (element k), hi: the high 4 (element k+1). */
TL_NEON_INLINE float32x4_t cvt_lo(uint16x8_t v, const bool bf) {
    return bf ? vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(v), 16))
              : vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(v)));
}
TL_NEON_INLINE float32x4_t cvt_hi(uint16x8_t v, const bool bf) {
    return bf ? vreinterpretq_f32_u32(vshll_high_n_u16(v, 16))
              : vcvt_high_f32_f16(vreinterpretq_f16_u16(v));
}
TL_NEON_INLINE float32x4_t cvt4(uint16x4_t v, const bool bf) {
    return bf ? vreinterpretq_f32_u32(vshll_n_u16(v, 16)) : vcvt_f32_f16(vreinterpret_f16_u16(v));
}

// packed bytes per row of n elements (F16 and BF16 alike): the row size
size_t tl_neon_row_size_half_x4(int64_t n) { return (size_t)n * sizeof(uint16_t); }

/* W (nr, n) f16 or bf16, rows ldw bytes apart -> dst (nr / 4 groups of n x
 * 4 values). Eight elements a step: st4 interleaves the 4 rows' next 8. */
void tl_neon_pack_half_x4(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    for (int64_t g0 = 0; g0 + 4 <= nr; g0 += 4) {
        uint16_t *d = (uint16_t *)dst + (size_t)g0 * (size_t)n;
        const uint8_t *src = (const uint8_t *)w + (size_t)g0 * ldw;
        int64_t k = 0;
        for (; k + 8 <= n; k += 8) {
            uint16x8x4_t v;
            v.val[0] = vld1q_u16((const uint16_t *)(src + 0 * ldw) + k);
            v.val[1] = vld1q_u16((const uint16_t *)(src + 1 * ldw) + k);
            v.val[2] = vld1q_u16((const uint16_t *)(src + 2 * ldw) + k);
            v.val[3] = vld1q_u16((const uint16_t *)(src + 3 * ldw) + k);
            vst4q_u16(d + 4 * k, v);
        }
        for (; k < n; k++)
            for (int i = 0; i < 4; i++) memcpy(d + 4 * k + i, src + (size_t)i * ldw + 2 * k, 2);
    }
}

/* acc[g][c] += w[g] * lane L of xv[c], g < G, c < C (the lane a literal:
 * vfmaq_laneq_f32 wants a constant) */
#define FMA_LANE(wv, L)                                                                           \
    do {                                                                                          \
        _Pragma("GCC unroll 6") for (int c = 0; c < C; c++)                                       \
            _Pragma("GCC unroll 4") for (int g = 0; g < G; g++)                                   \
                acc[g][c] = vfmaq_laneq_f32(acc[g][c], (wv)[g], xv[c], L);                        \
    } while (0)

/* G groups x C tokens over elements [k0, k0 + len):
 *   y[c * ldy + 4 g + i] (+)= sum_k w[g][k][i] * xf[c * S + k - k0]
 * (first: start from 0). w: group 0 at element k0, groups gs bytes apart;
 * xf: token 0's element k0, tokens S floats apart; bf: BF16 values. */
TL_NEON_INLINE void tile(int64_t len, bool first, float *y, size_t ldy, const uint8_t *w, size_t gs,
                         size_t skip, const float *xf, int64_t S, const int G, const int C,
                         const bool bf) {
    float32x4_t acc[GD][CT];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
#pragma GCC unroll 6
        for (int c = 0; c < C; c++)
            acc[g][c] = first ? vdupq_n_f32(0.0f) : vld1q_f32(y + (size_t)c * ldy + 4 * g);
    int64_t k = 0;
    /* four elements a turn (32 bytes of each group) */
    for (; k + 4 <= len; k += 4) {
        if (C <= 2 && k % 8 == 0) {
            /* decode streams each weight byte once, from DRAM: each group's
             * line PF_AHEAD bytes ahead; past the segment's end, where the
             * stream goes on (repack_half_avx2.c's tile) */
            const size_t run = 8 * (size_t)len;
            const uint8_t *pw = tl_tile_pf_target(w, 8 * (size_t)k, PF_AHEAD, run, w + run + skip);
#pragma GCC unroll 4
            for (int g = 0; g < G; g++) __builtin_prefetch(pw + (size_t)g * gs);
        }
        float32x4_t xv[CT];
#pragma GCC unroll 6
        for (int c = 0; c < C; c++) xv[c] = vld1q_f32(xf + c * S + k);
        float32x4_t w0[GD], w1[GD];
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            const uint16x8_t v = vld1q_u16((const uint16_t *)(w + (size_t)g * gs) + 4 * k);
            w0[g] = cvt_lo(v, bf);
            w1[g] = cvt_hi(v, bf);
        }
        FMA_LANE(w0, 0);
        FMA_LANE(w1, 1);
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            const uint16x8_t v = vld1q_u16((const uint16_t *)(w + (size_t)g * gs) + 4 * k + 8);
            w0[g] = cvt_lo(v, bf);
            w1[g] = cvt_hi(v, bf);
        }
        FMA_LANE(w0, 2);
        FMA_LANE(w1, 3);
    }
    for (; k < len; k++) {
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            const float32x4_t wv = cvt4(vld1_u16((const uint16_t *)(w + (size_t)g * gs) + 4 * k), bf);
#pragma GCC unroll 6
            for (int c = 0; c < C; c++) acc[g][c] = vfmaq_n_f32(acc[g][c], wv, xf[c * S + k]);
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
#pragma GCC unroll 6
        for (int c = 0; c < C; c++) vst1q_f32(y + (size_t)c * ldy + 4 * g, acc[g][c]);
}
#undef FMA_LANE

static_assert(CT == 6 && GD == 4, "tiles of 1 and 2 groups per token count 1..CT, of GD for 1..2");
TL_HALF_TILES(f16, false)
TL_HALF_TILES(bf16, true)

// W (nr, n) f16x4 @ X^T (nc, n) (tl_neon_act_f16r rows) -> y[c * ldy + r]
void tl_neon_gemm_f16x4(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                        size_t ldw, const void *x, size_t ldx) {
    tl_tile_half_gemm(4, n, nr, nc, y, ldy, w, ldw, x, ldx, &tiles_f16);
}

// W (nr, n) bf16x4 @ X^T (nc, n) (tl_neon_act_bf16r rows) -> y[c * ldy + r]
void tl_neon_gemm_bf16x4(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *x, size_t ldx) {
    tl_tile_half_gemm(4, n, nr, nc, y, ldy, w, ldw, x, ldx, &tiles_bf16);
}

// x (n,) f32 -> y (n,) f32 rounded to f16 (to nearest even), as from_float_f16 then
// back: the activations of tl_neon_gemm_f16x4 (the F16 slot's act form)
void tl_neon_act_f16r(const float *x, void *vy, int64_t n) {
    float *y = vy;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vcvt_f32_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    for (; i < n; i++) y[i] = tl_f16_to_f32(tl_f32_to_f16(x[i]));
}

/* x (n,) f32 -> y (n,) f32 rounded to bf16 (to nearest even, NaNs made
 * quiet), as the reference's from_float_bf16 then back: the activations of
 * tl_neon_gemm_bf16x4 (the BF16 slot's act form) */
void tl_neon_act_bf16r(const float *x, void *vy, int64_t n) {
    float *y = vy;
    const uint32x4_t hi = vdupq_n_u32(0xFFFF0000u), one = vdupq_n_u32(1), half = vdupq_n_u32(0x7FFF),
                     abs = vdupq_n_u32(0x7FFFFFFFu), inf = vdupq_n_u32(0x7F800000u),
                     quiet = vdupq_n_u32(0x00400000u);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32x4_t u = vreinterpretq_u32_f32(vld1q_f32(x + i));
        const uint32x4_t odd = vandq_u32(vshrq_n_u32(u, 16), one);
        const uint32x4_t r = vandq_u32(vaddq_u32(u, vaddq_u32(half, odd)), hi);
        const uint32x4_t nan = vcgtq_u32(vandq_u32(u, abs), inf);
        const uint32x4_t q = vandq_u32(vorrq_u32(u, quiet), hi);
        vst1q_f32(y + i, vreinterpretq_f32_u32(vbslq_u32(nan, q, r)));
    }
    for (; i < n; i++) y[i] = tl_bf16_to_f32(tl_f32_to_bf16(x[i]));
}
