/* repack_avx2.c — Q4_0 weights repacked 8 rows to a group (the kern.h
 * repack slot), and the AVX2 tiles over them.
 *
 * Why: the row-major tiles (quant_avx2.c) reduce each (row, token, block)
 * to a scalar in its own 8-lane register, then scale it by d_w * d_x in
 * float: ~7 vector ops and a scalar multiply per 32 MACs. Interleaving 8
 * rows puts one row in each 32-bit lane: a block's 32 products for 8 rows
 * are 8 maddubs (4 quants of each row against 4 broadcast activation bytes)
 * summed in int16, one madd, one convert, and one fma whose scale vector
 * holds the 8 rows' d_w: ~20 ops per 256 MACs.
 *
 * Packed layout, per group of 8 rows and block b (144 bytes, the size of
 * the 8 original blocks): d[8] (the rows' f16 scales), then 4 chunks of 32
 * bytes; chunk g holds, for row i, the 4 bytes qs[4g .. 4g+3] of its block
 * at bytes 4i .. 4i+3. A byte's low nibble is element 4g+t, its high nibble
 * element 16+4g+t, so chunk & 0xF and chunk >> 4 each hold 4 elements of
 * all 8 rows.
 *
 * Arithmetic: sum_j (u_j - 8) y_j = sum_j u_j y_j - 8 sum_j y_j, both exact
 * in integers (|partial int16 sums| <= 8 * 2 * 15 * 128 < 2^15); the
 * 8 sum y term is computed once per token and block and shared by every
 * row group of the call. Each output then accumulates
 * fma(isum, d_w * d_x, acc) over blocks, in block order, in its own lane. */
#include <assert.h>
#include <string.h>

#include "core/quant.h"
#include "kern/cpu/avx2/avx2.h"

typedef struct {
    uint16_t d[8];
    uint8_t qs[128];
} blk_q4_0x8;
static_assert(sizeof(blk_q4_0x8) == 8 * sizeof(tl_block_q4_0), "q4_0x8 is 8 q4_0 blocks");

// packed bytes per row of n elements: the q4_0 row size
size_t tl_avx2_row_size_q4_0x8(int64_t n) { return (size_t)(n / TL_QK4_0) * sizeof(tl_block_q4_0); }

// W (nr, n) q4_0, rows ldw bytes apart -> dst (nr / 8 groups of n / 32 blk_q4_0x8)
void tl_avx2_pack_q4_0x8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    const int64_t nb = n / TL_QK4_0;
    blk_q4_0x8 *out = dst;
    for (int64_t g0 = 0; g0 < nr; g0 += 8) {
        for (int64_t b = 0; b < nb; b++, out++) {
            for (int i = 0; i < 8; i++) {
                const tl_block_q4_0 *src = (const tl_block_q4_0 *)((const uint8_t *)w + (size_t)(g0 + i) * ldw) + b;
                out->d[i] = src->d;
                for (int g = 0; g < 4; g++) memcpy(out->qs + 32 * g + 4 * i, src->qs + 4 * g, 4);
            }
        }
    }
}

enum { KSEG = 512, CT = 4 }; /* blocks per activation-sum segment; tokens per tile */

/* per token c < nc and block b < nb of x: sy = 8 * sum(y), dy = d_x */
static void act_sums(const uint8_t *x, size_t ldx, int nc, int64_t b0, int64_t nb, int32_t *sy,
                     float *dy) {
    const __m256i eight = _mm256_set1_epi8(8), ones = _mm256_set1_epi16(1);
    for (int c = 0; c < nc; c++) {
        const tl_block_q8_0 *xb = (const tl_block_q8_0 *)(x + (size_t)c * ldx) + b0;
        for (int64_t b = 0; b < nb; b++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)xb[b].qs);
            const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(eight, v), ones);
            __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
            sy[c * KSEG + b] = _mm_cvtsi128_si32(h);
            dy[c * KSEG + b] = tl_avx2_h2f(xb[b].d);
        }
    }
}

