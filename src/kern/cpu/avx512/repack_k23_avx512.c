/* repack_k23_avx512.c — Q2_K and Q3_K weights repacked 16 rows to a group
 * (the kern.h repack slot), and the AVX-512 VNNI tiles over them against
 * Q8_K activations: the last two types off AVX2's 8-row tiles.
 *
 * As repack_k_avx512.c: one zmm holds one row per 32-bit lane, one
 * vpdpbusd takes 4 quants of each of 16 rows against 4 activation bytes
 * broadcast to all lanes, and each sub-block's exact int32 sum is
 * converted and scaled in float by d_w * sc (an 11-bit times a 4- or 6-bit
 * integer: exact in float). Their sub-blocks are 16 long: 4 vpdpbusd, one
 * convert and one fma per sub-block and token.
 *
 * Per group and super-block (256 elements of 16 rows):
 *   Q2_K qs: 16 chunks of 64 bytes; chunk (h, g) holds, for row i, the 4
 *     bytes qs[32h + 4g .. +3] of its block at bytes 4i .. 4i+3. Bits 2s,
 *     2s+1 of its byte t are element 128h + 32s + 4g + t, of sub-block 8h
 *     + 2s + g / 4 (first, so 64-byte aligned when the group is);
 *   Q3_K q: the 3-bit values u (the 2 bits | the hmask bit << 2; that bit
 *     set: +0, clear: -4) in 8 steps of 3 planes of 64 bytes (tiles.h,
 *     tl_tile_pack_q3_K_planes): step hs = 4h + s holds sub-blocks 2hs and
 *     2hs + 1 as 8 slots, slot j elements 32hs + 4j + t of row i at bytes
 *     4i + t. A slot is 1-2 operations, slots 2 and 5 (split over two
 *     planes) 4: 17 a step, where the stored layout's separate hmask took 40;
 *   d (Q2_K: and dmin): the 16 rows' f16 scales;
 *   Q2_K sm[k]: row i's scale byte of sub-block k (scale | min << 4), as
 *     stored; Q3_K sc[k]: row i's signed 6-bit scale of sub-block k,
 *     unpacked; Q3_K pads to a multiple of 64 bytes (1856 for 1760).
 * Per row lane and super-block, with u the 2 (Q3_K: 3, u + 4 hb) bits:
 *   Q2_K: sum = d_x * (sum_k (d sc_k) (u_k . y_k) - sum_k (dmin m_k) ysum_k)
 *   Q3_K: sum = d_x * sum_k (d sc_k) (u_k . y_k - 4 ysum_k), the -4 ysum_k
 *         (q8_K's bsums) the seed of sub-block k's int32 sum
 * (u . y <= 16 * 7 * 128: exact). */
#include <assert.h>
#include <stddef.h>
#include <string.h>

#include "core/quant.h"
#include "kern/cpu/avx512/avx512.h"
#include "kern/cpu/tiles.h"

enum {
    CT = 8,            /* tokens per tile: 8 accumulators and 8 partial sums of 32 zmm */
    PF_AHEAD = 2048,   /* one token, one group: weight bytes prefetched ahead as a block starts */
    DG = 4,            /* groups of a decode tile, each its own stream (repack_avx512.c's dec32) */
    PF_DEC = 2048,     /* the decode tile's prefetch distance in each group's stream */
};

typedef struct {
    uint8_t qs[2][8][64];
    uint16_t d[16], dmin[16];
    uint8_t sm[16][16];
} blk_q2_Kx16;
static_assert(sizeof(blk_q2_Kx16) == 16 * sizeof(tl_block_q2_K), "q2_Kx16 is 16 q2_K blocks");
static_assert(sizeof(blk_q2_Kx16) % 64 == 0, "q2_Kx16 keeps 64-byte alignment");

typedef struct {
    uint8_t q[8][3][64];
    uint16_t d[16];
    int8_t sc[16][16];
    uint8_t pad[32];
} blk_q3_Kx16;
static_assert(sizeof(blk_q3_Kx16) == 1856 && sizeof(blk_q3_Kx16) % 64 == 0, "q3_Kx16 layout");

