/* repack_avx512.c — Q4_0, Q8_0, Q5_0, Q4_1 and Q5_1 weights repacked 16
 * rows to a group (the kern.h repack slot), and the AVX-512 VNNI tiles
 * over them.
 *
 * Why 16 rows: a zmm holds one row per 32-bit lane, so one vpdpbusd takes 4
 * quants of each of 16 rows against 4 activation bytes broadcast to every
 * lane (an embedded-broadcast memory operand): 64 multiply-adds in one
 * instruction, the int32 row sums accumulating in place, nothing to reduce
 * across lanes. A 32-element block of 16 rows is 8 vpdpbusd, one convert
 * and one fma whose scale vector holds the 16 rows' d_w: ~12 instructions
 * per 512 MACs (AVX2's 8-row tiles need ~20 per 256).
 *
 * Packed group of 16 rows and nb blocks (exactly the bytes of the 16
 * original rows, rearranged): first the quants of every block, then the
 * scales of every block, so that, when a group starts 64-byte aligned, every
 * 64-byte quant load is aligned too (an AVX-512 load that splits two cache
 * lines costs two):
 *   quants, block b: G chunks of 64 bytes; chunk g holds, for row i, the 4
 *     bytes qs[4g .. 4g+3] of its block b at bytes 4i .. 4i+3
 *     (q4_0: G = 4, a byte's low nibble is element 4g + t, its high nibble
 *     element 16 + 4g + t; q8_0: G = 8, element 4g + t, stored as q ^ 0x80,
 *     i.e. q + 128 as an unsigned byte)
 *   scales, block b: the 16 rows' f16 d.
 *
 * Arithmetic, per row lane, exact in int32 for every byte value:
 *   q4_0: sum_j (u_j - 8) y_j  = sum_j u_j y_j  - 8 sum_j y_j
 *   q8_0: sum_j q_j y_j        = sum_j (q_j + 128) y_j - 128 sum_j y_j
 * vpdpbusd needs one unsigned operand: the weights are made unsigned, and
 * the offset times the activation block's sum is taken out exactly. (The
 * usual sign trick, |w| times sign(y, w), breaks on y = -128 with w < 0;
 * this bias does not.) The activation sums are computed once per token and
 * block for the whole product (act_x16, kern.h act_prep: the backend lays
 * them after each row's blocks; in each call, one per 128-row chunk, they
 * cost ~10 instructions a block and token against the tile's ~100), and
 * seed the accumulator, so the correction costs no instruction in the
 * tile. |sum| <= 32 * 255 * 128 < 2^31.
 * Each output then accumulates fma(isum, d_w * d_x, acc) over blocks, in
 * block order, in its own lane; only that float order differs from the
 * reference.
 *
 * Q5_0, Q4_1 and Q5_1 are Q4_0's layout with more per block:
 *   q5_0: in the nibble chunks' place, the 5-bit values u = 0..31 (offset
 *     16) in 5 planes of 64 bytes (tiles.h, tl_tile_pack_k5_slots): a slot
 *     is a mask, or 4-6 operations for 3 of the 8, 19 a block where a
 *     nibble and its fifth bit from a separate chunk took 28;
 *   q4_1: the scales are d[16] then m[16] (x = d u + m); u = 0..15, no
 *     offset; the activations are q8_1, whose s = d_x * sum(y) makes the
 *     min term one more fma per block: acc += m_w * s;
 *   q5_1: both.
 * Each packs to its own size. */
#include <assert.h>
#include <stddef.h>
#include <string.h>

#include "core/quant.h"
#include "kern/cpu/avx512/avx512.h"
#include "kern/cpu/tiles.h"

enum {
    KSEG = 256, /* blocks per segment (stack: CT * KSEG act_x16 entries, 24 KiB) */
    CT = 8,     /* tokens per tile: 8 dequantized chunks + 8 accumulators + temporaries of 32 zmm */
};

typedef struct {
    uint8_t qs[4][64];
} q4_0x16_quants;
static_assert(sizeof(q4_0x16_quants) + 16 * sizeof(uint16_t) == 16 * sizeof(tl_block_q4_0),
              "q4_0x16 block: the 16 rows' bytes rearranged");

