/* tiles.h — the ISA-neutral parts of the per-ISA matmul kernels: the walk
 * of a tile grid over W (nr, n) @ X^T (nc, n), the K-quant gemm driver, the
 * row-group packer and the decode prefetch target. The inner tiles are per
 * ISA; only how they are laid over the output lives here, once. Compiled without ISA
 * flags (tiles.c) or expanded inside an ISA file (the macro). */
#ifndef TL_KERN_CPU_TILES_H
#define TL_KERN_CPU_TILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/quant.h"

/* One tile: W rows at w (ldw bytes apart) against activation rows at x (ldx
 * bytes apart), nb blocks (or elements, for F16) each, into y[c * ldy + r]
 * for the tile's own R x C. */
typedef void (*tl_tile_fn)(int64_t nb, float *y, size_t ldy, const uint8_t *w, size_t ldw,
                           const uint8_t *x, size_t ldx);

/* Covers y (nc tokens x nr rows) with full tiles tRC (TR rows x TC tokens);
 * the rows left over in a token group go one by one through t11; the tokens
 * left over go through tR1 (TR1 rows x 1 token), then t11 for their last
 * rows. Every output is written exactly once. */
void tl_tile_walk(int64_t nb, int64_t nr, int64_t nc, float *y, size_t ldy, const uint8_t *w,
                  size_t ldw, const uint8_t *x, size_t ldx, int TR, int TC, tl_tile_fn tRC,
                  int TR1, tl_tile_fn tR1, tl_tile_fn t11);

/* Decode's weight streams. A decode tile reads GD row groups at once, each
 * its own prefetched stream from DRAM. Of a call's ng groups, the first
 * GD nt (nt = ng / GD) form GD runs of nt adjacent groups, and tile i
 * takes group i of each run (its groups nt group-strides apart), so that
 * each stream runs on from group to group over the call and its prefetch
 * with it. Tiles of GD adjacent groups started GD streams over at every
 * tile and stalled on their cold first lines each time, a cost per tile
 * that short rows paid most (AVX2, Zen 3, 2 threads: Q8_0 640 x 262144,
 * Gemma 3 270M's output, 26 -> 32-35 GB/s; whole models tg32 +4-19%).
 * A tile writes its GD groups' outputs as one run of GD rows floats per
 * token; these move them between that run (o) and the call's outputs y,
 * tile i's group g at rows (i + g nt) rows. */
static inline void tl_tile_stream_gather(float *o, const float *y, int64_t i, int64_t nt, int gd,
                                         int rows) {
    for (int g = 0; g < gd; g++)
        memcpy(o + g * rows, y + (size_t)rows * (size_t)(i + g * nt), sizeof(float) * (size_t)rows);
}
static inline void tl_tile_stream_scatter(float *y, const float *o, int64_t i, int64_t nt, int gd,
                                          int rows) {
    for (int g = 0; g < gd; g++)
        memcpy(y + (size_t)rows * (size_t)(i + g * nt), o + g * rows, sizeof(float) * (size_t)rows);
}

/* The F16 / BF16 row-group gemm's walk (repack_half_avx2.c: 8 rows to a
 * group, repack_half_neon.c: 4), whose layouts keep 2 * rows bytes per
 * element of a group. A tile: G groups x C tokens over elements [k0, k0 +
 * len),
 *   y[c * ldy + rows g + i] (+)= sum_k w[g][k][i] * xf[c * S + k - k0]
 * (first: start from 0; w: group 0 at element k0, groups gs bytes apart;
 * xf: token 0's element k0, tokens S floats apart). A tile of 1 or 2 tokens
 * (decode) prefetches each group's stream ahead; past the 2 rows len bytes
 * it reads of a group, the stream goes on skip bytes further (at the group
 * after it in its run, or the next tile's; tl_tile_pf_target). */
typedef void (*tl_half_tile_fn)(int64_t len, _Bool first, float *y, size_t ldy, const uint8_t *w,
                                size_t gs, size_t skip, const float *xf, int64_t S);
