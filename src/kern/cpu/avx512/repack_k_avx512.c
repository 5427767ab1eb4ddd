/* repack_k_avx512.c — Q4_K, Q5_K and Q6_K weights repacked 16 rows to a group
 * (the kern.h repack slot), and the AVX-512 VNNI tiles over them against
 * Q8_K activations.
 *
 * As for the 32-element types (repack_avx512.c), one zmm holds one row per
 * 32-bit lane and one vpdpbusd takes 4 quants of each of 16 rows against 4
 * activation bytes broadcast to all lanes. A K-quant sub-block has its own
 * scale per row, and its int32 sum (up to 32 * 63 * 128) does not fit the
 * int16 that madd-style scaling needs, so each sub-block's exact int32 sum
 * is converted to float and multiplied by a float scale vector d_w * sc
 * (a product of an 11-bit and a 6- or 8-bit integer: exact in float). That
 * is one convert and one fma per token and 8 (Q4_K, Q5_K) or 4 (Q6_K)
 * vpdpbusd, cheaper than the alternatives (vpmulld is 2 uops; splitting
 * the sums to fit int16 costs more shuffles).
 *
 * Integer sums are exact for every byte, the activations' -128 included;
 * the float order is: per super-block, sub-blocks in a fixed order into
 * one partial, times d_x, into the accumulator; then the min term. */
#include <assert.h>
#include <stddef.h>
#include <string.h>

#include "core/quant.h"
#include "kern/cpu/avx512/avx512.h"
#include "kern/cpu/tiles.h"

/* ---- Q4_K and Q5_K ---------------------------------------------------------- *
 * Per group and super-block (Q4_K 2368 bytes, the 16 original blocks 2304:
 * the 12-byte packed scales become 16 plain bytes per row; Q5_K 2880, the
 * originals 2816):
 *   qs: 32 chunks of 64 bytes; chunk (c, g) holds, for row i, the 4 bytes
 *     qs[32c + 4g .. +3] of its block at bytes 4i .. 4i+3, whose low
 *     nibbles are elements 64c + 4g + t (sub-block 2c) and high nibbles
 *     64c + 32 + 4g + t (sub-block 2c + 1); first, so they are 64-aligned
 *     whenever the group is (both structs are multiples of 64 bytes);
 *   d, dmin: the 16 rows' f16 scales;
 *   sc[s]: sub-block s's 6-bit scale of each row;
 *   mn[p]: per row the pair (m_2p, m_2p+1), bytes 2i and 2i+1, zero-extended
 *     to int16 this is a vpdpwssd operand against the activation's
 *     sub-block sum pair (ysum_2p, ysum_2p+1);
 *   Q5_K has, in qs's place, the 5-bit values u (the nibble | the qh bit
 *     << 4) in planes (tiles.h, tl_tile_pack_q5_K_planes): sub-block s is
 *     5 planes of 64 bytes, q[s], its slot j the row's elements 32s + 4j +
 *     t at bytes 4i + t; a slot is one mask, or 4-6 operations for the 3
 *     split over the planes' top bits: 19 for 8 slots, where a nibble and
 *     its separate fifth bit (test, masked add) took 28;
 * Per row lane and super-block:
 *   sum = d_x * sum_s (d sc_s) (u_s . y_s)  -  (dmin d_x) * sum_s m_s ysum_s
 * with u_s . y_s (u <= 31) and the min sum exact int32. */

typedef struct { /* what Q4_K and Q5_K's packed blocks end with */
    uint16_t d[16], dmin[16];
    uint8_t sc[8][16];
    uint8_t mn[4][32];
} k4_head;
static_assert(sizeof(k4_head) % 64 == 0, "the quants before a k4_head stay 64-byte aligned");

typedef struct {
    uint8_t qs[4][8][64];
    k4_head hd;
} blk_q4_Kx16;
static_assert(sizeof(blk_q4_Kx16) == 16 * sizeof(tl_block_q4_K) + 16 * 4, "q4_Kx16 layout");
static_assert(sizeof(blk_q4_Kx16) % 64 == 0, "q4_Kx16 keeps 64-byte alignment");

typedef struct {
    uint8_t q[8][5][64];
    k4_head hd;
} blk_q5_Kx16;
static_assert(sizeof(blk_q5_Kx16) == 16 * sizeof(tl_block_q5_K) + 16 * 4, "q5_Kx16 layout");
static_assert(sizeof(blk_q5_Kx16) % 64 == 0, "q5_Kx16 keeps 64-byte alignment");

// packed bytes per row of n elements (n % 256 == 0)
size_t tl_avx512_row_size_q4_Kx16(int64_t n) {
    return (size_t)(n / TL_QK_K) * (sizeof(blk_q4_Kx16) / 16);
}

// packed bytes per row of n elements (n % 256 == 0)
size_t tl_avx512_row_size_q5_Kx16(int64_t n) {
    return (size_t)(n / TL_QK_K) * (sizeof(blk_q5_Kx16) / 16);
}

/* row i of out: the scales of a q4_K/q5_K block (same fields); the
 * packers' path for strides too wide to gather */
