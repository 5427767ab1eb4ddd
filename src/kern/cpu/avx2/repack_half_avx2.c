/* repack_half_avx2.c — F16 and BF16 weights repacked 8 rows to a group
 * (the kern.h repack slot), and the AVX2 tiles over them: one set of
 * tiles, whose weight load is the type's.
 *
 * Why: the row-major gemms (kern_avx2.c, bf16_avx2.c) convert both
 * operands at every step and reduce each output across lanes at the end.
 * Here a ymm holds one row per lane, so
 *   - the activations come as f32 rows that carry f16 (bf16) values (the
 *     slot's act form, tl_avx2_act_f16r / tl_avx2_act_bf16r: the driver
 *     converts each token once per product, where converting them in every
 *     call, per 64-row chunk, took 10-15% of the tiles' time, kbench
 *     k=2048 and 5632), and enter each FMA through a vbroadcastss (a load
 *     uop, not an FP-pipe one);
 *   - a weight vector, 8 rows' element k, is converted once and serves
 *     every token of the tile;
 *   - lane i of an accumulator is row r0 + i's output: it is loaded and
 *     stored as 8 floats, nothing is reduced across lanes.
 * Each output sums its products in k order in one f32 lane: it differs
 * from the reference (double sums) by float rounding only (a bf16 x bf16
 * product is exact in f32, an f16 x f16 one too).
 *
 * Packed groups of 8 rows (the bytes of the 8 original rows, rearranged):
 *   f16x8:  for each element k = 0 .. n-1, the 8 rows' f16 values, 16
 *           bytes (vcvtph2ps makes them 8 floats); any n, a row 2n bytes.
 *   bf16x8: for each pair of elements (k, k+1), k even, the 8 rows' pairs
 *           as 32-bit words, 32 bytes: bf16 is the top half of an f32, so
 *           one load gives both elements, a shift left by 16 element k and
 *           clearing the low halves element k+1. An odd n gets a zero pad
 *           element: a row is 2 (n + n % 2) bytes.
 * Either way element k's bytes lie in the 32 bytes at 16 (k & ~1), and a
 * 64-byte line holds 4 elements of a group.
 *
 * Tiles: G groups (8 G rows) x C tokens of accumulators; of the 16 ymm,
 * G C accumulators, G weight vectors and a broadcast (BF16: and the mask
 * of its odd elements). Per element a tile issues G conversions (BF16:
 * a shift or an and, each with its load folded in), C broadcasts and
 * G C FMAs. AVX2 has no embedded broadcast: each vbroadcastss is a load
 * uop of its own, serving G FMAs. On Zen 3 (2 FMA pipes, 2 ymm loads a
 * cycle), F16: 1 group x 12 tokens is load bound (13 loads per 12 FMAs;
 * kbench n=64: 35 GMAC/s), 2 x 6 takes 8 loads and 2 conversions (44
 * GMAC/s, of a 50 GMAC/s FMA peak), 3 x 4 takes 3 conversions (41). So
 * prefill runs 2 groups x CT = 6 tokens, the last token tile narrower.
 * The FMA chains (one per accumulator, 4 cycles each) want G C >= 8: one
 * or two tokens (decode) take 4 groups, and prefetch the weights, which
 * they stream once from DRAM. Fewer groups finish a call's remainder. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "core/fp16.h"
#include "kern/cpu/avx2/avx2.h"
#include "kern/cpu/tiles.h"

enum {
    CT = TL_HALF_CT,   /* tokens per prefill tile (of 2 groups), 6 */
    GD = TL_HALF_GD,   /* groups per tile of 1 or 2 tokens, 4 */
    PF_AHEAD = 1024,   /* decode: weight bytes prefetched ahead of each group's stream (2048 was
                          slower end to end on Zen 3, 1024 and none alike) */
};
static_assert(sizeof(uint16_t) * 8 == 16, "f16x8 element: 8 rows' f16 values, one xmm");
/* The walk over tiles is tl_tile_half_gemm (tiles.h): K segments whose
 * token rows stay in L1 while every row group of the call reads them; few
 * tokens (decode) get long segments, so the weights stream through in long
 * runs. (The matmul driver pads activation rows that would be a multiple
 * of 4 KiB apart, which would put the cc broadcast streams in one L1 set.) */

