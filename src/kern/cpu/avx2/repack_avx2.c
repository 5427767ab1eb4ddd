/* repack_avx2.c — Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K weights
 * repacked 8 rows to a group (the kern.h repack slot), and the AVX2 tiles
 * over them (Q2_K and Q3_K: repack_k23_avx2.c).
 *
 * Why: the row-major tiles (quant_avx2.c, kquant_avx2.c) reduce each
 * (row, token, block) to a scalar in its own register and scale it in
 * float. Interleaving 8 rows puts one row in each 32-bit lane: a "chunk" of
 * 32 bytes holds 4 quants of each of the 8 rows, which meet 4 broadcast
 * activation bytes in one maddubs; a block's products for 8 rows sum in
 * integer lanes and take one convert and one fma per block and token, with
 * the 8 rows' scales in one vector.
 *
 * One driver, tl_avx2_gemm_x8 (its helpers and types: repack_x8.h),
 * serves every type: tiles of CT tokens (a rest of 3 in one 3-token tile;
 * of 1 or 2, as decode, over GD groups at once where the type has such a
 * tile, else token by token) with
 * the call's row groups innermost, so that a token tile's activations stay
 * in L1 while the row groups' weights stream past; the blocks go in
 * segments of kind->seg. What the tiles want from the activations beside
 * their blocks (float scales, sums, regrouped quants: kind->prep) follows
 * each row's blocks, made once per product by the backend (kern.h
 * act_prep: in every call, one per 64-row chunk, it took 3-4% of a
 * prefill).
 *
 * Register budget (16 ymm): per token an integer and a float accumulator,
 * the chunk being decoded and two or three constants. Larger decoded sets
 * (all chunks of a block) would not fit beside 4 tokens and make the
 * compiler spill in the inner loop; so each chunk is decoded, used by every
 * token of the tile, and dropped.
 *
 * Every block's integer sum is exact (bounds at each type, for activation
 * bytes in [-128, 127] unless noted); outputs accumulate in float per lane,
 * in block order, so results differ from the reference by rounding only. */
#include <assert.h>
#include <stddef.h>
#include <string.h>

#include "core/quant.h"
#include "kern/cpu/avx2/repack_x8.h"
#include "kern/cpu/tiles.h"

/* ---- the driver ------------------------------------------------------------ */

// W (nr, n) packed by 8 @ X^T (nc, n) -> y[c * ldy + r]   (n % qk == 0, nr % 8 == 0)
void tl_avx2_gemm_x8(const x8_kind *k, int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy,
                     const void *vw, size_t ldw, const void *vx, size_t ldx) {
    const int64_t nb = n / k->qk;
    const uint8_t *w = vw, *x = vx;
    /* what the tiles read beside the activation blocks: each row's entries
     * of k->prep, made once per product (kern.h act_prep), ldx apart too */
    const uint8_t *ax = x + tl_act_prep_offset((size_t)nb * k->xblk);
    const size_t lda = ldx;
    const size_t gs = 8 * ldw; /* bytes per group */
    /* decode: the dec tiles' GD streams (tiles.h, tl_tile_stream_gather),
     * nt groups each, the rest by tile1 */
    const int64_t nt = nc < CT && k->dec ? nr / (8 * GD) : 0;
    if (k->pf_start && nc < CT)
        for (int g = 0; g < (nt ? GD : 1); g++) prefetch_at(w + (size_t)g * nt * gs, 0, PF_AHEAD);
    for (int64_t c0 = 0; c0 < nc; c0 += CT) {
        const int cc = nc - c0 < CT ? (int)(nc - c0) : CT;
        for (int64_t b0 = 0; b0 < nb; b0 += k->seg) {
            const int64_t sb = nb - b0 < k->seg ? nb - b0 : k->seg;
            const bool first = b0 == 0;
            const uint8_t *xs = x + (size_t)c0 * ldx + (size_t)b0 * k->xblk;
            const uint8_t *a = ax + (size_t)c0 * ldx + (size_t)b0 * k->ablk;
            int64_t r0 = 0;
            /* 3 tokens: one pass of a 3-token tile over the weights, not a
             * pair and a single in two (Zen 3, 2 threads, abbench pp3: Q8_0
             * 1.10x, Q4_K_M 1.10-1.13x, Gemma 3 270M 1.07x, SmolLM2 Q4_1
             * 1.04x, Q4_0 1.00x; pp7, 4 + 3 tokens, Q4_K_M 1.18-1.23x) */
            const bool t3 = cc == 3;
            if (cc < CT && nt && !t3) {
                /* tile i: group i of each stream (outputs through o); after
                 * this segment's blocks a stream goes on at its next group's */
                const size_t skip = gs - (size_t)sb * k->wblk;
                const uint8_t *ws = w + (size_t)b0 * k->wblk;
                for (int64_t i = 0; i < nt; i++) {
                    const uint8_t *wt = ws + (size_t)i * gs;
                    float o[2][8 * GD];
                    int c = 0;
                    for (; k->dec2 && c + 2 <= cc; c += 2) { /* token pairs */
                        for (int t = 0; t < 2 && !first; t++)
                            tl_tile_stream_gather(o[t], y + (size_t)(c0 + c + t) * ldy, i, nt, GD, 8);
                        k->dec2(sb, first, o[0], 8 * GD, wt, (size_t)nt * gs, skip,
                                xs + (size_t)c * ldx, ldx, a + (size_t)c * lda, lda);
                        for (int t = 0; t < 2; t++)
                            tl_tile_stream_scatter(y + (size_t)(c0 + c + t) * ldy, o[t], i, nt, GD, 8);
                    }
                    for (; c < cc; c++) {
                        float *yt = y + (size_t)(c0 + c) * ldy;
                        if (!first) tl_tile_stream_gather(o[0], yt, i, nt, GD, 8);
                        k->dec(sb, first, o[0], wt, (size_t)nt * gs, skip, xs + (size_t)c * ldx,
                               a + (size_t)c * lda);
                        tl_tile_stream_scatter(yt, o[0], i, nt, GD, 8);
                    }
                }
                r0 = nt * 8 * GD;
            }
            for (; r0 < nr; r0 += 8) {
                const uint8_t *ws = w + (size_t)r0 * ldw + (size_t)b0 * k->wblk;
                float *yt = y + (size_t)c0 * ldy + r0;
                if (cc == CT) {
                    k->tile(sb, first, yt, ldy, ws, xs, ldx, a, lda);
                } else if (t3) {
                    k->tile3(sb, first, yt, ldy, ws, xs, ldx, a, lda);
                } else {
                    for (int c = 0; c < cc; c++)
                        k->tile1(sb, first, yt + (size_t)c * ldy, ldy, ws, xs + (size_t)c * ldx,
                                 ldx, a + (size_t)c * lda, lda);
                }
            }
        }
    }
}

/* ---- Q4_0 ------------------------------------------------------------------ *
 * Per group and block (144 bytes, the size of the 8 original blocks): d[8]
 * (the rows' f16 scales), then 4 chunks; chunk g holds, for row i, the 4
 * bytes qs[4g .. 4g+3] of its block at bytes 4i .. 4i+3. A byte's low
 * nibble is element 4g+t, its high nibble element 16+4g+t, so chunk & 0xF
 * and chunk >> 4 each hold 4 elements of all 8 rows.
 *
 * Arithmetic: sum_j (u_j - 8) y_j = sum_j u_j y_j - 8 sum_j y_j, the first
 * summed in int16 (8 maddubs: <= 8 * 2 * 15 * 128 < 2^15), the second
 * computed by prep once per token and block. */

typedef struct {
    uint16_t d[8];
    uint8_t qs[128];
} blk_q4_0x8;
static_assert(sizeof(blk_q4_0x8) == 8 * sizeof(tl_block_q4_0), "q4_0x8 is 8 q4_0 blocks");

// packed bytes per row of n elements: the q4_0 row size
size_t tl_avx2_row_size_q4_0x8(int64_t n) { return (size_t)(n / TL_QK4_0) * sizeof(tl_block_q4_0); }

