/* repack_k23_avx2.c — Q2_K and Q3_K weights repacked 8 rows to a group
 * (the kern.h repack slot), and the AVX2 tiles over them, on the driver and
 * helpers of repack_x8.h.
 *
 * Why: their row-major path (kquant_avx2.c) decodes each super-block into
 * a staging form and reuses it across a tile's tokens; one token (decode)
 * pays the whole decode for one use: Q3_K drew 10 GMAC/s a thread, Q2_K
 * 17, where the repacked Q4_K draws 40. Here one row lies in each 32-bit
 * lane and the quants meet the activations straight from the packed bytes.
 *
 * Per group and super-block (256 elements of 8 rows):
 *   Q2_K (672 bytes, the 8 blocks): d[8], dmin[8]; sm[k][i], row i's scale
 *     byte of sub-block k (scale | min << 4), as stored; then the quants.
 *   Q3_K (912 bytes; the 8 blocks are 880): d[8]; sc[k][i], row i's signed
 *     scale of sub-block k, unpacked; then the quants.
 *   The quants, in 8 steps of 32 elements: step q holds elements 32q ..
 *   32q + 31 of each row (sub-blocks 2q and 2q + 1) as 8 slots, slot j
 *   the row's elements 32q + 4j + t, t = 0..3, at bytes 4i + t of 32-byte
 *   planes: Q2_K 2 planes, slot j's 2 bits at bits 2 (j % 4) of plane j / 4
 *   (each slot: a shift and a mask); Q3_K 3 planes of the 3-bit values
 *   (tiles.h, tl_tile_pack_q3_K_planes): 6 slots whole, 2 split. Each Q3_K
 *   slot is 1-2 operations, the split ones 5: 19 per step, where the stored
 *   layout's separate hmask took 48. Every slot's shifts are constants,
 *   whatever the step.
 * Arithmetic, per row lane: u = the 2 (3) bits, 0..7; per sub-block the
 * sums of 4 chunks' maddubs (<= 4 * 2 * 7 * 128 < 2^15) times its scale by
 * madd, in int32. Q3_K's quants are u - 4: the -4 * sum_k sc_k * ysum_k
 * joins the integer sum (the activation's 16-element sums, q8_K's bsums, as
 * int16 pairs against the scales' pairs); then acc += isum * (d * dy).
 * Q2_K: acc += isum * (d * dy) - (sum_k m_k * ysum_k) * (dmin * dy). */
#include <assert.h>
#include <stddef.h>
#include <string.h>

#include "core/quant.h"
#include "kern/cpu/avx2/repack_x8.h"
#include "kern/cpu/tiles.h"

enum { Q2_PLANES = 2, Q3_PLANES = 3 };

typedef struct {
    uint16_t d[8], dmin[8];
    uint8_t sm[16][8];
    uint8_t q[8][Q2_PLANES][32];
} blk_q2_Kx8;
static_assert(sizeof(blk_q2_Kx8) == 8 * sizeof(tl_block_q2_K), "q2_Kx8 is 8 q2_K blocks");

typedef struct {
    uint16_t d[8];
    int8_t sc[16][8];
    uint8_t q[8][Q3_PLANES][32];
} blk_q3_Kx8;
static_assert(sizeof(blk_q3_Kx8) == 912, "q3_Kx8 layout");
static_assert(offsetof(blk_q2_Kx8, sm) == 32 && offsetof(blk_q3_Kx8, sc) == 16,
              "the scale tables follow d (and dmin)");

// packed bytes per row of n elements (n % 256 == 0)
size_t tl_avx2_row_size_q2_Kx8(int64_t n) { return (size_t)(n / TL_QK_K) * sizeof(tl_block_q2_K); }
size_t tl_avx2_row_size_q3_Kx8(int64_t n) { return (size_t)(n / TL_QK_K) * sizeof(blk_q3_Kx8) / 8; }

/* Step q's 2-bit quants of a Q2_K row as 8 dwords a[j]
 * (byte t of a[j]: element 32q + 4j + t, 0..3). The stored element 128h +
 * 32s + l has them at bits 2s of qs[32h + l]: q = 4h + s, l = 4j + t. */
static inline void k23_low2(const uint8_t *qs, int q, uint32_t a[8]) {
    for (int j = 0; j < 8; j++) {
        uint32_t v;
        memcpy(&v, qs + 32 * (q / 4) + 4 * j, 4);
        a[j] = v >> (2 * (q % 4)) & 0x03030303u;
    }
}