/* The 8 rows' element e of a group as floats, p at an even element of the
 * group (element e at 16 e bytes from p in f16x8; in bf16x8 half e % 2 of
 * the pair at 16 (e & ~1)). bf: the bf16x8 layout.
 * The odd half's mask is read from memory by the and itself: held in a
 * register it would be the 17th of the 2 x 6 tile, and gcc spills
 * accumulators around it (kbench k=2048 as above: 31-33 GMAC/s against
 * 36-44; a 2 x 5 tile, with room for it, ran at 35, as F16's 2 x 5 did).
 * The asm keeps gcc from hoisting the load into a register. */
static const uint32_t bf16_odd_mask[8] __attribute__((aligned(32))) = {
    0xFFFF0000u, 0xFFFF0000u, 0xFFFF0000u, 0xFFFF0000u,
    0xFFFF0000u, 0xFFFF0000u, 0xFFFF0000u, 0xFFFF0000u,
};
TL_AVX2_INLINE __m256 ld_w(const uint8_t *p, int64_t e, const bool bf) {
    if (!bf) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16 * e)));
    __m256i v = _mm256_loadu_si256((const __m256i *)(p + 16 * (e & ~(int64_t)1)));
    if (!(e & 1)) return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    __asm__("vpand %[m], %[v], %[v]" : [v] "+x"(v) : [m] "m"(*(const __m256i *)bf16_odd_mask));
    return _mm256_castsi256_ps(v);
}

// packed bytes per row of n elements: the f16 row size
size_t tl_avx2_row_size_f16x8(int64_t n) { return (size_t)n * sizeof(uint16_t); }
// packed bytes per row of n elements: the bf16 row size, n rounded up to pairs
size_t tl_avx2_row_size_bf16x8(int64_t n) { return (size_t)(n + (n & 1)) * sizeof(uint16_t); }

/* W (nr, n) f16, rows ldw bytes apart -> dst (nr / 8 groups of n x 8 f16)
 * Eight elements a step: the 8 rows' next 8 elements, an 8 x 8 word
 * transpose in three rounds of unpacks (a model of 7B parameters packs at
 * load: element by element it takes seconds). */
void tl_avx2_pack_f16x8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    for (int64_t g0 = 0; g0 < nr; g0 += 8) {
        uint16_t *d = (uint16_t *)dst + (size_t)g0 * n;
        const uint8_t *src = (const uint8_t *)w + (size_t)g0 * ldw;
        int64_t k = 0;
        for (; k + 8 <= n; k += 8) {
            __m128i a[8], t[8], u[8];
            for (int i = 0; i < 8; i++)
                a[i] = _mm_loadu_si128((const __m128i *)(src + (size_t)i * ldw + 2 * k));
            /* t[2j], t[2j+1]: rows 2j, 2j+1 word-interleaved, elements 0-3, 4-7 */
            for (int j = 0; j < 4; j++) {
                t[2 * j] = _mm_unpacklo_epi16(a[2 * j], a[2 * j + 1]);
                t[2 * j + 1] = _mm_unpackhi_epi16(a[2 * j], a[2 * j + 1]);
            }
            /* u[e/2 + 4h]: rows 4h .. 4h+3 of elements e, e + 1 (e even) */
            for (int h = 0; h < 2; h++)
                for (int j = 0; j < 2; j++) {
                    u[4 * h + 2 * j] = _mm_unpacklo_epi32(t[4 * h + j], t[4 * h + 2 + j]);
                    u[4 * h + 2 * j + 1] = _mm_unpackhi_epi32(t[4 * h + j], t[4 * h + 2 + j]);
                }
            for (int e = 0; e < 4; e++) {
                _mm_storeu_si128((__m128i *)(d + 8 * (k + 2 * e)), _mm_unpacklo_epi64(u[e], u[4 + e]));
                _mm_storeu_si128((__m128i *)(d + 8 * (k + 2 * e + 1)), _mm_unpackhi_epi64(u[e], u[4 + e]));
            }
        }
        for (; k < n; k++)
            for (int i = 0; i < 8; i++) memcpy(d + 8 * k + i, src + (size_t)i * ldw + 2 * k, 2);
    }
}