static void pack_k4_head(k4_head *out, int i, const uint8_t scales[12], uint16_t d, uint16_t dmin) {
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

/* Every packed 64 bytes but the scales' is one dword of each of the 16
 * rows' blocks: one gather and one store (avx512.h), where a row by row
 * copy moved 4 bytes at a time and unpacked the scales byte by byte. */
static_assert(offsetof(tl_block_q4_K, dmin) == 2 && offsetof(tl_block_q5_K, dmin) == 2 &&
                  offsetof(tl_block_q4_K, scales) == 4 && offsetof(tl_block_q5_K, scales) == 4,
              "q4_K/q5_K: d and dmin the first dword, then the 12 scale bytes");
static_assert(offsetof(k4_head, dmin) == offsetof(k4_head, d) + 32,
              "k4_head: dmin right after d (one 64-byte store fills both)");

/* out: the scales of the 16 rows' q4_K/q5_K blocks at blk (rows at byte
 * offsets rows), gathered. A row's 6-bit scales (see
 * tl_get_scale_min_k4) come as three dwords, bytes 0-3, 4-7, 8-11 of
 * scales, one lane per row: sub-block s < 4 takes byte s of the first (sc)
 * or second (m) & 63; s >= 4 a nibble of byte s - 4 of the third (sc the
 * low, m the high one) with bits 6-7 of byte s - 4 of the first (sc) or
 * second (m) as its bits 4-5. Dword shifts serve as byte shifts: the bits
 * a shift brings in from the next byte fall outside the masks. */
TL_AVX512_INLINE void gather_k4_head(k4_head *out, __m512i rows, const uint8_t *blk) {
    const __m512i split = tl_avx512_split_words();
    /* 4 bytes (s < 4) of each of 16 row lanes -> byte 16 s + row: bytes to
     * s-major within each 128-bit lane (its 4 rows), then dwords the same */
    const __m512i tb = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
    const __m512i td = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m512i m6 = _mm512_set1_epi8(0x3F), m4 = _mm512_set1_epi8(0x0F), top = _mm512_set1_epi8(0x30);
    /* d | dmin << 16 -> the d row, then the dmin row */
    _mm512_storeu_si512(out->d, _mm512_permutexvar_epi16(split, tl_avx512_gather16(rows, blk)));
    const uint8_t *scales = blk + offsetof(tl_block_q4_K, scales);
    const __m512i s0 = tl_avx512_gather16(rows, scales);
    const __m512i s1 = tl_avx512_gather16(rows, scales + 4);
    const __m512i s2 = tl_avx512_gather16(rows, scales + 8);
    const __m512i sc_lo = _mm512_and_si512(s0, m6), m_lo = _mm512_and_si512(s1, m6);
    const __m512i sc_hi = _mm512_or_si512(_mm512_and_si512(s2, m4), _mm512_and_si512(_mm512_srli_epi32(s0, 2), top));
    const __m512i m_hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(s2, 4), m4),
                                         _mm512_and_si512(_mm512_srli_epi32(s1, 2), top));
    _mm512_storeu_si512(out->sc[0], _mm512_permutexvar_epi32(td, _mm512_shuffle_epi8(sc_lo, tb)));
    _mm512_storeu_si512(out->sc[4], _mm512_permutexvar_epi32(td, _mm512_shuffle_epi8(sc_hi, tb)));
    /* a row's (m_2p, m_2p+1) is word p of its lane: the mn layout is split's */
    _mm512_storeu_si512(out->mn[0], _mm512_permutexvar_epi16(split, m_lo));
    _mm512_storeu_si512(out->mn[2], _mm512_permutexvar_epi16(split, m_hi));
}

// W (nr, n) q4_K, rows ldw bytes apart -> dst (nr / 16 groups of n / 256 blk_q4_Kx16)
void tl_avx512_pack_q4_Kx16(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    const int64_t nb = n / TL_QK_K;
    const __m512i rows = tl_avx512_row_offsets(ldw);
    const bool gather = ldw <= TL_AVX512_GATHER_MAX_LDW;
    blk_q4_Kx16 *out = dst;
    for (int64_t g0 = 0; g0 < nr; g0 += 16) {
        const uint8_t *src = (const uint8_t *)w + (size_t)g0 * ldw;
        for (int64_t b = 0; b < nb; b++, out++) {
            const uint8_t *blk = src + (size_t)b * sizeof(tl_block_q4_K);
            if (gather) {
                gather_k4_head(&out->hd, rows, blk);
#pragma GCC unroll 4
                for (int c = 0; c < 4; c++)
#pragma GCC unroll 8
                    for (int g = 0; g < 8; g++)
                        _mm512_storeu_si512(out->qs[c][g], tl_avx512_gather16(rows, blk + offsetof(tl_block_q4_K, qs) +
                                                                                        32 * c + 4 * g));
                continue;
            }
            for (int i = 0; i < 16; i++) {
                const tl_block_q4_K *sb = (const tl_block_q4_K *)(blk + (size_t)i * ldw);
                pack_k4_head(&out->hd, i, sb->scales, sb->d, sb->dmin);
                for (int c = 0; c < 4; c++)
                    for (int g = 0; g < 8; g++) memcpy(&out->qs[c][g][4 * i], sb->qs + 32 * c + 4 * g, 4);
            }
        }
    }
}

// W (nr, n) q5_K, rows ldw bytes apart -> dst (nr / 16 groups of n / 256 blk_q5_Kx16)
void tl_avx512_pack_q5_Kx16(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    const int64_t nb = n / TL_QK_K;
    const __m512i rows = tl_avx512_row_offsets(ldw);
    const bool gather = ldw <= TL_AVX512_GATHER_MAX_LDW;
    blk_q5_Kx16 *out = dst;
    for (int64_t g0 = 0; g0 < nr; g0 += 16) {
        const uint8_t *src = (const uint8_t *)w + (size_t)g0 * ldw;
        for (int64_t b = 0; b < nb; b++, out++) {
            const uint8_t *blk = src + (size_t)b * sizeof(tl_block_q5_K);
            if (gather)
                gather_k4_head(&out->hd, rows, blk);
            for (int i = 0; i < 16; i++) {
                const tl_block_q5_K *sb = (const tl_block_q5_K *)(blk + (size_t)i * ldw);
                if (!gather) pack_k4_head(&out->hd, i, sb->scales, sb->d, sb->dmin);
                tl_tile_pack_q5_K_planes(16, i, sb, out->q[0][0]);
            }
        }
    }
}

