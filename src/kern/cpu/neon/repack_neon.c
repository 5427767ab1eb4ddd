/* repack_neon.c — Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K
 * weights repacked 4 rows to a group (the kern.h repack slot), and the
 * NEON dotprod tiles over them (F16 and BF16: repack_half_neon.c).
 *
 * Why: the row-major tiles (quant_neon.c Q32_TILE, kquant_neon.c kdot) end
 * each (row, token, block) with an int32x4 of partial sums of its own,
 * which must be converted and scaled in float: per Q4_0 block 2 sdot, 2
 * scvtf, 2 fma and a scalar multiply, more float work than integer work.
 * sdot by element (vdotq_laneq_s32) multiplies 4 bytes of each of 4 weight
 * rows, one row per int32 lane, by the same 4 activation bytes (one 32-bit
 * lane of a 16-byte activation vector). With 4 rows interleaved, a "chunk"
 * of 16 bytes holds 4 consecutive quants of each row (row i at bytes
 * 4i .. 4i+3), a 16-byte activation load feeds 4 chunks, a block's 4 row
 * sums build up in one int32x4, and what is left in float is one scvtf,
 * one fmul by the 4 rows' scales and one fma by the token's scale per
 * block, group and token.
 *
 * One driver, tl_neon_gemm_x4 (its helpers and types: repack_x4.h), serves
 * every type, as repack_avx2.c's gemm_x8 does: tiles of CT tokens (2
 * groups at once where the type has such a tile), the call's row groups
 * innermost so that a token tile's activations stay
 * in L1 while the weights stream past; fewer tokens (decode) go one token
 * at a time over GD groups at once where the type has such a tile, else
 * group by group. The blocks go in segments, and for each segment prep()
 * lays out once what the tiles want from the activations (float scales,
 * sub-block sums), token-interleaved so that a full tile loads its CT
 * tokens' scales as one vector.
 *
 * Register budget (32 q registers): a 2-group x 4-token tile keeps 8 float
 * and 8 int32 accumulators, the 8 activation vectors of its 4 tokens' block
 * and the chunk being decoded; each chunk is decoded, used by every token
 * of the tile and dropped. The K tiles take one group (their sub-block
 * sums and scales use the registers a second group would need), also for
 * decode, as repack_avx2.c's do.
 *
 * Memory: the blocks of 32 and Q6_K pack to their own size; Q4_K to 148 bytes per
 * row and super-block (144: its scales and mins are stored unpacked), Q5_K
 * to 180 (176).
 *
 * Every block's integer sum is exact (bounds at each type); outputs
 * accumulate in float per lane, in block order, so results differ from
 * the reference by rounding only.
 *
 * Speed: untimed (tested under qemu only; no ARM machine). Instructions
 * per 32 elements per (row, token) in the inner loop, counted in
 * aarch64-linux-gnu-objdump -d of gcc 12 -O2; old = the row-major tiles
 * (quant_neon.c, kquant_neon.c; their spills counted, the K-quants' row
 * decode, once per row and call, not):
 *          4 tokens                              1 token (decode, prefetches counted)
 *   Q4_0   17.75 (tile_q4_0_2x4) -> 4.25 (2x4)   18.75 -> 7.8 (4 groups)
 *   Q4_1   23.75 (tile_q4_1_2x4) -> 4.75 (2x4)   20.5  -> 8.9 (4 groups)
 *   Q5_0   21.6  (tile_q5_0_2x4) -> 5.6  (2x4)   30    -> 13.1 (4 groups)
 *   Q5_1   27.9  (tile_q5_1_2x4) -> 6.1  (2x4)   36    -> 14.6 (4 groups)
 *   Q8_0   16.9  (tile_q8_0_2x4) -> 4.25 (2x4)   17    -> 7.0 (4 groups)
 *   Q4_K    9.3  (kdot_q4_K_c)   -> 4.4  (1x4)   11.75 -> 7.1
 *   Q5_K    9.3  (kdot, Q4_K's)  -> 5.7  (1x4)   11.75 + its row decode -> 12.7
 *   Q6_K    9.8  (kdot)          -> 5.0  (1x4)   13    -> 9.7
 *   Q2_K   11.1  (kdot)          -> 6.2  (1x4)   14.4 + its row decode (~9) -> 11.0
 *   Q3_K    9.8  (kdot)          -> 6.9  (1x4)   13 + its row decode (~20) -> 16.6
 * (Q2_K and Q3_K: repack_k23_neon.c.)
 */
#include <assert.h>
#include <string.h>

#include "core/quant.h"
#include "kern/cpu/neon/repack_x4.h"
#include "kern/cpu/tiles.h"

// W (nr, n) packed by 4 @ X^T (nc, n) -> y[c * ldy + r]   (n % qk == 0, nr % 4 == 0)
void tl_neon_gemm_x4(const x4_kind *k, int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy,
                     const void *vw, size_t ldw, const void *vx, size_t ldx) {
    const int64_t nbt = n / k->qk;
    const size_t gs = 4 * ldw; /* bytes per group */
    _Alignas(16) uint8_t a[ACT_BYTES];
    const uint8_t *w = vw, *x = vx;
    for (int64_t c0 = 0; c0 < nc; c0 += CT) {
        const int cc = nc - c0 < CT ? (int)(nc - c0) : CT;
        const uint8_t *xc = x + (size_t)c0 * ldx;
        float *yc = y + (size_t)c0 * ldy;
        for (int64_t b0 = 0; b0 < nbt; b0 += k->seg) {
            const int64_t sb = nbt - b0 < k->seg ? nbt - b0 : k->seg;
            const bool first = b0 == 0;
            k->prep(a, xc, ldx, cc, b0, sb);
            int64_t r0 = 0;
            if (cc == CT) {
                if (k->tile_g)
                    for (; r0 + 4 * GT <= nr; r0 += 4 * GT)
                        k->tile_g(b0, sb, nbt, first, yc + r0, ldy, w + (size_t)r0 * ldw, gs, xc, ldx, a, 0);
                for (; r0 < nr; r0 += 4)
                    k->tile_c(b0, sb, nbt, first, yc + r0, ldy, w + (size_t)r0 * ldw, gs, xc, ldx, a, 0);
                continue;
            }
            /* tokens innermost: the groups' weights serve every token from
             * cache; tile i takes group i of each of GD streams (tiles.h),
             * its outputs through o */
            /* 3 tokens: one pass of a 3-token tile over the weights, not a
             * pair and a single (AVX2, Zen 3: pp3 1.00-1.13x, pp7 1.23x) */
            const bool t3 = cc == 3;
            if (k->dec && nr >= 4 * GD && !t3) {
                const int64_t nt = nr / (4 * GD);
                float o[2 * 4 * GD]; /* token by token */
                for (int64_t i = 0; i < nt; i++)
                    for (int c = 0; c < cc;) {
                        /* token pairs through dec2, where the type has it: each
                         * group's block decoded once for both */
                        const int m = k->dec2 && c + 2 <= cc ? 2 : 1;
                        for (int t = 0; t < m && !first; t++)
                            tl_tile_stream_gather(o + 4 * GD * t, yc + (size_t)(c + t) * ldy, i, nt, GD, 4);
                        (m == 2 ? k->dec2 : k->dec)(b0, sb, nbt, first, o, 4 * GD, w + (size_t)i * gs,
                                                    (size_t)nt * gs, xc + (size_t)c * ldx, ldx, a, c);
                        for (int t = 0; t < m; t++)
                            tl_tile_stream_scatter(yc + (size_t)(c + t) * ldy, o + 4 * GD * t, i, nt, GD, 4);
                        c += m;
                    }
                r0 = nt * 4 * GD;
            }
            for (; r0 < nr; r0 += 4) {
                if (t3) {
                    k->tile3(b0, sb, nbt, first, yc + r0, ldy, w + (size_t)r0 * ldw, gs, xc, ldx, a, 0);
                    continue;
                }
                for (int c = 0; c < cc; c++)
                    k->tile_1(b0, sb, nbt, first, yc + (size_t)c * ldy + r0, 0, w + (size_t)r0 * ldw,
                              gs, xc + (size_t)c * ldx, 0, a, c);
            }
        }
    }
}

