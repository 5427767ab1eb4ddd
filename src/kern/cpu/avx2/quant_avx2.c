/* quant_avx2.c — AVX2 dot products and tiles for the 32-element block types
 * (Q4_0, Q4_1, Q5_0, Q5_1 against Q8_0/Q8_1 activations, Q8_0 against Q8_0).
 *
 * Weight quants are decoded to unsigned bytes u (0..15 or 0..31) and
 * multiplied with the signed activation bytes by maddubs; the weight offset
 * o (8 or 16) is taken out exactly as o * sum(y), itself a maddubs of the
 * activations, computed once per activation block and shared by every row
 * of a tile. Unlike the usual sign trick this is exact for every activation
 * byte including -128, which the tests feed. Q8_0 weights are signed on both
 * sides, so they are widened to int16 and multiplied with madd.
 *
 * Every block's integer sum is exact; it is then scaled by d_w * d_x in
 * float and accumulated in 8 lanes, summed at the end, so results differ
 * from the reference only by float rounding order.
 *
 * Tiles: R weight rows x C tokens share each decoded weight block (C uses)
 * and each activation block (R uses). gemm_T walks the (nr x nc) tile with
 * full R x C tiles, then R x 1, then 1 x 1 for the edges. */
#include <string.h>

#include "core/quant.h"
#include "kern/cpu/avx2/avx2.h"
#include "kern/cpu/tiles.h"

/* 32 nibbles -> 32 bytes: qs[j] low nibble is element j, high is j + 16 */
TL_AVX2_INLINE __m256i nib32(const uint8_t *qs) {
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    const __m256i v = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

/* 32 bits (little-endian) -> 32 bytes, 0xFF where the bit is set */
TL_AVX2_INLINE __m256i bits32(const uint8_t *qh) {
    uint32_t x;
    memcpy(&x, qh, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0);
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf);
    const __m256i bm = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bm), bm);
}

/* ---- per-type decoding: weight block -> unsigned quants u ---------------- */

TL_AVX2_INLINE __m256i dec_q4_0(const tl_block_q4_0 *b) { return nib32(b->qs); }
TL_AVX2_INLINE __m256i dec_q4_1(const tl_block_q4_1 *b) { return nib32(b->qs); }
TL_AVX2_INLINE __m256i dec_q5_0(const tl_block_q5_0 *b) {
    return _mm256_or_si256(nib32(b->qs), _mm256_and_si256(bits32(b->qh), _mm256_set1_epi8(0x10)));
}
TL_AVX2_INLINE __m256i dec_q5_1(const tl_block_q5_1 *b) {
    return _mm256_or_si256(nib32(b->qs), _mm256_and_si256(bits32(b->qh), _mm256_set1_epi8(0x10)));
}

/* Tile over unsigned-quant types.
 *   W (R rows of nb blocks) @ X^T (C rows) -> y[c * ldy + r]
 * OFF: weight offset (u - OFF is the signed quant; 0 for none).
 * MIN: the type has a min m, entering as m * s_x (q8_1's s). */
#define Q32_TILE(NAME, WT, XT, R, C, OFF, MIN, DEC)                                           \
    static void NAME(int64_t nb, float *y, size_t ldy, const uint8_t *w, size_t ldw,          \
                     const uint8_t *x, size_t ldx) {                                         \
        __m256 acc[R][C];                                                                    \
        float accm[R][C];                                                                    \
        for (int r = 0; r < R; r++)                                                          \
            for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps(), accm[r][c] = 0;     \
        const __m256i ones = _mm256_set1_epi16(1);                                            \
        for (int64_t b = 0; b < nb; b++) {                                                   \
            __m256i yv[C], oy[C];                                                            \
            float dy[C], sy[C];                                                              \
            _Pragma("GCC unroll 8") for (int c = 0; c < C; c++) {                            \
                const XT *xb = (const XT *)(x + (size_t)c * ldx) + b;                        \
                yv[c] = _mm256_loadu_si256((const __m256i *)xb->qs);                         \
                dy[c] = tl_avx2_h2f(xb->d);                                                  \
                oy[c] = OFF ? _mm256_maddubs_epi16(_mm256_set1_epi8(OFF), yv[c])             \
                            : _mm256_setzero_si256();                                        \
                sy[c] = MIN ? tl_avx2_h2f(((const uint16_t *)xb)[1]) : 0.0f;                 \
            }                                                                                \
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                            \
                const WT *wb = (const WT *)(w + (size_t)r * ldw) + b;                        \
                const __m256i u = DEC(wb);                                                   \
                const float dw = tl_avx2_h2f(wb->d);                                         \
                _Pragma("GCC unroll 8") for (int c = 0; c < C; c++) {                        \
                    __m256i p = _mm256_maddubs_epi16(u, yv[c]);                              \
                    if (OFF) p = _mm256_sub_epi16(p, oy[c]);                                 \
                    const __m256 s = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));         \
                    acc[r][c] = _mm256_fmadd_ps(s, _mm256_set1_ps(dw * dy[c]), acc[r][c]);   \
                    if (MIN) accm[r][c] += tl_avx2_h2f(((const uint16_t *)wb)[1]) * sy[c];   \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
        for (int r = 0; r < R; r++)                                                          \
            for (int c = 0; c < C; c++)                                                      \
                y[(size_t)c * ldy + r] = tl_avx2_hsum(acc[r][c]) + accm[r][c];               \
    }