/* Decode streams each weight byte once, from DRAM, and a one-token tile has
 * too little work per byte for the out-of-order window to keep enough lines
 * in flight (Sapphire Rapids, 2 threads: Q4_K_M at 13.8 GB/s where Q4_0,
 * with less work per byte, reaches the 17 GB/s of DRAM); so the one-token
 * tiles ask for the bytes PF_AHEAD ahead of the super-block they work
 * on, as the AVX2 tiles do (+15-20% there): a quarter of its lines in each
 * quarter of the work, as a burst of 40-50 prefetches would hold up the
 * loads and arithmetic behind it (by llvm-mca: Q6_K 164 -> 211 cycles a
 * super-block as one burst). A group's super-blocks lie back to back and the
 * call's groups too, so this runs on into the next group; a quarter rounded
 * up to whole lines asks for a few lines twice. PF_AHEAD = 0 turns it off
 * (an A/B switch). */
enum { PF_AHEAD = 4096 };
/* quarter k < 4 of the lines of a super-block of `bytes` at p */
TL_AVX512_INLINE void prefetch_quarter(const void *p, size_t bytes, int k) {
    if (PF_AHEAD == 0) return;
    const size_t lines = (bytes + 255) / 256;
    const char *q = (const char *)p + PF_AHEAD + (size_t)k * lines * 64;
#pragma GCC unroll 16
    for (size_t l = 0; l < lines; l++) _mm_prefetch(q + 64 * l, _MM_HINT_T0);
}

/* tokens per tile. A 64-byte chunk is loaded once per sub-block pair and
 * gives both (low nibbles: sub-block 2p, high: 2p + 1), so the inner loop
 * holds 2 x 6 int32 sums, 6 float partials, the chunk's two halves and
 * constants; the accumulators live in y (one load and store per token and
 * super-block) to keep it within the 32 zmm without spills */
enum { CT4 = 6 };

/* Q4_K chunk v's quants of sub-block 2p + h, unsigned: the low nibbles (h
 * = 0) or the high ones (h = 1), which stay in place, 16 u: one and
 * instead of a shift and an and (the scale takes the 1/16) */
TL_AVX512_INLINE __m512i k4_quants(__m512i v, const int h) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    return h ? _mm512_andnot_si512(m4, v) : _mm512_and_si512(v, m4);
}

/* sub-block 2p + h's quants for chunk slot j of group block wb */
TL_AVX512_INLINE __m512i k45_quants(const uint8_t *wb, int p, int j, const int h, const bool q5) {
    if (q5) return tl_avx512_k5_slot(((const blk_q5_Kx16 *)wb)->q[2 * p + h][0], j);
    return k4_quants(_mm512_loadu_si512(((const blk_q4_Kx16 *)wb)->qs[p][j]), h);
}

enum { DG = 4, DC = 2 }; /* decode: groups (streams) and the most tokens of a tile_k4 */

/* sub-block 2p + h's scale for its integer sums, d sc (Q4_K's high
 * nibbles, 16 u: d sc / 16; cvt(16 S) (d sc / 16) = cvt(S) (d sc) bit for
 * bit: 16 S < 2^24 and the power-of-2 scaling of the f16-derived scale is
 * exact) */
TL_AVX512_INLINE __m512 k4_scale(const k4_head *wb, __m512 dw, int p, int h, const bool q5) {
    const __m512 d = h && !q5 ? _mm512_mul_ps(dw, _mm512_set1_ps(1.0f / 16)) : dw;
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)wb->sc[2 * p + h]);
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(sc8)), d);
}
enum { KP = DG * DC > CT4 ? DG * DC : CT4 }; /* a tile's (group, token) pairs, at most */

/* G groups of 16 packed rows (gs bytes apart) x C tokens over all nb
 * super-blocks, G C <= CT4, or G = DG and C <= DC (decode):
 *   y[c * ldy + 16 g + i] = row 16 g + i . token c
 * q5: the blk_q5_Kx16 layout, else blk_q4_Kx16. One token takes 4 groups
 * in decode (DG): each group its own prefetched stream, as the AVX2 K
 * tiles and this file's other types read; each row's arithmetic is the
 * one-group tile's, step for step (the same bits). Two tokens over DG
 * groups would hold 2 x 8 sums and 8 partials beside the chunks, past the
 * 32 zmm: they take each sub-block pair's two halves in turn (reloading the
 * chunks from L1), 8 sums at a time, and their activation bytes as
 * embedded broadcasts (tl_avx512_dpbusd_b4), which the compiler would
 * otherwise hoist into registers shared by the 4 groups. */