// row i's 16 quant bytes (q4_0, q4_1, q5_0, q5_1) -> its 4 bytes in each of the 4 chunks at qs
static void pack_q40_row(uint8_t qs[128], int i, const uint8_t *src) {
    for (int g = 0; g < 4; g++) memcpy(qs + 32 * g + 4 * i, src + 4 * g, 4);
}

// block b of 8 q4_0 rows -> one blk_q4_0x8
static void pack_blk_q4_0(void *vo, const uint8_t *const row[8], int64_t b) {
    blk_q4_0x8 *out = vo;
    for (int i = 0; i < 8; i++) {
        const tl_block_q4_0 *src = (const tl_block_q4_0 *)row[i] + b;
        out->d[i] = src->d;
        pack_q40_row(out->qs, i, src->qs);
    }
}

// W (nr, n) q4_0, rows ldw bytes apart -> dst (nr / 8 groups of n / 32 blk_q4_0x8)
void tl_avx2_pack_q4_0x8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK4_0, nr, 8, sizeof(blk_q4_0x8), pack_blk_q4_0);
}

typedef struct {
    float d;     /* the activation block's scale */
    int32_t sy;  /* 8 * the sum of its quants */
} act_q4_0;
static_assert(sizeof(act_q4_0) == TL_AVX2_ACT_Q4_0, "act_q4_0: the slots' act_blk");

static_assert(sizeof(act_q4_0) == 8, "act_q4_0: (d, sy) pairs, 8 blocks in 64 bytes");

typedef struct {
    float d;  /* the q8_1 activation block's scale */
    float s;  /* d * the sum of its quants, as stored */
} act_q4_1;
static_assert(sizeof(act_q4_1) == TL_AVX2_ACT_Q4_1, "act_q4_1: the slots' act_blk");
static_assert(sizeof(act_q4_1) == sizeof(act_q4_0), "the Q4_0-family tiles step act by 8 bytes");

/* off * the quant sums of 8 blocks, as int32 lane j = block j: a tree of
 * horizontal adds (per 128-bit half) over their 8-lane partial sums */
TL_AVX2_INLINE __m256i sums8_q8_0(const tl_block_q8_0 *xb, const int off) {
    const __m256i eight = _mm256_set1_epi8((char)off), ones = _mm256_set1_epi16(1);
    __m256i m[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) m[j] = _mm256_madd_epi16(_mm256_maddubs_epi16(eight, ld256(xb[j].qs)), ones);
    const __m256i g0 = _mm256_hadd_epi32(_mm256_hadd_epi32(m[0], m[1]), _mm256_hadd_epi32(m[2], m[3]));
    const __m256i g1 = _mm256_hadd_epi32(_mm256_hadd_epi32(m[4], m[5]), _mm256_hadd_epi32(m[6], m[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(g0, g1, 0x20), _mm256_permute2x128_si256(g0, g1, 0x31));
}

/* per block of a row: (d, off * the sum of its quants), off the weights'
 * quant offset (Q4_0 8, Q5_0 16) */
TL_AVX2_INLINE void prep_off(void *dst, const void *x, int64_t nb, const int off) {
    const __m256i eight = _mm256_set1_epi8((char)off), ones = _mm256_set1_epi16(1);
    const tl_block_q8_0 *xb = x;
    act_q4_0 *o = dst;
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) {
        const __m256i sy = sums8_q8_0(xb + b, off);
        const __m256 d = _mm256_cvtph_ps(_mm_setr_epi16(
            (short)xb[b].d, (short)xb[b + 1].d, (short)xb[b + 2].d, (short)xb[b + 3].d,
            (short)xb[b + 4].d, (short)xb[b + 5].d, (short)xb[b + 6].d, (short)xb[b + 7].d));
        /* (d, sy) pairs: halves [0 1 | 4 5] and [2 3 | 6 7], then in order */
        const __m256i lo = _mm256_unpacklo_epi32(_mm256_castps_si256(d), sy);
        const __m256i hi = _mm256_unpackhi_epi32(_mm256_castps_si256(d), sy);
        _mm256_storeu_si256((__m256i *)(o + b), _mm256_permute2x128_si256(lo, hi, 0x20));
        _mm256_storeu_si256((__m256i *)(o + b + 4), _mm256_permute2x128_si256(lo, hi, 0x31));
    }
    for (; b < nb; b++) {
        const __m256i v = ld256(xb[b].qs);
        o[b].sy = hsum_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(eight, v), ones));
        o[b].d = tl_avx2_h2f(xb[b].d);
    }
}

static void prep_q4_0(void *dst, const void *x, int64_t nb) { prep_off(dst, x, nb, 8); }

/* ---- 5-bit planes (Q5_0, Q5_1, Q5_K) ---------------------------------------- *
 * The layout: tiles.h, tl_tile_pack_k5_slots; 32 elements of a group's 8
 * rows in 5 planes of 32 bytes. */

/* Slot j of a sub-block whose planes start at p: each row lane's 4
 * quants, 0..31, as bytes. The 16-bit shifts pull the next byte's low bits
 * into the top of each byte; the masks drop them. */
TL_AVX2_INLINE __m256i k5_slot(const uint8_t *p, const int j) {
    const __m256i m7 = _mm256_set1_epi8(7);
    if (j < 5) return _mm256_and_si256(ld256(p + 32 * j), _mm256_set1_epi8(0x1F));
    if (j < 7) { /* 5: P0 and P1; 6: P2 and P3 */
        const uint8_t *pl = p + 64 * (j - 5);
        const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(ld256(pl), 5), m7);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(ld256(pl + 32), 2), _mm256_set1_epi8(0x18));
        return _mm256_or_si256(lo, hi);
    }
    const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(ld256(p + 128), 5), m7);
    const __m256i b3 = _mm256_and_si256(_mm256_srli_epi16(ld256(p + 32), 4), _mm256_set1_epi8(0x08));
    const __m256i b4 = _mm256_and_si256(_mm256_srli_epi16(ld256(p + 96), 3), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(lo, _mm256_or_si256(b3, b4));
}

/* Q5_0 (below) is Q4_0 with a fifth bit per quant and an offset of 16: its
 * packed block is the rows' d[8] and the quants in 5-bit planes. */
typedef struct {
    uint16_t d[8];
    uint8_t q[5][32];
} blk_q5_0x8;
static_assert(sizeof(blk_q5_0x8) == 8 * sizeof(tl_block_q5_0), "q5_0x8 is 8 q5_0 blocks");

/* Q4_1 and Q5_1 (below) are Q4_0 and Q5_0 with a min per block, x = d q +
 * m, and no offset: their packed blocks put the rows' m[8] after d[8]. */
typedef struct {
    uint16_t d[8], m[8];
    uint8_t qs[128];
} blk_q4_1x8;
static_assert(sizeof(blk_q4_1x8) == 8 * sizeof(tl_block_q4_1), "q4_1x8 is 8 q4_1 blocks");
typedef struct {
    uint16_t d[8], m[8];
    uint8_t q[5][32];
} blk_q5_1x8;
static_assert(sizeof(blk_q5_1x8) == 8 * sizeof(tl_block_q5_1), "q5_1x8 is 8 q5_1 blocks");

/* G groups x C tokens of Q4_0 (q5: Q5_0; mn: Q4_1, Q5_1) (G = 1:
 * tile_fn, C = CT or 1; C = 1: dec_fn, G = GD). Five-bit quants reach 31:
 * their int16 sums are widened after 4 chunks (4 * 2 * 31 * 128 < 2^15),
 * four-bit ones after 8. With a min (mn), prep gives the activation
 * block's (d, s = d * its sum) as floats, and each block adds m * s. */