// packed bytes per row of n elements (n % 256 == 0)
size_t tl_avx512_row_size_q2_Kx16(int64_t n) { return (size_t)(n / TL_QK_K) * sizeof(tl_block_q2_K); }
size_t tl_avx512_row_size_q3_Kx16(int64_t n) { return (size_t)(n / TL_QK_K) * sizeof(blk_q3_Kx16) / 16; }

// block b of 16 q2_K (q3_K) rows -> one packed block (tiles.h's row packers)
static void pack_blk_q2_K(void *vo, const uint8_t *const row[16], int64_t b) {
    blk_q2_Kx16 *out = vo;
    for (int i = 0; i < 16; i++)
        tl_tile_pack_q2_K_row(16, i, (const tl_block_q2_K *)row[i] + b, out->d, out->dmin, out->sm[0],
                              out->qs[0][0]);
}
static void pack_blk_q3_K(void *vo, const uint8_t *const row[16], int64_t b) {
    blk_q3_Kx16 *out = vo;
    memset(out->pad, 0, sizeof out->pad);
    for (int i = 0; i < 16; i++) {
        const tl_block_q3_K *src = (const tl_block_q3_K *)row[i] + b;
        tl_tile_pack_q3_K_head(16, i, src, out->d, out->sc[0]);
        tl_tile_pack_q3_K_planes(16, i, src, out->q[0][0]);
    }
}

// W (nr, n) q2_K (q3_K), rows ldw bytes apart -> dst (nr / 16 groups of n / 256 packed blocks)
void tl_avx512_pack_q2_Kx16(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK_K, nr, 16, sizeof(blk_q2_Kx16), pack_blk_q2_K);
}
void tl_avx512_pack_q3_Kx16(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK_K, nr, 16, sizeof(blk_q3_Kx16), pack_blk_q3_K);
}

/* The 4 chunks of sub-block k = 2 hs + half (hs = 4h + s) as unsigned
 * bytes. Q2_K: the 2 bits at 2s, by a shift whose count is in a register
 * (sh2 = 2s), so the sub-block loop need not be unrolled: a 16-bit shift,
 * whose bits 0-1 stay within their byte after the mask. Q3_K: slots 4 half
 * + j of step hs's planes, each shift a constant. */
TL_AVX512_INLINE void k23_chunks(__m512i q[4], const uint8_t *wb, int hs, int half, __m128i sh2,
                                 const bool q3) {
    const __m512i m3 = _mm512_set1_epi8(3), m7 = _mm512_set1_epi8(7);
    const uint8_t *pl = ((const blk_q3_Kx16 *)wb)->q[hs][0];
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        if (!q3) {
            const int g = 4 * half + j;
            q[j] = _mm512_and_si512(_mm512_srl_epi16(_mm512_loadu_si512(wb + 64 * (8 * (hs / 4) + g)), sh2), m3);
            continue;
        }
        const int slot = 4 * half + j;
        switch (slot) {
        case 0: case 3: case 6:
            q[j] = _mm512_and_si512(_mm512_loadu_si512(pl + 64 * (slot / 3)), m7);
            break;
        case 1: case 4: case 7:
            q[j] = _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(pl + 64 * (slot / 3)), 3), m7);
            break;
        default: { /* 2, 5: the low bits at 6-7 of plane slot / 3, the top at bit 4 + slot / 3 of plane 2 */
            const __m512i lo = _mm512_srli_epi16(_mm512_loadu_si512(pl + 64 * (slot / 3)), 6);
            const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(pl + 128), 4 + slot / 3),
                                                _mm512_set1_epi8(4));
            q[j] = _mm512_ternarylogic_epi32(lo, hi, m3, 0xEC); /* (lo & 3) | hi */
        }
        }
    }
}

/* Sub-block k's scales of the 16 rows as floats times d_w: Q3_K's signed
 * bytes, Q2_K's low nibbles; and (Q2_K) dmin_w times its mins (high nibbles) */