// block b of 8 q2_K (q3_K) rows -> one packed block
static void pack_blk_q2_K(void *vo, const uint8_t *const row[8], int64_t b) {
    blk_q2_Kx8 *out = vo;
    for (int i = 0; i < 8; i++) {
        const tl_block_q2_K *src = (const tl_block_q2_K *)row[i] + b;
        out->d[i] = src->d;
        out->dmin[i] = src->dmin;
        for (int k = 0; k < 16; k++) out->sm[k][i] = src->scales[k];
        for (int q = 0; q < 8; q++) {
            uint32_t a[8];
            k23_low2(src->qs, q, a);
            for (int p = 0; p < Q2_PLANES; p++) {
                const uint32_t *v = a + 4 * p;
                const uint32_t o = v[0] | v[1] << 2 | v[2] << 4 | v[3] << 6;
                memcpy(&out->q[q][p][4 * i], &o, 4);
            }
        }
    }
}
static void pack_blk_q3_K(void *vo, const uint8_t *const row[8], int64_t b) {
    blk_q3_Kx8 *out = vo;
    for (int i = 0; i < 8; i++) {
        const tl_block_q3_K *src = (const tl_block_q3_K *)row[i] + b;
        tl_tile_pack_q3_K_head(8, i, src, out->d, out->sc[0]);
        tl_tile_pack_q3_K_planes(8, i, src, out->q[0][0]);
    }
}

// W (nr, n) q2_K (q3_K), rows ldw bytes apart -> dst (nr / 8 groups of n / 256 packed blocks)
void tl_avx2_pack_q2_Kx8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK_K, nr, 8, sizeof(blk_q2_Kx8), pack_blk_q2_K);
}
void tl_avx2_pack_q3_Kx8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    tl_tile_pack_groups(dst, w, ldw, n / TL_QK_K, nr, 8, sizeof(blk_q3_Kx8), pack_blk_q3_K);
}

static_assert(TL_AVX2_ACT_Q2_K == sizeof(float), "q2_K, q3_K: d as a float");
/* per super-block of a row: the activation's scale */
static void prep_q8_K_d(void *dst, const void *x, int64_t nb) {
    const tl_block_q8_K *xb = x;
    float *o = dst;
    for (int64_t b = 0; b < nb; b++) o[b] = xb[b].d;
}

/* Slot j of a step whose planes start at p: each row lane's 4 quants
 * (Q2_K 0..3, Q3_K 0..7) as bytes. The 16-bit shifts pull the next byte's
 * low bits into the top of each byte; the masks drop them. */
TL_AVX2_INLINE __m256i k23_slot(const uint8_t *p, const int j, const bool q3) {
    const __m256i m3 = _mm256_set1_epi8(3), m7 = _mm256_set1_epi8(7);
    if (!q3) {
        const __m256i v = ld256(p + 32 * (j / 4));
        return _mm256_and_si256(j % 4 ? _mm256_srli_epi16(v, 2 * (j % 4)) : v, m3);
    }
    switch (j) {
    case 0: case 3: case 6: return _mm256_and_si256(ld256(p + 32 * (j / 3)), m7);
    case 1: case 4: case 7: return _mm256_and_si256(_mm256_srli_epi16(ld256(p + 32 * (j / 3)), 3), m7);
    default: { /* 2, 5: the low bits at 6-7 of plane j / 3, the top at bit 4 + j / 3 of plane 2 */
        const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(ld256(p + 32 * (j / 3)), 6), m3);
        const __m256i hi = _mm256_srli_epi16(ld256(p + 64), 4 + j / 3);
        return _mm256_or_si256(lo, _mm256_and_si256(hi, _mm256_set1_epi8(4)));
    }
    }
}

/* The madd operand that scales sub-block k of each row lane: int16 (s_i,
 * s_i) in lane i, from the 8 bytes at t (Q3_K: signed scales; Q2_K: the
 * low nibbles of the scale bytes). */
TL_AVX2_INLINE __m256i k23_scales(const uint8_t *t, const bool q3) {
    const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m128i v = _mm_shuffle_epi8(_mm_loadl_epi64((const __m128i *)t), dup);
    return q3 ? _mm256_cvtepi8_epi16(v) : _mm256_cvtepu8_epi16(_mm_and_si128(v, _mm_set1_epi8(0x0F)));
}

/* side[c] = sum_k s_k * ysum_k per row lane, for tokens c < C: s the
 * signed scales (Q3_K) or the mins (Q2_K: the scale bytes' high nibbles),
 * ysum token c's bsums of block b (x: token 0's row, rows ldx apart):
 * pairs (s_2p, s_2p+1) of each row against the int16 pair p of bsums, by
 * madd; each pair vector is made once for all C tokens */
TL_AVX2_INLINE void k23_side_sums(__m256i side[CT], const uint8_t (*t)[8], const uint8_t *x,
                                  size_t ldx, int64_t b, const int C, const bool q3) {
    for (int c = 0; c < C; c++) side[c] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int p = 0; p < 8; p++) {
        const __m128i pr = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)t[2 * p]),
                                             _mm_loadl_epi64((const __m128i *)t[2 * p + 1]));
        const __m128i mins = _mm_and_si128(_mm_srli_epi16(pr, 4), _mm_set1_epi8(0x0F));
        const __m256i s16 = q3 ? _mm256_cvtepi8_epi16(pr) : _mm256_cvtepu8_epi16(mins);
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            const tl_block_q8_K *xb = (const tl_block_q8_K *)(x + (size_t)c * ldx) + b;
            int32_t yp;
            memcpy(&yp, xb->bsums + 2 * p, sizeof yp);
            side[c] = _mm256_add_epi32(side[c], _mm256_madd_epi16(s16, _mm256_set1_epi32(yp)));
        }
    }
}