TL_AVX512_INLINE void tile_k4(int64_t nb, float *y, size_t ldy, const uint8_t *w, size_t gs,
                              const uint8_t *x, size_t ldx, const int G, const int C, const bool q5) {
    const size_t bytes = q5 ? sizeof(blk_q5_Kx16) : sizeof(blk_q4_Kx16);
    const bool halves = G > 1 && C > 1;
    for (int g = 0; g < G; g++)
        for (int c = 0; c < C; c++) _mm512_storeu_ps(y + (size_t)c * ldy + 16 * g, _mm512_setzero_ps());
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb[4];
        const k4_head *hd[4];
        __m512 dw[4];
        for (int g = 0; g < G; g++) {
            wb[g] = w + (size_t)g * gs + (size_t)b * bytes;
            hd[g] = (const k4_head *)(wb[g] + (q5 ? offsetof(blk_q5_Kx16, hd) : offsetof(blk_q4_Kx16, hd)));
            dw[g] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)hd[g]->d));
        }
        const tl_block_q8_K *xb[KP];
        __m512 part[KP]; /* [g C + c] */
        for (int c = 0; c < C; c++) xb[c] = (const tl_block_q8_K *)(x + (size_t)c * ldx) + b;
        for (int k = 0; k < G * C; k++) part[k] = _mm512_setzero_ps();
        for (int p = 0; p < 4; p++) {
            if (C == 1 || G > 1)
                for (int g = 0; g < G; g++) prefetch_quarter(wb[g], bytes, p);
            if (halves) {
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    /* each half loads the chunks through its own copy of the
                     * pointers: gcc would keep the first half's 32 loads for
                     * the second, spilled to the stack */
                    const uint8_t *wh[4];
                    for (int g = 0; g < G; g++) {
                        wh[g] = wb[g];
                        __asm__("" : "+r"(wh[g]));
                    }
                    __m512i s[KP];
                    for (int k = 0; k < G * C; k++) s[k] = _mm512_setzero_si512();
#pragma GCC unroll 8
                    for (int j = 0; j < 8; j++)
#pragma GCC unroll 4
                        for (int g = 0; g < G; g++) {
                            const __m512i q = k45_quants(wh[g], p, j, h, q5);
#pragma GCC unroll 2
                            for (int c = 0; c < C; c++)
                                s[g * C + c] = tl_avx512_dpbusd_b4(s[g * C + c], q,
                                                                   xb[c]->qs + 64 * p + 4 * j + 32 * h);
                        }
#pragma GCC unroll 4
                    for (int g = 0; g < G; g++) {
                        const __m512 scf = k4_scale(hd[g], dw[g], p, h, q5);
#pragma GCC unroll 2
                        for (int c = 0; c < C; c++)
                            part[g * C + c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[g * C + c]), scf,
                                                              part[g * C + c]);
                    }
                }
                continue;
            }
            /* sub-blocks 2p (h = 0) and 2p + 1 (h = 1), one sum chain each
             * per group and token (one token: the other sub-block pairs'
             * chains are independent, so the 5-cycle vpdpbusd latency
             * overlaps) */
            __m512i s[2][KP];
            for (int k = 0; k < G * C; k++) s[0][k] = s[1][k] = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
#pragma GCC unroll 4
                for (int g = 0; g < G; g++) {
                    const __m512i q[2] = { k45_quants(wb[g], p, j, 0, q5), k45_quants(wb[g], p, j, 1, q5) };
#pragma GCC unroll 8
                    for (int c = 0; c < C; c++) {
                        const int8_t *xq = xb[c]->qs + 64 * p + 4 * j;
#pragma GCC unroll 2
                        for (int h = 0; h < 2; h++)
                            s[h][g * C + c] =
                                _mm512_dpbusd_epi32(s[h][g * C + c], q[h], tl_avx512_bcast4(xq + 32 * h));
                    }
                }
            }
#pragma GCC unroll 4
            for (int g = 0; g < G; g++)
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    const __m512 scf = k4_scale(hd[g], dw[g], p, h, q5);
#pragma GCC unroll 8
                    for (int c = 0; c < C; c++) {
                        const int k = g * C + c;
                        part[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[h][k]), scf, part[k]);
                    }
                }
        }
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            const __m512 dmw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)hd[g]->dmin));
            __m512i mn[4];
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++)
                mn[p] = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)hd[g]->mn[p]));
#pragma GCC unroll 8
            for (int c = 0; c < C; c++) {
                const int16_t *bs = xb[c]->bsums;
                __m512i ms = _mm512_setzero_si512();
#pragma GCC unroll 4
                for (int p = 0; p < 4; p++) {
                    /* sub-block sums 2p, 2p+1 (|.| <= 32 * 128: int16) as one lane pair */
                    const uint32_t lo = (uint16_t)(bs[4 * p] + bs[4 * p + 1]);
                    const uint32_t hi = (uint16_t)(bs[4 * p + 2] + bs[4 * p + 3]);
                    ms = _mm512_dpwssd_epi32(ms, mn[p], _mm512_set1_epi32((int32_t)(lo | hi << 16)));
                }
                const __m512 dy = _mm512_set1_ps(xb[c]->d);
                float *yo = y + (size_t)c * ldy + 16 * g;
                __m512 acc = _mm512_loadu_ps(yo);
                acc = _mm512_fmadd_ps(part[g * C + c], dy, acc);
                acc = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(ms), _mm512_mul_ps(dmw, dy), acc);
                _mm512_storeu_ps(yo, acc);
            }
        }
    }
}

TL_AVX512_INLINE void tile_q4_K(int64_t nb, float *y, size_t ldy, const uint8_t *w, const uint8_t *x,
                                size_t ldx, const int C) {
    tile_k4(nb, y, ldy, w, 0, x, ldx, 1, C, false);
}
TL_AVX512_INLINE void tile_q5_K(int64_t nb, float *y, size_t ldy, const uint8_t *w, const uint8_t *x,
                                size_t ldx, const int C) {
    tile_k4(nb, y, ldy, w, 0, x, ldx, 1, C, true);
}

