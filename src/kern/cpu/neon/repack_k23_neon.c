/* repack_k23_neon.c — Q2_K and Q3_K weights repacked 4 rows to a group
 * (the kern.h repack slot), and the NEON dotprod tiles over them, on the
 * driver and helpers of repack_x4.h. The NEON counterpart of
 * repack_k23_avx2.c.
 *
 * Why: their row-major path (kquant_neon.c) decodes each super-block of a
 * row into a staging form (16 vectors and 16 scales) and reuses it across
 * a tile's tokens; one token (decode) pays that whole decode for one use.
 * Here one row lies in each 32-bit lane and the quants meet the
 * activations straight from the packed bytes, by sdot by lane.
 *
 * Per group and super-block (256 elements of 4 rows):
 *   Q2_K (336 bytes, the 4 blocks): d[4], dmin[4]; sm[k][i], row i's scale
 *     byte of sub-block k (scale | min << 4), as stored; then the quants.
 *   Q3_K (456 bytes; the 4 blocks are 440): d[4]; sc[k][i], row i's signed
 *     scale of sub-block k, unpacked; the quants; hm[g]: row i's
 *     hmask[4g .. 4g+3] at bytes 4i .. 4i+3, inverted.
 *   The quants, 16 chunks of 16 bytes: chunk (h, g) holds row i's
 *   qs[32h + 4g .. 32h + 4g + 3] at bytes 4i .. 4i+3. Bits 2s, 2s+1 of its
 *   byte t are element 128h + 32s + 4g + t, of sub-block 8h + 2s + g / 4;
 *   Q3_K's third bit of that element is bit 4h + s of hm[g]'s byte at the
 *   same place (as hmask's, which is set for +0 and clear for -4).
 * So the 4 chunks g = 4 half + j (j < 4) of step (h, s) are sub-block
 * 8h + 2s + half, and meet lane j of the 16 activation bytes at 128h + 32s
 * + 16 half.
 *
 * Arithmetic, per row lane:
 *   Q2_K: u = the 2 bits, 0..3 (a shift and an and); per sub-block the
 *     sums of 4 sdots (<= 16 * 3 * 128) times its scale (the low nibble)
 *     by mla, in int32; the mins' sum_k m_k ysum_k (q8_K's bsums, the high
 *     nibbles) by smlal; acc += isum d dy - msum dmin dy.
 *   Q3_K: 32 q, q = u + 4 hb - 4 in -4..3, as one signed byte: u shifted
 *     to bits 5-6 under bit 7 = not hb (the stored inverted bit) by a
 *     shift-right-and-insert, then the low bits cleared: 32 u - 128 for
 *     hb = 0, 32 u for hb = 1. No sum of the activations is needed; the
 *     1/32 goes into dy (a power of two: exact). Per sub-block |sum| <=
 *     16 * 128 * 128 = 2^18, times |scale| <= 32, 16 sub-blocks: < 2^28,
 *     exact in int32 (converted to float once per super-block).
 *
 * Speed: untimed (tested under qemu only; no ARM machine); instruction
 * counts in repack_neon.c's header. */
#include <assert.h>
#include <stddef.h>
#include <string.h>

#include "core/quant.h"
#include "kern/cpu/neon/repack_x4.h"

typedef struct {
    uint16_t d[4], dmin[4];
    uint8_t sm[16][4];
    uint8_t qs[2][8][16];
} blk_q2_Kx4;
static_assert(sizeof(blk_q2_Kx4) == 4 * sizeof(tl_block_q2_K), "q2_Kx4 is 4 q2_K blocks");

typedef struct {
    uint16_t d[4];
    int8_t sc[16][4];
    uint8_t qs[2][8][16];
    uint8_t hm[8][16];
} blk_q3_Kx4;
static_assert(sizeof(blk_q3_Kx4) == 456, "q3_Kx4 layout");