/* ---- Q4_0, Q8_0, Q5_0, Q4_1, Q5_1 (blocks of 32) ---------------------------- *
 * Per group and block (the size of the 4 original blocks): d[4], the rows'
 * f16 scales, then the chunks; chunk j holds, for row i, the 4 bytes
 * qs[4j .. 4j+3] of its block at bytes 4i .. 4i+3.
 *   q8_0: 8 chunks, chunk j is elements 4j .. 4j+3, i.e. chunk j < 4 meets
 *     lane j of the activation's bytes 0..15, chunk 4 + j lane j of 16..31.
 *   q4_0: 4 chunks, stored as qs ^ 0x88: a byte's low nibble is element
 *     4j + t, its high nibble element 16 + 4j + t, each holding v = u ^ 8,
 *     whose 4-bit two's complement value is u - 8. So shl #4 (low nibble
 *     to the top) and and #0xF0 (high nibble in place) each give, in one
 *     instruction, signed bytes 16 (u - 8): no subtraction, and no
 *     activation-sum correction as the unsigned x86 products need.
 * Arithmetic, per row lane: q8_0 sum_j q_j y_j, q4_0 16 sum_j (u_j - 8) y_j,
 * by sdot (signed x signed, exact for every byte, -128 included; |sum| <=
 * 32 * 128 * 128 = 2^19: exact in int32 and in float), then
 * acc += (float(isum) * d_w) * dy per block; prep folds q4_0's 1/16 into dy
 * (a power of two: exact). Q5_0, Q4_1 and Q5_1 (below, q32_quants) are
 * Q4_0's chunks with a fifth bit and/or a min: 8 (u - 16) with 1/8 in dy;
 * u itself, with acc += m_w * s_y (q8_1's s = d_y * sum y) per block. */

typedef struct {
    uint16_t d[4];
    uint8_t qs[64];
} blk_q4_0x4;
static_assert(sizeof(blk_q4_0x4) == 4 * sizeof(tl_block_q4_0), "q4_0x4 is 4 q4_0 blocks");

typedef struct {
    uint16_t d[4];
    int8_t qs[128];
} blk_q8_0x4;
static_assert(sizeof(blk_q8_0x4) == 4 * sizeof(tl_block_q8_0), "q8_0x4 is 4 q8_0 blocks");

/* Q5_0, Q4_1 and Q5_1 (the same chunks of raw nibbles, not XORed):
 *   q5_0: d[4], then hb: byte 4i + t holds, at bits 2j and 2j + 1, the
 *     fifth bits of chunk j's byte t of row i (low nibble, high nibble;
 *     tl_tile_pack_hb_row), stored inverted;
 *   q4_1: d[4], m[4] (x = d u + m), then the chunks;
 *   q5_1: d[4], m[4], hb (not inverted), then the chunks.
 * Each is the size of its 4 original blocks. */
typedef struct {
    uint16_t d[4];
    uint8_t hb[16];
    uint8_t qs[64];
} blk_q5_0x4;
static_assert(sizeof(blk_q5_0x4) == 4 * sizeof(tl_block_q5_0), "q5_0x4 is 4 q5_0 blocks");
typedef struct {
    uint16_t d[4], m[4];
    uint8_t qs[64];
} blk_q4_1x4;
static_assert(sizeof(blk_q4_1x4) == 4 * sizeof(tl_block_q4_1), "q4_1x4 is 4 q4_1 blocks");
typedef struct {
    uint16_t d[4], m[4];
    uint8_t hb[16];
    uint8_t qs[64];
} blk_q5_1x4;
static_assert(sizeof(blk_q5_1x4) == 4 * sizeof(tl_block_q5_1), "q5_1x4 is 4 q5_1 blocks");

// packed bytes per row of n elements: the q4_0 row size
size_t tl_neon_row_size_q4_0x4(int64_t n) { return (size_t)(n / TL_QK4_0) * sizeof(tl_block_q4_0); }

// packed bytes per row of n elements: the q8_0 row size
size_t tl_neon_row_size_q8_0x4(int64_t n) { return (size_t)(n / TL_QK8_0) * sizeof(tl_block_q8_0); }

// block b of 4 q4_0 rows -> one blk_q4_0x4
static void pack_blk_q4_0(void *vo, const uint8_t *const row[4], int64_t b) {
    blk_q4_0x4 *out = vo;
    for (int i = 0; i < 4; i++) {
        const tl_block_q4_0 *src = (const tl_block_q4_0 *)row[i] + b;
        out->d[i] = src->d;
        for (int j = 0; j < 4; j++)
            for (int t = 0; t < 4; t++) out->qs[16 * j + 4 * i + t] = src->qs[4 * j + t] ^ 0x88;
    }
}

// block b of 4 q8_0 rows -> one blk_q8_0x4
static void pack_blk_q8_0(void *vo, const uint8_t *const row[4], int64_t b) {
    blk_q8_0x4 *out = vo;
    for (int i = 0; i < 4; i++) {
        const tl_block_q8_0 *src = (const tl_block_q8_0 *)row[i] + b;
        out->d[i] = src->d;
        for (int j = 0; j < 8; j++) memcpy(out->qs + 16 * j + 4 * i, src->qs + 4 * j, 4);
    }
}

// row i's 16 quant bytes -> its 4 bytes in each of the 4 chunks at qs
static void pack_nibbles_row(uint8_t qs[64], int i, const uint8_t *src) {
    for (int j = 0; j < 4; j++) memcpy(qs + 16 * j + 4 * i, src + 4 * j, 4);
}

// block b of 4 q5_0 rows -> one blk_q5_0x4
static void pack_blk_q5_0(void *vo, const uint8_t *const row[4], int64_t b) {
    blk_q5_0x4 *out = vo;
    memset(out->hb, 0, sizeof out->hb);
    for (int i = 0; i < 4; i++) {
        const tl_block_q5_0 *src = (const tl_block_q5_0 *)row[i] + b;
        out->d[i] = src->d;
        tl_tile_pack_hb_row(out->hb, i, src->qh);
        pack_nibbles_row(out->qs, i, src->qs);
    }
    for (int t = 0; t < 16; t++) out->hb[t] = (uint8_t)~out->hb[t];
}

