/* quant_avx512.c — AVX-512 VNNI dot products and row-major tiles for Q4_0
 * and Q8_0 weights against Q8_0 activations (the kern.h vec_dot and gemm
 * slots; the repacked tiles in repack_avx512.c are what the driver runs
 * when it can pack, these serve the rest: row counts that are not a
 * multiple of 16, TL_REPACK=0).
 *
 * A zmm holds two consecutive blocks (64 elements): block b in lanes 0-7,
 * block b+1 in lanes 8-15, element order inside each half. One vpdpbusd
 * takes all 64 products of a row and a token into 16 int32 lanes of 4
 * products each; the lanes are never reduced inside a block: the lane
 * partials are converted to float and scaled by a vector holding
 * d_w * d_x of block b in the low half and of block b+1 in the high half,
 * and summed over the whole row in 16 float lanes, reduced once at the end.
 * Each lane partial is an exact integer (|.| <= 4 * 255 * 128), so only
 * the float order differs from the reference.
 *
 * Offsets, exact for every byte (activation -128 included): q4_0's
 * u - 8 and q8_0's (q + 128) - 128 (weights made unsigned for vpdpbusd)
 * are taken out by seeding the accumulator with -off * (the activation's
 * 4-byte partial sums), itself one vpdpbusd per token and block pair,
 * shared by every row of a tile.
 *
 * Tiles: R rows x C tokens; every output is computed by the same sequence
 * of operations whatever the tile, so vec_dot (the 1 x 1 tile) and gemm
 * agree bit for bit. */
#include <string.h>

#include "core/quant.h"
#include "kern/cpu/avx512/avx512.h"
#include "kern/cpu/tiles.h"

/* blocks b (low half) and b+1 (high half, zero when !two) of a q8_0 row:
 * the 64 activation bytes, -off times their 4-byte partial sums, and d */
TL_AVX512_INLINE void load_y2(const tl_block_q8_0 *xb, bool two, __m512i off8, __m512i *y,
                              __m512i *seed, __m512 *dy) {
    const __m256i lo = _mm256_loadu_si256((const __m256i *)xb[0].qs);
    const __m256i hi = two ? _mm256_loadu_si256((const __m256i *)xb[1].qs) : _mm256_setzero_si256();
    *y = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    *seed = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), off8, *y));
    *dy = _mm512_insertf32x8(_mm512_set1_ps(_cvtsh_ss(xb[0].d)),
                             _mm256_set1_ps(two ? _cvtsh_ss(xb[1].d) : 0.0f), 1);
}

TL_AVX512_INLINE __m512 dpair(uint16_t d0, uint16_t d1, bool two) {
    return _mm512_insertf32x8(_mm512_set1_ps(_cvtsh_ss(d0)), _mm256_set1_ps(two ? _cvtsh_ss(d1) : 0.0f), 1);
}

/* q4_0 blocks b, b+1 -> 64 unsigned quants in element order */
TL_AVX512_INLINE __m512i dec2_q4_0(const tl_block_q4_0 *wb, bool two) {
    const __m128i q0 = _mm_loadu_si128((const __m128i *)wb[0].qs);
    const __m128i q1 = two ? _mm_loadu_si128((const __m128i *)wb[1].qs) : _mm_setzero_si128();
    const __m256i a = _mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1);
    /* [q0, q1, q0 >> 4, q1 >> 4] -> [q0, q0 >> 4, q1, q1 >> 4]: low nibbles
     * are elements 0-15 of a block, high nibbles 16-31 */
    const __m512i v = _mm512_and_si512(
        _mm512_inserti64x4(_mm512_castsi256_si512(a), _mm256_srli_epi16(a, 4), 1), _mm512_set1_epi8(0x0F));
    return _mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(3, 1, 2, 0));
}