/* Q8_0 x Q8_0: both signed, widened to int16 (exact for -128 too). */
#define Q8_TILE(NAME, R, C)                                                                   \
    static void NAME(int64_t nb, float *y, size_t ldy, const uint8_t *w, size_t ldw,          \
                     const uint8_t *x, size_t ldx) {                                         \
        __m256 acc[R][C];                                                                    \
        for (int r = 0; r < R; r++)                                                          \
            for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps();                     \
        for (int64_t b = 0; b < nb; b++) {                                                   \
            __m256i ya[C], yb[C];                                                            \
            float dy[C];                                                                     \
            _Pragma("GCC unroll 8") for (int c = 0; c < C; c++) {                            \
                const tl_block_q8_0 *xb = (const tl_block_q8_0 *)(x + (size_t)c * ldx) + b;  \
                ya[c] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)xb->qs));      \
                yb[c] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)xb->qs + 1));  \
                dy[c] = tl_avx2_h2f(xb->d);                                                  \
            }                                                                                \
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                            \
                const tl_block_q8_0 *wb = (const tl_block_q8_0 *)(w + (size_t)r * ldw) + b;  \
                const __m256i wa = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)wb->qs)); \
                const __m256i wc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)wb->qs + 1)); \
                const float dw = tl_avx2_h2f(wb->d);                                         \
                _Pragma("GCC unroll 8") for (int c = 0; c < C; c++) {                        \
                    const __m256i p = _mm256_add_epi32(_mm256_madd_epi16(wa, ya[c]),         \
                                                       _mm256_madd_epi16(wc, yb[c]));        \
                    acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p),                       \
                                                _mm256_set1_ps(dw * dy[c]), acc[r][c]);      \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
        for (int r = 0; r < R; r++)                                                          \
            for (int c = 0; c < C; c++) y[(size_t)c * ldy + r] = tl_avx2_hsum(acc[r][c]);    \
    }

/* Tile shapes (measured with bench/kbench.c on Zen 3): 2 rows x 6 tokens
 * for the nibble types, 3 x 4 for Q8_0 (its widened activations take two
 * registers each); single-token (decode) tiles share one activation block
 * across 4 rows. */
#define Q32_DEFINE(T, WT, XT, OFF, MIN, DEC)                                                  \
    Q32_TILE(tile_##T##_2x6, WT, XT, 2, 6, OFF, MIN, DEC)                                     \
    Q32_TILE(tile_##T##_4x1, WT, XT, 4, 1, OFF, MIN, DEC)                                     \
    Q32_TILE(tile_##T##_1x1, WT, XT, 1, 1, OFF, MIN, DEC)                                     \
    void tl_avx2_vec_dot_##T(int64_t n, float *s, const void *w, const void *x) {             \
        tile_##T##_1x1(n / 32, s, 0, w, 0, x, 0);                                             \
    }                                                                                        \
    void tl_avx2_gemm_##T(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy,            \
                          const void *w, size_t ldw, const void *x, size_t ldx) {             \
        tl_tile_walk(n / 32, nr, nc, y, ldy, w, ldw, x, ldx, 2, 6, tile_##T##_2x6, 4,        \
                     tile_##T##_4x1, tile_##T##_1x1);                                                                \
    }

// w (n,) q4_0 . x (n,) q8_0 -> *s ; W (nr, n) @ X^T (nc, n) -> y   (n % 32 == 0)
Q32_DEFINE(q4_0, tl_block_q4_0, tl_block_q8_0, 8, 0, dec_q4_0)
// w (n,) q4_1 . x (n,) q8_1 -> *s ; W (nr, n) @ X^T (nc, n) -> y   (n % 32 == 0)
Q32_DEFINE(q4_1, tl_block_q4_1, tl_block_q8_1, 0, 1, dec_q4_1)
// w (n,) q5_0 . x (n,) q8_0 -> *s ; W (nr, n) @ X^T (nc, n) -> y   (n % 32 == 0)
Q32_DEFINE(q5_0, tl_block_q5_0, tl_block_q8_0, 16, 0, dec_q5_0)
// w (n,) q5_1 . x (n,) q8_1 -> *s ; W (nr, n) @ X^T (nc, n) -> y   (n % 32 == 0)
Q32_DEFINE(q5_1, tl_block_q5_1, tl_block_q8_1, 0, 1, dec_q5_1)

Q8_TILE(tile_q8_0_3x4, 3, 4)
Q8_TILE(tile_q8_0_4x1, 4, 1)
Q8_TILE(tile_q8_0_1x1, 1, 1)

// w (n,) q8_0 . x (n,) q8_0 -> *s    (n % 32 == 0)
void tl_avx2_vec_dot_q8_0(int64_t n, float *s, const void *w, const void *x) {
    tile_q8_0_1x1(n / 32, s, 0, w, 0, x, 0);
}

// W (nr, n) q8_0 @ X^T (nc, n) q8_0 -> y[c * ldy + r]    (n % 32 == 0)
void tl_avx2_gemm_q8_0(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                       size_t ldw, const void *x, size_t ldx) {
    tl_tile_walk(n / 32, nr, nc, y, ldy, w, ldw, x, ldx, 3, 4, tile_q8_0_3x4, 4, tile_q8_0_4x1,
                 tile_q8_0_1x1);
}