TL_AVX2_INLINE void tile_q40(const bool q5, const bool mn, const int G, const int C, int64_t nb,
                             bool first, float *y, size_t ldy, const uint8_t *w, size_t gs,
                             size_t skip, const uint8_t *x, size_t ldx, const uint8_t *a,
                             size_t lda) {
    const size_t blk = mn ? (q5 ? sizeof(blk_q5_1x8) : sizeof(blk_q4_1x8))
                          : (q5 ? sizeof(blk_q5_0x8) : sizeof(blk_q4_0x8));
    const size_t qs_off = blk - (q5 ? 160 : 128); /* the quants end every layout */
    __m256 acc[GD][CT];
    for (int g = 0; g < G; g++)
        for (int c = 0; c < C; c++) acc[g][c] = acc_init(first, y + (size_t)c * ldy + 8 * g);
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb[GD];
        group_blocks(wb, w, gs, skip, blk, b, nb, G, C);
        __m256i s[GD][CT], lo[GD][CT];
        /* Q4: chunk j < 4's low nibbles (elements 4j..), else chunk j -
         * 4's high nibbles (elements 16 + 4(j-4)..); Q5: slot j */
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
#pragma GCC unroll 4
            for (int g = 0; g < G; g++) {
                __m256i q;
                if (q5) {
                    q = k5_slot(wb[g] + qs_off, j);
                } else {
                    const __m256i v = ld256(wb[g] + qs_off + 32 * (j & 3));
                    q = _mm256_and_si256(j < 4 ? v : _mm256_srli_epi16(v, 4), m4);
                }
#pragma GCC unroll 4
                for (int c = 0; c < C; c++) {
                    const int8_t *xq = mn ? ((const tl_block_q8_1 *)(x + (size_t)c * ldx) + b)->qs
                                          : ((const tl_block_q8_0 *)(x + (size_t)c * ldx) + b)->qs;
                    const __m256i p = _mm256_maddubs_epi16(q, bcast4(xq + 4 * j));
                    s[g][c] = j % (q5 ? 4 : 8) ? _mm256_add_epi16(s[g][c], p) : p;
                    KEEP(s[g][c]);
                    if (q5 && j == 3) lo[g][c] = _mm256_madd_epi16(s[g][c], ones);
                }
            }
        }
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            const __m256 dw = ld_f16x8((const uint16_t *)wb[g]);
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) {
                const act_q4_0 *ac = (const act_q4_0 *)(a + (size_t)c * lda) + b;
                __m256i i32 = _mm256_madd_epi16(s[g][c], ones);
                if (q5) i32 = _mm256_add_epi32(lo[g][c], i32);
                if (!mn) i32 = _mm256_sub_epi32(i32, _mm256_set1_epi32(ac->sy));
                const __m256 dd = _mm256_mul_ps(dw, _mm256_set1_ps(ac->d));
                acc[g][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32), dd, acc[g][c]);
                if (mn) { /* + m * s: act_q4_1 */
                    const __m256 mw = ld_f16x8((const uint16_t *)wb[g] + 8);
                    acc[g][c] = _mm256_fmadd_ps(mw, _mm256_set1_ps(((const act_q4_1 *)ac)->s), acc[g][c]);
                }
            }
        }
    }
    for (int g = 0; g < G; g++)
        for (int c = 0; c < C; c++) _mm256_storeu_ps(y + (size_t)c * ldy + 8 * g, acc[g][c]);
}
X8_TILES_G(q4_0, tile_q40, false, false,)

// tl_avx2_gemm_q4_0x8: W q4_0 packed by 8 @ X^T q8_0   (n % 32 == 0, nr % 8 == 0)
X8_GEMM(q4_0, .qk = TL_QK4_0, .wblk = sizeof(blk_q4_0x8), .xblk = sizeof(tl_block_q8_0),
        .ablk = TL_AVX2_ACT_Q4_0, .seg = 256, .prep = prep_q4_0, .dec2 = dec2_q4_0_4)

/* ---- Q5_0 ------------------------------------------------------------------ *
 * Q4_0's tiles (tile_q40) on blk_q5_0x8 (above), the same size as the 8
 * original blocks; prep gives 16 * the activation sums. */

// packed bytes per row of n elements: the q5_0 row size
size_t tl_avx2_row_size_q5_0x8(int64_t n) { return (size_t)(n / TL_QK5_0) * sizeof(tl_block_q5_0); }

// block b of 8 q5_0 rows -> one blk_q5_0x8
static void pack_blk_q5_0(void *vo, const uint8_t *const row[8], int64_t b) {
    blk_q5_0x8 *out = vo;
    for (int i = 0; i < 8; i++) {
        const tl_block_q5_0 *src = (const tl_block_q5_0 *)row[i] + b;
        uint32_t u[8];
        out->d[i] = src->d;
        tl_tile_q5_block_slots(src->qs, src->qh, u);
        tl_tile_pack_k5_slots(8, i, u, out->q[0]);
    }
}

// W (nr, n) q5_0, rows ldw bytes apart -> dst (nr / 8 groups of n / 32 blk_q5_0x8)
void tl_avx2_pack_q5_0x8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK5_0, nr, 8, sizeof(blk_q5_0x8), pack_blk_q5_0);
}

static void prep_q5_0(void *dst, const void *x, int64_t nb) { prep_off(dst, x, nb, 16); }

X8_TILES_G(q5_0, tile_q40, true, false,)

// tl_avx2_gemm_q5_0x8: W q5_0 packed by 8 @ X^T q8_0   (n % 32 == 0, nr % 8 == 0)
X8_GEMM(q5_0, .qk = TL_QK5_0, .wblk = sizeof(blk_q5_0x8), .xblk = sizeof(tl_block_q8_0),
        .ablk = TL_AVX2_ACT_Q4_0, .seg = 256, .prep = prep_q5_0, .dec2 = dec2_q5_0_4)

/* ---- Q4_1 and Q5_1 ---------------------------------------------------------- *
 * tile_q40 with the min (blk_q4_1x8, blk_q5_1x8 above: the size of the 8
 * original blocks); Q8_1 activations, whose (d, s) prep turns to floats. */

size_t tl_avx2_row_size_q4_1x8(int64_t n) { return (size_t)(n / TL_QK4_1) * sizeof(tl_block_q4_1); }
size_t tl_avx2_row_size_q5_1x8(int64_t n) { return (size_t)(n / TL_QK5_1) * sizeof(tl_block_q5_1); }

// block b of 8 q4_1 rows -> one blk_q4_1x8
static void pack_blk_q4_1(void *vo, const uint8_t *const row[8], int64_t b) {
    blk_q4_1x8 *out = vo;
    for (int i = 0; i < 8; i++) {
        const tl_block_q4_1 *src = (const tl_block_q4_1 *)row[i] + b;
        out->d[i] = src->d;
        out->m[i] = src->m;
        pack_q40_row(out->qs, i, src->qs);
    }
}

// block b of 8 q5_1 rows -> one blk_q5_1x8
static void pack_blk_q5_1(void *vo, const uint8_t *const row[8], int64_t b) {
    blk_q5_1x8 *out = vo;
    for (int i = 0; i < 8; i++) {
        const tl_block_q5_1 *src = (const tl_block_q5_1 *)row[i] + b;
        uint32_t u[8];
        out->d[i] = src->d;
        out->m[i] = src->m;
        tl_tile_q5_block_slots(src->qs, src->qh, u);
        tl_tile_pack_k5_slots(8, i, u, out->q[0]);
    }
}

// W (nr, n) q4_1 (q5_1), rows ldw bytes apart -> dst (nr / 8 groups of n / 32 packed blocks)
void tl_avx2_pack_q4_1x8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK4_1, nr, 8, sizeof(blk_q4_1x8), pack_blk_q4_1);
}
void tl_avx2_pack_q5_1x8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK5_1, nr, 8, sizeof(blk_q5_1x8), pack_blk_q5_1);
}

/* per block of a row: the q8_1 block's d and s as floats */
static void prep_q8_1(void *dst, const void *x, int64_t nb) {
    const tl_block_q8_1 *xb = x;
    act_q4_1 *o = dst;
    for (int64_t b = 0; b < nb; b++) o[b] = (act_q4_1){ tl_avx2_h2f(xb[b].d), tl_avx2_h2f(xb[b].s) };
}

X8_TILES_G(q4_1, tile_q40, false, true,)
X8_TILES_G(q5_1, tile_q40, true, true,)