TL_AVX512_INLINE __m512 k23_scale(const uint8_t *wb, int k, __m512 dw, const bool q3) {
    const __m128i t = _mm_loadu_si128((const __m128i *)(wb + (q3 ? offsetof(blk_q3_Kx16, sc)
                                                                 : offsetof(blk_q2_Kx16, sm)) + 16 * (size_t)k));
    const __m512i i32 = q3 ? _mm512_cvtepi8_epi32(t) : _mm512_cvtepu8_epi32(_mm_and_si128(t, _mm_set1_epi8(0x0F)));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(i32), dw);
}
TL_AVX512_INLINE __m512 q2_K_min(const uint8_t *wb, int k, __m512 dm) {
    const __m128i t = _mm_loadu_si128((const __m128i *)(((const blk_q2_Kx16 *)wb)->sm[k]));
    const __m512i m = _mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(t, 4), _mm_set1_epi8(0x0F)));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(m), dm);
}

/* One group of 16 packed rows x C tokens (x: token 0's q8_K row, rows ldx
 * bytes apart) over all nb super-blocks:
 *   y[c * ldy + i] = row i . token c
 * Per super-block the sub-blocks go in order 0..15 into one float partial
 * per token (then Q2_K's 16 min terms), times d_x into the accumulator. */
TL_AVX512_INLINE void tile_k23(int64_t nb, float *y, size_t ldy, const uint8_t *w, const uint8_t *x,
                               size_t ldx, const int C, const bool q3) {
    const size_t blk = q3 ? sizeof(blk_q3_Kx16) : sizeof(blk_q2_Kx16);
    const size_t d_off = q3 ? offsetof(blk_q3_Kx16, d) : offsetof(blk_q2_Kx16, d);
    __m512 acc[CT];
#pragma GCC unroll 8
    for (int c = 0; c < C; c++) acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb = w + (size_t)b * blk;
        if (C == 1)
            for (size_t o = 0; o < blk; o += 64) _mm_prefetch((const char *)wb + PF_AHEAD + o, _MM_HINT_T0);
        const tl_block_q8_K *xb[CT];
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) xb[c] = (const tl_block_q8_K *)(x + (size_t)c * ldx) + b;
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wb + d_off)));
        __m512 fs[CT];
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) fs[c] = _mm512_setzero_ps();
        for (int hs = 0; hs < 8; hs++) {
            const __m128i sh2 = _mm_cvtsi32_si128(2 * (hs % 4));
#pragma GCC unroll 2
            for (int half = 0; half < 2; half++) {
                const int k = 2 * hs + half;
                __m512i q[4];
                k23_chunks(q, wb, hs, half, sh2, q3);
                const __m512 sc = k23_scale(wb, k, dw, q3);
#pragma GCC unroll 8
                for (int c = 0; c < C; c++) {
                    const int8_t *xq = xb[c]->qs + 32 * hs + 16 * half;
                    __m512i a = q3 ? _mm512_set1_epi32(-4 * xb[c]->bsums[k]) : _mm512_setzero_si512();
#pragma GCC unroll 4
                    for (int j = 0; j < 4; j++) a = _mm512_dpbusd_epi32(a, q[j], tl_avx512_bcast4(xq + 4 * j));
                    fs[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), sc, fs[c]);
                }
            }
        }
        if (!q3) {
            const __m512 dm = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const blk_q2_Kx16 *)wb)->dmin));
            for (int k = 0; k < 16; k++) {
                const __m512 mk = q2_K_min(wb, k, dm);
#pragma GCC unroll 8
                for (int c = 0; c < C; c++)
                    fs[c] = _mm512_fnmadd_ps(mk, _mm512_set1_ps((float)xb[c]->bsums[k]), fs[c]);
            }
        }
#pragma GCC unroll 8
        for (int c = 0; c < C; c++) acc[c] = _mm512_fmadd_ps(fs[c], _mm512_set1_ps(xb[c]->d), acc[c]);
    }
#pragma GCC unroll 8
    for (int c = 0; c < C; c++) _mm512_storeu_ps(y + (size_t)c * ldy, acc[c]);
}

/* DG groups (gs bytes apart) x C tokens (C <= DC, rows ldx bytes apart),
 *   y[16 DG c + 16 g + i] = row 16 g + i . token c
 * each row's arithmetic tile_k23's, step for step (the same bits): the
 * groups take turns at each sub-block pair, so that the thread reads DG
 * weight streams at once, each prefetched PF_DEC ahead, a slice of a
 * block's lines per step. Each group is the next of a stream (tiles.h,
 * tl_tile_stream_gather) and the next group of a stream follows it in
 * memory, so a prefetch past a group's end runs on into the stream's next
 * group. Two tokens (two sequences, a draft) share each group's decoded
 * chunks; their activation bytes enter as embedded broadcasts
 * (tl_avx512_dpbusd_b4), not registers shared by the groups. */