TL_AVX2_INLINE __m256i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* One group of 8 packed rows x C tokens over blocks [b0, b0 + nb):
 *   y[c * ldy + i] (+)= sum_b row i . token c
 * first: start from 0, else accumulate onto y (a later block segment). */
#define Q40X8_TILE(NAME, C)                                                                   \
    static void NAME(int64_t b0, int64_t nb, bool first, float *y, size_t ldy,               \
                     const blk_q4_0x8 *w, const uint8_t *x, size_t ldx, const int32_t *sy,   \
                     const float *dy) {                                                      \
        __m256 acc[C];                                                                       \
        for (int c = 0; c < C; c++)                                                          \
            acc[c] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(y + (size_t)c * ldy);     \
        const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);              \
        for (int64_t b = 0; b < nb; b++) {                                                   \
            const blk_q4_0x8 *wb = w + b0 + b;                                               \
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)wb->d));     \
            __m256i q[8];                                                                    \
            _Pragma("GCC unroll 4") for (int g = 0; g < 4; g++) {                            \
                const __m256i v = _mm256_loadu_si256((const __m256i *)(wb->qs + 32 * g));    \
                q[g] = _mm256_and_si256(v, m4);                                              \
                q[g + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);                    \
            }                                                                                \
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) {                            \
                const int8_t *xq = ((const tl_block_q8_0 *)(x + (size_t)c * ldx) + b0 + b)->qs; \
                __m256i s = _mm256_maddubs_epi16(q[0], bcast4(xq));                          \
                _Pragma("GCC unroll 4") for (int g = 1; g < 4; g++)                          \
                    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(q[g], bcast4(xq + 4 * g))); \
                _Pragma("GCC unroll 4") for (int g = 0; g < 4; g++)                          \
                    s = _mm256_add_epi16(s, _mm256_maddubs_epi16(q[g + 4], bcast4(xq + 16 + 4 * g))); \
                const __m256i i32 = _mm256_sub_epi32(_mm256_madd_epi16(s, ones),             \
                                                     _mm256_set1_epi32(sy[c * KSEG + b]));   \
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32),                            \
                                         _mm256_mul_ps(dw, _mm256_set1_ps(dy[c * KSEG + b])), \
                                         acc[c]);                                            \
            }                                                                                \
        }                                                                                    \
        for (int c = 0; c < C; c++) _mm256_storeu_ps(y + (size_t)c * ldy, acc[c]);           \
    }

Q40X8_TILE(tile_q4_0x8_8x4, CT)
Q40X8_TILE(tile_q4_0x8_8x1, 1)

// W (nr, n) q4_0 packed by 8 @ X^T (nc, n) q8_0 -> y[c * ldy + r]   (n % 32 == 0, nr % 8 == 0)
void tl_avx2_gemm_q4_0x8(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *vx, size_t ldx) {
    const int64_t nb = n / TL_QK4_0;
    const uint8_t *x = vx;
    int32_t sy[CT * KSEG];
    float dy[CT * KSEG];
    for (int64_t c0 = 0; c0 < nc; c0 += CT) {
        const int cc = nc - c0 < CT ? (int)(nc - c0) : CT;
        const uint8_t *xc = x + (size_t)c0 * ldx;
        float *yc = y + (size_t)c0 * ldy;
        for (int64_t b0 = 0; b0 < nb; b0 += KSEG) {
            const int64_t sb = nb - b0 < KSEG ? nb - b0 : KSEG;
            act_sums(xc, ldx, cc, b0, sb, sy, dy);
            for (int64_t r0 = 0; r0 < nr; r0 += 8) {
                const blk_q4_0x8 *wg = (const blk_q4_0x8 *)((const uint8_t *)w + (size_t)r0 * ldw);
                if (cc == CT) {
                    tile_q4_0x8_8x4(b0, sb, b0 == 0, yc + r0, ldy, wg, xc, ldx, sy, dy);
                } else {
                    for (int c = 0; c < cc; c++)
                        tile_q4_0x8_8x1(b0, sb, b0 == 0, yc + (size_t)c * ldy + r0, ldy, wg,
                                        xc + (size_t)c * ldx, ldx, sy + c * KSEG, dy + c * KSEG);
                }
            }
        }
    }
}