// tl_avx2_gemm_q4_1x8, tl_avx2_gemm_q5_1x8: W q4_1 / q5_1 packed by 8 @ X^T q8_1   (n % 32 == 0)
X8_GEMM(q4_1, .qk = TL_QK4_1, .wblk = sizeof(blk_q4_1x8), .xblk = sizeof(tl_block_q8_1),
        .ablk = TL_AVX2_ACT_Q4_1, .seg = 256, .prep = prep_q8_1, .dec2 = dec2_q4_1_4)
X8_GEMM(q5_1, .qk = TL_QK5_1, .wblk = sizeof(blk_q5_1x8), .xblk = sizeof(tl_block_q8_1),
        .ablk = TL_AVX2_ACT_Q4_1, .seg = 256, .prep = prep_q8_1, .dec2 = dec2_q5_1_4)

/* ---- Q8_0 ------------------------------------------------------------------ *
 * Per group and block (272 bytes, the 8 original blocks): d[8], then 8
 * chunks; chunk g holds, for row i, qs[4g .. 4g+3] at bytes 4i .. 4i+3.
 * Both operands are signed, so each chunk's products go through the sign
 * trick, maddubs(|w|, sign(y, w)), exact for every weight byte (|-128| reads
 * as 128 unsigned) and every activation byte but -128 (q8_0 activations
 * stay within +-127); a pair is at most 2 * 128 * 127 < 2^15, but two pairs
 * are not, so each chunk is widened to int32 at once by madd. */

typedef struct {
    uint16_t d[8];
    int8_t qs[256];
} blk_q8_0x8;
static_assert(sizeof(blk_q8_0x8) == 8 * sizeof(tl_block_q8_0), "q8_0x8 is 8 q8_0 blocks");

// packed bytes per row of n elements: the q8_0 row size
size_t tl_avx2_row_size_q8_0x8(int64_t n) { return (size_t)(n / TL_QK8_0) * sizeof(tl_block_q8_0); }

// block b of 8 q8_0 rows -> one blk_q8_0x8
static void pack_blk_q8_0(void *vo, const uint8_t *const row[8], int64_t b) {
    blk_q8_0x8 *out = vo;
    for (int i = 0; i < 8; i++) {
        const tl_block_q8_0 *src = (const tl_block_q8_0 *)row[i] + b;
        out->d[i] = src->d;
        for (int g = 0; g < 8; g++) memcpy(out->qs + 32 * g + 4 * i, src->qs + 4 * g, 4);
    }
}

// W (nr, n) q8_0, rows ldw bytes apart -> dst (nr / 8 groups of n / 32 blk_q8_0x8)
void tl_avx2_pack_q8_0x8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK8_0, nr, 8, sizeof(blk_q8_0x8), pack_blk_q8_0);
}

static_assert(TL_AVX2_ACT_Q8_0 == sizeof(float), "q8_0: d as a float");
/* per block of a row: the activation scale as float */
static void prep_q8_0(void *dst, const void *x, int64_t nb) {
    const tl_block_q8_0 *xb = x;
    float *o = dst;
    for (int64_t b = 0; b < nb; b++) o[b] = tl_avx2_h2f(xb[b].d);
}

/* G groups x C tokens (G = 1: tile_fn, C = CT or 1; C = 1: dec_fn, G = GD) */
TL_AVX2_INLINE void tile_q8_0(const int G, const int C, int64_t nb, bool first, float *y,
                              size_t ldy, const uint8_t *w, size_t gs, size_t skip,
                              const uint8_t *x, size_t ldx, const uint8_t *a, size_t lda) {
    __m256 acc[GD][CT];
    for (int g = 0; g < G; g++)
        for (int c = 0; c < C; c++) acc[g][c] = acc_init(first, y + (size_t)c * ldy + 8 * g);
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wp[GD];
        group_blocks(wp, w, gs, skip, sizeof(blk_q8_0x8), b, nb, G, C);
        const blk_q8_0x8 *wb[GD];
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) wb[g] = (const blk_q8_0x8 *)wp[g];
        __m256i s[GD][CT];
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
#pragma GCC unroll 4
            for (int g = 0; g < G; g++) {
                const __m256i q = ld256(wb[g]->qs + 32 * j);
                const __m256i u = _mm256_abs_epi8(q);
#pragma GCC unroll 4
                for (int c = 0; c < C; c++) {
                    const tl_block_q8_0 *xb = (const tl_block_q8_0 *)(x + (size_t)c * ldx) + b;
                    const __m256i p = _mm256_madd_epi16(
                        _mm256_maddubs_epi16(u, _mm256_sign_epi8(bcast4(xb->qs + 4 * j), q)), ones);
                    s[g][c] = j ? _mm256_add_epi32(s[g][c], p) : p;
                    KEEP(s[g][c]);
                }
            }
        }
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            const __m256 dw = ld_f16x8(wb[g]->d);
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) {
                const float dy = ((const float *)(a + (size_t)c * lda))[b];
                const __m256 dd = _mm256_mul_ps(dw, _mm256_set1_ps(dy));
                acc[g][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[g][c]), dd, acc[g][c]);
            }
        }
    }
    for (int g = 0; g < G; g++)
        for (int c = 0; c < C; c++) _mm256_storeu_ps(y + (size_t)c * ldy + 8 * g, acc[g][c]);
}
X8_TILES_G(q8_0, tile_q8_0, )

// tl_avx2_gemm_q8_0x8: W q8_0 packed by 8 @ X^T q8_0   (n % 32 == 0, nr % 8 == 0)
X8_GEMM(q8_0, .qk = TL_QK8_0, .wblk = sizeof(blk_q8_0x8), .xblk = sizeof(tl_block_q8_0),
        .ablk = TL_AVX2_ACT_Q8_0, .seg = 256, .prep = prep_q8_0, .dec2 = dec2_q8_0_4)

/* ---- Q4_K ------------------------------------------------------------------ *
 * Per group and super-block (1184 bytes; the 8 original blocks are 1152):
 * the rows' d and dmin; the 6-bit sub-block scales unpacked, sc[s][i] for
 * sub-block s of row i (one shuffle turns a pair of sub-blocks' 16 bytes
 * into the madd operands (sc, sc) of each row's lane); the mins as pairs
 * (m_2p, m_2p+1) per row, the madd operand against the activation's
 * sub-block sum pairs; and the quants in 32 chunks: chunk (c, g) holds, for
 * row i, the 4 bytes qs[32c + 4g .. +3], whose low nibbles are elements
 * 64c + 4g + t (sub-block 2c) and high nibbles 64c + 32 + 4g + t
 * (sub-block 2c + 1).
 *
 * Arithmetic, per row lane: sum_s sc_s (u_s . y_s) with u_s . y_s summed in
 * int16 (8 maddubs, <= 8 * 2 * 15 * 128 < 2^15), scaled by madd and summed
 * in int32; the mins sum_s m_s * ysum_s by 4 madds; then
 * acc += isum * (d * dy) and acc -= msum * (dmin * dy), per super-block. */

typedef struct { /* what Q4_K and Q5_K's packed blocks begin with */
    uint16_t d[8], dmin[8];
    uint8_t sc[8][8];
    uint8_t mn[4][16];
} k4_head;

typedef struct {
    k4_head hd;
    uint8_t qs[1024];
} blk_q4_Kx8;
static_assert(sizeof(blk_q4_Kx8) == 1184, "q4_Kx8 layout");

// packed bytes per row of n elements (n % 256 == 0)
size_t tl_avx2_row_size_q4_Kx8(int64_t n) { return (size_t)(n / TL_QK_K) * sizeof(blk_q4_Kx8) / 8; }

// row i of out <- a q4_K or q5_K block's d, dmin and 12 scale bytes
static void pack_k4_head(k4_head *out, int i, uint16_t d, uint16_t dmin, const uint8_t *scales) {
    uint8_t sc[8], m[8];
    for (int s = 0; s < 8; s++) tl_get_scale_min_k4(s, scales, &sc[s], &m[s]);
    out->d[i] = d;
    out->dmin[i] = dmin;
    for (int s = 0; s < 8; s++) out->sc[s][i] = sc[s];
    for (int p = 0; p < 4; p++) {
        out->mn[p][2 * i] = m[2 * p];
        out->mn[p][2 * i + 1] = m[2 * p + 1];
    }
}