typedef struct {
    uint8_t qs[8][64];
} q8_0x16_quants;
static_assert(sizeof(q8_0x16_quants) + 16 * sizeof(uint16_t) == 16 * sizeof(tl_block_q8_0),
              "q8_0x16 block: the 16 rows' bytes rearranged");

// packed bytes per row of n elements: the q5_0, q4_1, q5_1 row sizes
size_t tl_avx512_row_size_q5_0x16(int64_t n) { return (size_t)(n / TL_QK5_0) * sizeof(tl_block_q5_0); }
size_t tl_avx512_row_size_q4_1x16(int64_t n) { return (size_t)(n / TL_QK4_1) * sizeof(tl_block_q4_1); }
size_t tl_avx512_row_size_q5_1x16(int64_t n) { return (size_t)(n / TL_QK5_1) * sizeof(tl_block_q5_1); }

// packed bytes per row of n elements: the q4_0 row size
size_t tl_avx512_row_size_q4_0x16(int64_t n) { return (size_t)(n / TL_QK4_0) * sizeof(tl_block_q4_0); }

// packed bytes per row of n elements: the q8_0 row size
size_t tl_avx512_row_size_q8_0x16(int64_t n) { return (size_t)(n / TL_QK8_0) * sizeof(tl_block_q8_0); }

/* the 16 rows' f16 d of the blocks at blk (rows at offsets rows), 32 bytes
 * at out: d is a block's first 2 bytes, so the low word of the dword there
 * (the block goes on past it, so the dword is inside it) */
TL_AVX512_INLINE void gather_d16(uint8_t *out, __m512i rows, const uint8_t *blk) {
    _mm256_storeu_si256((__m256i *)out, _mm512_cvtepi32_epi16(tl_avx512_gather16(rows, blk)));
}

/* W (nr, n) q4_0, rows ldw bytes apart -> dst (nr / 16 groups: nb quant blocks, then nb scale rows)
 * Every packed chunk is one dword of each of the 16 rows' blocks: one
 * gather (avx512.h) and one 64-byte store, where a row by row copy moved 4
 * bytes at a time (q8_0 flipping them one by one: ~1 GB/s as AVX2 code,
 * q4_0 ~3.5; every weight is packed at load). */
void tl_avx512_pack_q4_0x16(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    static_assert(offsetof(tl_block_q4_0, d) == 0, "d: the low word of a block's first dword");
    const int64_t nb = n / TL_QK4_0;
    const __m512i rows = tl_avx512_row_offsets(ldw);
    const bool gather = ldw <= TL_AVX512_GATHER_MAX_LDW;
    for (int64_t g0 = 0; g0 < nr; g0 += 16) {
        uint8_t *grp = (uint8_t *)dst + (size_t)g0 * tl_avx512_row_size_q4_0x16(n);
        q4_0x16_quants *q = (q4_0x16_quants *)grp;
        uint8_t *d = grp + (size_t)nb * sizeof *q;
        const uint8_t *src = (const uint8_t *)w + (size_t)g0 * ldw;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = src + (size_t)b * sizeof(tl_block_q4_0);
            if (gather) {
#pragma GCC unroll 4
                for (int g = 0; g < 4; g++) {
                    const __m512i v = tl_avx512_gather16(rows, blk + offsetof(tl_block_q4_0, qs) + 4 * g);
                    _mm512_storeu_si512(q[b].qs[g], v);
                }
                gather_d16(d + (size_t)b * 32, rows, blk);
                continue;
            }
            for (int i = 0; i < 16; i++) {
                const tl_block_q4_0 *sb = (const tl_block_q4_0 *)(blk + (size_t)i * ldw);
                memcpy(d + (size_t)(16 * b + i) * 2, &sb->d, 2);
                for (int g = 0; g < 4; g++) memcpy(&q[b].qs[g][4 * i], sb->qs + 4 * g, 4);
            }
        }
    }
}