/* ---- Q4_K, 8 rows to a group ------------------------------------------------ *
 * Per group and super-block (1248 bytes, 8 original blocks are 1152): the
 * rows' d and dmin; each sub-block's 6-bit scale per row, stored twice
 * (sc[s][2i], sc[s][2i+1]) so one zero-extension gives the madd pairs
 * (sc, sc) of row i's lane; the mins as pairs (m_2p, m_2p+1) per row, the
 * madd operand against the activation's sub-block sum pairs; and the quants
 * in 32 chunks of 32 bytes: chunk (c, g) holds, for row i, the 4 bytes
 * qs[32c + 4g .. +3], whose low nibbles are elements 64c + 4g + t
 * (sub-block 2c) and high nibbles 64c + 32 + 4g + t (sub-block 2c + 1).
 *
 * Arithmetic, per row lane: sum_s sc_s (u_s . y_s) with u_s . y_s summed in
 * int16 (8 maddubs, <= 8 * 2 * 15 * 128 < 2^15), scaled by madd and summed
 * in int32; the mins sum_s m_s * ysum_s by 4 madds; then
 * acc += isum * (d * dy) and acc += msum * (-dmin * dy), per super-block. */

typedef struct {
    uint16_t d[8], dmin[8];
    uint8_t sc[8][16];
    uint8_t mn[4][16];
    uint8_t qs[1024];
} blk_q4_Kx8;
static_assert(sizeof(blk_q4_Kx8) == 1248, "q4_Kx8 layout");

// packed bytes per row of n elements (n % 256 == 0)
size_t tl_avx2_row_size_q4_Kx8(int64_t n) { return (size_t)(n / TL_QK_K) * sizeof(blk_q4_Kx8) / 8; }

/* the 8 6-bit scales and mins of a q4_K block (tl_get_scale_min_k4) */
static void q4_K_scale_min(const uint8_t *q, uint8_t sc[8], uint8_t m[8]) {
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            sc[j] = q[j] & 63;
            m[j] = q[j + 4] & 63;
        } else {
            sc[j] = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
            m[j] = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
        }
    }
}

// W (nr, n) q4_K, rows ldw bytes apart -> dst (nr / 8 groups of n / 256 blk_q4_Kx8)
void tl_avx2_pack_q4_Kx8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    const int64_t nb = n / TL_QK_K;
    blk_q4_Kx8 *out = dst;
    for (int64_t g0 = 0; g0 < nr; g0 += 8) {
        for (int64_t b = 0; b < nb; b++, out++) {
            for (int i = 0; i < 8; i++) {
                const tl_block_q4_K *src = (const tl_block_q4_K *)((const uint8_t *)w + (size_t)(g0 + i) * ldw) + b;
                uint8_t sc[8], m[8];
                q4_K_scale_min(src->scales, sc, m);
                out->d[i] = src->d;
                out->dmin[i] = src->dmin;
                for (int s = 0; s < 8; s++) out->sc[s][2 * i] = out->sc[s][2 * i + 1] = sc[s];
                for (int p = 0; p < 4; p++) {
                    out->mn[p][2 * i] = m[2 * p];
                    out->mn[p][2 * i + 1] = m[2 * p + 1];
                }
                for (int c = 0; c < 4; c++)
                    for (int g = 0; g < 8; g++)
                        memcpy(out->qs + 256 * c + 32 * g + 4 * i, src->qs + 32 * c + 4 * g, 4);
            }
        }
    }
}

enum { KSEG_K = 64, CT_K = 3 }; /* super-blocks per activation segment; tokens per tile */