/* acc[g][c] += w[g] * xf[c * S], g < G, c < C: one element of a tile
 * (w[g]: element e from wk of group g, ld_w's, groups gs bytes apart) */
TL_AVX2_INLINE void elem(__m256 acc[GD][CT], const uint8_t *wk, int64_t e, size_t gs, const float *xf,
                         const int64_t S, const int G, const int C, const bool bf) {
    __m256 wv[GD];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) wv[g] = ld_w(wk + (size_t)g * gs, e, bf);
#pragma GCC unroll 6
    for (int c = 0; c < C; c++) {
        const __m256 xb = _mm256_broadcast_ss(xf + c * S);
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) acc[g][c] = _mm256_fmadd_ps(wv[g], xb, acc[g][c]);
    }
}

/* G groups x C tokens over elements [k0, k0 + len):
 *   y[c * ldy + 8 g + i] (+)= sum_k w[g][k][i] * xf[c * S + k - k0]
 * (first: start from 0). w: group 0 at element k0, groups gs bytes apart;
 * xf: token 0's element k0, tokens S floats apart. k0 is even (a multiple
 * of the segment length); bf: the bf16x8 layout. */
TL_AVX2_INLINE void tile(int64_t len, bool first, float *y, size_t ldy, const uint8_t *w,
                         size_t gs, size_t skip, const float *xf, int64_t S, const int G,
                         const int C, const bool bf) {
    __m256 acc[GD][CT];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
#pragma GCC unroll 6
        for (int c = 0; c < C; c++)
            acc[g][c] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(y + (size_t)c * ldy + 8 * g);
    int64_t k = 0;
    /* four elements a turn: one 64-byte line of each group */
    for (; k + 4 <= len; k += 4) {
        if (C <= 2) {
            /* decode streams each weight byte once, from DRAM: each group's
             * line PF_AHEAD bytes ahead; past the segment's end, where the
             * stream goes on (skip bytes on: the next group of its run,
             * tiles.h), rather than what follows in this group (the next
             * segment, or the tile's next group, being read) */
            const size_t run = 16 * (size_t)len;
            const uint8_t *pw = tl_tile_pf_target(w, 16 * (size_t)k, PF_AHEAD, run, w + run + skip);
#pragma GCC unroll 4
            for (int g = 0; g < G; g++) _mm_prefetch((const char *)pw + (size_t)g * gs, _MM_HINT_T0);
        }
#pragma GCC unroll 4
        for (int e = 0; e < 4; e++) elem(acc, w + 16 * (size_t)k, e, gs, xf + k + e, S, G, C, bf);
    }
    for (; k < len; k++) elem(acc, w, k, gs, xf + k, S, G, C, bf);
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
#pragma GCC unroll 6
        for (int c = 0; c < C; c++) _mm256_storeu_ps(y + (size_t)c * ldy + 8 * g, acc[g][c]);
}

static_assert(CT == 6 && GD == 4, "tiles of 1 and 2 groups per token count 1..CT, of GD for 1..2");
TL_HALF_TILES(f16, false)
TL_HALF_TILES(bf16, true)

// x (n,) f32 -> y (n,) f32 rounded to f16 (to nearest even), as from_float_f16 then
// back: the activations of tl_avx2_gemm_f16x8 (the F16 slot's act form)
void tl_avx2_act_f16r(const float *x, void *vy, int64_t n) {
    float *y = vy;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i),
                                                                _MM_FROUND_TO_NEAREST_INT)));
    for (; i < n; i++) y[i] = tl_f16_to_f32(tl_f32_to_f16(x[i]));
}

/* x (n,) f32 -> y (n,) f32 rounded to bf16 (to nearest even, NaNs made
 * quiet), as the reference's from_float_bf16 then back: the activations of
 * tl_avx2_gemm_bf16x8 (the BF16 slot's act form) */