// W (nr, n) q8_0, rows ldw bytes apart -> dst (nr / 16 groups: nb quant blocks, then nb scale rows)
void tl_avx512_pack_q8_0x16(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    static_assert(offsetof(tl_block_q8_0, d) == 0, "d: the low word of a block's first dword");
    const int64_t nb = n / TL_QK8_0;
    const __m512i rows = tl_avx512_row_offsets(ldw), bias = _mm512_set1_epi8((char)0x80);
    const bool gather = ldw <= TL_AVX512_GATHER_MAX_LDW;
    for (int64_t g0 = 0; g0 < nr; g0 += 16) {
        uint8_t *grp = (uint8_t *)dst + (size_t)g0 * tl_avx512_row_size_q8_0x16(n);
        q8_0x16_quants *q = (q8_0x16_quants *)grp;
        uint8_t *d = grp + (size_t)nb * sizeof *q;
        const uint8_t *src = (const uint8_t *)w + (size_t)g0 * ldw;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = src + (size_t)b * sizeof(tl_block_q8_0);
            if (gather) {
#pragma GCC unroll 8
                for (int g = 0; g < 8; g++) {
                    const __m512i v = tl_avx512_gather16(rows, blk + offsetof(tl_block_q8_0, qs) + 4 * g);
                    _mm512_storeu_si512(q[b].qs[g], _mm512_xor_si512(v, bias));
                }
                gather_d16(d + (size_t)b * 32, rows, blk);
                continue;
            }
            for (int i = 0; i < 16; i++) {
                const tl_block_q8_0 *sb = (const tl_block_q8_0 *)(blk + (size_t)i * ldw);
                memcpy(d + (size_t)(16 * b + i) * 2, &sb->d, 2);
                for (int g = 0; g < 8; g++)
                    for (int t = 0; t < 4; t++) q[b].qs[g][4 * i + t] = (uint8_t)sb->qs[4 * g + t] ^ 0x80;
            }
        }
    }
}

/* W (nr, n) q5_0, q4_1 or q5_1 (bytes per block bs, offsets of d, m (or
 * -1), qh (or -1) and qs in it) -> dst (nr / 16 groups: nb quant blocks of
 * 4 (+ 1) chunks, then nb scale rows of d[16] (+ m[16])). Row by row: these
 * types are rare, and their fifth bits go into the 5-bit planes bit by bit. */
static void pack_x16_rows(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr, size_t bs,
                          int d_off, int m_off, int qh_off, int qs_off, size_t row_size) {
    const int64_t nb = n / 32;
    const size_t qbytes = qh_off >= 0 ? 320 : 256, sbytes = m_off >= 0 ? 64 : 32;
    for (int64_t g0 = 0; g0 < nr; g0 += 16) {
        uint8_t *grp = (uint8_t *)dst + (size_t)g0 * row_size;
        uint8_t *sc = grp + (size_t)nb * qbytes;
        const uint8_t *src = (const uint8_t *)w + (size_t)g0 * ldw;
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *q = grp + (size_t)b * qbytes, *d = sc + (size_t)b * sbytes;
            for (int i = 0; i < 16; i++) {
                const uint8_t *blk = src + (size_t)i * ldw + (size_t)b * bs;
                memcpy(d + 2 * i, blk + d_off, 2);
                if (m_off >= 0) memcpy(d + 32 + 2 * i, blk + m_off, 2);
                if (qh_off < 0) {
                    for (int g = 0; g < 4; g++) memcpy(q + 64 * g + 4 * i, blk + qs_off + 4 * g, 4);
                    continue;
                }
                uint32_t u[8];
                tl_tile_q5_block_slots(blk + qs_off, blk + qh_off, u);
                tl_tile_pack_k5_slots(16, i, u, q);
            }
        }
    }
}

void tl_avx512_pack_q5_0x16(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    pack_x16_rows(dst, w, ldw, n, nr, sizeof(tl_block_q5_0), offsetof(tl_block_q5_0, d), -1,
                  offsetof(tl_block_q5_0, qh), offsetof(tl_block_q5_0, qs), tl_avx512_row_size_q5_0x16(n));
}
void tl_avx512_pack_q4_1x16(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    pack_x16_rows(dst, w, ldw, n, nr, sizeof(tl_block_q4_1), offsetof(tl_block_q4_1, d),
                  offsetof(tl_block_q4_1, m), -1, offsetof(tl_block_q4_1, qs), tl_avx512_row_size_q4_1x16(n));
}
void tl_avx512_pack_q5_1x16(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    pack_x16_rows(dst, w, ldw, n, nr, sizeof(tl_block_q5_1), offsetof(tl_block_q5_1, d),
                  offsetof(tl_block_q5_1, m), offsetof(tl_block_q5_1, qh), offsetof(tl_block_q5_1, qs),
                  tl_avx512_row_size_q5_1x16(n));
}