// packed bytes per row of n elements (n % 256 == 0)
size_t tl_neon_row_size_q2_Kx4(int64_t n) { return (size_t)(n / TL_QK_K) * sizeof(tl_block_q2_K); }
size_t tl_neon_row_size_q3_Kx4(int64_t n) { return (size_t)(n / TL_QK_K) * sizeof(blk_q3_Kx4) / 4; }

// block b of 4 q2_K (q3_K) rows -> one packed block (tiles.h's row packers)
static void pack_blk_q2_K(void *vo, const uint8_t *const row[4], int64_t b) {
    blk_q2_Kx4 *out = vo;
    for (int i = 0; i < 4; i++)
        tl_tile_pack_q2_K_row(4, i, (const tl_block_q2_K *)row[i] + b, out->d, out->dmin, out->sm[0],
                              out->qs[0][0]);
}
static void pack_blk_q3_K(void *vo, const uint8_t *const row[4], int64_t b) {
    blk_q3_Kx4 *out = vo;
    for (int i = 0; i < 4; i++)
        tl_tile_pack_q3_K_row(4, i, (const tl_block_q3_K *)row[i] + b, true, out->d, out->sc[0],
                              out->qs[0][0], out->hm[0]);
}

// W (nr, n) q2_K (q3_K), rows ldw bytes apart -> dst (nr / 4 groups of n / 256 packed blocks)
void tl_neon_pack_q2_Kx4(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK_K, nr, 4, sizeof(blk_q2_Kx4), pack_blk_q2_K);
}
void tl_neon_pack_q3_Kx4(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK_K, nr, 4, sizeof(blk_q3_Kx4), pack_blk_q3_K);
}

/* per super-block: the CT tokens' scales (Q3_K's times 1/32) and their 16
 * sub-block sums (q8_K's bsums; Q2_K's mins term) */
typedef struct {
    float d[CT];
    int16_t ys[CT][16];
} act_k23;

static void prep_k23(uint8_t *a, const uint8_t *x, size_t ldx, int nc, int64_t b0, int64_t nb,
                     const bool q3) {
    act_k23 *o = (act_k23 *)a;
    for (int c = 0; c < nc; c++) {
        const tl_block_q8_K *xb = (const tl_block_q8_K *)(x + (size_t)c * ldx) + b0;
        for (int64_t b = 0; b < nb; b++) {
            o[b].d[c] = q3 ? xb[b].d * 0x1p-5f : xb[b].d;
            if (!q3) memcpy(o[b].ys[c], xb[b].bsums, sizeof o[b].ys[c]);
        }
    }
}
static void prep_q2_K(uint8_t *a, const uint8_t *x, size_t ldx, int nc, int64_t b0, int64_t nb) {
    prep_k23(a, x, ldx, nc, b0, nb, false);
}
static void prep_q3_K(uint8_t *a, const uint8_t *x, size_t ldx, int nc, int64_t b0, int64_t nb) {
    prep_k23(a, x, ldx, nc, b0, nb, true);
}

/* Chunk v's quants of step (h, s) as signed bytes: Q2_K u; Q3_K 32 q from
 * u and the inverted third bit in hm (the chunk's hm bytes). */
TL_NEON_INLINE int8x16_t k23_quants(uint8x16_t v, uint8x16_t hm, int h, int s, const bool q3) {
    if (!q3) return s8(vandq_u8(vshlq_u8(v, vdupq_n_s8((int8_t)(-2 * s))), vdupq_n_u8(3)));
    const uint8x16_t u = vshlq_u8(v, vdupq_n_s8((int8_t)(6 - 2 * s)));      /* u at bits 6-7 */
    const uint8x16_t b = vshlq_u8(hm, vdupq_n_s8((int8_t)(7 - 4 * h - s))); /* not hb at bit 7 */
    return s8(vandq_u8(vsriq_n_u8(b, u, 1), vdupq_n_u8(0xE0)));
}

/* Sub-block k's scales of the 4 rows as int32: Q3_K's signed bytes, Q2_K's
 * low nibbles (t: the 16 scale bytes of sub-blocks 4 (k / 4) ..) */