/* ---- Q6_K ------------------------------------------------------------------- *
 * Per group: nb bodies of 3328 bytes (a multiple of 64: quant loads stay
 * aligned when the group is), then the nb rows of 16 f16 d (32 bytes each);
 * 3360 bytes per super-block, exactly the 16 original blocks. The 6-bit
 * quants u = q + 32 stay 6-bit: decode streams these bytes from DRAM, so
 * they are not widened (AVX2's layout widens them to bytes, +22%); the
 * tile rebuilds them with a shift, an and and a ternary-logic merge.
 * Body:
 *   ql[m] (m < 32): for row i, bytes 4i+t hold the low 4 bits of element
 *     4m + t (low nibble) and of element 128 + 4m + t (high nibble);
 *   qh[m] (m < 16): for row i, byte 4i+t holds the top 2 bits of element
 *     4m + 64p + t at bits 2p (p < 4);
 *   sc[j]: sub-block j's int8 scale of each row.
 * So the 4 quants of element group k (elements 4k .. 4k+3, sub-block k/4)
 * are the nibble k / 32 of ql[k % 32] and the bit pair k / 16 of qh[k % 16].
 * Per row lane and sub-block j (16 elements):
 *   sum_j = sum (u - 32) y = vpdpbusd(u, y) seeded with -32 ysum_j (q8_K's
 *   bsums), exact; the super-block is d_x * sum_j (d sc_j) sum_j. */

typedef struct {
    uint8_t ql[32][64];
    uint8_t qh[16][64];
    int8_t sc[16][16];
} q6_Kx16_body;
static_assert(sizeof(q6_Kx16_body) + 16 * sizeof(uint16_t) == 16 * sizeof(tl_block_q6_K),
              "q6_Kx16 block: the 16 rows' bytes rearranged");
static_assert(sizeof(q6_Kx16_body) % 64 == 0, "q6_Kx16 bodies keep 64-byte alignment");

// packed bytes per row of n elements: the q6_K row size (n % 256 == 0)
size_t tl_avx512_row_size_q6_Kx16(int64_t n) { return (size_t)(n / TL_QK_K) * sizeof(tl_block_q6_K); }

// W (nr, n) q6_K, rows ldw bytes apart -> dst (nr / 16 groups: nb bodies, then nb d rows)
void tl_avx512_pack_q6_Kx16(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    const int64_t nb = n / TL_QK_K;
    for (int64_t g0 = 0; g0 < nr; g0 += 16) {
        uint8_t *grp = (uint8_t *)dst + (size_t)g0 * tl_avx512_row_size_q6_Kx16(n);
        q6_Kx16_body *body = (q6_Kx16_body *)grp;
        uint8_t *d = grp + (size_t)nb * sizeof *body;
        for (int64_t b = 0; b < nb; b++) {
            for (int i = 0; i < 16; i++) {
                const tl_block_q6_K *src =
                    (const tl_block_q6_K *)((const uint8_t *)w + (size_t)(g0 + i) * ldw) + b;
                /* element 128h + 32k + l: low 4 bits from ql[64h + l + 32 (k & 1)]
                 * (high nibble when k >= 2), top 2 from qh[32h + l] >> 2k. So
                 * ql's bytes e < 64 join element e's nibble (ql[e] & 15) with
                 * element 128 + e's (ql[64 + e] & 15), and bytes 64 <= e < 128
                 * the high nibbles of the same source bytes; qh's byte e < 64
                 * (e = 32k + l) gathers the bit pairs k and k + 2 of qh[l] and
                 * of qh[32 + l] */
                uint8_t xl[128], xh[64];
                const __m256i m4 = _mm256_set1_epi8(0x0F), m33 = _mm256_set1_epi8(0x33);
                for (int e = 0; e < 64; e += 32) {
                    const __m256i a = _mm256_loadu_si256((const __m256i *)(src->ql + e));
                    const __m256i c = _mm256_loadu_si256((const __m256i *)(src->ql + 64 + e));
                    _mm256_storeu_si256((__m256i *)(xl + e),
                                        _mm256_or_si256(_mm256_and_si256(a, m4),
                                                        _mm256_slli_epi16(_mm256_and_si256(c, m4), 4)));
                    _mm256_storeu_si256((__m256i *)(xl + 64 + e),
                                        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), m4),
                                                        _mm256_andnot_si256(m4, c)));
                }
                /* bit pairs k and k + 2 of a byte, to bits 0-1 and 2-3:
                 * (q >> 2k) & 0x33 holds them at bits 0-1 and 4-5 */
                const __m256i q0 = _mm256_loadu_si256((const __m256i *)src->qh);
                const __m256i q1 = _mm256_loadu_si256((const __m256i *)(src->qh + 32));
                for (int k = 0; k < 2; k++) {
                    const __m256i p0 = _mm256_and_si256(_mm256_srli_epi16(q0, 2 * k), m33);
                    const __m256i p1 = _mm256_and_si256(_mm256_srli_epi16(q1, 2 * k), m33);
                    /* p | p >> 2 puts bits 4-5 at 2-3 (bits 0-1 stay) */
                    const __m256i t0 = _mm256_and_si256(_mm256_or_si256(p0, _mm256_srli_epi16(p0, 2)), m4);
                    const __m256i t1 = _mm256_and_si256(_mm256_or_si256(p1, _mm256_srli_epi16(p1, 2)), m4);
                    _mm256_storeu_si256((__m256i *)(xh + 32 * k),
                                        _mm256_or_si256(t0, _mm256_slli_epi16(t1, 4)));
                }
                for (int m = 0; m < 32; m++) memcpy(&body[b].ql[m][4 * i], xl + 4 * m, 4);
                for (int m = 0; m < 16; m++) memcpy(&body[b].qh[m][4 * i], xh + 4 * m, 4);
                for (int j = 0; j < 16; j++) body[b].sc[j][i] = src->scales[j];
                memcpy(d + (size_t)(16 * b + i) * 2, &src->d, 2);
            }
        }
    }
}

