/* bf16_avx2.c — the AVX2 row-major BF16 gemm: BF16 weights x BF16
 * activations (the vec_dot_type of BF16, as in llama.cpp), for matrices
 * that are not repacked (TL_REPACK=0, or rows not a multiple of 8); the
 * repacked ones run repack_half_avx2.c's bf16x8 tiles, ~25% faster.
 *
 * bf16 is the top half of an f32, so no F16C is needed: of a 32-bit lane
 * holding two adjacent bf16, a left shift by 16 is the even element as
 * f32, clearing the low half the odd one. One 256-bit load gives both
 * halves; weights and activations split alike, so each accumulator lane
 * sums the products of its own element pairs. Every bf16 x bf16 product is
 * exact in f32: against the reference (the products summed in double) only
 * the f32 sums round.
 *
 * Tile shape, measured with kbench on Zen 3: a 4x3 tile (the F16 one)
 * needs 17 registers here (the mask of the odd half is the 17th) and gcc
 * spills it to 20 GMAC/s; 2x4, 4x2 and 3x3 all reach about 30. 2x4 keeps
 * the two weight rows in registers and streams four tokens past them, so
 * the weights (the larger, L2-resident operand) are read once per four
 * tokens. Two rejected conversions: vpmovzxwd + shift, 8 elements (twice
 * the shift-port uops: 24 GMAC/s), and a load at +1 element to get the
 * even half by the same and (loads split across cache lines: slower). */
#include "core/fp16.h"
#include "kern/cpu/avx2/avx2.h"
#include "kern/cpu/tiles.h"

// 16 bf16 at p -> f32: the even elements (h = 0) or the odd ones (h = 1)
TL_AVX2_INLINE __m256 ld_bf16_half(const uint16_t *p, int h) {
    const __m256i v = _mm256_loadu_si256((const __m256i *)p);
    return _mm256_castsi256_ps(h ? _mm256_and_si256(v, _mm256_set1_epi32((int)0xFFFF0000u))
                                 : _mm256_slli_epi32(v, 16));
}

// 8 bf16 at p -> f32, in order (the n % 16 >= 8 step)
TL_AVX2_INLINE __m256 ld_bf16_8(const uint16_t *p) {
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

/* BF16 tile: W (R rows, n) @ X^T (C tokens, n) -> y[c * ldy + r], R <= 4,
 * C <= 4. The R weight vectors of a half are held while the C tokens'
 * vectors stream past. S = 2 gives the odd half its own accumulators: a
 * one-token tile has too few chains to cover the FMA latency. Then one
 * 8-wide step for n % 16 >= 8, and scalars for n % 8. */
TL_AVX2_INLINE void bf16_tile(int64_t n, float *y, size_t ldy, const uint8_t *w, size_t ldw,
                              const uint8_t *x, size_t ldx, const int R, const int C,
                              const int S) {
    __m256 acc[2][4][4];
    for (int s = 0; s < S; s++)
        for (int r = 0; r < R; r++)
            for (int c = 0; c < C; c++) acc[s][r][c] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256 wv[4];
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) wv[r] = ld_bf16_half((const uint16_t *)(w + (size_t)r * ldw) + i, h);
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) {
                const __m256 xv = ld_bf16_half((const uint16_t *)(x + (size_t)c * ldx) + i, h);
#pragma GCC unroll 4
                for (int r = 0; r < R; r++)
                    acc[h * (S - 1)][r][c] = _mm256_fmadd_ps(wv[r], xv, acc[h * (S - 1)][r][c]);
            }
        }
    }
    if (i + 8 <= n) {
        __m256 wv[4];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) wv[r] = ld_bf16_8((const uint16_t *)(w + (size_t)r * ldw) + i);
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) {
            const __m256 xv = ld_bf16_8((const uint16_t *)(x + (size_t)c * ldx) + i);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) acc[0][r][c] = _mm256_fmadd_ps(wv[r], xv, acc[0][r][c]);
        }
        i += 8;
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            const __m256 a = S == 2 ? _mm256_add_ps(acc[0][r][c], acc[1][r][c]) : acc[0][r][c];
            float s = tl_avx2_hsum(a);
            const uint16_t *wr = (const uint16_t *)(w + (size_t)r * ldw);
            const uint16_t *xr = (const uint16_t *)(x + (size_t)c * ldx);
            for (int64_t j = i; j < n; j++) s += tl_bf16_to_f32(wr[j]) * tl_bf16_to_f32(xr[j]);
            y[(size_t)c * ldy + r] = s;
        }
}

// W (2, n) bf16 @ X^T (4, n) bf16 -> y[c * ldy + r]
static void bf16_tile_2x4(int64_t n, float *y, size_t ldy, const uint8_t *w, size_t ldw,
                          const uint8_t *x, size_t ldx) {
    bf16_tile(n, y, ldy, w, ldw, x, ldx, 2, 4, 1);
}

// W (4, n) bf16 @ X^T (1, n) bf16 -> y[r]
static void bf16_tile_4x1(int64_t n, float *y, size_t ldy, const uint8_t *w, size_t ldw,
                          const uint8_t *x, size_t ldx) {
    bf16_tile(n, y, ldy, w, ldw, x, ldx, 4, 1, 2);
}

// W (1, n) bf16 @ X^T (1, n) bf16 -> y[0]
static void bf16_tile_1x1(int64_t n, float *y, size_t ldy, const uint8_t *w, size_t ldw,
                          const uint8_t *x, size_t ldx) {
    bf16_tile(n, y, ldy, w, ldw, x, ldx, 1, 1, 2);
}

// W (nr, n) bf16 @ X^T (nc, n) bf16 -> y[c * ldy + r]
void tl_avx2_gemm_bf16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *vw,
                       size_t ldw, const void *vx, size_t ldx) {
    tl_tile_walk(n, nr, nc, y, ldy, vw, ldw, vx, ldx, 2, 4, bf16_tile_2x4, 4, bf16_tile_4x1,
                 bf16_tile_1x1);
}