// block b of 8 q4_K rows -> one blk_q4_Kx8
static void pack_blk_q4_K(void *vo, const uint8_t *const row[8], int64_t b) {
    blk_q4_Kx8 *out = vo;
    for (int i = 0; i < 8; i++) {
        const tl_block_q4_K *src = (const tl_block_q4_K *)row[i] + b;
        pack_k4_head(&out->hd, i, src->d, src->dmin, src->scales);
        for (int c = 0; c < 4; c++)
            for (int g = 0; g < 8; g++) memcpy(out->qs + 256 * c + 32 * g + 4 * i, src->qs + 32 * c + 4 * g, 4);
    }
}

// W (nr, n) q4_K, rows ldw bytes apart -> dst (nr / 8 groups of n / 256 blk_q4_Kx8)
void tl_avx2_pack_q4_Kx8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK_K, nr, 8, sizeof(blk_q4_Kx8), pack_blk_q4_K);
}

typedef struct {
    float d;         /* the activation super-block's scale */
    int32_t ys[4];   /* int16 pairs (ysum_2p, ysum_2p+1) of its 32-element sums */
} act_q4_K;
static_assert(sizeof(act_q4_K) == TL_AVX2_ACT_Q4_K, "act_q4_K: the slots' act_blk");

// per super-block of a row: its d and sub-block sums in pairs
static void prep_q4_K(void *dst, const void *x, int64_t nb) {
    const tl_block_q8_K *xb = x;
    act_q4_K *o = dst;
    for (int64_t b = 0; b < nb; b++) {
        for (int p = 0; p < 4; p++) {
            const int lo = xb[b].bsums[4 * p] + xb[b].bsums[4 * p + 1];
            const int hi = xb[b].bsums[4 * p + 2] + xb[b].bsums[4 * p + 3];
            o[b].ys[p] = (int32_t)(((uint32_t)hi << 16) | ((uint32_t)lo & 0xFFFF));
        }
        o[b].d = xb[b].d;
    }
}

/* The madd operand that scales sub-block 2cp + h of each row lane: bytes
 * (sc_i, 0, sc_i, 0) in lane i, from sc[2cp] (h = 0) or sc[2cp + 1]. */
TL_AVX2_INLINE __m256i q4_K_scales(const k4_head *wb, int cp, int h) {
    const __m256i dup0 = _mm256_setr_epi8(0, -128, 0, -128, 1, -128, 1, -128, 2, -128, 2, -128, 3,
                                          -128, 3, -128, 4, -128, 4, -128, 5, -128, 5, -128, 6, -128,
                                          6, -128, 7, -128, 7, -128);
    const __m256i dup = h ? _mm256_add_epi8(dup0, _mm256_set1_epi16(8)) : dup0;
    return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(ld128(wb->sc[2 * cp])), dup);
}

/* One group's super-block for one token, into acc, in this order:
 *   acc += isum * (d * dy);  acc -= (sum_s m_s * ysum_s) * (dmin * dy) */
TL_AVX2_INLINE __m256 q4_K_finish(__m256 acc, __m256i isum, const k4_head *wb,
                                  const act_q4_K *ac) {
    __m256i ms = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int p = 0; p < 4; p++)
        ms = _mm256_add_epi32(ms, _mm256_madd_epi16(_mm256_cvtepu8_epi16(ld128(wb->mn[p])),
                                                    _mm256_set1_epi32(ac->ys[p])));
    const __m256 dy = _mm256_set1_ps(ac->d);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(ld_f16x8(wb->d), dy), acc);
    return _mm256_fnmadd_ps(_mm256_cvtepi32_ps(ms), _mm256_mul_ps(ld_f16x8(wb->dmin), dy), acc);
}

/* One group's quants of nibble h (0: low) of chunk v as unsigned bytes */
TL_AVX2_INLINE __m256i k4_quants(__m256i v, int h) {
    return _mm256_and_si256(h ? _mm256_srli_epi16(v, 4) : v, _mm256_set1_epi8(0x0F));
}

/* G = 1 group x C tokens of Q4_K over nb super-blocks. The int16 sums of
 * one nibble's 8 chunks: <= 8 * 2 * 15 * 128 < 2^15. */
TL_AVX2_INLINE void tile_k4(const int C, int64_t nb, bool first, float *y, size_t ldy, const uint8_t *w,
                            const uint8_t *x, size_t ldx, const uint8_t *a, size_t lda) {
    __m256 acc[CT];
    for (int c = 0; c < C; c++) acc[c] = acc_init(first, y + (size_t)c * ldy);
    for (int64_t b = 0; b < nb; b++) {
        const blk_q4_Kx8 *wb = (const blk_q4_Kx8 *)w + b;
        __m256i isum[CT];
        for (int c = 0; c < C; c++) isum[c] = _mm256_setzero_si256();
        /* sub-blocks 2cp (low nibbles of chunk row cp) and 2cp + 1 (high) */
        for (int cp = 0; cp < 4; cp++) {
            const uint8_t *qc = wb->qs + 256 * cp;
            if (C == 1) prefetch_part(wb, PF_AHEAD, sizeof *wb, (size_t)cp, 4);
            __m256i s[2][CT]; /* [nibble][token] */
            if (C == 1) {
                /* one token: both nibbles of a chunk from one load */
                const int8_t *xq = ((const tl_block_q8_K *)x + b)->qs + 64 * cp;
#pragma GCC unroll 8
                for (int g = 0; g < 8; g++) {
                    const __m256i v = ld256(qc + 32 * g);
                    const __m256i pl = _mm256_maddubs_epi16(k4_quants(v, 0), bcast4(xq + 4 * g));
                    const __m256i ph = _mm256_maddubs_epi16(k4_quants(v, 1), bcast4(xq + 32 + 4 * g));
                    s[0][0] = g ? _mm256_add_epi16(s[0][0], pl) : pl;
                    s[1][0] = g ? _mm256_add_epi16(s[1][0], ph) : ph;
                    KEEP(s[0][0]);
                    KEEP(s[1][0]);
                }
            } else {
                /* several tokens: one nibble at a time (each chunk loaded
                 * twice), which leaves the registers to the tokens' sums */
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++)
#pragma GCC unroll 8
                    for (int g = 0; g < 8; g++) {
                        const __m256i q = k4_quants(ld256(qc + 32 * g), h);
#pragma GCC unroll 4
                        for (int c = 0; c < C; c++) {
                            const tl_block_q8_K *xb = (const tl_block_q8_K *)(x + (size_t)c * ldx) + b;
                            const int8_t *xq = xb->qs + 64 * cp + 32 * h + 4 * g;
                            const __m256i p = _mm256_maddubs_epi16(q, bcast4(xq));
                            s[h][c] = g ? _mm256_add_epi16(s[h][c], p) : p;
                            KEEP(s[h][c]);
                        }
                    }
            }
            const __m256i sc0 = q4_K_scales(&wb->hd, cp, 0), sc1 = q4_K_scales(&wb->hd, cp, 1);
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) {
                isum[c] = _mm256_add_epi32(isum[c], _mm256_add_epi32(_mm256_madd_epi16(s[0][c], sc0),
                                                                     _mm256_madd_epi16(s[1][c], sc1)));
                KEEP(isum[c]);
            }
        }
#pragma GCC unroll 4
        for (int c = 0; c < C; c++)
            acc[c] = q4_K_finish(acc[c], isum[c], &wb->hd, (const act_q4_K *)(a + (size_t)c * lda) + b);
    }
    for (int c = 0; c < C; c++) _mm256_storeu_ps(y + (size_t)c * ldy, acc[c]);
}
X8_TILES(q4_K, tile_k4, )

/* GD groups x C tokens (C = 1: dec_fn, 2: dec2_fn, each quant chunk
 * decoded once for both) of Q4_K, each row's arithmetic tile1's
 * (the same integer sums, then the same float steps: the same bits).
 *
 * The groups take turns chunk by chunk, one nibble at a time (which leaves
 * the registers to the groups' sums; the second nibble's loads come from
 * L1), and each group's stream is prefetched a line at a time, PF_DEC
 * ahead, about as fast as it is read: 5 lines per chunk row, 20 per
 * super-block of 18.5. Read that way (a loads-only
 * version of this loop, Zen 3, 2 threads, decode from DRAM, in one process
 * by turns) the packed Q4_K weights stream at 30-31 GB/s, against 26 for
 * tile1's one stream a thread, and 21-24 for four streams that each ask
 * for a whole block or a quarter of one at once: how the earlier
 * four-group tiles read. */