/* The types of the tiles: quant bytes, scale bytes per block of 16 rows,
 * and what they take from the activations */
enum { A40, A80, A50, A41, A51 };
TL_AVX512_INLINE size_t q_bytes(const int T) { return T == A80 ? 512 : T == A50 || T == A51 ? 320 : 256; }
TL_AVX512_INLINE size_t s_bytes(const int T) { return T == A41 || T == A51 ? 64 : 32; }
TL_AVX512_INLINE bool has_min(const int T) { return T == A41 || T == A51; }
static_assert(sizeof(q8_0x16_quants) == 512 && sizeof(q4_0x16_quants) == 256, "q_bytes");

/* Decode streams each weight byte once, from DRAM; the one-token tiles
 * (those of the groups a call has past its last DG-group decode tile) ask
 * for the quants PF_AHEAD bytes ahead as they start a block, and for the
 * scale rows as many blocks ahead, as the AVX2 tiles do (+15-20% there).
 * A group's blocks lie back to back and the call's groups too, so this runs
 * on into the next group. PF_AHEAD = 0 turns it off (an A/B switch). */
enum { PF_AHEAD = 4096 };

/* per token and activation block, what the tiles take beside its quants
 * (the slots' act_prep entries, after each row's blocks) */
typedef struct {
    int32_t sy; /* -off * sum(y), the accumulator's seed (0 for q8_1 rows) */
    float dy;   /* d_x */
    float sx;   /* q8_1 rows (the types with a min): their s = d_x sum(y) */
} act_x16;
static_assert(sizeof(act_x16) == TL_AVX512_ACT_X16, "act_x16: the slots' act_blk");

// nb q8_0 blocks at x -> their act_x16 at dst, off the weights' quant offset
static void act_prep_off(void *dst, const void *x, int64_t nb, int32_t off) {
    const tl_block_q8_0 *xb = x;
    act_x16 *o = dst;
    for (int64_t b = 0; b < nb; b++)
        o[b] = (act_x16){ -off * tl_avx512_sum32_i8(xb[b].qs), _cvtsh_ss(xb[b].d), 0.0f };
}
void tl_avx512_act_prep_q4_0x16(void *dst, const void *x, int64_t nb) { act_prep_off(dst, x, nb, 8); }
void tl_avx512_act_prep_q8_0x16(void *dst, const void *x, int64_t nb) { act_prep_off(dst, x, nb, 128); }
void tl_avx512_act_prep_q5_0x16(void *dst, const void *x, int64_t nb) { act_prep_off(dst, x, nb, 16); }

// nb q8_1 blocks at x -> their act_x16 at dst (Q4_1, Q5_1)
void tl_avx512_act_prep_q8_1x16(void *dst, const void *x, int64_t nb) {
    const tl_block_q8_1 *xb = x;
    act_x16 *o = dst;
    for (int64_t b = 0; b < nb; b++) o[b] = (act_x16){ 0, _cvtsh_ss(xb[b].d), _cvtsh_ss(xb[b].s) };
}

/* a token's activation quants of block b: q8_1 (mn) or q8_0 rows */
TL_AVX512_INLINE const int8_t *act_qs(const uint8_t *xrow, int64_t b, const bool mn) {
    return mn ? ((const tl_block_q8_1 *)xrow + b)->qs : ((const tl_block_q8_0 *)xrow + b)->qs;
}

/* q[j], j < 8: 4 quants of each of the 16 rows of a packed block (at qb),
 * unsigned, against activation bytes 4j .. 4j+3: q8_0, the 8 biased
 * chunks; Q4_0, Q4_1, the 4 nibble chunks, low nibbles then high; Q5_0,
 * Q5_1, slot j of the 5-bit planes. ld_pair makes chunks j and j + 4 (j <
 * 4) of them. */