// block b of 4 q4_1 rows -> one blk_q4_1x4
static void pack_blk_q4_1(void *vo, const uint8_t *const row[4], int64_t b) {
    blk_q4_1x4 *out = vo;
    for (int i = 0; i < 4; i++) {
        const tl_block_q4_1 *src = (const tl_block_q4_1 *)row[i] + b;
        out->d[i] = src->d;
        out->m[i] = src->m;
        pack_nibbles_row(out->qs, i, src->qs);
    }
}

// block b of 4 q5_1 rows -> one blk_q5_1x4
static void pack_blk_q5_1(void *vo, const uint8_t *const row[4], int64_t b) {
    blk_q5_1x4 *out = vo;
    memset(out->hb, 0, sizeof out->hb);
    for (int i = 0; i < 4; i++) {
        const tl_block_q5_1 *src = (const tl_block_q5_1 *)row[i] + b;
        out->d[i] = src->d;
        out->m[i] = src->m;
        tl_tile_pack_hb_row(out->hb, i, src->qh);
        pack_nibbles_row(out->qs, i, src->qs);
    }
}

// packed bytes per row of n elements: the row size of q5_0, q4_1, q5_1
size_t tl_neon_row_size_q5_0x4(int64_t n) { return (size_t)(n / TL_QK5_0) * sizeof(tl_block_q5_0); }
size_t tl_neon_row_size_q4_1x4(int64_t n) { return (size_t)(n / TL_QK4_1) * sizeof(tl_block_q4_1); }
size_t tl_neon_row_size_q5_1x4(int64_t n) { return (size_t)(n / TL_QK5_1) * sizeof(tl_block_q5_1); }

// W (nr, n) q5_0, rows ldw bytes apart -> dst (nr / 4 groups of n / 32 blk_q5_0x4)
void tl_neon_pack_q5_0x4(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK5_0, nr, 4, sizeof(blk_q5_0x4), pack_blk_q5_0);
}
// W (nr, n) q4_1, rows ldw bytes apart -> dst (nr / 4 groups of n / 32 blk_q4_1x4)
void tl_neon_pack_q4_1x4(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK4_1, nr, 4, sizeof(blk_q4_1x4), pack_blk_q4_1);
}
// W (nr, n) q5_1, rows ldw bytes apart -> dst (nr / 4 groups of n / 32 blk_q5_1x4)
void tl_neon_pack_q5_1x4(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK5_1, nr, 4, sizeof(blk_q5_1x4), pack_blk_q5_1);
}

// W (nr, n) q4_0, rows ldw bytes apart -> dst (nr / 4 groups of n / 32 blk_q4_0x4)
void tl_neon_pack_q4_0x4(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK4_0, nr, 4, sizeof(blk_q4_0x4), pack_blk_q4_0);
}

// W (nr, n) q8_0, rows ldw bytes apart -> dst (nr / 4 groups of n / 32 blk_q8_0x4)
void tl_neon_pack_q8_0x4(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK8_0, nr, 4, sizeof(blk_q8_0x4), pack_blk_q8_0);
}

/* per block: the CT tokens' scales (times the type's factor) */
typedef struct {
    float d[CT];
} act_d;

static void prep_q8_0_scaled(uint8_t *a, const uint8_t *x, size_t ldx, int nc, int64_t b0,
                             int64_t nb, float f) {
    act_d *o = (act_d *)a;
    for (int c = 0; c < nc; c++) {
        const tl_block_q8_0 *xb = (const tl_block_q8_0 *)(x + (size_t)c * ldx) + b0;
        for (int64_t b = 0; b < nb; b++) o[b].d[c] = tl_neon_h2f(xb[b].d) * f;
    }
}

static void prep_q4_0(uint8_t *a, const uint8_t *x, size_t ldx, int nc, int64_t b0, int64_t nb) {
    prep_q8_0_scaled(a, x, ldx, nc, b0, nb, 0x1p-4f);
}

static void prep_q8_0(uint8_t *a, const uint8_t *x, size_t ldx, int nc, int64_t b0, int64_t nb) {
    prep_q8_0_scaled(a, x, ldx, nc, b0, nb, 1.0f);
}

static void prep_q5_0(uint8_t *a, const uint8_t *x, size_t ldx, int nc, int64_t b0, int64_t nb) {
    prep_q8_0_scaled(a, x, ldx, nc, b0, nb, 0x1p-3f);
}

/* per block: the CT tokens' q8_1 scales and s = d * the sum of their quants */
typedef struct {
    float d[CT], s[CT];
} act_ds;

static void prep_q8_1(uint8_t *a, const uint8_t *x, size_t ldx, int nc, int64_t b0, int64_t nb) {
    act_ds *o = (act_ds *)a;
    for (int c = 0; c < nc; c++) {
        const tl_block_q8_1 *xb = (const tl_block_q8_1 *)(x + (size_t)c * ldx) + b0;
        for (int64_t b = 0; b < nb; b++) {
            o[b].d[c] = tl_neon_h2f(xb[b].d);
            o[b].s[c] = tl_neon_h2f(xb[b].s);
        }
    }
}

/* The types of tile_q32: the blocks of 32 with one scale (and a min) */
enum { T40, T80, T50, T41, T51 };

/* chunk j's quants of nibble h (0: low, elements 4j + t; 1: high, 16 + 4j
 * + t) as signed bytes (chunk v; hb: the block's fifth bits), with the
 * factor prep folds into dy:
 *   Q4_0 16 (u - 8) from u ^ 8 in place (shl #4 / and #0xF0);
 *   Q5_0 8 (u - 16): the nibble, so placed, shifted in at bits 3..6 under
 *        bit 7 = the inverted fifth bit (sri #1): 8 u - 128 or 8 u;
 *   Q4_1 u;
 *   Q5_1 u + 16 (fifth bit) by sli / sri, as Q5_K's k4_quants. */
TL_NEON_INLINE int8x16_t q32_quants(const int T, uint8x16_t v, uint8x16_t hb, int j, int h) {
    switch (T) {
    case T40: return s8(h ? vandq_u8(v, vdupq_n_u8(0xF0)) : vshlq_n_u8(v, 4));
    case T50: {
        const uint8x16_t n = h ? vandq_u8(v, vdupq_n_u8(0xF0)) : vshlq_n_u8(v, 4);
        return s8(vsriq_n_u8(vshlq_u8(hb, vdupq_n_s8((int8_t)(7 - 2 * j - h))), n, 1));
    }
    case T41: return s8(h ? vshrq_n_u8(v, 4) : vandq_u8(v, vdupq_n_u8(0x0F)));
    default:
        if (!h) return s8(vsliq_n_u8(v, vandq_u8(vshlq_u8(hb, vdupq_n_s8((int8_t)(-2 * j))), vdupq_n_u8(1)), 4));
        return s8(vsriq_n_u8(vandq_u8(vshlq_u8(hb, vdupq_n_s8((int8_t)(3 - 2 * j))), vdupq_n_u8(0x10)), v, 4));
    }
}

/* G groups x C tokens of type T (Q4_0, Q8_0, Q5_0, Q4_1, Q5_1). The
 * _1 types add m * s per block, group and token: their activations are
 * q8_1 rows, and act_ds's s the token's d * sum. */