/* tokens per tile: 12 quant registers + 2 x 6 accumulators + 4 constants of
 * the 32 zmm; ~53 multiply-adds per cycle by llvm-mca (Ice Lake server),
 * 48 with 4 tokens */
enum { CT6 = 6 };

/* 4 quants of each row, unsigned 6-bit, from their low bits (nibble nib of
 * ql chunk l) and high bits (pair t of qh chunk h) */
TL_AVX512_INLINE __m512i q6_u(__m512i l, __m512i h, const int t, const int nib) {
    const __m512i lo = _mm512_and_si512(nib ? _mm512_srli_epi16(l, 4) : l, _mm512_set1_epi8(0x0F));
    /* bit pair t to bits 4-5 (16-bit shifts: what crosses a byte boundary is masked off) */
    const __m512i hs = t == 0   ? _mm512_slli_epi16(h, 4)
                       : t == 1 ? _mm512_slli_epi16(h, 2)
                       : t == 2 ? h
                                : _mm512_srli_epi16(h, 2);
    return _mm512_ternarylogic_epi32(lo, hs, _mm512_set1_epi8(0x30), 0xF8); /* lo | (hs & 0x30) */
}

/* sub-block j of a body wb, its quants u, for C tokens (xb[c]: their
 * super-blocks, seed[c]: their -32 ysum per sub-block):
 *   part[c] += (sum (u - 32) y) (d sc_j), the sum exact in int32
 * emb: the activation bytes as embedded broadcasts (the decode tile, whose
 * groups would otherwise share them in registers and spill); the one-group
 * tile keeps the intrinsics, which spill less there (gcc 12: 12 zmm
 * stack accesses in the 6-token tile against 30) */
TL_AVX512_INLINE void q6_sub(__m512 part[], const __m512i u[4], const q6_Kx16_body *wb, __m512 dw,
                             const tl_block_q8_K *const xb[], const int32_t seed[][16], int j, const int C,
                             const bool emb) {
    const __m512 scf = _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)wb->sc[j]))), dw);
#pragma GCC unroll 8
    for (int c = 0; c < C; c++) {
        const int8_t *xq = xb[c]->qs + 16 * j;
        __m512i sm = _mm512_set1_epi32(seed[c][j]);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
            sm = emb ? tl_avx512_dpbusd_b4(sm, u[i], xq + 4 * i)
                     : _mm512_dpbusd_epi32(sm, u[i], tl_avx512_bcast4(xq + 4 * i));
        part[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sm), scf, part[c]);
    }
}

/* One group of 16 packed rows x C tokens over all nb super-blocks:
 *   y[c * ldy + i] = row i . token c */
TL_AVX512_INLINE void tile_q6_K(int64_t nb, float *y, size_t ldy, const uint8_t *grp,
                                const uint8_t *x, size_t ldx, const int C) {
    const q6_Kx16_body *body = (const q6_Kx16_body *)grp;
    const uint8_t *dsc = grp + (size_t)nb * sizeof *body;
    __m512 acc[CT6];
    for (int c = 0; c < C; c++) acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const q6_Kx16_body *wb = body + b;
        /* the d rows (32 bytes a super-block) as many super-blocks ahead */
        if (C == 1 && PF_AHEAD > 0)
            _mm_prefetch((const char *)dsc + (b + 1 + PF_AHEAD / sizeof *wb) * 32, _MM_HINT_T0);
        const tl_block_q8_K *xb[CT6];
        __m512 part[CT6];
        /* the accumulator seeds -32 ysum_j of each token and sub-block */
        int32_t seed[CT6][16];
        for (int c = 0; c < C; c++) {
            xb[c] = (const tl_block_q8_K *)(x + (size_t)c * ldx) + b;
            part[c] = _mm512_setzero_ps();
            const __m512i bs = _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)xb[c]->bsums));
            _mm512_storeu_si512(seed[c], _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(bs, 5)));
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(dsc + (size_t)b * 32)));
        /* element groups k = 16t + 4mq + i (i < 4) form sub-block j = 4t + mq:
         * their high bits are pair t of qh[4mq + i], their low bits nibble
         * t / 2 of ql[16 (t % 2) + 4mq + i]; each load serves 2 or 4 sub-blocks */
        for (int mq = 0; mq < 4; mq++) {
            if (C == 1) prefetch_quarter(wb, sizeof *wb, mq);
            __m512i h[4];
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) h[i] = _mm512_loadu_si512(wb->qh[4 * mq + i]);
#pragma GCC unroll 2
            for (int tp = 0; tp < 2; tp++) {
                __m512i l[4];
#pragma GCC unroll 4
                for (int i = 0; i < 4; i++) l[i] = _mm512_loadu_si512(wb->ql[16 * tp + 4 * mq + i]);
#pragma GCC unroll 2
                for (int nib = 0; nib < 2; nib++) {
                    const int t = tp + 2 * nib, j = 4 * t + mq;
                    __m512i u[4];
#pragma GCC unroll 4
                    for (int i = 0; i < 4; i++) u[i] = q6_u(l[i], h[i], t, nib);
                    q6_sub(part, u, wb, dw, xb, seed, j, C, false);
                }
            }
        }
        for (int c = 0; c < C; c++) acc[c] = _mm512_fmadd_ps(part[c], _mm512_set1_ps(xb[c]->d), acc[c]);
    }
    for (int c = 0; c < C; c++) _mm512_storeu_ps(y + (size_t)c * ldy, acc[c]);
}