TL_AVX512_INLINE void ld_pair(__m512i *lo, __m512i *hi, const uint8_t *qb, const int j, const int T) {
    if (T == A50 || T == A51) {
        *lo = tl_avx512_k5_slot(qb, j);
        *hi = tl_avx512_k5_slot(qb, j + 4);
        return;
    }
    if (T == A80) {
        *lo = _mm512_loadu_si512(qb + 64 * j);
        *hi = _mm512_loadu_si512(qb + 64 * (j + 4));
        return;
    }
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i v = _mm512_loadu_si512(qb + 64 * j);
    *lo = _mm512_and_si512(v, m4);
    *hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
}
TL_AVX512_INLINE void ld_quants(__m512i q[8], const uint8_t *qb, const int T) {
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) ld_pair(&q[j], &q[j + 4], qb, j, T);
}

/* per row lane: seed + sum_j q[j] . xq[4j .. 4j+3], in one chain, or in two
 * (odd j in the second, added at the end) so that the 5-cycle vpdpbusd
 * latency does not bound a tile of few tokens */
TL_AVX512_INLINE __m512i dot_block(const __m512i q[8], const int8_t *xq, int32_t seed, const bool two) {
    __m512i s0 = _mm512_set1_epi32(seed), s1 = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        if (two && (j & 1)) s1 = tl_avx512_dpbusd_b4(s1, q[j], xq + 4 * j);
        else s0 = tl_avx512_dpbusd_b4(s0, q[j], xq + 4 * j);
    }
    return two ? _mm512_add_epi32(s0, s1) : s0;
}

/* One group of 16 packed rows x C tokens over blocks [b0, b0 + nb) of nbt:
 *   y[c * ldy + i] (+)= sum_b row i . token c   (first: start from 0)
 * T: the layout (A40 .. A51); the types with a min add m_w s_x per block. */
TL_AVX512_INLINE void tile32(int64_t b0, int64_t nb, int64_t nbt, bool first, float *y, size_t ldy,
                             const uint8_t *grp, const uint8_t *x, size_t ldx, const act_x16 *ac,
                             const int C, const int T) {
    const size_t qbytes = q_bytes(T), sbytes = s_bytes(T);
    const bool mn = has_min(T);
    const uint8_t *dsc = grp + (size_t)nbt * qbytes;
    __m512 acc[CT];
    for (int c = 0; c < C; c++)
        acc[c] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(y + (size_t)c * ldy);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *qb = grp + (size_t)(b0 + b) * qbytes, *sb = dsc + (size_t)(b0 + b) * sbytes;
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)sb));
        const __m512 mw = mn ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sb + 32))) : dw;
        if (C == 1 && PF_AHEAD > 0) {
#pragma GCC unroll 8
            for (size_t o = 0; o < qbytes; o += 64) _mm_prefetch((const char *)qb + PF_AHEAD + o, _MM_HINT_T0);
            /* a 64-byte line of scales serves two blocks (one with a min) */
            if (mn || (b0 + b) % 2 == 0)
                _mm_prefetch((const char *)dsc + (b0 + b + PF_AHEAD / qbytes) * sbytes, _MM_HINT_T0);
        }
        __m512i q[8];
        ld_quants(q, qb, T);
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) {
            const int8_t *xq = act_qs(x + (size_t)c * ldx, b0 + b, mn);
            const act_x16 *e = &ac[c * KSEG + b];
            const __m512i s0 = dot_block(q, xq, e->sy, C <= 2);
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), _mm512_mul_ps(dw, _mm512_set1_ps(e->dy)), acc[c]);
            if (mn) acc[c] = _mm512_fmadd_ps(mw, _mm512_set1_ps(e->sx), acc[c]);
        }
    }
    for (int c = 0; c < C; c++) _mm512_storeu_ps(y + (size_t)c * ldy, acc[c]);
}