TL_NEON_INLINE void tile_q32(const int T, const int G, const int C, int64_t b0, int64_t nb,
                             int64_t nbt, bool first, float *y, size_t ldy, const uint8_t *w,
                             size_t gs, const uint8_t *x, size_t ldx, const uint8_t *a, int ct) {
    const bool q8 = T == T80, mn = T == T41 || T == T51, q5 = T == T50 || T == T51;
    const size_t blk = T == T40 ? sizeof(blk_q4_0x4)
                       : T == T80 ? sizeof(blk_q8_0x4)
                       : T == T50 ? sizeof(blk_q5_0x4)
                       : T == T41 ? sizeof(blk_q4_1x4)
                                  : sizeof(blk_q5_1x4);
    const size_t qs_off = blk - (q8 ? 128 : 64), hb_off = qs_off - 16; /* the quants end a block */
    const size_t xblk = mn ? sizeof(tl_block_q8_1) : sizeof(tl_block_q8_0);
    const size_t xqs = mn ? offsetof(tl_block_q8_1, qs) : offsetof(tl_block_q8_0, qs);
    /* one group and one token: the low and high halves in two chains, so
     * that the sdot latency does not bound the block */
    const bool two = G * C == 1;
    float32x4_t acc[GD][CT];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) acc[g][c] = acc_init(first, y + (size_t)c * ldy + 4 * g);
    const int32x4_t zero = vdupq_n_s32(0);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb[GD];
        group_blocks(wb, w, gs, blk, b0 + b, G, C);
        /* two loads, not one ld1 {2 regs}: that wants consecutive
         * registers and costs the tile movs */
        int8x16x2_t xv[CT];
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            const int8_t *xq = (const int8_t *)(x + (size_t)c * ldx + (size_t)(b0 + b) * xblk + xqs);
            xv[c].val[0] = vld1q_s8(xq);
            xv[c].val[1] = vld1q_s8(xq + 16);
        }
        int32x4_t s[GD][CT], s1 = zero;
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            ORDER();
#pragma GCC unroll 4
            for (int g = 0; g < G; g++) {
                const uint8_t *qs = wb[g] + qs_off;
                int8x16_t lo, hi;
                if (q8) {
                    lo = vld1q_s8((const int8_t *)qs + 16 * j);
                    hi = vld1q_s8((const int8_t *)qs + 64 + 16 * j);
                } else {
                    const uint8x16_t v = vld1q_u8(qs + 16 * j);
                    const uint8x16_t hb = q5 ? vld1q_u8(wb[g] + hb_off) : v;
                    lo = q32_quants(T, v, hb, j, 0);
                    hi = q32_quants(T, v, hb, j, 1);
                }
#pragma GCC unroll 4
                for (int c = 0; c < C; c++) {
                    int32x4_t t = dot_lane(j ? s[g][c] : zero, lo, xv[c].val[0], j);
                    if (two) s1 = dot_lane(s1, hi, xv[c].val[1], j);
                    else t = dot_lane(t, hi, xv[c].val[1], j);
                    s[g][c] = t;
                }
            }
        }
        /* act_d, or act_ds whose d[] comes first */
        const float *ad = mn ? ((const act_ds *)a + b)->d : ((const act_d *)a + b)->d;
        const float *as = mn ? ((const act_ds *)a + b)->s : ad;
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            const float32x4_t dw = ld_f16x4((const uint16_t *)wb[g]);
            const float32x4_t mw = mn ? ld_f16x4((const uint16_t *)wb[g] + 4) : dw;
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) {
                const int32x4_t is = two ? vaddq_s32(s[g][c], s1) : s[g][c];
                const float32x4_t t = vmulq_f32(vcvtq_f32_s32(is), dw);
                acc[g][c] = fma_tok(acc[g][c], t, ad, ct, c, C);
                if (mn) acc[g][c] = fma_tok(acc[g][c], mw, as, ct, c, C); /* + m * s */
            }
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) vst1q_f32(y + (size_t)c * ldy + 4 * g, acc[g][c]);
}