TL_AVX2_INLINE void dec_k4(const int C, int64_t nb, bool first, float *y, size_t ldy,
                           const uint8_t *w, size_t gs, size_t skip, const uint8_t *x, size_t ldx,
                           const uint8_t *a, size_t lda) {
    const size_t blk = sizeof(blk_q4_Kx8);
    __m256 acc[GD][2];
    for (int g = 0; g < GD; g++)
        for (int c = 0; c < C; c++) acc[g][c] = acc_init(first, y + (size_t)c * ldy + 8 * g);
    for (int64_t b = 0; b < nb; b++) {
        const blk_q4_Kx8 *wb[GD];
        for (int g = 0; g < GD; g++)
            wb[g] = (const blk_q4_Kx8 *)(w + (size_t)g * gs + (size_t)b * blk);
        const int8_t *xq[2];
        for (int c = 0; c < C; c++) xq[c] = ((const tl_block_q8_K *)(x + (size_t)c * ldx) + b)->qs;
        __m256i isum[GD][2];
        for (int g = 0; g < GD; g++)
            for (int c = 0; c < C; c++) isum[g][c] = _mm256_setzero_si256();
        for (int cp = 0; cp < 4; cp++) {
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                __m256i s[GD][2];
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) {
                    /* lines 5 cp + 0..4 of the blocks */
                    if (h == 0 && (j % 2 == 0 || j == 7)) {
                        const size_t line = 5 * (size_t)cp + (j == 7 ? 4 : (size_t)j / 2);
                        prefetch_groups_line(w, gs, skip, (size_t)nb * blk, (size_t)b * blk + 64 * line);
                    }
                    __m256i y4[2];
                    for (int c = 0; c < C; c++) y4[c] = bcast4(xq[c] + 64 * cp + 32 * h + 4 * j);
#pragma GCC unroll 4
                    for (int g = 0; g < GD; g++) {
                        const __m256i q = k4_quants(ld256(wb[g]->qs + 256 * cp + 32 * j), h);
                        for (int c = 0; c < C; c++) {
                            const __m256i p = _mm256_maddubs_epi16(q, y4[c]);
                            s[g][c] = j ? _mm256_add_epi16(s[g][c], p) : p;
                            KEEP(s[g][c]);
                        }
                    }
                }
#pragma GCC unroll 4
                for (int g = 0; g < GD; g++) {
                    const __m256i sc = q4_K_scales(&wb[g]->hd, cp, h);
                    for (int c = 0; c < C; c++)
                        isum[g][c] = _mm256_add_epi32(isum[g][c], _mm256_madd_epi16(s[g][c], sc));
                }
            }
        }
#pragma GCC unroll 4
        for (int g = 0; g < GD; g++)
            for (int c = 0; c < C; c++)
                acc[g][c] = q4_K_finish(acc[g][c], isum[g][c], &wb[g]->hd,
                                        (const act_q4_K *)(a + (size_t)c * lda) + b);
    }
    for (int g = 0; g < GD; g++)
        for (int c = 0; c < C; c++) _mm256_storeu_ps(y + (size_t)c * ldy + 8 * g, acc[g][c]);
}
X8_DECS(q4_K, dec_k4, )
static_assert(5 * 4 * 64 >= sizeof(blk_q4_Kx8), "dec_k4's prefetches cover a Q4_K super-block");

// tl_avx2_gemm_q4_Kx8: W q4_K packed by 8 @ X^T q8_K   (n % 256 == 0, nr % 8 == 0)
X8_GEMM(q4_K, .qk = TL_QK_K, .wblk = sizeof(blk_q4_Kx8), .xblk = sizeof(tl_block_q8_K),
        .ablk = TL_AVX2_ACT_Q4_K, .seg = 32, .prep = prep_q4_K, .pf_start = true,
        .dec2 = dec2_q4_K_4)

/* ---- Q5_K ------------------------------------------------------------------ *
 * Q4_K's head (d, dmin, scales, mins: k4_head) and activation prep, with
 * the quants in 5-bit planes (tiles.h, tl_tile_pack_q5_K_planes):
 * sub-block sb (elements 32 sb .. 32 sb + 31 of each row) is planes q[sb].
 * Per group and super-block 1440 bytes, the 8 original blocks 1408. A
 * sub-block's int16 sums take 4 slots (4 * 2 * 31 * 128 < 2^15): its two
 * halves are widened by madd in turn. */
typedef struct {
    k4_head hd;
    uint8_t q[8][5][32];
} blk_q5_Kx8;
static_assert(sizeof(blk_q5_Kx8) == 8 * sizeof(tl_block_q5_K) + 32, "q5_Kx8 layout");

// packed bytes per row of n elements (n % 256 == 0)
size_t tl_avx2_row_size_q5_Kx8(int64_t n) { return (size_t)(n / TL_QK_K) * sizeof(blk_q5_Kx8) / 8; }

// block b of 8 q5_K rows -> one blk_q5_Kx8
static void pack_blk_q5_K(void *vo, const uint8_t *const row[8], int64_t b) {
    blk_q5_Kx8 *out = vo;
    for (int i = 0; i < 8; i++) {
        const tl_block_q5_K *src = (const tl_block_q5_K *)row[i] + b;
        pack_k4_head(&out->hd, i, src->d, src->dmin, src->scales);
        tl_tile_pack_q5_K_planes(8, i, src, out->q[0][0]);
    }
}

// W (nr, n) q5_K, rows ldw bytes apart -> dst (nr / 8 groups of n / 256 blk_q5_Kx8)
void tl_avx2_pack_q5_Kx8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK_K, nr, 8, sizeof(blk_q5_Kx8), pack_blk_q5_K);
}

/* G groups x C tokens of Q5_K (G = 1: tile_fn, C = CT, 3 or 1; G = GD:
 * dec_fn, dec2_fn). The decode tile asks for each group's next lines three
 * per sub-block, PF_DEC ahead: 24 lines for a block of 22.5. */
TL_AVX2_INLINE void tile_k5(const int G, const int C, int64_t nb, bool first, float *y, size_t ldy,
                            const uint8_t *w, size_t gs, size_t skip, const uint8_t *x, size_t ldx,
                            const uint8_t *a, size_t lda) {
    const size_t blk = sizeof(blk_q5_Kx8);
    __m256 acc[GD][CT];
    tile_acc_init(acc, first, y, ldy, G, C);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb[GD];
        k_group_blocks(wb, w, gs, skip, blk, b, nb, G, C);
        __m256i isum[GD][CT];
        k_isum_zero(isum, G, C);
        for (int sb = 0; sb < 8; sb++) {
            k_step_prefetch(w, gs, skip, (size_t)nb * blk, (size_t)b * blk + 64 * (size_t)(3 * sb), 3, G);
#pragma GCC unroll 2
            for (int half = 0; half < 2; half++) {
                __m256i ss[GD][CT]; /* the half sub-block's int16 sums */
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++) {
                    const int slot = 4 * half + j;
#pragma GCC unroll 4
                    for (int g = 0; g < G; g++)
                        k_slot_dot(ss[g], k5_slot(((const blk_q5_Kx8 *)wb[g])->q[sb][0], slot), j, x, ldx, b,
                                   32 * sb + 4 * slot, C);
                }
#pragma GCC unroll 4
                for (int g = 0; g < G; g++)
                    k_widen(isum[g], ss[g], q4_K_scales((const k4_head *)wb[g], sb / 2, sb % 2), C);
            }
        }
#pragma GCC unroll 4
        for (int g = 0; g < G; g++)
            for (int c = 0; c < C; c++)
                acc[g][c] = q4_K_finish(acc[g][c], isum[g][c], (const k4_head *)wb[g],
                                        (const act_q4_K *)(a + (size_t)c * lda) + b);
    }
    tile_acc_store(y, ldy, acc, G, C);
}
X8_TILES_G(q5_K, tile_k5, )
static_assert(3 * 8 * 64 >= sizeof(blk_q5_Kx8), "tile_k5's prefetches cover a Q5_K super-block");

