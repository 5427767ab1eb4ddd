/* bf16_avx512.c — BF16 weights x BF16 activations with AVX512_BF16's
 * vdpbf16ps (_mm512_dpbf16_ps): each f32 lane adds the products of one
 * pair of adjacent bf16 elements, 32 elements per instruction.
 *
 * The one file built with -mavx512bf16 (CMakeLists.txt), so the compiler
 * may put BF16 instructions anywhere in it: nothing here runs before
 * kern_avx512.c has seen AVX512_BF16 in CPUID (the CPU check lives there,
 * not here, for that reason), and the other avx512 files stay without the
 * flag because Ice Lake and Tiger Lake have AVX-512 but no BF16.
 *
 * A bf16 x bf16 product (8-bit significands) is exact in f32, so against
 * the reference (the same products summed in double) only the summation
 * differs: the order, two f32 roundings per instruction and lane, and the
 * instruction's fixed DAZ/FTZ (denormal inputs count as 0, a denormal sum
 * is flushed to 0 — terms below 2^-126, which the reference keeps). The
 * last n % 32 elements go through a masked load: masked-off elements are
 * neither read nor counted (they load as +0 and add 0 * 0). */
#include "kern/cpu/avx512/avx512.h"
#include "kern/cpu/tiles.h"

// 32 bf16 at p
TL_AVX512_INLINE __m512bh ld_bf32(const uint16_t *p) { return (__m512bh)_mm512_loadu_si512(p); }
// the first m < 32 bf16 at p, the other elements 0
TL_AVX512_INLINE __m512bh ld_bf32_part(const uint16_t *p, int64_t m) {
    return (__m512bh)_mm512_maskz_loadu_epi16((__mmask32)((1u << m) - 1), p);
}

// w (n,) bf16 . x (n,) bf16 -> *s
void tl_avx512_vec_dot_bf16(int64_t n, float *s, const void *vw, const void *vx) {
    const uint16_t *w = vw, *x = vx;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 128 <= n; i += 128) {
        a0 = _mm512_dpbf16_ps(a0, ld_bf32(w + i), ld_bf32(x + i));
        a1 = _mm512_dpbf16_ps(a1, ld_bf32(w + i + 32), ld_bf32(x + i + 32));
        a2 = _mm512_dpbf16_ps(a2, ld_bf32(w + i + 64), ld_bf32(x + i + 64));
        a3 = _mm512_dpbf16_ps(a3, ld_bf32(w + i + 96), ld_bf32(x + i + 96));
    }
    for (; i + 32 <= n; i += 32) a0 = _mm512_dpbf16_ps(a0, ld_bf32(w + i), ld_bf32(x + i));
    if (i < n) a1 = _mm512_dpbf16_ps(a1, ld_bf32_part(w + i, n - i), ld_bf32_part(x + i, n - i));
    *s = tl_avx512_hsum(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

/* One step of the BF16 tile: elements [i, i + m) (m <= 32) of R rows and C
 * tokens into acc[r][c]. */
TL_AVX512_INLINE void bf16_step(__m512 acc[4][4], int64_t i, int64_t m, const uint8_t *w,
                                size_t ldw, const uint8_t *x, size_t ldx, const int R, const int C) {
    __m512bh xv[4];
#pragma GCC unroll 4
    for (int c = 0; c < C; c++) {
        const uint16_t *xr = (const uint16_t *)(x + (size_t)c * ldx) + i;
        xv[c] = m == 32 ? ld_bf32(xr) : ld_bf32_part(xr, m);
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        const uint16_t *wr = (const uint16_t *)(w + (size_t)r * ldw) + i;
        const __m512bh wv = m == 32 ? ld_bf32(wr) : ld_bf32_part(wr, m);
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], wv, xv[c]);
    }
}

/* BF16 tile: R rows x C tokens of 16-lane accumulators, as the F16 tile in
 * kern_avx512.c; each activation vector serves R rows, each weight vector
 * C tokens; the n % 32 tail is one masked step after the loop. */
TL_AVX512_INLINE void bf16_tile(int64_t n, float *y, size_t ldy, const uint8_t *w, size_t ldw,
                                const uint8_t *x, size_t ldx, const int R, const int C) {
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) bf16_step(acc, i, 32, w, ldw, x, ldx, R, C);
    if (i < n) bf16_step(acc, i, n - i, w, ldw, x, ldx, R, C);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) y[(size_t)c * ldy + r] = tl_avx512_hsum(acc[r][c]);
}

static void bf16_tile_4x4(int64_t n, float *y, size_t ldy, const uint8_t *w, size_t ldw,
                          const uint8_t *x, size_t ldx) {
    bf16_tile(n, y, ldy, w, ldw, x, ldx, 4, 4);
}
static void bf16_tile_4x1(int64_t n, float *y, size_t ldy, const uint8_t *w, size_t ldw,
                          const uint8_t *x, size_t ldx) {
    bf16_tile(n, y, ldy, w, ldw, x, ldx, 4, 1);
}
static void bf16_tile_1x1(int64_t n, float *y, size_t ldy, const uint8_t *w, size_t ldw,
                          const uint8_t *x, size_t ldx) {
    bf16_tile(n, y, ldy, w, ldw, x, ldx, 1, 1);
}

// W (nr, n) bf16 @ X^T (nc, n) bf16 -> y[c * ldy + r]
void tl_avx512_gemm_bf16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *vw,
                         size_t ldw, const void *vx, size_t ldx) {
    tl_tile_walk(n, nr, nc, y, ldy, vw, ldw, vx, ldx, 4, 4, bf16_tile_4x4, 4, bf16_tile_4x1,
                 bf16_tile_1x1);
}