/* DG groups (16 DG rows, groups gs bytes apart, group 0 at w) x C tokens
 * (C <= DC; rows ldx bytes apart) over blocks [b0, b0 + nb) of nbt:
 *   y[c * 16 DG + 16 g + i] (+)= row 16 g + i . token c   (first: start from 0)
 * Each row's arithmetic is tile32's, step for step (the same outputs, bit
 * for bit); the groups take turns within each block, so that the thread
 * reads DG weight streams at once, each prefetched PF_DEC ahead: more lines
 * in flight from DRAM than one stream gets. On Sapphire Rapids, 2 threads,
 * the one-group Q8_0 decode drew 18 GB/s in the run in which the F16
 * tiles, reading 4 streams, drew 33; on Zen 3 the AVX2 tiles went from ~20
 * to ~27 GB/s this way. Each group is the next of a stream (tiles.h,
 * tl_tile_stream_gather): a prefetch that would run past a group's quants
 * (or scales, a line per two blocks as tile32 asks) goes on to the same
 * offset in the group after it, the stream's next, rather than cold.
 * A few tokens at once (two sequences, a draft, a short prompt) decode each
 * group's block once for all of them and stream the weights the same way;
 * through the one-group tiles they read one stream, unprefetched (on Zen 3,
 * AVX2's 2-token tile took pp2 1.20-1.35x). Of the 32 zmm: 4 C float
 * accumulators, the C tokens' integer sums of the group in hand, a pair of
 * decoded chunks and a few scales. */
enum { DG = 4, DC = 4, PF_DEC = 2048 };
static_assert(PF_DEC % sizeof(q8_0x16_quants) == 0 && PF_DEC % sizeof(q4_0x16_quants) == 0,
              "a prefetch target is a whole block: it never straddles a group's end");
/* (the 320-byte blocks of Q5_0 and Q5_1 do not divide PF_DEC: their
 * prefetch may straddle a group's quant end into its scales, harmless) */
TL_AVX512_INLINE void dec32(int64_t b0, int64_t nb, int64_t nbt, bool first, float *y,
                            const uint8_t *w, size_t gs, const uint8_t *x, size_t ldx,
                            const act_x16 *ac, const int C, const int T) {
    const size_t qbytes = q_bytes(T), sbytes = s_bytes(T);
    const bool mn = has_min(T);
    const size_t qend = (size_t)nbt * qbytes; /* a group's quant bytes: its scales follow */
    const size_t send = (size_t)nbt * sbytes, grp_bytes = qend + send;
    __m512 acc[DG][DC];
#pragma GCC unroll 4
    for (int g = 0; g < DG; g++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++)
            acc[g][c] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(y + 16 * (DG * c + g));
    for (int64_t b = 0; b < nb; b++) {
        const size_t off = (size_t)(b0 + b) * qbytes;
#pragma GCC unroll 4
        for (int g = 0; g < DG; g++) {
            const uint8_t *grp = w + (size_t)g * gs, *qb = grp + off, *dsc = grp + qend;
            const uint8_t *pfp = tl_tile_pf_target(grp, off, PF_DEC, qend, grp + grp_bytes);
#pragma GCC unroll 8
            for (size_t o = 0; o < qbytes; o += 64) _mm_prefetch((const char *)pfp + o, _MM_HINT_T0);
            if (mn || (b0 + b) % 2 == 0)
                _mm_prefetch((const char *)tl_tile_pf_target(dsc, (size_t)(b0 + b) * sbytes,
                                                             PF_DEC / qbytes * sbytes, send,
                                                             dsc + grp_bytes),
                             _MM_HINT_T0);
            /* dot_block's sums, chunk pair by chunk pair for every token
             * (the tokens' integer sums live, not 8 decoded chunks) */
            const int8_t *xq[DC];
            __m512i s0[DC], s1[DC];
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) {
                xq[c] = act_qs(x + (size_t)c * ldx, b0 + b, mn);
                s0[c] = _mm512_set1_epi32(ac[c * KSEG + b].sy);
                s1[c] = _mm512_setzero_si512();
            }
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                __m512i lo, hi;
                ld_pair(&lo, &hi, qb, j, T);
#pragma GCC unroll 4
                for (int c = 0; c < C; c++) {
                    s0[c] = tl_avx512_dpbusd_b4(s0[c], lo, xq[c] + 4 * j);
                    /* one token: two chains, as dot_block's */
                    if (C == 1) s1[c] = tl_avx512_dpbusd_b4(s1[c], hi, xq[c] + 4 * (j + 4));
                    else s0[c] = tl_avx512_dpbusd_b4(s0[c], hi, xq[c] + 4 * (j + 4));
                }
            }
            const uint8_t *sb = dsc + (size_t)(b0 + b) * sbytes;
            const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)sb));
            const __m512 mw = mn ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sb + 32))) : dw;
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) {
                const __m512i si = C == 1 ? _mm512_add_epi32(s0[c], s1[c]) : s0[c];
                const act_x16 *e = &ac[c * KSEG + b];
                acc[g][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si), _mm512_mul_ps(dw, _mm512_set1_ps(e->dy)),
                                            acc[g][c]);
                if (mn) acc[g][c] = _mm512_fmadd_ps(mw, _mm512_set1_ps(e->sx), acc[g][c]);
            }
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < DG; g++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) _mm512_storeu_ps(y + 16 * (DG * c + g), acc[g][c]);
}