/* DG groups of 16 packed rows (gs bytes apart) x C tokens (C <= DC) over
 * all nb super-blocks, the decode tile:
 *   y[16 DG c + 16 g + i] = row 16 g + i . token c
 * Each row's arithmetic is tile_q6_K's, step for step (the same bits); the
 * groups take turns within each quarter of a super-block, each its own
 * prefetched stream (tiles.h: past a group's bodies the stream goes on at
 * the next group's, its d rows likewise), as Q4_K's decode reads. The
 * chunks are loaded for each sub-block that uses them (from L1 after the
 * first): held, one group's 4 qh and 4 ql chunks would take 32 zmm across
 * the 4 groups. */
TL_AVX512_INLINE void dec_q6_K(int64_t nb, float *y, const uint8_t *w, size_t gs, const uint8_t *x,
                               size_t ldx, const int C) {
    const size_t bend = (size_t)nb * sizeof(q6_Kx16_body), dend = (size_t)nb * 32;
    const size_t grp_bytes = bend + dend, qlines = (sizeof(q6_Kx16_body) / 64 + 3) / 4;
    __m512 acc[DG][DC] = { 0 };
    for (int64_t b = 0; b < nb; b++) {
        const tl_block_q8_K *xb[DC];
        int32_t seed[DC][16]; /* tile_q6_K's */
        for (int c = 0; c < C; c++) {
            xb[c] = (const tl_block_q8_K *)(x + (size_t)c * ldx) + b;
            const __m512i bs = _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)xb[c]->bsums));
            _mm512_storeu_si512(seed[c], _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(bs, 5)));
        }
        __m512 part[DG][DC];
#pragma GCC unroll 4
        for (int g = 0; g < DG; g++)
#pragma GCC unroll 2
            for (int c = 0; c < C; c++) part[g][c] = _mm512_setzero_ps();
        for (int mq = 0; mq < 4; mq++) {
#pragma GCC unroll 4
            for (int g = 0; g < DG; g++) {
                const uint8_t *grp = w + (size_t)g * gs;
                const q6_Kx16_body *wb = (const q6_Kx16_body *)grp + b;
                const size_t pos = (size_t)b * sizeof *wb + (size_t)mq * qlines * 64;
#pragma GCC unroll 16
                for (size_t l = 0; l < qlines; l++)
                    _mm_prefetch((const char *)tl_tile_pf_target(grp, pos + 64 * l, PF_AHEAD, bend,
                                                                 grp + grp_bytes),
                                 _MM_HINT_T0);
                if (mq == 0)
                    _mm_prefetch((const char *)tl_tile_pf_target(grp + bend, (size_t)(b + 1) * 32,
                                                                 PF_AHEAD / sizeof *wb * 32, dend,
                                                                 grp + grp_bytes + bend),
                                 _MM_HINT_T0);
                const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(grp + bend + (size_t)b * 32)));
#pragma GCC unroll 2
                for (int tp = 0; tp < 2; tp++)
#pragma GCC unroll 2
                    for (int nib = 0; nib < 2; nib++) {
                        const int t = tp + 2 * nib, j = 4 * t + mq;
                        __m512i u[4];
#pragma GCC unroll 4
                        for (int i = 0; i < 4; i++)
                            u[i] = q6_u(_mm512_loadu_si512(wb->ql[16 * tp + 4 * mq + i]),
                                        _mm512_loadu_si512(wb->qh[4 * mq + i]), t, nib);
                        q6_sub(part[g], u, wb, dw, xb, seed, j, C, true);
                    }
            }
        }
#pragma GCC unroll 4
        for (int g = 0; g < DG; g++)
#pragma GCC unroll 2
            for (int c = 0; c < C; c++)
                acc[g][c] = _mm512_fmadd_ps(part[g][c], _mm512_set1_ps(xb[c]->d), acc[g][c]);
    }
#pragma GCC unroll 4
    for (int g = 0; g < DG; g++)
#pragma GCC unroll 2
        for (int c = 0; c < C; c++) _mm512_storeu_ps(y + 16 * (DG * c + g), acc[g][c]);
}

/* ---- drivers ---------------------------------------------------------------- */

typedef void (*tile_fn)(int64_t nb, float *y, size_t ldy, const uint8_t *grp, const uint8_t *x,
                        size_t ldx);

#define TILE_K(T, C)                                                                           \
    static void tile_##T##_##C(int64_t nb, float *y, size_t ldy, const uint8_t *grp,           \
                               const uint8_t *x, size_t ldx) {                                 \
        tile_##T(nb, y, ldy, grp, x, ldx, C);                                    \
    }
TILE_K(q4_K, 1) TILE_K(q4_K, 2) TILE_K(q4_K, 3) TILE_K(q4_K, 4) TILE_K(q4_K, 5) TILE_K(q4_K, 6)
TILE_K(q5_K, 1) TILE_K(q5_K, 2) TILE_K(q5_K, 3) TILE_K(q5_K, 4) TILE_K(q5_K, 5) TILE_K(q5_K, 6)
TILE_K(q6_K, 1) TILE_K(q6_K, 2) TILE_K(q6_K, 3) TILE_K(q6_K, 4) TILE_K(q6_K, 5) TILE_K(q6_K, 6)
static const tile_fn tiles_q4_K[CT4 + 1] = { NULL, tile_q4_K_1, tile_q4_K_2, tile_q4_K_3,
                                             tile_q4_K_4, tile_q4_K_5, tile_q4_K_6 };