/* The x4_kind of a tile_q32 type: its four tile shapes, and the gemm */
#define Q32_KIND(T, ENUM, QK, PREP, SEG)                                                            \
    TL_NEON_INLINE void tile_##T(const int G, const int C, int64_t b0, int64_t nb, int64_t nbt,    \
                                 bool first, float *y, size_t ldy, const uint8_t *w, size_t gs,     \
                                 const uint8_t *x, size_t ldx, const uint8_t *a, int ct) {          \
        tile_q32(ENUM, G, C, b0, nb, nbt, first, y, ldy, w, gs, x, ldx, a, ct);                    \
    }                                                                                               \
    X4_TILE(T, tile_##T##_g2c4, GT, CT)                                                             \
    X4_TILE(T, tile_##T##_g1c4, 1, CT)                                                              \
    X4_TILE(T, tile_##T##_g4c1, GD, 1)                                                              \
    X4_TILE(T, tile_##T##_g4c2, GD, 2)                                                              \
    X4_TILE(T, tile_##T##_g1c1, 1, 1)                                                               \
    X4_TILE(T, tile_##T##_g1c3, 1, 3)                                                               \
    static const x4_kind kind_##T = {                                                               \
        .qk = QK, .seg = SEG, .prep = PREP, .tile_g = tile_##T##_g2c4, .tile_c = tile_##T##_g1c4,    \
        .dec = tile_##T##_g4c1, .dec2 = tile_##T##_g4c2, .tile_1 = tile_##T##_g1c1,                 \
        .tile3 = tile_##T##_g1c3,                                                                   \
    };                                                                                              \
    void tl_neon_gemm_##T##x4(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy,              \
                              const void *w, size_t ldw, const void *x, size_t ldx) {               \
        tl_neon_gemm_x4(&kind_##T, n, nr, nc, y, ldy, w, ldw, x, ldx);                                      \
    }

static_assert(512 * sizeof(act_d) <= ACT_BYTES, "a q4_0-family segment fits the scratch");
static_assert(256 * sizeof(act_ds) <= ACT_BYTES, "a q4_1-family segment fits the scratch");
// tl_neon_gemm_Tx4: W (nr, n) T packed by 4 @ X^T (nc, n) (q8_0; q8_1 for q4_1, q5_1)
//   -> y[c * ldy + r]   (n % 32 == 0, nr % 4 == 0)
Q32_KIND(q4_0, T40, TL_QK4_0, prep_q4_0, 512)
Q32_KIND(q8_0, T80, TL_QK8_0, prep_q8_0, 512)
Q32_KIND(q5_0, T50, TL_QK5_0, prep_q5_0, 512)
Q32_KIND(q4_1, T41, TL_QK4_1, prep_q8_1, 256)
Q32_KIND(q5_1, T51, TL_QK5_1, prep_q8_1, 256)
#undef Q32_KIND

/* ---- Q4_K ------------------------------------------------------------------ *
 * Per group and super-block (592 bytes; the 4 original blocks are 576):
 * the rows' d and dmin; the 6-bit sub-block scales and mins unpacked,
 * sc[s][i] and mn[s][i] for sub-block s of row i (a 4-byte run per
 * sub-block widens to the int32x4 multiplier of its sum); and the quants in
 * 32 chunks: chunk (p, j) holds, for row i, the 4 bytes qs[32p + 4j .. +3]
 * of its block, whose low nibbles are elements 64p + 4j + t (sub-block 2p)
 * and high nibbles 64p + 32 + 4j + t (sub-block 2p + 1).
 *
 * Arithmetic, per row lane: each sub-block's u . y by 8 sdot (a nibble is
 * a valid signed byte; <= 32 * 15 * 128 < 2^16), times its scale by one
 * mla, summed in int32 (< 8 * 63 * 2^16 < 2^25); the mins' sum_s m_s
 * ysum_s by 8 smlal of the int16 mins against the token's 8 sub-block sums
 * (prep adds q8_K's bsums in pairs: |ysum| <= 32 * 128 fits int16); then
 * acc += (isum * d) * dy and acc -= (msum * dmin) * dy per super-block. */

typedef struct {
    uint16_t d[4], dmin[4];
    uint8_t sc[8][4];
    uint8_t mn[8][4];
    uint8_t qs[4][8][16];
} blk_q4_Kx4;
static_assert(sizeof(blk_q4_Kx4) == 592, "q4_Kx4 layout");

// packed bytes per row of n elements (n % 256 == 0): 148 per super-block
size_t tl_neon_row_size_q4_Kx4(int64_t n) { return (size_t)(n / TL_QK_K) * sizeof(blk_q4_Kx4) / 4; }

// row i of out <- a q4_K or q5_K block's d, dmin, 12 scale bytes and 128 quant bytes
static void pack_k4_row(blk_q4_Kx4 *out, int i, uint16_t d, uint16_t dmin, const uint8_t *scales,
                        const uint8_t *qs) {
    out->d[i] = d;
    out->dmin[i] = dmin;
    for (int s = 0; s < 8; s++) tl_get_scale_min_k4(s, scales, &out->sc[s][i], &out->mn[s][i]);
    for (int p = 0; p < 4; p++)
        for (int j = 0; j < 8; j++) memcpy(&out->qs[p][j][4 * i], qs + 32 * p + 4 * j, 4);
}

// block b of 4 q4_K rows -> one blk_q4_Kx4
static void pack_blk_q4_K(void *vo, const uint8_t *const row[4], int64_t b) {
    for (int i = 0; i < 4; i++) {
        const tl_block_q4_K *src = (const tl_block_q4_K *)row[i] + b;
        pack_k4_row(vo, i, src->d, src->dmin, src->scales, src->qs);
    }
}

// W (nr, n) q4_K, rows ldw bytes apart -> dst (nr / 4 groups of n / 256 blk_q4_Kx4)
void tl_neon_pack_q4_Kx4(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK_K, nr, 4, sizeof(blk_q4_Kx4), pack_blk_q4_K);
}

/* Q5_K (below) is Q4_K with a fifth bit per quant: blk_q4_Kx4's fields,
 * then qh[j]: for row i, bytes 4i .. 4i+3 hold qh[4j .. 4j+3] of its
 * block, beside chunk (p, j)'s quants in the same lanes. Quant byte t of
 * that chunk takes bit 2p of its qh byte for the low nibble (element
 * 64p + 4j + t) and bit 2p + 1 for the high one. Its sums stay exact: a
 * sub-block's u . y <= 32 * 31 * 128 < 2^17, times a scale < 2^23. */
typedef struct {
    blk_q4_Kx4 k4;
    uint8_t qh[8][16];
} blk_q5_Kx4;
static_assert(sizeof(blk_q5_Kx4) == 720, "q5_Kx4 layout");

// packed bytes per row of n elements (n % 256 == 0): 180 per super-block
size_t tl_neon_row_size_q5_Kx4(int64_t n) { return (size_t)(n / TL_QK_K) * sizeof(blk_q5_Kx4) / 4; }

// block b of 4 q5_K rows -> one blk_q5_Kx4
static void pack_blk_q5_K(void *vo, const uint8_t *const row[4], int64_t b) {
    blk_q5_Kx4 *out = vo;
    for (int i = 0; i < 4; i++) {
        const tl_block_q5_K *src = (const tl_block_q5_K *)row[i] + b;
        pack_k4_row(&out->k4, i, src->d, src->dmin, src->scales, src->qs);
        for (int j = 0; j < 8; j++) memcpy(&out->qh[j][4 * i], src->qh + 4 * j, 4);
    }
}

// W (nr, n) q5_K, rows ldw bytes apart -> dst (nr / 4 groups of n / 256 blk_q5_Kx4)
void tl_neon_pack_q5_Kx4(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK_K, nr, 4, sizeof(blk_q5_Kx4), pack_blk_q5_K);
}

/* per super-block: the CT tokens' scales and their 8 sub-block sums */
typedef struct {
    float d[CT];
    int16_t ys[CT][8];
} act_q4_K;

static void prep_q4_K(uint8_t *a, const uint8_t *x, size_t ldx, int nc, int64_t b0, int64_t nb) {
    act_q4_K *o = (act_q4_K *)a;
    for (int c = 0; c < nc; c++) {
        const tl_block_q8_K *xb = (const tl_block_q8_K *)(x + (size_t)c * ldx) + b0;
        for (int64_t b = 0; b < nb; b++) {
            o[b].d[c] = xb[b].d;
            vst1q_s16(o[b].ys[c], vpaddq_s16(vld1q_s16(xb[b].bsums), vld1q_s16(xb[b].bsums + 8)));
        }
    }
}

/* Chunk v's quants of nibble h (0: low) of chunk row p as signed bytes:
 * 0..15 (Q4_K), or 0..31 with q5 (Q5_K), bit 2p + h of the chunk's qh
 * bytes hv above the nibble. Three instructions a nibble either way: the
 * bit moved by a register shift (a negative count shifts right) and
 * masked, then the nibble put beside it by a shift-and-insert (sli keeps
 * v's low nibble under the bit; sri puts v's high one under it). */
TL_NEON_INLINE int8x16_t k4_quants(uint8x16_t v, uint8x16_t hv, int p, int h, const bool q5) {
    if (!q5) return s8(h ? vshrq_n_u8(v, 4) : vandq_u8(v, vdupq_n_u8(0x0F)));
    if (!h) /* bit 2p to bit 0, shifted in above v's low nibble */
        return s8(vsliq_n_u8(v, vandq_u8(vshlq_u8(hv, vdupq_n_s8((int8_t)(-2 * p))), vdupq_n_u8(1)), 4));
    /* bit 2p + 1 to bit 4, v's high nibble shifted in below it */
    return s8(vsriq_n_u8(vandq_u8(vshlq_u8(hv, vdupq_n_s8((int8_t)(3 - 2 * p))), vdupq_n_u8(0x10)), v, 4));
}

enum { KP = 2 * GD }; /* the K tiles' (group, token) pairs, at most: GD groups x 2 tokens */

/* A K tile's accumulators acc[g C + c] (y + c ldy + 4 g), held in registers
 * or, in_y, in y itself: started (from 0 when first, else from y) and
 * stored back at the end */
TL_NEON_INLINE void acc_start(float32x4_t acc[], const bool in_y, bool first, float *y, size_t ldy,
                              const int G, const int C) {
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            float *yo = y + (size_t)c * ldy + 4 * g;
            if (!in_y) acc[g * C + c] = acc_init(first, yo);
            else if (first) vst1q_f32(yo, vdupq_n_f32(0.0f));
        }
}
TL_NEON_INLINE void acc_end(const float32x4_t acc[], const bool in_y, float *y, size_t ldy, const int G,
                            const int C) {
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
#pragma GCC unroll 4
        for (int c = 0; c < C && !in_y; c++) vst1q_f32(y + (size_t)c * ldy + 4 * g, acc[g * C + c]);
}

/* G groups (gs bytes apart) x C tokens of Q4_K (q5: Q5_K): one group x C
 * tokens, or GD groups x 1-2 tokens (decode: each group the next of its
 * stream, prefetched PF_DEC ahead a quarter block per sub-block pair, as
 * the x86 K decode tiles read; each row's arithmetic the one-group tile's,
 * step for step). */
TL_NEON_INLINE void tile_k4(const bool q5, const int G, const int C, int64_t b0, int64_t nb, bool first,
                            float *y, size_t ldy, const uint8_t *w, size_t gs, const uint8_t *x,
                            size_t ldx, const uint8_t *a, int ct) {
    const size_t blk = q5 ? sizeof(blk_q5_Kx4) : sizeof(blk_q4_Kx4);
    /* [g C + c]: G C <= KP; past CT (decode pairs) the accumulators live in
     * y, a load and a store a block, leaving the registers to the sums */
    const bool in_y = G * C > CT;
    float32x4_t acc[KP];
    acc_start(acc, in_y, first, y, ldy, G, C);
    const int32x4_t zero = vdupq_n_s32(0);
    for (int64_t b = 0; b < nb; b++) {
        const blk_q4_Kx4 *wb[GD];
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) wb[g] = (const blk_q4_Kx4 *)(w + (size_t)g * gs + (size_t)(b0 + b) * blk);
        const int8_t *xq[CT];
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) xq[c] = ((const tl_block_q8_K *)(x + (size_t)c * ldx) + b0 + b)->qs;
        /* groups g0 .. g0 + GS - 1 at a time: all of them, but for GD
         * groups x 2 tokens two, whose 4 sums and 4 integer totals fit the
         * registers beside the tokens' activations (all 4 spilled: 150-250
         * q-register stack accesses per tile, gcc 12) */
        const int GS = G > 1 && C > 1 ? 2 : G;
#pragma GCC unroll 2
        for (int g0 = 0; g0 < G; g0 += GS) {
            int32x4_t isum[CT]; /* [(g - g0) C + c] */
#pragma GCC unroll 4
            for (int k = 0; k < GS * C; k++) isum[k] = zero;
            /* sub-blocks 2p (low nibbles of chunk row p) and 2p + 1 (high) */
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++) {
                if (C == 1 || G > 1) /* decode */
#pragma GCC unroll 4
                    for (int g = g0; g < g0 + GS; g++)
                        prefetch_part((const uint8_t *)wb[g], G == 1 ? PF_AHEAD : PF_DEC, blk, p, 4);
                if (C == 1) {
                    /* one token: both nibbles of a chunk from one load, in two chains */
                    ORDER();
                    const int8_t *xp = xq[0] + 64 * p;
                    const int8x16_t xl0 = vld1q_s8(xp), xl1 = vld1q_s8(xp + 16);
                    const int8x16_t xh0 = vld1q_s8(xp + 32), xh1 = vld1q_s8(xp + 48);
#pragma GCC unroll 4
                    for (int g = g0; g < g0 + GS; g++) {
                        const blk_q5_Kx4 *wb5 = (const blk_q5_Kx4 *)wb[g];
                        const uint8x16_t scv = vld1q_u8(wb[g]->sc[p < 2 ? 0 : 4]);
                        int32x4_t s0 = zero, s1 = zero;
#pragma GCC unroll 8
                        for (int j = 0; j < 8; j++) {
                            const uint8x16_t v = vld1q_u8(wb[g]->qs[p][j]);
                            const uint8x16_t hv = q5 ? vld1q_u8(wb5->qh[j]) : v;
                            s0 = dot_lane(s0, k4_quants(v, hv, p, 0, q5), j < 4 ? xl0 : xl1, j & 3);
                            s1 = dot_lane(s1, k4_quants(v, hv, p, 1, q5), j < 4 ? xh0 : xh1, j & 3);
                        }
                        isum[g - g0] = vmlaq_s32(vmlaq_s32(isum[g - g0], s0, widen_u8_sub(scv, 2 * p)), s1,
                                                 widen_u8_sub(scv, 2 * p + 1));
                    }
                    continue;
                }
                /* several tokens (one group, or GD groups x 2: decode): one
                 * nibble at a time (each chunk loaded twice), which leaves the
                 * registers to the tokens' sums */
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    ORDER();
                    int8x16x2_t xv[CT];
#pragma GCC unroll 4
                    for (int c = 0; c < C; c++) {
                        xv[c].val[0] = vld1q_s8(xq[c] + 64 * p + 32 * h);
                        xv[c].val[1] = vld1q_s8(xq[c] + 64 * p + 32 * h + 16);
                    }
                    int32x4_t s[CT]; /* [(g - g0) C + c] */
#pragma GCC unroll 8
                    for (int j = 0; j < 8; j++)
#pragma GCC unroll 4
                        for (int g = g0; g < g0 + GS; g++) {
                            const uint8x16_t v = vld1q_u8(wb[g]->qs[p][j]);
                            const uint8x16_t hv = q5 ? vld1q_u8(((const blk_q5_Kx4 *)wb[g])->qh[j]) : v;
                            const int8x16_t q = k4_quants(v, hv, p, h, q5);
#pragma GCC unroll 4
                            for (int c = 0; c < C; c++) {
                                const int k = (g - g0) * C + c;
                                s[k] = dot_lane(j ? s[k] : zero, q, xv[c].val[j >> 2], j & 3);
                            }
                        }
#pragma GCC unroll 4
                    for (int g = g0; g < g0 + GS; g++) {
                        const int32x4_t sc = widen_u8_sub(vld1q_u8(wb[g]->sc[p < 2 ? 0 : 4]), 2 * p + h);
#pragma GCC unroll 4
                        for (int c = 0; c < C; c++) {
                            const int k = (g - g0) * C + c;
                            isum[k] = vmlaq_s32(isum[k], s[k], sc);
                        }
                    }
                }
            }
            ORDER();
            const act_q4_K *ak = (const act_q4_K *)a + b;
#pragma GCC unroll 4
            for (int g = g0; g < g0 + GS; g++) {
                const float32x4_t dw = ld_f16x4(wb[g]->d), dm = ld_f16x4(wb[g]->dmin);
                const uint8x16_t mn03 = vld1q_u8(wb[g]->mn[0]), mn47 = vld1q_u8(wb[g]->mn[4]);
                const int16x8_t m01 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(mn03)));
                const int16x8_t m23 = vreinterpretq_s16_u16(vmovl_high_u8(mn03));
                const int16x8_t m45 = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(mn47)));
                const int16x8_t m67 = vreinterpretq_s16_u16(vmovl_high_u8(mn47));