typedef void (*dec_fn)(int64_t b0, int64_t nb, int64_t nbt, bool first, float *y, const uint8_t *w,
                       size_t gs, const uint8_t *x, size_t ldx, const act_x16 *ac);
typedef void (*tile_fn)(int64_t b0, int64_t nb, int64_t nbt, bool first, float *y, size_t ldy,
                        const uint8_t *grp, const uint8_t *x, size_t ldx, const act_x16 *ac);

#define TILE32(T, E, C)                                                                        \
    static void tile_##T##_##C(int64_t b0, int64_t nb, int64_t nbt, bool first, float *y,      \
                               size_t ldy, const uint8_t *grp, const uint8_t *x, size_t ldx,   \
                               const act_x16 *ac) {                                            \
        tile32(b0, nb, nbt, first, y, ldy, grp, x, ldx, ac, C, E);                             \
    }
#define DEC32(T, E, C)                                                                         \
    static void dec_##T##_##C(int64_t b0, int64_t nb, int64_t nbt, bool first, float *y,       \
                              const uint8_t *w, size_t gs, const uint8_t *x, size_t ldx,       \
                              const act_x16 *ac) {                                             \
        dec32(b0, nb, nbt, first, y, w, gs, x, ldx, ac, C, E);                                 \
    }
/* a type's tiles (one per token count 1..CT) and its decode tiles (1..DC) */
#define TILES32(T, E)                                                                          \
    TILE32(T, E, 1) TILE32(T, E, 2) TILE32(T, E, 3) TILE32(T, E, 4)                            \
    TILE32(T, E, 5) TILE32(T, E, 6) TILE32(T, E, 7) TILE32(T, E, 8)                            \
    static const tile_fn tiles_##T[CT + 1] = { NULL,        tile_##T##_1, tile_##T##_2,        \
                                               tile_##T##_3, tile_##T##_4, tile_##T##_5,       \
                                               tile_##T##_6, tile_##T##_7, tile_##T##_8 };     \
    DEC32(T, E, 1) DEC32(T, E, 2) DEC32(T, E, 3) DEC32(T, E, 4)                                \
    static const dec_fn decs_##T[DC + 1] = { NULL, dec_##T##_1, dec_##T##_2, dec_##T##_3,      \
                                             dec_##T##_4 };
TILES32(q4_0, A40)
TILES32(q8_0, A80)
TILES32(q5_0, A50)
TILES32(q4_1, A41)
TILES32(q5_1, A51)
static_assert(CT == 8 && DC == 4, "one tile per token count 1..CT, one decode tile per 1..DC");

/* W (nr, n) packed by 16 @ X^T (nc, n) q8_0 -> y[c * ldy + r]: token tiles
 * of up to CT (the remainder in one narrower tile), block segments of KSEG,
 * the rows' act_x16 entries after their blocks; up to DC tokens
 * (decode) take DG groups at a time, as streams, the rest one. */