TL_NEON_INLINE int32x4_t k23_scale(uint8x16_t t, int k, const bool q3) {
    if (q3) {
        const int16x8_t h = (k & 2) ? vmovl_high_s8(vreinterpretq_s8_u8(t))
                                    : vmovl_s8(vget_low_s8(vreinterpretq_s8_u8(t)));
        return (k & 1) ? vmovl_high_s16(h) : vmovl_s16(vget_low_s16(h));
    }
    return widen_u8_sub(vandq_u8(t, vdupq_n_u8(0x0F)), k);
}

/* one group x C tokens of Q2_K (q3: Q3_K), as the other K tiles */
TL_NEON_INLINE void tile_k23(const bool q3, const int C, int64_t b0, int64_t nb, bool first,
                             float *y, size_t ldy, const uint8_t *w, const uint8_t *x, size_t ldx,
                             const uint8_t *a, int ct) {
    const size_t blk = q3 ? sizeof(blk_q3_Kx4) : sizeof(blk_q2_Kx4);
    const size_t qs_off = q3 ? offsetof(blk_q3_Kx4, qs) : offsetof(blk_q2_Kx4, qs);
    const size_t sc_off = q3 ? offsetof(blk_q3_Kx4, sc) : offsetof(blk_q2_Kx4, sm);
    float32x4_t acc[CT];
#pragma GCC unroll 4
    for (int c = 0; c < C; c++) acc[c] = acc_init(first, y + (size_t)c * ldy);
    const int32x4_t zero = vdupq_n_s32(0);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb = w + (size_t)(b0 + b) * blk;
        const int8_t *xq[CT];
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) xq[c] = ((const tl_block_q8_K *)(x + (size_t)c * ldx) + b0 + b)->qs;
        int32x4_t isum[CT];
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) isum[c] = zero;
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++)
#pragma GCC unroll 4
            for (int s = 0; s < 4; s++) {
                /* sub-blocks k, k + 1: their 4 rows' scales from one load */
                const int k = 8 * h + 2 * s;
                const uint8x16_t st = vld1q_u8(wb + sc_off + 16 * (size_t)(k / 4));
                if (C == 1) prefetch_part(wb, PF_AHEAD, blk, 4 * h + s, 8);
#pragma GCC unroll 2
                for (int half = 0; half < 2; half++) {
                    ORDER();
                    int8x16_t xv[CT];
#pragma GCC unroll 4
                    for (int c = 0; c < C; c++) xv[c] = vld1q_s8(xq[c] + 128 * h + 32 * s + 16 * half);
                    int32x4_t ss[CT];
#pragma GCC unroll 4
                    for (int j = 0; j < 4; j++) {
                        const int g = 4 * half + j;
                        const uint8x16_t v = vld1q_u8(wb + qs_off + 16 * (size_t)(8 * h + g));
                        const uint8x16_t hm = q3 ? vld1q_u8(((const blk_q3_Kx4 *)wb)->hm[g]) : v;
                        const int8x16_t q = k23_quants(v, hm, h, s, q3);
#pragma GCC unroll 4
                        for (int c = 0; c < C; c++) ss[c] = dot_lane(j ? ss[c] : zero, q, xv[c], j);
                    }
                    const int32x4_t sc = k23_scale(st, (k + half) % 4, q3);
#pragma GCC unroll 4
                    for (int c = 0; c < C; c++) isum[c] = vmlaq_s32(isum[c], ss[c], sc);
                }
            }
        ORDER();
        const act_k23 *ak = (const act_k23 *)a + b;
        const float32x4_t dw = ld_f16x4((const uint16_t *)wb);
        if (q3) {
#pragma GCC unroll 4
            for (int c = 0; c < C; c++)
                acc[c] = fma_tok(acc[c], vmulq_f32(vcvtq_f32_s32(isum[c]), dw), ak->d, ct, c, C);
            continue;
        }
        /* Q2_K's mins: sub-blocks 4p .. 4p + 3 of the 4 rows in one load,
         * their high nibbles widened to int16 pairs of sub-blocks */
        const blk_q2_Kx4 *w2 = (const blk_q2_Kx4 *)wb;
        const float32x4_t dm = ld_f16x4(w2->dmin);
        int16x8_t m[8];