void tl_avx2_act_bf16r(const float *x, void *vy, int64_t n) {
    float *y = vy;
    const __m256i hi = _mm256_set1_epi32((int)0xFFFF0000u), one = _mm256_set1_epi32(1),
                  half = _mm256_set1_epi32(0x7FFF), abs = _mm256_set1_epi32(0x7FFFFFFF),
                  inf = _mm256_set1_epi32(0x7F800000), quiet = _mm256_set1_epi32(0x00400000);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i));
        const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
        const __m256i r = _mm256_and_si256(_mm256_add_epi32(u, _mm256_add_epi32(half, odd)), hi);
        const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs), inf);
        const __m256i q = _mm256_and_si256(_mm256_or_si256(u, quiet), hi);
        _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_blendv_epi8(r, q, nan)));
    }
    for (; i < n; i++) y[i] = tl_bf16_to_f32(tl_f32_to_bf16(x[i]));
}

/* W (nr, n) bf16, rows ldw bytes apart -> dst (nr / 8 groups of (n + n % 2)
 * / 2 pairs x 8 rows' 32-bit pairs), an odd n's last pair padded with a
 * zero. Eight pairs a step: an 8 x 8 transpose of 32-bit words in three
 * rounds of shuffles. */
void tl_avx2_pack_bf16x8(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    const int64_t np = (n + 1) / 2; /* pairs per row */
    for (int64_t g0 = 0; g0 < nr; g0 += 8) {
        uint32_t *d = (uint32_t *)dst + (size_t)g0 * np;
        const uint8_t *src = (const uint8_t *)w + (size_t)g0 * ldw;
        int64_t p = 0;
        for (; 2 * p + 16 <= n; p += 8) {
            __m256 a[8], t[8], u[8];
            for (int i = 0; i < 8; i++)
                a[i] = _mm256_loadu_ps((const float *)(src + (size_t)i * ldw + 4 * p));
            /* t[2j], t[2j+1]: rows 2j, 2j+1 interleaved, pairs 0,1,4,5 and 2,3,6,7 */
            for (int j = 0; j < 4; j++) {
                t[2 * j] = _mm256_unpacklo_ps(a[2 * j], a[2 * j + 1]);
                t[2 * j + 1] = _mm256_unpackhi_ps(a[2 * j], a[2 * j + 1]);
            }
            /* u[4h + e]: rows 4h .. 4h+3 of pairs e and e + 4 (lanes 0-3, 4-7) */
            for (int h = 0; h < 2; h++) {
                const __m256 *tl = t + 4 * h;
                u[4 * h + 0] = _mm256_shuffle_ps(tl[0], tl[2], 0x44);
                u[4 * h + 1] = _mm256_shuffle_ps(tl[0], tl[2], 0xEE);
                u[4 * h + 2] = _mm256_shuffle_ps(tl[1], tl[3], 0x44);
                u[4 * h + 3] = _mm256_shuffle_ps(tl[1], tl[3], 0xEE);
            }
            for (int e = 0; e < 4; e++) {
                const __m256 lo = _mm256_permute2f128_ps(u[e], u[4 + e], 0x20);
                const __m256 hi = _mm256_permute2f128_ps(u[e], u[4 + e], 0x31);
                _mm256_storeu_ps((float *)(d + 8 * (p + e)), lo);     /* pair p + e */
                _mm256_storeu_ps((float *)(d + 8 * (p + e + 4)), hi); /* pair p + e + 4 */
            }
        }
        for (; p < np; p++)
            for (int i = 0; i < 8; i++) {
                const uint16_t *r = (const uint16_t *)(src + (size_t)i * ldw);
                d[8 * p + i] = r[2 * p] | (2 * p + 1 < n ? (uint32_t)r[2 * p + 1] << 16 : 0);
            }
    }
}

// W (nr, n) f16x8 @ X^T (nc, n) (tl_avx2_act_f16r rows) -> y[c * ldy + r]
void tl_avx2_gemm_f16x8(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                        size_t ldw, const void *x, size_t ldx) {
    tl_tile_half_gemm(8, n, nr, nc, y, ldy, w, ldw, x, ldx, &tiles_f16);
}

// W (nr, n) bf16x8 @ X^T (nc, n) (tl_avx2_act_bf16r rows) -> y[c * ldy + r]
void tl_avx2_gemm_bf16x8(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *x, size_t ldx) {
    tl_tile_half_gemm(8, n, nr, nc, y, ldy, w, ldw, x, ldx, &tiles_bf16);
}