/* per token c < nc and super-block b: the sub-block sum pairs of the
 * activation as int16 pairs (ysum_2p, ysum_2p+1), and d */
static void act_sums_K(const uint8_t *x, size_t ldx, int nc, int64_t b0, int64_t nb, int32_t *ys,
                       float *dy) {
    for (int c = 0; c < nc; c++) {
        const tl_block_q8_K *xb = (const tl_block_q8_K *)(x + (size_t)c * ldx) + b0;
        for (int64_t b = 0; b < nb; b++) {
            for (int p = 0; p < 4; p++) {
                const int lo = xb[b].bsums[4 * p] + xb[b].bsums[4 * p + 1];
                const int hi = xb[b].bsums[4 * p + 2] + xb[b].bsums[4 * p + 3];
                ys[(c * KSEG_K + b) * 4 + p] = (int32_t)(((uint32_t)hi << 16) | ((uint32_t)lo & 0xFFFF));
            }
            dy[c * KSEG_K + b] = xb[b].d;
        }
    }
}

/* One group of 8 packed rows x C tokens over super-blocks [b0, b0 + nb):
 *   y[c * ldy + i] (+)= sum_b row i . token c   (first: start from 0) */
#define Q4KX8_TILE(NAME, C)                                                                   \
    static void NAME(int64_t b0, int64_t nb, bool first, float *y, size_t ldy,               \
                     const blk_q4_Kx8 *w, const uint8_t *x, size_t ldx, const int32_t *ys,   \
                     const float *dy) {                                                      \
        __m256 acc[C];                                                                       \
        for (int c = 0; c < C; c++)                                                          \
            acc[c] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(y + (size_t)c * ldy);     \
        const __m256i m4 = _mm256_set1_epi8(0x0F);                                           \
        for (int64_t b = 0; b < nb; b++) {                                                   \
            const blk_q4_Kx8 *wb = w + b0 + b;                                               \
            const tl_block_q8_K *xb[C];                                                      \
            __m256i isum[C];                                                                 \
            for (int c = 0; c < C; c++) {                                                    \
                xb[c] = (const tl_block_q8_K *)(x + (size_t)c * ldx) + b0 + b;               \
                isum[c] = _mm256_setzero_si256();                                            \
            }                                                                                \
            for (int sb = 0; sb < 8; sb++) {                                                 \
                /* sub-block sb: chunk row c = sb / 2, low or high nibbles */                \
                const uint8_t *qc = wb->qs + 256 * (sb / 2);                                 \
                const int sh = 4 * (sb & 1);                                                 \
                __m256i q[8];                                                                \
                _Pragma("GCC unroll 8") for (int g = 0; g < 8; g++) q[g] = _mm256_and_si256( \
                    _mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)(qc + 32 * g)), sh), m4); \
                const __m256i scv = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)wb->sc[sb])); \
                _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) {                        \
                    const int8_t *xq = xb[c]->qs + 32 * sb;                                  \
                    __m256i s = _mm256_maddubs_epi16(q[0], bcast4(xq));                      \
                    _Pragma("GCC unroll 8") for (int g = 1; g < 8; g++)                      \
                        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(q[g], bcast4(xq + 4 * g))); \
                    isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(s, scv));          \
                }                                                                            \
            }                                                                                \
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)wb->d));     \
            const __m256 dmw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)wb->dmin)); \
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) {                            \
                const int32_t *yp = ys + ((size_t)c * KSEG_K + b) * 4;                       \
                __m256i ms = _mm256_madd_epi16(                                              \
                    _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)wb->mn[0])),       \
                    _mm256_set1_epi32(yp[0]));                                               \
                _Pragma("GCC unroll 3") for (int p = 1; p < 4; p++) ms = _mm256_add_epi32(   \
                    ms, _mm256_madd_epi16(                                                   \
                            _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)wb->mn[p])), \
                            _mm256_set1_epi32(yp[p])));                                      \
                const __m256 dyc = _mm256_set1_ps(dy[c * KSEG_K + b]);                       \
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_mul_ps(dw, dyc), acc[c]); \
                acc[c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(ms), _mm256_mul_ps(dmw, dyc), acc[c]); \
            }                                                                                \
        }                                                                                    \
        for (int c = 0; c < C; c++) _mm256_storeu_ps(y + (size_t)c * ldy, acc[c]);           \
    }