#pragma GCC unroll 4
        for (int p = 0; p < 4; p++) {
            const uint8x16_t mn = vshrq_n_u8(vld1q_u8(w2->sm[4 * p]), 4);
            m[2 * p] = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(mn)));
            m[2 * p + 1] = vreinterpretq_s16_u16(vmovl_high_u8(mn));
        }
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            const int16x8_t y0 = vld1q_s16(ak->ys[ct + c]), y1 = vld1q_s16(ak->ys[ct + c] + 8);
            int32x4_t ms = zero;
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) ms = mins_pair(ms, m[q], y0, q);
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) ms = mins_pair(ms, m[4 + q], y1, q);
            acc[c] = fma_tok(acc[c], vmulq_f32(vcvtq_f32_s32(isum[c]), dw), ak->d, ct, c, C);
            acc[c] = fms_tok(acc[c], vmulq_f32(vcvtq_f32_s32(ms), dm), ak->d, ct, c, C);
        }
    }
#pragma GCC unroll 4
    for (int c = 0; c < C; c++) vst1q_f32(y + (size_t)c * ldy, acc[c]);
}

TL_NEON_INLINE void tile_q2_K(const int G, const int C, int64_t b0, int64_t nb, int64_t nbt,
                              bool first, float *y, size_t ldy, const uint8_t *w, size_t gs,
                              const uint8_t *x, size_t ldx, const uint8_t *a, int ct) {
    tile_k23(false, C, b0, nb, first, y, ldy, w, x, ldx, a, ct);
}
TL_NEON_INLINE void tile_q3_K(const int G, const int C, int64_t b0, int64_t nb, int64_t nbt,
                              bool first, float *y, size_t ldy, const uint8_t *w, size_t gs,
                              const uint8_t *x, size_t ldx, const uint8_t *a, int ct) {
    tile_k23(true, C, b0, nb, first, y, ldy, w, x, ldx, a, ct);
}
X4_TILE(q2_K, tile_q2_K_g1c4, 1, CT)
X4_TILE(q2_K, tile_q2_K_g1c1, 1, 1)
X4_TILE(q2_K, tile_q2_K_g1c3, 1, 3)
X4_TILE(q3_K, tile_q3_K_g1c4, 1, CT)
X4_TILE(q3_K, tile_q3_K_g1c1, 1, 1)
X4_TILE(q3_K, tile_q3_K_g1c3, 1, 3)

static const x4_kind kind_q2_K = {
    .qk = TL_QK_K, .seg = 32, .prep = prep_q2_K,
    .tile_c = tile_q2_K_g1c4, .tile_1 = tile_q2_K_g1c1,
    .tile3 = tile_q2_K_g1c3,
};
static const x4_kind kind_q3_K = {
    .qk = TL_QK_K, .seg = 32, .prep = prep_q3_K,
    .tile_c = tile_q3_K_g1c4, .tile_1 = tile_q3_K_g1c1,
    .tile3 = tile_q3_K_g1c3,
};
static_assert(32 * sizeof(act_k23) <= ACT_BYTES, "q2_K/q3_K segment fits the scratch");

// W (nr, n) q2_K (q3_K) packed by 4 @ X^T (nc, n) q8_K -> y[c * ldy + r]   (n % 256 == 0, nr % 4 == 0)
void tl_neon_gemm_q2_Kx4(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *x, size_t ldx) {
    tl_neon_gemm_x4(&kind_q2_K, n, nr, nc, y, ldy, w, ldw, x, ldx);
}
void tl_neon_gemm_q3_Kx4(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *x, size_t ldx) {
    tl_neon_gemm_x4(&kind_q3_K, n, nr, nc, y, ldy, w, ldw, x, ldx);
}
