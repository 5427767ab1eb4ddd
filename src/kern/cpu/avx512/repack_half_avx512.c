/* repack_f16_avx512.c — F16 weights repacked 16 rows to a group (the
 * kern.h repack slot), and the AVX-512 tiles over them.
 *
 * Why: the row-major F16 gemm (kern_avx512.c) converts both operands with
 * vcvtph2ps at every step, 8 conversions (2 port-0/5 uops each) per 16
 * FMAs, and reduces each output across lanes at the end: about half of the
 * FMA peak. Here a zmm holds one row per lane, so
 *   - the activations are converted to f32 once per call (per K segment)
 *     into a stack buffer, and enter each FMA as an embedded broadcast
 *     (a load-port uop, not a port-0/5 one);
 *   - a weight vector, 16 rows' element k, is converted once and serves
 *     every token of the tile: 2 conversion uops per C FMAs;
 *   - lane i of an accumulator is row r0 + i's output: it is loaded and
 *     stored as 16 floats, nothing is reduced across lanes.
 * Each output sums its products in k order in one f32 lane: it differs
 * from the reference (double sums) by float rounding only.
 *
 * Packed group of 16 rows (exactly the bytes of the 16 original rows,
 * rearranged), f16x16: for each element k = 0 .. n-1, the 16 rows' f16
 * values, 32 bytes; any n. A packed row is 2n bytes, a group 32n.
 *
 * Tiles: G groups (16 G rows) x C tokens of accumulators. Per element a
 * tile issues G conversions (2G uops) and G C FMAs on ports 0/5, so its
 * share of peak is C / (C + 2) whatever G is: prefill wants the most
 * tokens per tile the registers allow, one group (CT = 24: 24
 * accumulators, the weight vector, 7 spare). G only has to hide the
 * 4-cycle FMA latency: each chain takes one FMA per element, so the
 * (G C + 2G) / 2 cycles of an element must reach 4, G (C + 2) >= 8: one
 * or two tokens (decode) take 4 groups (64 rows), 3 to 5 tokens 2 groups.
 * Fewer groups finish a call's remainder. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "kern/cpu/avx512/avx512.h"

enum {
    CT = 24,            /* tokens per tile: 24 accumulators + the weight vector of 32 zmm */
    XBUF = CT * 256,    /* converted activations (floats, 24 KiB): cc tokens x XBUF / cc elements */
    PF_AHEAD = 2048,    /* decode: weight bytes prefetched ahead of each group's stream */
};
static_assert(sizeof(uint16_t) * 16 == 32, "f16x16 element: 16 rows' f16 values, one ymm");

/* elements per K segment for tiles of cc tokens: the buffer holds cc
 * token rows of it (16-aligned, so each starts on a 64-byte line); few
 * tokens (decode) get long segments, so the weights stream through in
 * long runs */
TL_AVX512_INLINE int64_t seg_len(int cc) { return XBUF / cc / 16 * 16; }

// the 16 rows' element at p, as floats
TL_AVX512_INLINE __m512 ld_w(const uint8_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

// packed bytes per row of n elements: the f16 row size
size_t tl_avx512_row_size_f16x16(int64_t n) { return (size_t)n * sizeof(uint16_t); }

/* W (nr, n) f16, rows ldw bytes apart -> dst (nr / 16 groups of n x 16 f16)
 * Two elements a step: one gather takes the 16 rows' elements k, k + 1 as
 * a dword each, one word permute splits them into element k's 16 values
 * then element k + 1's, which is the packed layout's next 64 bytes. (A
 * model of 7B parameters packs at load: element by element it took
 * seconds.) */
void tl_avx512_pack_f16x16(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    const __m512i rows = tl_avx512_row_offsets(ldw);
    const __m512i split = tl_avx512_split_words();
    const bool gather = ldw <= TL_AVX512_GATHER_MAX_LDW;
    for (int64_t g0 = 0; g0 < nr; g0 += 16) {
        uint16_t *d = (uint16_t *)dst + (size_t)g0 * n;
        const uint8_t *src = (const uint8_t *)w + (size_t)g0 * ldw;
        int64_t k = 0;
        if (gather)
            for (; k + 2 <= n; k += 2) {
                const __m512i two = tl_avx512_gather16(rows, src + 2 * k);
                _mm512_storeu_si512(d + 16 * k, _mm512_permutexvar_epi16(split, two));
            }
        for (; k < n; k++)
            for (int i = 0; i < 16; i++) memcpy(d + 16 * k + i, src + (size_t)i * ldw + 2 * k, 2);
    }
}

// wv[g] = the element at w of group g < G (groups gs bytes apart)
TL_AVX512_INLINE void ld_groups(__m512 wv[4], const uint8_t *w, size_t gs, const int G) {
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) wv[g] = ld_w(w + (size_t)g * gs);
}

/* acc[g][c] += wv[g] * xf[c * S], g < G, c < C: one element of a tile */
TL_AVX512_INLINE void fma_tokens(__m512 acc[4][CT], const __m512 wv[4], const float *xf,
                                 const int64_t S, const int G, const int C) {
#pragma GCC unroll 24
    for (int c = 0; c < C; c++) {
        const __m512 xb = _mm512_set1_ps(xf[c * S]);
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) acc[g][c] = _mm512_fmadd_ps(wv[g], xb, acc[g][c]);
    }
}

/* G groups x C tokens over elements [k0, k0 + len):
 *   y[c * ldy + 16 g + i] (+)= sum_k w[g][k][i] * xf[c * S + k - k0]
 * (first: start from 0). w: group 0 at element k0, groups gs bytes apart;
 * S = seg_len(C), the buffer's token stride. */