Q4KX8_TILE(tile_q4_Kx8_8xC, CT_K)
Q4KX8_TILE(tile_q4_Kx8_8x1, 1)

// W (nr, n) q4_K packed by 8 @ X^T (nc, n) q8_K -> y[c * ldy + r]   (n % 256 == 0, nr % 8 == 0)
void tl_avx2_gemm_q4_Kx8(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *vx, size_t ldx) {
    const int64_t nb = n / TL_QK_K;
    const uint8_t *x = vx;
    int32_t ys[CT_K * KSEG_K * 4];
    float dy[CT_K * KSEG_K];
    for (int64_t c0 = 0; c0 < nc; c0 += CT_K) {
        const int cc = nc - c0 < CT_K ? (int)(nc - c0) : CT_K;
        const uint8_t *xc = x + (size_t)c0 * ldx;
        float *yc = y + (size_t)c0 * ldy;
        for (int64_t b0 = 0; b0 < nb; b0 += KSEG_K) {
            const int64_t sb = nb - b0 < KSEG_K ? nb - b0 : KSEG_K;
            act_sums_K(xc, ldx, cc, b0, sb, ys, dy);
            for (int64_t r0 = 0; r0 < nr; r0 += 8) {
                const blk_q4_Kx8 *wg = (const blk_q4_Kx8 *)((const uint8_t *)w + (size_t)r0 * ldw);
                if (cc == CT_K) {
                    tile_q4_Kx8_8xC(b0, sb, b0 == 0, yc + r0, ldy, wg, xc, ldx, ys, dy);
                } else {
                    for (int c = 0; c < cc; c++)
                        tile_q4_Kx8_8x1(b0, sb, b0 == 0, yc + (size_t)c * ldy + r0, ldy, wg,
                                        xc + (size_t)c * ldx, ldx, ys + c * KSEG_K * 4,
                                        dy + c * KSEG_K);
                }
            }
        }
    }
}

/* ---- Q8_0, 8 rows to a group ------------------------------------------------ *
 * Per group and block (272 bytes, the 8 original blocks): d[8], then 8
 * chunks of 32 bytes; chunk g holds, for row i, qs[4g .. 4g+3] at bytes
 * 4i .. 4i+3. Both operands are signed, so each chunk's products go through
 * the sign trick, maddubs(|w|, sign(y, w)), exact for every byte pair but
 * w = y = -128 (q8_0 activations stay within +-127), and are widened to
 * int32 at once (two pairs of 127 * 128 would not fit int16). */

typedef struct {
    uint16_t d[8];
    int8_t qs[256];
} blk_q8_0x8;
static_assert(sizeof(blk_q8_0x8) == 8 * sizeof(tl_block_q8_0), "q8_0x8 is 8 q8_0 blocks");

// packed bytes per row of n elements: the q8_0 row size
size_t tl_avx2_row_size_q8_0x8(int64_t n) { return (size_t)(n / TL_QK8_0) * sizeof(tl_block_q8_0); }

// W (nr, n) q8_0, rows ldw bytes apart -> dst (nr / 8 groups of n / 32 blk_q8_0x8)
void tl_avx2_pack_q8_0x8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    const int64_t nb = n / TL_QK8_0;
    blk_q8_0x8 *out = dst;
    for (int64_t g0 = 0; g0 < nr; g0 += 8) {
        for (int64_t b = 0; b < nb; b++, out++) {
            for (int i = 0; i < 8; i++) {
                const tl_block_q8_0 *src = (const tl_block_q8_0 *)((const uint8_t *)w + (size_t)(g0 + i) * ldw) + b;
                out->d[i] = src->d;
                for (int g = 0; g < 8; g++) memcpy(out->qs + 32 * g + 4 * i, src->qs + 4 * g, 4);
            }
        }
    }
}