enum { DC = 2 };
TL_AVX512_INLINE void dec_k23(int64_t nb, float *y, const uint8_t *w, size_t gs, const uint8_t *x,
                              size_t ldx, const int C, const bool q3) {
    const size_t blk = q3 ? sizeof(blk_q3_Kx16) : sizeof(blk_q2_Kx16);
    const size_t d_off = q3 ? offsetof(blk_q3_Kx16, d) : offsetof(blk_q2_Kx16, d);
    const size_t lines = blk / 64;
    __m512 acc[DG][DC] = { 0 };
    for (int64_t b = 0; b < nb; b++) {
        const tl_block_q8_K *xb[DC];
#pragma GCC unroll 2
        for (int c = 0; c < C; c++) xb[c] = (const tl_block_q8_K *)(x + (size_t)c * ldx) + b;
        const uint8_t *wb[DG];
        __m512 dw[DG], fs[DG][DC];
#pragma GCC unroll 4
        for (int g = 0; g < DG; g++) {
            wb[g] = w + (size_t)g * gs + (size_t)b * blk;
            dw[g] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wb[g] + d_off)));
#pragma GCC unroll 2
            for (int c = 0; c < C; c++) fs[g][c] = _mm512_setzero_ps();
        }
        for (int hs = 0; hs < 8; hs++) {
            const __m128i sh2 = _mm_cvtsi32_si128(2 * (hs % 4));
#pragma GCC unroll 4
            for (int g = 0; g < DG; g++) {
                const uint8_t *at = w + (size_t)g * gs + (size_t)b * blk + PF_DEC;
                for (size_t l = lines * (size_t)hs / 8; l < lines * (size_t)(hs + 1) / 8; l++)
                    _mm_prefetch((const char *)at + 64 * l, _MM_HINT_T0);
            }
#pragma GCC unroll 2
            for (int half = 0; half < 2; half++) {
                const int k = 2 * hs + half;
#pragma GCC unroll 4
                for (int g = 0; g < DG; g++) {
                    __m512i q[4];
                    k23_chunks(q, wb[g], hs, half, sh2, q3);
                    const __m512 sc = k23_scale(wb[g], k, dw[g], q3);
#pragma GCC unroll 2
                    for (int c = 0; c < C; c++) {
                        const int8_t *xq = xb[c]->qs + 32 * hs + 16 * half;
                        __m512i a = q3 ? _mm512_set1_epi32(-4 * xb[c]->bsums[k]) : _mm512_setzero_si512();
#pragma GCC unroll 4
                        for (int j = 0; j < 4; j++) a = tl_avx512_dpbusd_b4(a, q[j], xq + 4 * j);
                        fs[g][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), sc, fs[g][c]);
                    }
                }
            }
        }
#pragma GCC unroll 4
        for (int g = 0; g < DG; g++) {
            if (!q3) {
                const __m512 dm =
                    _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const blk_q2_Kx16 *)wb[g])->dmin));
                for (int k = 0; k < 16; k++) {
                    const __m512 mk = q2_K_min(wb[g], k, dm);
#pragma GCC unroll 2
                    for (int c = 0; c < C; c++)
                        fs[g][c] = _mm512_fnmadd_ps(mk, _mm512_set1_ps((float)xb[c]->bsums[k]), fs[g][c]);
                }
            }
#pragma GCC unroll 2
            for (int c = 0; c < C; c++) acc[g][c] = _mm512_fmadd_ps(fs[g][c], _mm512_set1_ps(xb[c]->d), acc[g][c]);
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < DG; g++)
#pragma GCC unroll 2
        for (int c = 0; c < C; c++) _mm512_storeu_ps(y + 16 * (DG * c + g), acc[g][c]);
}

typedef void (*k23_tile_fn)(int64_t nb, float *y, size_t ldy, const uint8_t *w, const uint8_t *x,
                            size_t ldx);
typedef void (*k23_dec_fn)(int64_t nb, float *y, const uint8_t *w, size_t gs, const uint8_t *x,
                           size_t ldx);