enum {
    TL_HALF_CT = 6,      /* tokens per prefill tile (of 2 groups) */
    TL_HALF_GD = 4,      /* groups per tile of 1 or 2 tokens */
    TL_HALF_XL1 = 3072,  /* activation floats a K segment keeps in L1 (12 KiB) */
};
// an ISA's tiles by token count: of TL_HALF_GD groups (1 or 2 tokens), of 2, of 1
typedef struct tl_half_tiles {
    tl_half_tile_fn g4[3], g2[TL_HALF_CT + 1], g1[TL_HALF_CT + 1];
} tl_half_tiles;

/* An ISA file's tl_half_tiles tiles_T, its 14 tile shapes, expanded from
 * an always-inline body in scope,
 *   tile(len, first, y, ldy, w, gs, skip, xf, S, G, C, BF)
 * (G groups x C tokens; BF a constant the body reads, e.g. the layout). */
#define TL_HALF_TILE(T, BF, G, C)                                                                  \
    static void tile_##T##_##G##_##C(int64_t len, _Bool first, float *y, size_t ldy,               \
                                     const uint8_t *w, size_t gs, size_t skip, const float *xf,   \
                                     int64_t S) {                                                 \
        tile(len, first, y, ldy, w, gs, skip, xf, S, G, C, BF);                                    \
    }