enum { CT8 = 4 }; /* tokens per tile */

/* One group of 8 packed rows x C tokens over all nb blocks:
 *   y[c * ldy + i] = row i . token c */
#define Q80X8_TILE(NAME, C)                                                                   \
    static void NAME(int64_t nb, float *y, size_t ldy, const blk_q8_0x8 *w, const uint8_t *x, \
                     size_t ldx) {                                                           \
        __m256 acc[C];                                                                       \
        for (int c = 0; c < C; c++) acc[c] = _mm256_setzero_ps();                            \
        const __m256i ones = _mm256_set1_epi16(1);                                           \
        for (int64_t b = 0; b < nb; b++) {                                                   \
            const blk_q8_0x8 *wb = w + b;                                                    \
            __m256i isum[C];                                                                 \
            for (int c = 0; c < C; c++) isum[c] = _mm256_setzero_si256();                    \
            _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {                            \
                __m256i q[4], a[4];                                                          \
                _Pragma("GCC unroll 4") for (int g = 0; g < 4; g++) {                        \
                    q[g] = _mm256_loadu_si256((const __m256i *)(wb->qs + 32 * (4 * h + g))); \
                    a[g] = _mm256_abs_epi8(q[g]);                                            \
                }                                                                            \
                _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) {                        \
                    const int8_t *xq = ((const tl_block_q8_0 *)(x + (size_t)c * ldx) + b)->qs + 16 * h; \
                    _Pragma("GCC unroll 4") for (int g = 0; g < 4; g++) {                    \
                        const __m256i p = _mm256_maddubs_epi16(                              \
                            a[g], _mm256_sign_epi8(bcast4(xq + 4 * g), q[g]));               \
                        isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(p, ones));     \
                    }                                                                        \
                }                                                                            \
            }                                                                                \
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)wb->d));     \
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) {                            \
                const float dy = tl_avx2_h2f(((const tl_block_q8_0 *)(x + (size_t)c * ldx) + b)->d); \
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]),                        \
                                         _mm256_mul_ps(dw, _mm256_set1_ps(dy)), acc[c]);     \
            }                                                                                \
        }                                                                                    \
        for (int c = 0; c < C; c++) _mm256_storeu_ps(y + (size_t)c * ldy, acc[c]);           \
    }

Q80X8_TILE(tile_q8_0x8_8xC, CT8)
Q80X8_TILE(tile_q8_0x8_8x1, 1)

// W (nr, n) q8_0 packed by 8 @ X^T (nc, n) q8_0 -> y[c * ldy + r]   (n % 32 == 0, nr % 8 == 0)
void tl_avx2_gemm_q8_0x8(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *vx, size_t ldx) {
    const int64_t nb = n / TL_QK8_0;
    const uint8_t *x = vx;
    for (int64_t c0 = 0; c0 < nc; c0 += CT8) {
        const int cc = nc - c0 < CT8 ? (int)(nc - c0) : CT8;
        for (int64_t r0 = 0; r0 < nr; r0 += 8) {
            const blk_q8_0x8 *wg = (const blk_q8_0x8 *)((const uint8_t *)w + (size_t)r0 * ldw);
            if (cc == CT8) {
                tile_q8_0x8_8xC(nb, y + (size_t)c0 * ldy + r0, ldy, wg, x + (size_t)c0 * ldx, ldx);
            } else {
                for (int c = 0; c < cc; c++)
                    tile_q8_0x8_8x1(nb, y + (size_t)(c0 + c) * ldy + r0, ldy, wg,
                                    x + (size_t)(c0 + c) * ldx, ldx);
            }
        }
    }
}