static void gemm32(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const uint8_t *w,
                   size_t ldw, const uint8_t *x, size_t ldx, bool mn, const tile_fn *tiles,
                   const dec_fn *decs) {
    const int64_t nb = n / 32;
    /* each row's act_x16 entries follow its blocks (kern.h act_prep); a
     * segment's, for the tile's tokens, are copied to ac, where the tiles
     * find them at fixed offsets (from the rows, each token's address took
     * a register: mca, Sapphire Rapids, tile_q4_1_8 +8% cycles) */
    const uint8_t *ax = x + tl_act_prep_offset((size_t)nb * (mn ? sizeof(tl_block_q8_1) : sizeof(tl_block_q8_0)));
    act_x16 ac[CT * KSEG];
    for (int64_t c0 = 0; c0 < nc; c0 += CT) {
        const int cc = nc - c0 < CT ? (int)(nc - c0) : CT;
        const uint8_t *xc = x + (size_t)c0 * ldx;
        float *yc = y + (size_t)c0 * ldy;
        for (int64_t b0 = 0; b0 < nb; b0 += KSEG) {
            const int64_t sb = nb - b0 < KSEG ? nb - b0 : KSEG;
            for (int c = 0; c < cc; c++)
                memcpy(ac + c * KSEG, ax + (size_t)(c0 + c) * ldx + (size_t)b0 * sizeof(act_x16),
                       (size_t)sb * sizeof(act_x16));
            int64_t r0 = 0;
            if (cc <= DC && nr >= 16 * DG) {
                /* tile i: group i of each of DG streams (tiles.h), outputs
                 * through o, token by token */
                const int64_t nt = nr / (16 * DG);
                const size_t gsz = 16 * ldw; /* bytes per group */
                float o[DC * 16 * DG];
                for (int64_t i = 0; i < nt; i++) {
                    for (int c = 0; c < cc && b0; c++)
                        tl_tile_stream_gather(o + 16 * DG * c, yc + (size_t)c * ldy, i, nt, DG, 16);
                    decs[cc](b0, sb, nb, b0 == 0, o, w + (size_t)i * gsz, (size_t)nt * gsz, xc, ldx, ac);
                    for (int c = 0; c < cc; c++)
                        tl_tile_stream_scatter(yc + (size_t)c * ldy, o + 16 * DG * c, i, nt, DG, 16);
                }
                r0 = nt * 16 * DG;
            }
            for (; r0 < nr; r0 += 16)
                tiles[cc](b0, sb, nb, b0 == 0, yc + r0, ldy, w + (size_t)r0 * ldw, xc, ldx, ac);
        }
    }
}

// W (nr, n) q4_0 packed by 16 @ X^T (nc, n) q8_0 -> y[c * ldy + r]   (n % 32 == 0, nr % 16 == 0)
void tl_avx512_gemm_q4_0x16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                            size_t ldw, const void *x, size_t ldx) {
    gemm32(n, nr, nc, y, ldy, w, ldw, x, ldx, false, tiles_q4_0, decs_q4_0);
}

// W (nr, n) q8_0 packed by 16 @ X^T (nc, n) q8_0 -> y[c * ldy + r]   (n % 32 == 0, nr % 16 == 0)
void tl_avx512_gemm_q8_0x16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                            size_t ldw, const void *x, size_t ldx) {
    gemm32(n, nr, nc, y, ldy, w, ldw, x, ldx, false, tiles_q8_0, decs_q8_0);
}

// W (nr, n) q5_0 packed by 16 @ X^T (nc, n) q8_0 -> y[c * ldy + r]   (n % 32 == 0, nr % 16 == 0)
void tl_avx512_gemm_q5_0x16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                            size_t ldw, const void *x, size_t ldx) {
    gemm32(n, nr, nc, y, ldy, w, ldw, x, ldx, false, tiles_q5_0, decs_q5_0);
}

// W (nr, n) q4_1 (q5_1) packed by 16 @ X^T (nc, n) q8_1 -> y[c * ldy + r]   (n % 32 == 0, nr % 16 == 0)
void tl_avx512_gemm_q4_1x16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                            size_t ldw, const void *x, size_t ldx) {
    gemm32(n, nr, nc, y, ldy, w, ldw, x, ldx, true, tiles_q4_1, decs_q4_1);
}
void tl_avx512_gemm_q5_1x16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                            size_t ldw, const void *x, size_t ldx) {
    gemm32(n, nr, nc, y, ldy, w, ldw, x, ldx, true, tiles_q5_1, decs_q5_1);
}