// tl_avx2_gemm_q5_Kx8: W q5_K packed by 8 @ X^T q8_K   (n % 256 == 0, nr % 8 == 0)
X8_GEMM(q5_K, .qk = TL_QK_K, .wblk = sizeof(blk_q5_Kx8), .xblk = sizeof(tl_block_q8_K),
        .ablk = TL_AVX2_ACT_Q4_K, .seg = 32, .prep = prep_q4_K, .pf_start = true,
        .dec2 = dec2_q5_K_4)

/* ---- Q6_K ------------------------------------------------------------------ *
 * Per group and super-block (1680 bytes, the 8 original blocks): the rows'
 * d; the 16 int8 scales as pairs (sc_2p, sc_2p+1) per row; and the 6-bit
 * quants u = q + 32, still 6 bits each, in a form that takes few
 * operations to unpack: each 3 chunks (A, B, C) of 32 bytes hold 4 chunks
 * of quants, u0..u2 in the low 6 bits of A..C and u3's three bit pairs in
 * their top 2 bits (u0 = A & 63, u3 = A >> 6 | (B >> 6) << 2 | (C >> 6) << 4).
 *
 * The elements in a chunk are ordered so that a row lane's two int16 pair
 * sums fall in two sub-blocks, 2p and 2p+1: its bytes r = 0..3 are
 * elements 32p + 16 (r >> 1) + 2m + (r & 1) of chunk m (0..7) of pair p,
 * so a madd with the pairs (sc_2p, sc_2p+1) scales both, with no
 * per-sub-block shuffle. Pair p's chunks m = 4h + k (k = 0..3) are
 * u0..u3 of triple (p, h). prep regroups the activation quants of each
 * token to the same order (one unpack per 16 bytes), so a chunk still
 * meets one 4-byte broadcast.
 *
 * Arithmetic, per row lane: sum_j sc_j (u_j . y_j) - 32 sum_j sc_j ysum_j,
 * ysum_j being q8_K's bsums; u . y of two chunks summed in int16
 * (<= 2 * 2 * 63 * 128 < 2^15), everything else in int32, then
 * acc += isum * (d * dy) per super-block. */

typedef struct {
    uint16_t d[8];
    int8_t scp[8][16];
    uint8_t q[16][96];
} blk_q6_Kx8;
static_assert(sizeof(blk_q6_Kx8) == 8 * sizeof(tl_block_q6_K), "q6_Kx8 is 8 q6_K blocks");

// packed bytes per row of n elements: the q6_K row size
size_t tl_avx2_row_size_q6_Kx8(int64_t n) { return (size_t)(n / TL_QK_K) * sizeof(tl_block_q6_K); }

// block b of 8 q6_K rows -> one blk_q6_Kx8
static void pack_blk_q6_K(void *vo, const uint8_t *const row[8], int64_t b) {
    blk_q6_Kx8 *out = vo;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    const __m128i m3 = _mm_set1_epi8(3), top = _mm_setr_epi32(0, 2, 4, 6);
    for (int i = 0; i < 8; i++) {
        const tl_block_q6_K *src = (const tl_block_q6_K *)row[i] + b;
        out->d[i] = src->d;
        for (int p = 0; p < 8; p++) {
            out->scp[p][2 * i] = src->scales[2 * p];
            out->scp[p][2 * i + 1] = src->scales[2 * p + 1];
        }
        /* u, element 128h + 32k + l: low 4 bits from ql[64h + l + 32 (k & 1)]
         * (the high nibble when k >= 2), top 2 from qh[32h + l] >> 2k; the
         * 16-bit shifts only bleed bits that the masks drop */
        uint8_t u[TL_QK_K];
        for (int h = 0; h < 2; h++) {
            const __m256i A = ld256(src->ql + 64 * h), B = ld256(src->ql + 64 * h + 32);
            const __m256i H = ld256(src->qh + 32 * h);
            __m256i *o = (__m256i *)(u + 128 * h);
            _mm256_storeu_si256(o, _mm256_or_si256(_mm256_and_si256(A, m4),
                                                   _mm256_and_si256(_mm256_slli_epi16(H, 4), m30)));
            _mm256_storeu_si256(o + 1, _mm256_or_si256(_mm256_and_si256(B, m4),
                                                       _mm256_and_si256(_mm256_slli_epi16(H, 2), m30)));
            _mm256_storeu_si256(o + 2, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(A, 4), m4),
                                                       _mm256_and_si256(H, m30)));
            _mm256_storeu_si256(o + 3, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(B, 4), m4),
                                                       _mm256_and_si256(_mm256_srli_epi16(H, 2), m30)));
        }
        /* chunk m = 4h + k of pair p, bytes r = 0..3: u[32p + 16 (r >> 1) +
         * 2m + (r & 1)], which is 16-bit unit 4h + k of u[32p ..] then of
         * u[32p + 16 ..]: an unpack of the two halves gives v_k (k = 0..3)
         * as the 32-bit lanes; A, B, C take v0..v2 and v3's bit pairs */
        for (int p = 0; p < 8; p++) {
            const __m128i lo = ld128(u + 32 * p), hi = ld128(u + 32 * p + 16);
            for (int h = 0; h < 2; h++) {
                const __m128i v = h ? _mm_unpackhi_epi16(lo, hi) : _mm_unpacklo_epi16(lo, hi);
                const __m128i v3 = _mm_shuffle_epi32(v, 0xFF);
                const __m128i abc = _mm_or_si128(
                    v, _mm_slli_epi32(_mm_and_si128(_mm_srlv_epi32(v3, top), m3), 6));
                uint8_t *t = out->q[2 * p + h];
                const int32_t a = _mm_cvtsi128_si32(abc), bb = _mm_extract_epi32(abc, 1),
                              c = _mm_extract_epi32(abc, 2);
                memcpy(t + 4 * i, &a, 4);
                memcpy(t + 32 + 4 * i, &bb, 4);
                memcpy(t + 64 + 4 * i, &c, 4);
            }
        }
    }
}

// W (nr, n) q6_K, rows ldw bytes apart -> dst (nr / 8 groups of n / 256 blk_q6_Kx8)
void tl_avx2_pack_q6_Kx8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK_K, nr, 8, sizeof(blk_q6_Kx8), pack_blk_q6_K);
}

static_assert(TL_AVX2_ACT_Q6_K == TL_QK_K, "q6_K: a super-block's quants");
/* per super-block of a row: its 256 quants in the chunks' element order
 * (q'[32p + 4m + r] = q[32p + 16 (r >> 1) + 2m + (r & 1)]) */
static void prep_q6_K(void *dst, const void *x, int64_t nb) {
    const tl_block_q8_K *xb = x;
    uint8_t *o = dst;
    for (int64_t b = 0; b < nb; b++, o += TL_QK_K) {
        for (int p = 0; p < 8; p++) {
            const __m128i lo = ld128(xb[b].qs + 32 * p);
            const __m128i hi = ld128(xb[b].qs + 32 * p + 16);
            _mm_storeu_si128((__m128i *)(o + 32 * p), _mm_unpacklo_epi16(lo, hi));
            _mm_storeu_si128((__m128i *)(o + 32 * p + 16), _mm_unpackhi_epi16(lo, hi));
        }
    }
}

/* u3 of a triple (A, B, D): its three bit pairs from the top of each */
TL_AVX2_INLINE __m256i q6_K_u3(__m256i A, __m256i B, __m256i D, __m256i m6) {
    return _mm256_or_si256(_mm256_or_si256(_mm256_srli_epi16(_mm256_andnot_si256(m6, A), 6),
                                           _mm256_srli_epi16(_mm256_andnot_si256(m6, B), 4)),
                           _mm256_srli_epi16(_mm256_andnot_si256(m6, D), 2));
}

/* One group's super-block for one token, into acc:
 *   acc += (isum - 32 sum_j sc_j ysum_j) * (d * dx) */