/* G groups x C tokens of Q2_K (q3: Q3_K) (G = 1: tile_fn, C = CT or 1;
 * C = 1: dec_fn, G = GD). The decode tile (GD groups) asks for each
 * group's next lines two per step of the 8 steps, PF_DEC ahead, as the
 * other K decode tiles spread theirs: at most 16 lines, a Q3_K block is
 * 14.25 and a Q2_K one 10.5. */
TL_AVX2_INLINE void tile_k23(const bool q3, const int G, const int C, int64_t nb, bool first,
                             float *y, size_t ldy, const uint8_t *w, size_t gs, size_t skip,
                             const uint8_t *x, size_t ldx, const uint8_t *a, size_t lda) {
    const size_t blk = q3 ? sizeof(blk_q3_Kx8) : sizeof(blk_q2_Kx8);
    const size_t q_off = q3 ? offsetof(blk_q3_Kx8, q) : offsetof(blk_q2_Kx8, q);
    const int planes = q3 ? Q3_PLANES : Q2_PLANES;
    const size_t sc_off = q3 ? offsetof(blk_q3_Kx8, sc) : offsetof(blk_q2_Kx8, sm);
    __m256 acc[GD][CT];
    tile_acc_init(acc, first, y, ldy, G, C);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *wb[GD];
        k_group_blocks(wb, w, gs, skip, blk, b, nb, G, C);
        __m256i isum[GD][CT];
        k_isum_zero(isum, G, C);
        for (int q = 0; q < 8; q++) {
            k_step_prefetch(w, gs, skip, (size_t)nb * blk, (size_t)b * blk + 64 * (size_t)(2 * q), 2, G);
#pragma GCC unroll 2
            for (int half = 0; half < 2; half++) {
                __m256i ss[GD][CT]; /* the sub-block's int16 sums */
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++) {
                    const int slot = 4 * half + j;
#pragma GCC unroll 4
                    for (int g = 0; g < G; g++)
                        k_slot_dot(ss[g], k23_slot(wb[g] + q_off + (size_t)planes * 32 * q, slot, q3), j, x,
                                   ldx, b, 32 * q + 4 * slot, C);
                }
                const int k = 2 * q + half;
#pragma GCC unroll 4
                for (int g = 0; g < G; g++) k_widen(isum[g], ss[g], k23_scales(wb[g] + sc_off + 8 * (size_t)k, q3), C);
            }
        }
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            const __m256 dw = ld_f16x8((const uint16_t *)wb[g]);
            __m256i side[CT];
            k23_side_sums(side, (const uint8_t (*)[8])(wb[g] + sc_off), x, ldx, b, C, q3);
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) {
                const __m256 dy = _mm256_set1_ps(((const float *)(a + (size_t)c * lda))[b]);
                if (q3) {
                    const __m256i i32 = _mm256_sub_epi32(isum[g][c], _mm256_slli_epi32(side[c], 2));
                    acc[g][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32), _mm256_mul_ps(dw, dy), acc[g][c]);
                } else {
                    const __m256 dm = ld_f16x8(((const blk_q2_Kx8 *)wb[g])->dmin);
                    acc[g][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[g][c]), _mm256_mul_ps(dw, dy),
                                                acc[g][c]);
                    acc[g][c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(side[c]), _mm256_mul_ps(dm, dy),
                                                 acc[g][c]);
                }
            }
        }
    }
    tile_acc_store(y, ldy, acc, G, C);
}

X8_TILES_G(q2_K, tile_k23, false,)
X8_TILES_G(q3_K, tile_k23, true,)

// tl_avx2_gemm_q2_Kx8, tl_avx2_gemm_q3_Kx8: W q2_K / q3_K packed by 8 @ X^T q8_K   (n % 256 == 0)
X8_GEMM(q2_K, .qk = TL_QK_K, .wblk = sizeof(blk_q2_Kx8), .xblk = sizeof(tl_block_q8_K),
        .ablk = TL_AVX2_ACT_Q2_K, .seg = 32, .prep = prep_q8_K_d, .dec2 = dec2_q2_K_4)
X8_GEMM(q3_K, .qk = TL_QK_K, .wblk = sizeof(blk_q3_Kx8), .xblk = sizeof(tl_block_q8_K),
        .ablk = TL_AVX2_ACT_Q2_K, .seg = 32, .prep = prep_q8_K_d, .dec2 = dec2_q3_K_4)