TL_AVX512_INLINE void tile(int64_t len, bool first, float *y, size_t ldy, const uint8_t *w,
                           size_t gs, const float *xf, const int G, const int C) {
    const int64_t S = seg_len(C);
    __m512 acc[4][CT];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
#pragma GCC unroll 24
        for (int c = 0; c < C; c++)
            acc[g][c] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(y + (size_t)c * ldy + 16 * g);
    /* software-pipelined, two elements a turn: each element's conversions
     * are issued ahead of the previous element's FMAs, since the scheduler
     * runs the oldest ready uop first and a conversion queued behind a
     * tile's FMAs would expose its latency at every element */
    __m512 wa[4], wb[4];
    ld_groups(wa, w, gs, G);
    int64_t k = 0;
    for (; k + 2 < len; k += 2) {
        if (C <= 2) {
            /* decode streams each weight byte once, from DRAM: ask for each
             * group's line (2 elements) PF_AHEAD bytes ahead; past the
             * segment's end, the same offset in the next tile's group (G
             * groups on), which would otherwise start cold, rather than what
             * follows in this group (the next segment, or the tile's next
             * group, being read): +4-7% on the AVX2 tiles */
            const uint8_t *pw =
                tl_tile_pf_target(w, 32 * (size_t)k, PF_AHEAD, 32 * (size_t)len, w + (size_t)G * gs);
#pragma GCC unroll 4
            for (int g = 0; g < G; g++) _mm_prefetch((const char *)pw + (size_t)g * gs, _MM_HINT_T0);
        }
        ld_groups(wb, w + 32 * (size_t)(k + 1), gs, G);
        fma_tokens(acc, wa, xf + k, S, G, C);
        ld_groups(wa, w + 32 * (size_t)(k + 2), gs, G);
        fma_tokens(acc, wb, xf + k + 1, S, G, C);
    }
    if (k + 1 < len) {
        ld_groups(wb, w + 32 * (size_t)(k + 1), gs, G);
        fma_tokens(acc, wa, xf + k, S, G, C);
        fma_tokens(acc, wb, xf + k + 1, S, G, C);
    } else {
        fma_tokens(acc, wa, xf + k, S, G, C);
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
#pragma GCC unroll 24
        for (int c = 0; c < C; c++) _mm512_storeu_ps(y + (size_t)c * ldy + 16 * g, acc[g][c]);
}

typedef void (*tile_fn)(int64_t len, bool first, float *y, size_t ldy, const uint8_t *w, size_t gs,
                        const float *xf);

#define TILE(G, C)                                                                             \
    static void tile_##G##_##C(int64_t len, bool first, float *y, size_t ldy, const uint8_t *w, \
                               size_t gs, const float *xf) {                                   \
        tile(len, first, y, ldy, w, gs, xf, G, C);                                             \
    }
TL_AVX512_GROUP_TILES(TILE)
#undef TILE
static_assert((int)CT == (int)TL_AVX512_GROUP_TILES_CT && sizeof tiles1 / sizeof *tiles1 == CT + 1,
              "one 1-group tile per token count 1..CT");

// x (len,) f16 -> xf (len,) f32, exactly
static void cvt_row(int64_t len, float *xf, const uint16_t *x) {
    int64_t i = 0;
    for (; i + 16 <= len; i += 16)
        _mm512_store_ps(xf + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))));
    if (i < len) {
        const __mmask16 m = (__mmask16)((1u << (len - i)) - 1);
        _mm512_mask_storeu_ps(xf + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i)));
    }
}

/* W (nr, n) f16x16 @ X^T (nc, n) f16 -> y[c * ldy + r]   (nr % 16 == 0)
 * Token tiles of up to CT (the remainder in one narrower tile); K segments
 * whose converted activations serve every row group of the call; groups in
 * tiles of the widest G the token count wants, then narrower ones. */
void tl_avx512_gemm_f16x16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *vw,
                           size_t ldw, const void *vx, size_t ldx) {
    const uint8_t *w = vw, *x = vx;
    const size_t gs = 16 * ldw; /* bytes per group */
    const int64_t ng = nr / 16;
    _Alignas(64) float xf[XBUF];
    for (int64_t c0 = 0; c0 < nc; c0 += CT) {
        const int cc = nc - c0 < CT ? (int)(nc - c0) : CT;
        const int64_t seg = seg_len(cc);
        const int gmax = cc <= 2 ? 4 : cc <= 5 ? 2 : 1;
        float *yc = y + (size_t)c0 * ldy;
        for (int64_t k0 = 0; k0 < n; k0 += seg) {
            const int64_t len = n - k0 < seg ? n - k0 : seg;
            for (int c = 0; c < cc; c++)
                cvt_row(len, xf + c * seg, (const uint16_t *)(x + (size_t)(c0 + c) * ldx) + k0);
            const uint8_t *wk = w + 32 * (size_t)k0;
            int64_t g = 0;
            const bool first = k0 == 0;
            if (gmax >= 4)
                for (; g + 4 <= ng; g += 4) tiles4[cc](len, first, yc + 16 * g, ldy, wk + g * gs, gs, xf);
            if (gmax >= 2)
                for (; g + 2 <= ng; g += 2) tiles2[cc](len, first, yc + 16 * g, ldy, wk + g * gs, gs, xf);
            for (; g < ng; g++) tiles1[cc](len, first, yc + 16 * g, ldy, wk + g * gs, gs, xf);
        }
    }
}