TL_AVX2_INLINE __m256 q6_K_finish(__m256 acc, __m256i isum, const blk_q6_Kx8 *wb,
                                  const tl_block_q8_K *xb) {
    __m256i ms = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int p = 0; p < 8; p++)
        ms = _mm256_add_epi32(ms, _mm256_madd_epi16(_mm256_cvtepi8_epi16(ld128(wb->scp[p])),
                                                    bcast4(&xb->bsums[2 * p])));
    const __m256i is = _mm256_sub_epi32(isum, _mm256_slli_epi32(ms, 5));
    const __m256 dd = _mm256_mul_ps(ld_f16x8(wb->d), _mm256_set1_ps(xb->d));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), dd, acc);
}

TL_AVX2_INLINE void tile_q6_K(const int C, int64_t nb, bool first, float *y, size_t ldy,
                              const uint8_t *w, const uint8_t *x, size_t ldx, const uint8_t *a,
                              size_t lda) {
    __m256 acc[CT];
    for (int c = 0; c < C; c++) acc[c] = acc_init(first, y + (size_t)c * ldy);
    const __m256i m6 = _mm256_set1_epi8(0x3F);
    const blk_q6_Kx8 *wb = (const blk_q6_Kx8 *)w;
    for (int64_t b = 0; b < nb; b++, wb++) {
        __m256i isum[CT];
        for (int c = 0; c < C; c++) isum[c] = _mm256_setzero_si256();
        for (int p = 0; p < 8; p++) {
            if (C == 1) prefetch_part(wb, PF_AHEAD, sizeof *wb, (size_t)p, 8);
            const __m256i sc = _mm256_cvtepi8_epi16(ld128(wb->scp[p]));
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                const uint8_t *qt = wb->q[2 * p + h];
                const __m256i A = ld256(qt);
                const __m256i B = ld256(qt + 32);
                const __m256i D = ld256(qt + 64);
                const __m256i u0 = _mm256_and_si256(A, m6), u1 = _mm256_and_si256(B, m6);
                const __m256i u2 = _mm256_and_si256(D, m6);
                const __m256i u3 = q6_K_u3(A, B, D, m6);
#pragma GCC unroll 4
                for (int c = 0; c < C; c++) {
                    const uint8_t *xq = a + (size_t)c * lda + (size_t)b * TL_QK_K + 32 * p + 16 * h;
                    const __m256i s0 = _mm256_add_epi16(_mm256_maddubs_epi16(u0, bcast4(xq)),
                                                        _mm256_maddubs_epi16(u1, bcast4(xq + 4)));
                    const __m256i s1 = _mm256_add_epi16(_mm256_maddubs_epi16(u2, bcast4(xq + 8)),
                                                        _mm256_maddubs_epi16(u3, bcast4(xq + 12)));
                    isum[c] = _mm256_add_epi32(isum[c], _mm256_add_epi32(_mm256_madd_epi16(s0, sc),
                                                                         _mm256_madd_epi16(s1, sc)));
                    KEEP(isum[c]);
                }
            }
        }
#pragma GCC unroll 4
        for (int c = 0; c < C; c++)
            acc[c] = q6_K_finish(acc[c], isum[c], wb,
                                 (const tl_block_q8_K *)(x + (size_t)c * ldx) + b);
    }
    for (int c = 0; c < C; c++) _mm256_storeu_ps(y + (size_t)c * ldy, acc[c]);
}
X8_TILES(q6_K, tile_q6_K, )

/* dec_fn (C = 1) and dec2_fn (C = 2) for Q6_K: GD groups x C tokens, as
 * dec_k4: each row's arithmetic tile1's (the same bits), the groups taking
 * turns at each triple of chunks, one token's four activation broadcasts
 * shared by them (two tokens: each group's chunks shared by both), and
 * each group's stream prefetched PF_DEC ahead as it is read: lines
 * 27 t / 16 .. 27 (t + 1) / 16 at triple t, 27 lines a super-block of
 * 26.25. */
TL_AVX2_INLINE void dec_q6_K(const int C, int64_t nb, bool first, float *y, size_t ldy,
                             const uint8_t *w, size_t gs, size_t skip, const uint8_t *x, size_t ldx,
                             const uint8_t *a, size_t lda) {
    __m256 acc[GD][2];
    for (int g = 0; g < GD; g++)
        for (int c = 0; c < C; c++) acc[g][c] = acc_init(first, y + (size_t)c * ldy + 8 * g);
    const __m256i m6 = _mm256_set1_epi8(0x3F);
    const size_t blk = sizeof(blk_q6_Kx8);
    for (int64_t b = 0; b < nb; b++) {
        const blk_q6_Kx8 *wb[GD];
        for (int g = 0; g < GD; g++)
            wb[g] = (const blk_q6_Kx8 *)(w + (size_t)g * gs + (size_t)b * blk);
        __m256i isum[GD][2];
        for (int g = 0; g < GD; g++)
            for (int c = 0; c < C; c++) isum[g][c] = _mm256_setzero_si256();
        for (int p = 0; p < 8; p++) {
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                const size_t t = 2 * (size_t)p + h;
                for (size_t line = 27 * t / 16; line < 27 * (t + 1) / 16; line++)
                    prefetch_groups_line(w, gs, skip, (size_t)nb * blk, (size_t)b * blk + 64 * line);
                const uint8_t *xq = a + (size_t)b * TL_QK_K + 32 * p + 16 * h;
                /* one token: the broadcasts serve every group; two: each
                 * group's chunks serve both tokens, broadcast as used */
                __m256i y0 = bcast4(xq), y1 = bcast4(xq + 4), y2 = bcast4(xq + 8),
                        y3 = bcast4(xq + 12);
#pragma GCC unroll 4
                for (int g = 0; g < GD; g++) {
                    const uint8_t *qt = wb[g]->q[2 * p + h];
                    const __m256i A = ld256(qt), B = ld256(qt + 32), D = ld256(qt + 64);
                    const __m256i u3 = q6_K_u3(A, B, D, m6);
                    const __m256i sc = _mm256_cvtepi8_epi16(ld128(wb[g]->scp[p]));
                    for (int c = 0; c < C; c++) {
                        if (C > 1) {
                            const uint8_t *xc = xq + (size_t)c * lda;
                            y0 = bcast4(xc), y1 = bcast4(xc + 4);
                            y2 = bcast4(xc + 8), y3 = bcast4(xc + 12);
                        }
                        const __m256i s0 =
                            _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(A, m6), y0),
                                             _mm256_maddubs_epi16(_mm256_and_si256(B, m6), y1));
                        const __m256i s1 =
                            _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(D, m6), y2),
                                             _mm256_maddubs_epi16(u3, y3));
                        const __m256i s01 =
                            _mm256_add_epi32(_mm256_madd_epi16(s0, sc), _mm256_madd_epi16(s1, sc));
                        isum[g][c] = _mm256_add_epi32(isum[g][c], s01);
                        KEEP(isum[g][c]);
                    }
                }
            }
        }
#pragma GCC unroll 4
        for (int g = 0; g < GD; g++)
            for (int c = 0; c < C; c++)
                acc[g][c] = q6_K_finish(acc[g][c], isum[g][c], wb[g],
                                        (const tl_block_q8_K *)(x + (size_t)c * ldx) + b);
    }
    for (int g = 0; g < GD; g++)
        for (int c = 0; c < C; c++) _mm256_storeu_ps(y + (size_t)c * ldy + 8 * g, acc[g][c]);
}
X8_DECS(q6_K, dec_q6_K, )
static_assert(27 * 64 >= sizeof(blk_q6_Kx8), "dec_q6_K_4's prefetches cover a super-block");

// tl_avx2_gemm_q6_Kx8: W q6_K packed by 8 @ X^T q8_K   (n % 256 == 0, nr % 8 == 0)
X8_GEMM(q6_K, .qk = TL_QK_K, .wblk = sizeof(blk_q6_Kx8), .xblk = sizeof(tl_block_q8_K),
        .ablk = TL_AVX2_ACT_Q6_K, .seg = 16, .prep = prep_q6_K, .pf_start = true,
        .dec2 = dec2_q6_K_4)