#pragma GCC unroll 4
                for (int c = 0; c < C; c++) {
                    const int16x8_t ys = vld1q_s16(ak->ys[ct + c]);
                    int32x4_t ms = mins_pair(zero, m01, ys, 0);
                    ms = mins_pair(ms, m23, ys, 1);
                    ms = mins_pair(ms, m45, ys, 2);
                    ms = mins_pair(ms, m67, ys, 3);
                    const int k = g * C + c;
                    float *yo = y + (size_t)c * ldy + 4 * g;
                    float32x4_t t = in_y ? vld1q_f32(yo) : acc[k];
                    t = fma_tok(t, vmulq_f32(vcvtq_f32_s32(isum[(g - g0) * C + c]), dw), ak->d, ct, c, C);
                    t = fms_tok(t, vmulq_f32(vcvtq_f32_s32(ms), dm), ak->d, ct, c, C);
                    if (in_y) vst1q_f32(yo, t);
                    else acc[k] = t;
                }
            }
        }
    }
    acc_end(acc, in_y, y, ldy, G, C);
}
static_assert((int)GD <= (int)KP && (int)CT <= (int)KP, "tile_k4 holds G C <= KP sums");

TL_NEON_INLINE void tile_q4_K(const int G, const int C, int64_t b0, int64_t nb, int64_t nbt,
                              bool first, float *y, size_t ldy, const uint8_t *w, size_t gs,
                              const uint8_t *x, size_t ldx, const uint8_t *a, int ct) {
    tile_k4(false, G, C, b0, nb, first, y, ldy, w, gs, x, ldx, a, ct);
}
TL_NEON_INLINE void tile_q5_K(const int G, const int C, int64_t b0, int64_t nb, int64_t nbt,
                              bool first, float *y, size_t ldy, const uint8_t *w, size_t gs,
                              const uint8_t *x, size_t ldx, const uint8_t *a, int ct) {
    tile_k4(true, G, C, b0, nb, first, y, ldy, w, gs, x, ldx, a, ct);
}
X4_TILE(q4_K, tile_q4_K_g1c4, 1, CT)
X4_TILE(q4_K, tile_q4_K_g4c1, GD, 1)
X4_TILE(q4_K, tile_q4_K_g4c2, GD, 2)
X4_TILE(q4_K, tile_q4_K_g1c1, 1, 1)
X4_TILE(q4_K, tile_q4_K_g1c3, 1, 3)
X4_TILE(q5_K, tile_q5_K_g1c4, 1, CT)
X4_TILE(q5_K, tile_q5_K_g4c1, GD, 1)
X4_TILE(q5_K, tile_q5_K_g4c2, GD, 2)
X4_TILE(q5_K, tile_q5_K_g1c1, 1, 1)
X4_TILE(q5_K, tile_q5_K_g1c3, 1, 3)