#define TILE_K23(T, Q3, C)                                                                       \
    static void tile_##T##_##C(int64_t nb, float *y, size_t ldy, const uint8_t *w,               \
                               const uint8_t *x, size_t ldx) {                                   \
        tile_k23(nb, y, ldy, w, x, ldx, C, Q3);                                                  \
    }
#define TILES_K23(T, Q3)                                                                         \
    TILE_K23(T, Q3, 1) TILE_K23(T, Q3, 2) TILE_K23(T, Q3, 3) TILE_K23(T, Q3, 4)                  \
    TILE_K23(T, Q3, 5) TILE_K23(T, Q3, 6) TILE_K23(T, Q3, 7) TILE_K23(T, Q3, 8)                  \
    static const k23_tile_fn tiles_##T[CT + 1] = { NULL,         tile_##T##_1, tile_##T##_2,     \
                                                   tile_##T##_3, tile_##T##_4, tile_##T##_5,     \
                                                   tile_##T##_6, tile_##T##_7, tile_##T##_8 };   \
    static void dec_##T##_1(int64_t nb, float *y, const uint8_t *w, size_t gs,                  \
                            const uint8_t *x, size_t ldx) {                                      \
        dec_k23(nb, y, w, gs, x, ldx, 1, Q3);                                                    \
    }                                                                                            \
    static void dec_##T##_2(int64_t nb, float *y, const uint8_t *w, size_t gs,                  \
                            const uint8_t *x, size_t ldx) {                                      \
        dec_k23(nb, y, w, gs, x, ldx, 2, Q3);                                                    \
    }                                                                                            \
    static const k23_dec_fn decs_##T[DC + 1] = { NULL, dec_##T##_1, dec_##T##_2 };
TILES_K23(q2_K, false)
TILES_K23(q3_K, true)
static_assert(CT == 8 && DC == 2, "one tile per token count 1..CT, one decode tile per 1..DC");

/* W (nr, n) packed by 16 @ X^T (nc, n) q8_K -> y[c * ldy + r]: up to DC
 * tokens (decode) DG groups at a time, as streams, the rest one; else for
 * each group of 16 rows, token tiles of up to CT (the remainder in one
 * narrower tile), so that the group's weights serve every token tile from
 * cache. */
static void gemm_k23(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const uint8_t *w,
                     size_t ldw, const uint8_t *x, size_t ldx, const k23_tile_fn *tiles,
                     const k23_dec_fn *decs) {
    const int64_t nb = n / TL_QK_K;
    int64_t r0 = 0;
    if (nc <= DC && nr >= 16 * DG) {
        /* tile i: group i of each of DG streams (tiles.h), outputs through o, token by token */
        const int64_t nt = nr / (16 * DG);
        float o[DC * 16 * DG];
        for (int64_t i = 0; i < nt; i++) {
            decs[nc](nb, o, w + (size_t)i * 16 * ldw, (size_t)nt * 16 * ldw, x, ldx);
            for (int c = 0; c < nc; c++)
                tl_tile_stream_scatter(y + (size_t)c * ldy, o + 16 * DG * c, i, nt, DG, 16);
        }
        r0 = nt * 16 * DG;
    }
    for (; r0 < nr; r0 += 16)
        for (int64_t c0 = 0; c0 < nc; c0 += CT) {
            const int cc = nc - c0 < CT ? (int)(nc - c0) : CT;
            tiles[cc](nb, y + (size_t)c0 * ldy + r0, ldy, w + (size_t)r0 * ldw, x + (size_t)c0 * ldx, ldx);
        }
}

// W (nr, n) q2_K (q3_K) packed by 16 @ X^T (nc, n) q8_K -> y[c * ldy + r]   (n % 256 == 0, nr % 16 == 0)
void tl_avx512_gemm_q2_Kx16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                            size_t ldw, const void *x, size_t ldx) {
    gemm_k23(n, nr, nc, y, ldy, w, ldw, x, ldx, tiles_q2_K, decs_q2_K);
}
void tl_avx512_gemm_q3_Kx16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                            size_t ldw, const void *x, size_t ldx) {
    gemm_k23(n, nr, nc, y, ldy, w, ldw, x, ldx, tiles_q3_K, decs_q3_K);
}