static const tile_fn tiles_q5_K[CT4 + 1] = { NULL, tile_q5_K_1, tile_q5_K_2, tile_q5_K_3,
                                             tile_q5_K_4, tile_q5_K_5, tile_q5_K_6 };
static const tile_fn tiles_q6_K[CT6 + 1] = { NULL,        tile_q6_K_1, tile_q6_K_2, tile_q6_K_3,
                                             tile_q6_K_4, tile_q6_K_5, tile_q6_K_6 };
static_assert(CT4 == 6 && CT6 == 6, "one tile per token count 1..CT");

/* DG groups (gs bytes apart) x C tokens (rows ldx bytes apart; C <= DC):
 * the decode tiles, y[c * 16 DG + 16 g + i] (a type's table; NULL: none) */
typedef void (*dec_fn)(int64_t nb, float *y, const uint8_t *grp, size_t gs, const uint8_t *x, size_t ldx);
#define DEC_K4(T, Q5, C)                                                                         \
    static void dec_##T##_##C(int64_t nb, float *y, const uint8_t *grp, size_t gs,               \
                              const uint8_t *x, size_t ldx) {                                    \
        tile_k4(nb, y, 16 * DG, grp, gs, x, ldx, DG, C, Q5);                                     \
    }
DEC_K4(q4_K, false, 1) DEC_K4(q4_K, false, 2) DEC_K4(q5_K, true, 1) DEC_K4(q5_K, true, 2)
static const dec_fn decs_q4_K[DC + 1] = { NULL, dec_q4_K_1, dec_q4_K_2 };
static const dec_fn decs_q5_K[DC + 1] = { NULL, dec_q5_K_1, dec_q5_K_2 };
static void dec_q6_K_1(int64_t nb, float *y, const uint8_t *grp, size_t gs, const uint8_t *x, size_t ldx) {
    dec_q6_K(nb, y, grp, gs, x, ldx, 1);
}
static void dec_q6_K_2(int64_t nb, float *y, const uint8_t *grp, size_t gs, const uint8_t *x, size_t ldx) {
    dec_q6_K(nb, y, grp, gs, x, ldx, 2);
}
static const dec_fn decs_q6_K[DC + 1] = { NULL, dec_q6_K_1, dec_q6_K_2 };
static_assert(DC == 2, "one decode tile per token count 1..DC");

/* token tiles of up to ct (the remainder in one narrower tile) x row
 * groups; up to DC tokens (decode) DG groups at a time, as streams
 * (tiles.h), where the type has such tiles */
static void gemm_k(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const uint8_t *w,
                   size_t ldw, const uint8_t *x, size_t ldx, int ct, const tile_fn *tiles,
                   const dec_fn *decs) {
    const int64_t nb = n / TL_QK_K;
    int64_t rd = 0; /* rows the decode tiles took */
    if (nc <= DC && decs && nr >= 16 * DG) {
        /* tile i: group i of each of DG streams, outputs through o, token by token */
        const int64_t nt = nr / (16 * DG);
        const size_t gsz = 16 * ldw; /* bytes per group */
        float o[DC * 16 * DG];
        for (int64_t i = 0; i < nt; i++) {
            decs[nc](nb, o, w + (size_t)i * gsz, (size_t)nt * gsz, x, ldx);
            for (int c = 0; c < nc; c++)
                tl_tile_stream_scatter(y + (size_t)c * ldy, o + 16 * DG * c, i, nt, DG, 16);
        }
        rd = nt * 16 * DG;
    }
    for (int64_t c0 = 0; c0 < nc; c0 += ct) {
        const int cc = nc - c0 < ct ? (int)(nc - c0) : ct;
        for (int64_t r0 = rd; r0 < nr; r0 += 16)
            tiles[cc](nb, y + (size_t)c0 * ldy + r0, ldy, w + (size_t)r0 * ldw, x + (size_t)c0 * ldx, ldx);
    }
}

// W (nr, n) q4_K packed by 16 @ X^T (nc, n) q8_K -> y[c * ldy + r]   (n % 256 == 0, nr % 16 == 0)
void tl_avx512_gemm_q4_Kx16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                            size_t ldw, const void *x, size_t ldx) {
    gemm_k(n, nr, nc, y, ldy, w, ldw, x, ldx, CT4, tiles_q4_K, decs_q4_K);
}

// W (nr, n) q5_K packed by 16 @ X^T (nc, n) q8_K -> y[c * ldy + r]   (n % 256 == 0, nr % 16 == 0)
void tl_avx512_gemm_q5_Kx16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                            size_t ldw, const void *x, size_t ldx) {
    gemm_k(n, nr, nc, y, ldy, w, ldw, x, ldx, CT4, tiles_q5_K, decs_q5_K);
}

// W (nr, n) q6_K packed by 16 @ X^T (nc, n) q8_K -> y[c * ldy + r]   (n % 256 == 0, nr % 16 == 0)
void tl_avx512_gemm_q6_Kx16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                            size_t ldw, const void *x, size_t ldx) {
    gemm_k(n, nr, nc, y, ldy, w, ldw, x, ldx, CT6, tiles_q6_K, decs_q6_K);
}