/* q8_0 blocks b, b+1 -> 64 quants + 128 as unsigned bytes */
TL_AVX512_INLINE __m512i dec2_q8_0(const tl_block_q8_0 *wb, bool two) {
    const __m256i lo = _mm256_loadu_si256((const __m256i *)wb[0].qs);
    const __m256i hi = two ? _mm256_loadu_si256((const __m256i *)wb[1].qs) : _mm256_setzero_si256();
    return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1),
                            _mm512_set1_epi8((char)0x80));
}

/* W (R rows, nb blocks) @ X^T (C rows) -> y[c * ldy + r] */
#define TILE(NAME, WT, DEC, OFF, R, C)                                                        \
    static void NAME(int64_t nb, float *y, size_t ldy, const uint8_t *w, size_t ldw,          \
                     const uint8_t *x, size_t ldx) {                                         \
        __m512 acc[R][C];                                                                    \
        for (int r = 0; r < R; r++)                                                          \
            for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_ps();                     \
        const __m512i off8 = _mm512_set1_epi8((char)(OFF));                                  \
        for (int64_t b = 0; b < nb; b += 2) {                                                \
            const bool two = b + 1 < nb;                                                     \
            __m512i yv[C], seed[C];                                                          \
            __m512 dy[C];                                                                    \
            _Pragma("GCC unroll 8") for (int c = 0; c < C; c++)                              \
                load_y2((const tl_block_q8_0 *)(x + (size_t)c * ldx) + b, two, off8, &yv[c], \
                        &seed[c], &dy[c]);                                                   \
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                            \
                const WT *wb = (const WT *)(w + (size_t)r * ldw) + b;                        \
                const __m512i u = DEC(wb, two);                                              \
                const __m512 dw = dpair(wb[0].d, two ? wb[1].d : 0, two);                    \
                _Pragma("GCC unroll 8") for (int c = 0; c < C; c++) acc[r][c] =              \
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(seed[c], u, yv[c])), \
                                    _mm512_mul_ps(dw, dy[c]), acc[r][c]);                    \
            }                                                                                \
        }                                                                                    \
        for (int r = 0; r < R; r++)                                                          \
            for (int c = 0; c < C; c++) y[(size_t)c * ldy + r] = tl_avx512_hsum(acc[r][c]);  \
    }

/* 2 rows x 4 tokens: 8 accumulators + 3 x 4 per-token vectors + 2 x 2 per
 * row fit 32 zmm; 4 rows for a single token (decode without repacking). */
#define DEFINE(T, WT, DEC, OFF)                                                               \
    TILE(tile_##T##_2x4, WT, DEC, OFF, 2, 4)                                                  \
    TILE(tile_##T##_4x1, WT, DEC, OFF, 4, 1)                                                  \
    TILE(tile_##T##_1x1, WT, DEC, OFF, 1, 1)                                                  \
    void tl_avx512_vec_dot_##T(int64_t n, float *s, const void *w, const void *x) {           \
        tile_##T##_1x1(n / 32, s, 0, w, 0, x, 0);                                             \
    }                                                                                        \
    void tl_avx512_gemm_##T(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy,          \
                            const void *w, size_t ldw, const void *x, size_t ldx) {           \
        tl_tile_walk(n / 32, nr, nc, y, ldy, w, ldw, x, ldx, 2, 4, tile_##T##_2x4, 4,        \
                     tile_##T##_4x1, tile_##T##_1x1);                                                                \
    }

// w (n,) q4_0 . x (n,) q8_0 -> *s ; W (nr, n) @ X^T (nc, n) -> y[c * ldy + r]   (n % 32 == 0)
DEFINE(q4_0, tl_block_q4_0, dec2_q4_0, 8)
// w (n,) q8_0 . x (n,) q8_0 -> *s ; W (nr, n) @ X^T (nc, n) -> y[c * ldy + r]   (n % 32 == 0)
DEFINE(q8_0, tl_block_q8_0, dec2_q8_0, 0x80)