static const x4_kind kind_q4_K = {
    .qk = TL_QK_K, .seg = 64, .prep = prep_q4_K,
    .tile_c = tile_q4_K_g1c4, .dec = tile_q4_K_g4c1, .dec2 = tile_q4_K_g4c2, .tile_1 = tile_q4_K_g1c1,
    .tile3 = tile_q4_K_g1c3,
};
static_assert(64 * sizeof(act_q4_K) <= ACT_BYTES, "q4_K segment fits the scratch");

// W (nr, n) q4_K packed by 4 @ X^T (nc, n) q8_K -> y[c * ldy + r]   (n % 256 == 0, nr % 4 == 0)
void tl_neon_gemm_q4_Kx4(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *x, size_t ldx) {
    tl_neon_gemm_x4(&kind_q4_K, n, nr, nc, y, ldy, w, ldw, x, ldx);
}

static const x4_kind kind_q5_K = {
    .qk = TL_QK_K, .seg = 64, .prep = prep_q4_K,
    .tile_c = tile_q5_K_g1c4, .dec = tile_q5_K_g4c1, .dec2 = tile_q5_K_g4c2, .tile_1 = tile_q5_K_g1c1,
    .tile3 = tile_q5_K_g1c3,
};

// W (nr, n) q5_K packed by 4 @ X^T (nc, n) q8_K -> y[c * ldy + r]   (n % 256 == 0, nr % 4 == 0)
void tl_neon_gemm_q5_Kx4(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *x, size_t ldx) {
    tl_neon_gemm_x4(&kind_q5_K, n, nr, nc, y, ldy, w, ldw, x, ldx);
}

/* ---- Q6_K ------------------------------------------------------------------ *
 * Per group and super-block (840 bytes, the 4 original blocks): the quants,
 * then the 16 int8 scales as sc[s][i] (sub-block s = elements 16s ..
 * 16s+15, row i), then the rows' d. The quants of sub-block s are 4 chunks
 * (chunk k: elements 16s + 4k .. +3 of each row), stored as v = u ^ 32
 * (u = q + 32, the 6-bit code; v's 6-bit two's complement value is u - 32)
 * in 3 vectors A, B, C of 16 bytes: v0..v2 in the low 6 bits of A..C, and
 * v3's three bit pairs in their top 2 bits (A: bits 0-1, B: 2-3, C: 4-5).
 * Decoding a sub-block for all 4 rows is then 6 instructions: shl #2 of
 * A, B, C gives signed bytes 4 (u - 32) of chunks 0..2, and
 * (sri(sri(C, B, 2), A, 4) & 0xFC) gathers the pairs of chunk 3 into the
 * top 6 bits, the same form. No activation-sum correction (sdot is signed),
 * so q8_K's bsums are not used.
 *
 * Arithmetic, per row lane: per sub-block 4 sdot (<= 4 * 16 * 32 * 128 =
 * 2^18) times its scale by one mla, summed in int32 (<= 16 * 128 * 2^18 =
 * 2^29 < 2^31), then acc += (isum * d) * dy per super-block; prep folds the
 * 1/4 into dy (a power of two: exact). */

typedef struct {
    uint8_t q[16][48];
    int8_t sc[16][4];
    uint16_t d[4];
} blk_q6_Kx4;
static_assert(sizeof(blk_q6_Kx4) == 4 * sizeof(tl_block_q6_K), "q6_Kx4 is 4 q6_K blocks");

// packed bytes per row of n elements: the q6_K row size
size_t tl_neon_row_size_q6_Kx4(int64_t n) { return (size_t)(n / TL_QK_K) * sizeof(tl_block_q6_K); }

// block b of 4 q6_K rows -> one blk_q6_Kx4
static void pack_blk_q6_K(void *vo, const uint8_t *const row[4], int64_t b) {
    blk_q6_Kx4 *out = vo;
    for (int i = 0; i < 4; i++) {
        const tl_block_q6_K *src = (const tl_block_q6_K *)row[i] + b;
        out->d[i] = src->d;
        for (int s = 0; s < 16; s++) out->sc[s][i] = src->scales[s];
        /* element 128h + 32k + l: low 4 bits from ql[64h + l + 32 (k & 1)]
         * (high nibble when k >= 2), top 2 from qh[32h + l] >> 2k */
        uint8_t v[TL_QK_K];
        for (int e = 0; e < TL_QK_K; e++) {
            const int h = e / 128, k = (e % 128) / 32, l = e % 32;
            const uint8_t lo = src->ql[64 * h + l + 32 * (k & 1)] >> (4 * (k >> 1)) & 0xF;
            const uint8_t hi = src->qh[32 * h + l] >> (2 * k) & 3;
            v[e] = (uint8_t)((lo | hi << 4) ^ 32);
        }
        for (int s = 0; s < 16; s++)
            for (int t = 0; t < 4; t++) {
                const uint8_t *e = v + 16 * s + t; /* chunk k's element: e[4k] */
                out->q[s][4 * i + t] = (uint8_t)(e[0] | (e[12] & 3) << 6);
                out->q[s][16 + 4 * i + t] = (uint8_t)(e[4] | (e[12] >> 2 & 3) << 6);
                out->q[s][32 + 4 * i + t] = (uint8_t)(e[8] | (e[12] >> 4) << 6);
            }
    }
}