/* ---- Q6_K, 8 rows to a group ------------------------------------------------ *
 * Per group and super-block (2192 bytes; the 8 original blocks are 1680):
 * the rows' d; the 16 int8 scales as pairs (sc_2p, sc_2p+1) per row, which
 * are both the madd operand of the offset term and, duplicated by a
 * shuffle, the per-sub-block scales; and the 6-bit quants u = q + 32
 * unpacked to bytes (the +30% of memory buys a tile that does no bit
 * unpacking), in 64 chunks of 32 bytes: chunk (j, t) of sub-block j
 * (16 elements) holds, for row i, u of elements 16j + 4t .. +3.
 *
 * Arithmetic, per row lane: sum_j sc_j (u_j . y_j) - 32 sum_j sc_j ysum_j,
 * ysum_j being q8_K's bsums; u . y pairs of chunks summed in int16
 * (<= 4 * 63 * 128 < 2^15), everything else in int32, then
 * acc += isum * (d * dy) per super-block. */

typedef struct {
    uint16_t d[8];
    int8_t scp[8][16];
    uint8_t u[2048];
} blk_q6_Kx8;
static_assert(sizeof(blk_q6_Kx8) == 2192, "q6_Kx8 layout");

// packed bytes per row of n elements (n % 256 == 0)
size_t tl_avx2_row_size_q6_Kx8(int64_t n) { return (size_t)(n / TL_QK_K) * sizeof(blk_q6_Kx8) / 8; }

// W (nr, n) q6_K, rows ldw bytes apart -> dst (nr / 8 groups of n / 256 blk_q6_Kx8)
void tl_avx2_pack_q6_Kx8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    const int64_t nb = n / TL_QK_K;
    blk_q6_Kx8 *out = dst;
    for (int64_t g0 = 0; g0 < nr; g0 += 8) {
        for (int64_t b = 0; b < nb; b++, out++) {
            for (int i = 0; i < 8; i++) {
                const tl_block_q6_K *src = (const tl_block_q6_K *)((const uint8_t *)w + (size_t)(g0 + i) * ldw) + b;
                out->d[i] = src->d;
                for (int p = 0; p < 8; p++) {
                    out->scp[p][2 * i] = src->scales[2 * p];
                    out->scp[p][2 * i + 1] = src->scales[2 * p + 1];
                }
                /* element 128h + 32k + l: low 4 bits from ql[64h + l + 32 (k & 1)]
                 * (high nibble when k >= 2), top 2 from qh[32h + l] >> 2k */
                for (int e = 0; e < TL_QK_K; e++) {
                    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
                    const uint8_t lo = src->ql[64 * h + l + 32 * (k & 1)] >> (4 * (k >> 1)) & 0xF;
                    const uint8_t hi = src->qh[32 * h + l] >> (2 * k) & 3;
                    const int j = e / 16, t = (e % 16) / 4;
                    out->u[128 * j + 32 * t + 4 * i + e % 4] = (uint8_t)(lo | hi << 4);
                }
            }
        }
    }
}

enum { CT6 = 4 }; /* tokens per tile */

/* One group of 8 packed rows x C tokens over all nb super-blocks:
 *   y[c * ldy + i] = row i . token c */