#define TL_HALF_TILES(T, BF)                                                                       \
    TL_HALF_TILE(T, BF, 4, 1) TL_HALF_TILE(T, BF, 4, 2)                                            \
    TL_HALF_TILE(T, BF, 2, 1) TL_HALF_TILE(T, BF, 2, 2) TL_HALF_TILE(T, BF, 2, 3)                  \
    TL_HALF_TILE(T, BF, 2, 4) TL_HALF_TILE(T, BF, 2, 5) TL_HALF_TILE(T, BF, 2, 6)                  \
    TL_HALF_TILE(T, BF, 1, 1) TL_HALF_TILE(T, BF, 1, 2) TL_HALF_TILE(T, BF, 1, 3)                  \
    TL_HALF_TILE(T, BF, 1, 4) TL_HALF_TILE(T, BF, 1, 5) TL_HALF_TILE(T, BF, 1, 6)                  \
    static const tl_half_tiles tiles_##T = {                                                       \
        { NULL, tile_##T##_4_1, tile_##T##_4_2 },                                                  \
        { NULL, tile_##T##_2_1, tile_##T##_2_2, tile_##T##_2_3, tile_##T##_2_4, tile_##T##_2_5,    \
          tile_##T##_2_6 },                                                                        \
        { NULL, tile_##T##_1_1, tile_##T##_1_2, tile_##T##_1_3, tile_##T##_1_4, tile_##T##_1_5,    \
          tile_##T##_1_6 },                                                                        \
    };

/* W (nr, n) packed by rows @ X^T (nc, n) -> y[c * ldy + r]   (nr % rows == 0)
 * X: f32 rows carrying f16 (bf16) values, ldx bytes apart (a multiple of 4).
 * Token tiles of up to TL_HALF_CT (the remainder in one narrower tile); K
 * segments of TL_HALF_XL1 / cc elements (a multiple of 8), whose
 * activations stay in L1 for every row group of the call; groups in tiles
 * of TL_HALF_GD (1 or 2 tokens: as streams, tl_tile_stream_gather) or 2,
 * then one. */
void tl_tile_half_gemm(int rows, int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                       size_t ldw, const void *x, size_t ldx, const tl_half_tiles *ts);

/* Fills packed block b of a row group from block b of each of its rows
 * (row[i]: row i's first byte). */
typedef void (*tl_pack_blk_fn)(void *out, const uint8_t *const *row, int64_t b);

enum { TL_PACK_MAX_ROWS = 16 };

/* The block-by-block repack of the row-interleaved layouts (AVX2's 8-row
 * groups, NEON's 4-row ones): W (nr, nb blocks), rows ldw bytes apart ->
 * dst (nr / rows groups of nb packed blocks of wblk bytes, f filling each);
 * rows <= TL_PACK_MAX_ROWS, nr % rows == 0. Always inlined, so that each
 * caller's constant rows and f make the same loop the per-ISA copies were. */
static inline __attribute__((always_inline)) void
tl_tile_pack_groups(void *dst, const void *w, size_t ldw, int64_t nb, int64_t nr, int rows, size_t wblk,
                    tl_pack_blk_fn f) {
    uint8_t *out = dst;
    const uint8_t *row[TL_PACK_MAX_ROWS];
    for (int64_t g0 = 0; g0 + rows <= nr && rows <= TL_PACK_MAX_ROWS; g0 += rows) {
        for (int i = 0; i < rows; i++) row[i] = (const uint8_t *)w + (size_t)(g0 + i) * ldw;
        for (int64_t b = 0; b < nb; b++, out += wblk) f(out, row, b);
    }
}

/* Row i's fifth bits of a q5_0 or q5_1 block (qh: bit e for element e) ->
 * its 4 bytes of hb (zeroed before), for the layouts whose chunk g holds
 * bytes 4g .. 4g+3 of each row's quants (low nibble: element 4g + t, high:
 * 16 + 4g + t): byte 4i + t gets, at bits 2g and 2g + 1, the bits of chunk
 * g's byte t's low and high nibble. */
static inline void tl_tile_pack_hb_row(uint8_t *hb, int i, const uint8_t qh[4]) {
    const uint32_t h = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
    for (int g = 0; g < 4; g++)
        for (int t = 0; t < 4; t++) {
            const uint32_t lo = (h >> (4 * g + t)) & 1, hi = (h >> (16 + 4 * g + t)) & 1;
            hb[4 * i + t] |= (uint8_t)((lo | hi << 1) << (2 * g));
        }
}

/* Row i of a group of `rows` in the Q2_K / Q3_K row-interleaved layouts
 * (AVX-512 Q2_K: 16 rows; NEON: 4): the quants in 16 chunks of 4 rows
 * bytes, chunk (h, g) holding the row's qs[32h + 4g .. +3] at bytes 4i ..
 * 4i+3; the 16 sub-block scale bytes at sm[k * rows + i] (Q2_K: scale |
 * min << 4 as stored; Q3_K: the signed 6-bit scales, unpacked, and d[i]:
 * tl_tile_pack_q3_K_head, which the bit-plane layout shares); Q3_K's
 * hmask[4g .. 4g+3] at hm + 4 rows g + 4i, inverted with inv. */
static inline void tl_tile_pack_k23_row(int rows, int i, const uint8_t *qs_src, uint8_t *qs) {
    for (int h = 0; h < 2; h++)
        for (int g = 0; g < 8; g++)
            memcpy(qs + (size_t)4 * rows * (8 * h + g) + 4 * i, qs_src + 32 * h + 4 * g, 4);
}
static inline void tl_tile_pack_q2_K_row(int rows, int i, const tl_block_q2_K *src, uint16_t *d,
                                         uint16_t *dmin, uint8_t *sm, uint8_t *qs) {
    d[i] = src->d;
    dmin[i] = src->dmin;
    for (int k = 0; k < 16; k++) sm[k * rows + i] = src->scales[k];
    tl_tile_pack_k23_row(rows, i, src->qs, qs);
}
static inline void tl_tile_pack_q3_K_head(int rows, int i, const tl_block_q3_K *src, uint16_t *d, int8_t *sc) {
    int8_t s[16];
    tl_q3_K_scales(src->scales, s);
    d[i] = src->d;
    for (int k = 0; k < 16; k++) sc[k * rows + i] = s[k];
}
static inline void tl_tile_pack_q3_K_row(int rows, int i, const tl_block_q3_K *src, bool inv,
                                         uint16_t *d, int8_t *sc, uint8_t *qs, uint8_t *hm) {
    tl_tile_pack_q3_K_head(rows, i, src, d, sc);
    tl_tile_pack_k23_row(rows, i, src->qs, qs);
    for (int g = 0; g < 8; g++)
        for (int t = 0; t < 4; t++)
            hm[(size_t)4 * rows * g + 4 * i + t] = (uint8_t)(inv ? ~src->hmask[4 * g + t] : src->hmask[4 * g + t]);
}

/* Row i of a group of `rows` in the Q3_K bit-plane layout (AVX2 8, AVX-512
 * 16 rows): the quants as 3-bit values u (the 2 bits | the hmask bit << 2,
 * 0..7) in 8 steps of 32 elements, step q 3 planes of 4 rows bytes at q +
 * 4 rows (3q + p). Slot j (0..7) of step q is the row's elements 32q + 4j +
 * t at bytes 4i + t: slots 0, 1 at bits 0, 3 of plane 0, 3, 4 of plane 1,
 * 6, 7 of plane 2; slot 2's low bits at bits 6-7 of plane 0 and its top
 * bit at bit 6 of plane 2, slot 5's at bits 6-7 of plane 1 and bit 7 of
 * plane 2. (The stored element 128h + 32s + l has its 2 bits at 2s of
 * qs[32h + l] and its third at bit 4h + s of hmask[l]: q = 4h + s.) */
static inline void tl_tile_pack_q3_K_planes(int rows, int i, const tl_block_q3_K *src, uint8_t *q) {
    for (int st = 0; st < 8; st++) {
        uint32_t u[8]; /* slot j's 4 values, a byte each */
        for (int j = 0; j < 8; j++) {
            uint32_t v, hm;
            memcpy(&v, src->qs + 32 * (st / 4) + 4 * j, 4);
            memcpy(&hm, src->hmask + 4 * j, 4);
            u[j] = (v >> (2 * (st % 4)) & 0x03030303u) | (hm >> st & 0x01010101u) << 2;
        }
        const uint32_t lo2 = 0x03030303u, top = 0x01010101u;
        const uint32_t o[3] = {
            u[0] | u[1] << 3 | (u[2] & lo2) << 6,
            u[3] | u[4] << 3 | (u[5] & lo2) << 6,
            u[6] | u[7] << 3 | (u[2] >> 2 & top) << 6 | (u[5] >> 2 & top) << 7,
        };
        for (int p = 0; p < 3; p++) memcpy(q + (size_t)4 * rows * (3 * st + p) + 4 * i, &o[p], 4);
    }
}

/* The 5-bit bit planes (AVX2 Q5_0, Q5_1, Q5_K; AVX-512 Q5_K): 32 elements
 * of each of `rows` rows as 8 slots, slot j the row's elements 4j + t (t =
 * 0..3) as 5-bit values u (the nibble | the fifth bit << 4), at bytes 4i +
 * t of 5 planes P0..P4 of 4 rows bytes (q + 4 rows p): slot k < 5 at bits
 * 0-4 of Pk; slot 5's bits 0-2 at bits 5-7 of P0 and 3-4 at 5-6 of P1, slot
 * 6's at P2 and P3 the same way, slot 7's bits 0-2 at 5-7 of P4, bit 3 at
 * bit 7 of P1 and bit 4 at bit 7 of P3. The same bytes as a nibble plane
 * and a fifth-bit plane, where taking each slot's fifth bit cost 3-4
 * vector operations: here 19-23 for the 8 slots (a slot k < 5 is one
 * mask). Row i's slots u[j] (4 values, a byte each) -> its 4 bytes in each
 * plane. */
static inline void tl_tile_pack_k5_slots(int rows, int i, const uint32_t u[8], uint8_t *q) {
    const uint32_t lo3 = 0x07070707u, lo2 = 0x03030303u, b1 = 0x01010101u;
    const uint32_t o[5] = {
        u[0] | (u[5] & lo3) << 5,
        u[1] | (u[5] >> 3 & lo2) << 5 | (u[7] >> 3 & b1) << 7,
        u[2] | (u[6] & lo3) << 5,
        u[3] | (u[6] >> 3 & lo2) << 5 | (u[7] >> 4 & b1) << 7,
        u[4] | (u[7] & lo3) << 5,
    };
    for (int p = 0; p < 5; p++) memcpy(q + (size_t)4 * rows * p + 4 * i, &o[p], 4);
}

/* A 32-element block's slots (Q5_0, Q5_1): qs and qh as stored, element l
 * < 16 the low nibble of qs[l], 16 + l the high one, bit e of qh its fifth */
static inline void tl_tile_q5_block_slots(const uint8_t qs[16], const uint8_t qh[4], uint32_t u[8]) {
    uint32_t h;
    memcpy(&h, qh, 4);
    for (int j = 0; j < 8; j++) {
        uint32_t v;
        memcpy(&v, qs + 4 * (j % 4), 4);
        /* bits 4j .. 4j + 3 of h to bit 4 of bytes 0..3 (the multiply's
         * four shifted copies do not overlap) */
        const uint32_t fifth = ((h >> 4 * j & 0xFu) * 0x00204081u & 0x01010101u) << 4;
        u[j] = (v >> (4 * (j / 4)) & 0x0F0F0F0Fu) | fifth;
    }
}

/* Row i's Q5_K quants in 5-bit planes: sub-block sb's (elements 32 sb ..
 * 32 sb + 31) at q + 4 rows (5 sb + p). The stored element 64c + 32h + l
 * (sb = 2c + h) is nibble h of qs[32c + l] | bit sb of qh[l] << 4. */
static inline void tl_tile_pack_q5_K_planes(int rows, int i, const tl_block_q5_K *src, uint8_t *q) {
    for (int sb = 0; sb < 8; sb++) {
        uint32_t u[8];
        for (int j = 0; j < 8; j++) {
            uint32_t v, hb;
            memcpy(&v, src->qs + 32 * (sb / 2) + 4 * j, 4);
            memcpy(&hb, src->qh + 4 * j, 4);
            u[j] = (v >> (4 * (sb % 2)) & 0x0F0F0F0Fu) | (hb >> sb & 0x01010101u) << 4;
        }
        tl_tile_pack_k5_slots(rows, i, u, q + (size_t)4 * rows * 5 * sb);
    }
}

/* Where a decode tile's weight stream asks for data ahead: ahead bytes past
 * pos of the run of end bytes at p that the tile reads; once that falls past
 * the run's end, the same distance into the run at next, where the stream
 * goes on (the next group of its run, tl_tile_stream_gather, or the next
 * tile's), rather than what follows this run in memory when that is not
 * it (a later K segment, or another group of this tile, being read
 * already). Each stream of a tile calls it with its own p and next. */
static inline const uint8_t *tl_tile_pf_target(const uint8_t *p, size_t pos, size_t ahead,
                                               size_t end, const uint8_t *next) {
    const size_t t = pos + ahead;
    return t < end ? p + t : next + (t - end);
}

/* The K-quant gemm driver, expanded in an ISA file as the body of
 *   gemm(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy,
 *        const void *vw, size_t ldw, const void *vx, size_t ldx)
 * for weight block type BT. It needs in scope: KDEC (a decoded
 * super-block), KR rows x KSB super-blocks decoded at a time by DEC(const BT
 * *, KDEC *), then dotted against KC tokens at a time by DOT_C(const KDEC *,
 * int kb, const uint8_t *x, size_t ldx, float *y, size_t ldy, bool add) and
 * single tokens by DOT_1(const KDEC *, int kb, const uint8_t *x, float *y,
 * bool add); add = accumulate into y (every super-block chunk after the
 * first). Rows are decoded once per chunk and reused across all tokens. */
#define TL_TILE_KQ_GEMM_BODY(BT, KDEC, KR, KSB, KC, DEC, DOT_C, DOT_1)                        \
    const uint8_t *w = vw, *x = vx;                                                           \
    const int64_t nb = n / TL_QK_K;                                                           \
    KDEC buf[KR][KSB];                                                                        \
    for (int64_t r0 = 0; r0 < nr; r0 += KR) {                                                 \
        const int rr = nr - r0 < KR ? (int)(nr - r0) : KR;                                    \
        for (int64_t k0 = 0; k0 < nb; k0 += KSB) {                                            \
            const int kb = nb - k0 < KSB ? (int)(nb - k0) : KSB;                              \
            for (int r = 0; r < rr; r++)                                                      \
                for (int s = 0; s < kb; s++)                                                  \
                    DEC((const BT *)(w + (r0 + r) * ldw) + k0 + s, &buf[r][s]);               \
            const uint8_t *xk = x + k0 * sizeof(tl_block_q8_K);                               \
            int64_t c0 = 0;                                                                   \
            for (; c0 + KC <= nc; c0 += KC)                                                   \
                for (int r = 0; r < rr; r++)                                                  \
                    DOT_C(buf[r], kb, xk + c0 * ldx, ldx, y + (size_t)c0 * ldy + r0 + r, ldy, \
                          k0 > 0);                                                            \
            for (; c0 < nc; c0++)                                                             \
                for (int r = 0; r < rr; r++)                                                  \
                    DOT_1(buf[r], kb, xk + c0 * ldx, y + (size_t)c0 * ldy + r0 + r, k0 > 0);  \
        }                                                                                     \
    }

#endif