// W (nr, n) q6_K, rows ldw bytes apart -> dst (nr / 4 groups of n / 256 blk_q6_Kx4)
void tl_neon_pack_q6_Kx4(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK_K, nr, 4, sizeof(blk_q6_Kx4), pack_blk_q6_K);
}

/* per super-block: the CT tokens' scales / 4 */
static void prep_q6_K(uint8_t *a, const uint8_t *x, size_t ldx, int nc, int64_t b0, int64_t nb) {
    act_d *o = (act_d *)a;
    for (int c = 0; c < nc; c++) {
        const tl_block_q8_K *xb = (const tl_block_q8_K *)(x + (size_t)c * ldx) + b0;
        for (int64_t b = 0; b < nb; b++) o[b].d[c] = xb[b].d * 0.25f;
    }
}

/* sub-block s's 4 rows' signed bytes (from v: sub-blocks 4 (s / 4) ..,
 * 4 bytes each) -> int32x4 */
TL_NEON_INLINE int32x4_t widen_s8_sub(int8x16_t v, const int s) {
    const int16x8_t h = (s & 2) ? vmovl_high_s8(v) : vmovl_s8(vget_low_s8(v));
    return (s & 1) ? vmovl_high_s16(h) : vmovl_s16(vget_low_s16(h));
}

/* one group x C tokens (G is 1) */
/* G groups (gs bytes apart) x C tokens: one group x C tokens, or GD
 * groups x 1-2 tokens (decode: each group the next of its stream,
 * prefetched PF_DEC ahead an eighth of a block per sub-block pair, as
 * tile_k4's; each row's integer sums exact, its float steps the one-group
 * tile's: the same bits) */
TL_NEON_INLINE void tile_q6_K(const int G, const int C, int64_t b0, int64_t nb, int64_t nbt,
                              bool first, float *y, size_t ldy, const uint8_t *w, size_t gs,
                              const uint8_t *x, size_t ldx, const uint8_t *a, int ct) {
    /* [g C + c]: G C <= KP; past CT in y, as tile_k4's */
    const bool in_y = G * C > CT;
    float32x4_t acc[KP];
    acc_start(acc, in_y, first, y, ldy, G, C);
    const uint8x16_t mtop = vdupq_n_u8(0xFC);
    const int32x4_t zero = vdupq_n_s32(0);
    for (int64_t b = 0; b < nb; b++) {
        const blk_q6_Kx4 *wb[GD];
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) wb[g] = (const blk_q6_Kx4 *)(w + (size_t)g * gs) + b0 + b;
        const int8_t *xq[CT];
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) xq[c] = ((const tl_block_q8_K *)(x + (size_t)c * ldx) + b0 + b)->qs;
        /* one group and token: even and odd sub-blocks in two chains of
         * mla, whose latency would otherwise bound the tile */
        const bool two = G * C == 1;
        int32x4_t isum[KP], isum1 = zero;
#pragma GCC unroll 8
        for (int k = 0; k < G * C; k++) isum[k] = zero;
#pragma GCC unroll 16
        for (int s = 0; s < 16; s++) {
            ORDER();
            if ((C == 1 || G > 1) && s % 2 == 0) /* decode */
#pragma GCC unroll 4
                for (int g = 0; g < G; g++)
                    prefetch_part((const uint8_t *)wb[g], G == 1 ? PF_AHEAD : PF_DEC, sizeof(blk_q6_Kx4),
                                  s / 2, 8);
            int8x16_t xv[CT];
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) xv[c] = vld1q_s8(xq[c] + 16 * s);
#pragma GCC unroll 4
            for (int g = 0; g < G; g++) {
                const int32x4_t sc = widen_s8_sub(vld1q_s8(wb[g]->sc[s & ~3]), s);
                const uint8x16_t A = vld1q_u8(wb[g]->q[s]), B = vld1q_u8(wb[g]->q[s] + 16);
                const uint8x16_t Cq = vld1q_u8(wb[g]->q[s] + 32);
                const int8x16_t q0 = s8(vshlq_n_u8(A, 2)), q1 = s8(vshlq_n_u8(B, 2));
                const int8x16_t q2 = s8(vshlq_n_u8(Cq, 2));
                const int8x16_t q3 = s8(vandq_u8(vsriq_n_u8(vsriq_n_u8(Cq, B, 2), A, 4), mtop));
#pragma GCC unroll 4
                for (int c = 0; c < C; c++) {
                    int32x4_t t = dot_lane(zero, q0, xv[c], 0);
                    t = dot_lane(t, q1, xv[c], 1);
                    t = dot_lane(t, q2, xv[c], 2);
                    t = dot_lane(t, q3, xv[c], 3);
                    if (two && (s & 1)) isum1 = vmlaq_s32(isum1, t, sc);
                    else isum[g * C + c] = vmlaq_s32(isum[g * C + c], t, sc);
                }
            }
        }
        if (two) isum[0] = vaddq_s32(isum[0], isum1);
        const act_d *ad = (const act_d *)a + b;
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            const float32x4_t dw = ld_f16x4(wb[g]->d);
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) {
                float *yo = y + (size_t)c * ldy + 4 * g;
                const float32x4_t t = fma_tok(in_y ? vld1q_f32(yo) : acc[g * C + c],
                                              vmulq_f32(vcvtq_f32_s32(isum[g * C + c]), dw), ad->d, ct, c, C);
                if (in_y) vst1q_f32(yo, t);
                else acc[g * C + c] = t;
            }
        }
    }
    acc_end(acc, in_y, y, ldy, G, C);
}

X4_TILE(q6_K, tile_q6_K_g1c4, 1, CT)
X4_TILE(q6_K, tile_q6_K_g4c1, GD, 1)
X4_TILE(q6_K, tile_q6_K_g4c2, GD, 2)
X4_TILE(q6_K, tile_q6_K_g1c1, 1, 1)
X4_TILE(q6_K, tile_q6_K_g1c3, 1, 3)

static const x4_kind kind_q6_K = {
    .qk = TL_QK_K, .seg = 64, .prep = prep_q6_K,
    .tile_c = tile_q6_K_g1c4, .dec = tile_q6_K_g4c1, .dec2 = tile_q6_K_g4c2, .tile_1 = tile_q6_K_g1c1,
    .tile3 = tile_q6_K_g1c3,
};
static_assert(64 * sizeof(act_d) <= ACT_BYTES, "q6_K segment fits the scratch");

// W (nr, n) q6_K packed by 4 @ X^T (nc, n) q8_K -> y[c * ldy + r]   (n % 256 == 0, nr % 4 == 0)
void tl_neon_gemm_q6_Kx4(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *x, size_t ldx) {
    tl_neon_gemm_x4(&kind_q6_K, n, nr, nc, y, ldy, w, ldw, x, ldx);
}