#define Q6KX8_TILE(NAME, C)                                                                   \
    static void NAME(int64_t nb, float *y, size_t ldy, const blk_q6_Kx8 *w, const uint8_t *x, \
                     size_t ldx) {                                                           \
        __m256 acc[C];                                                                       \
        for (int c = 0; c < C; c++) acc[c] = _mm256_setzero_ps();                            \
        const __m128i dup_lo = _mm_setr_epi8(0, 0, 2, 2, 4, 4, 6, 6, 8, 8, 10, 10, 12, 12, 14, 14); \
        const __m128i dup_hi = _mm_setr_epi8(1, 1, 3, 3, 5, 5, 7, 7, 9, 9, 11, 11, 13, 13, 15, 15); \
        for (int64_t b = 0; b < nb; b++) {                                                   \
            const blk_q6_Kx8 *wb = w + b;                                                    \
            const tl_block_q8_K *xb[C];                                                      \
            __m256i isum[C];                                                                 \
            for (int c = 0; c < C; c++) {                                                    \
                xb[c] = (const tl_block_q8_K *)(x + (size_t)c * ldx) + b;                    \
                isum[c] = _mm256_setzero_si256();                                            \
            }                                                                                \
            for (int j = 0; j < 16; j++) {                                                   \
                const __m128i sp = _mm_loadu_si128((const __m128i *)wb->scp[j / 2]);         \
                const __m256i sc = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sp, (j & 1) ? dup_hi : dup_lo)); \
                __m256i q[4];                                                                \
                _Pragma("GCC unroll 4") for (int t = 0; t < 4; t++)                          \
                    q[t] = _mm256_loadu_si256((const __m256i *)(wb->u + 128 * j + 32 * t));  \
                _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) {                        \
                    const int8_t *xq = xb[c]->qs + 16 * j;                                   \
                    const __m256i s0 = _mm256_add_epi16(_mm256_maddubs_epi16(q[0], bcast4(xq)), \
                                                        _mm256_maddubs_epi16(q[1], bcast4(xq + 4))); \
                    const __m256i s1 = _mm256_add_epi16(_mm256_maddubs_epi16(q[2], bcast4(xq + 8)), \
                                                        _mm256_maddubs_epi16(q[3], bcast4(xq + 12))); \
                    isum[c] = _mm256_add_epi32(isum[c], _mm256_add_epi32(_mm256_madd_epi16(s0, sc), \
                                                                         _mm256_madd_epi16(s1, sc))); \
                }                                                                            \
            }                                                                                \
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)wb->d));     \
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) {                            \
                __m256i ms = _mm256_setzero_si256();                                         \
                _Pragma("GCC unroll 8") for (int p = 0; p < 8; p++) ms = _mm256_add_epi32(   \
                    ms, _mm256_madd_epi16(                                                   \
                            _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)wb->scp[p])), \
                            bcast4((const int8_t *)&xb[c]->bsums[2 * p])));                  \
                const __m256i is = _mm256_sub_epi32(isum[c], _mm256_slli_epi32(ms, 5));      \
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is),                             \
                                         _mm256_mul_ps(dw, _mm256_set1_ps(xb[c]->d)), acc[c]); \
            }                                                                                \
        }                                                                                    \
        for (int c = 0; c < C; c++) _mm256_storeu_ps(y + (size_t)c * ldy, acc[c]);           \
    }

Q6KX8_TILE(tile_q6_Kx8_8xC, CT6)
Q6KX8_TILE(tile_q6_Kx8_8x1, 1)

// W (nr, n) q6_K packed by 8 @ X^T (nc, n) q8_K -> y[c * ldy + r]   (n % 256 == 0, nr % 8 == 0)
void tl_avx2_gemm_q6_Kx8(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *vx, size_t ldx) {
    const int64_t nb = n / TL_QK_K;
    const uint8_t *x = vx;
    for (int64_t c0 = 0; c0 < nc; c0 += CT6) {
        const int cc = nc - c0 < CT6 ? (int)(nc - c0) : CT6;
        for (int64_t r0 = 0; r0 < nr; r0 += 8) {
            const blk_q6_Kx8 *wg = (const blk_q6_Kx8 *)((const uint8_t *)w + (size_t)r0 * ldw);
            if (cc == CT6) {
                tile_q6_Kx8_8xC(nb, y + (size_t)c0 * ldy + r0, ldy, wg, x + (size_t)c0 * ldx, ldx);
            } else {
                for (int c = 0; c < cc; c++)
                    tile_q6_Kx8_8x1(nb, y + (size_t)(c0 + c) * ldy + r0, ldy, wg,
                                    x + (size_t)(c0 + c) * ldx, ldx);
            }
        }
    }
}
