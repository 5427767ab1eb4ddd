/* repack_half_avx512.c — F16 and BF16 weights repacked 16 rows to a group
 * (the kern.h repack slot), and the AVX-512 tiles over them.
 *
 * Why: the row-major F16 gemm (kern_avx512.c) converts both operands with
 * vcvtph2ps at every step, 8 conversions (2 port-0/5 uops each) per 16
 * FMAs, and reduces each output across lanes at the end: about half of the
 * FMA peak. Here a zmm holds one row per lane, so
 *   - the activations are converted to f32 once per call (per K segment)
 *     into a stack buffer, and enter each FMA as an embedded broadcast
 *     (a load-port uop, not a port-0/5 one);
 *   - a weight vector, 16 rows' element k, is converted once and serves
 *     every token of the tile: 2 conversion uops (BF16: 1) per C FMAs;
 *   - lane i of an accumulator is row r0 + i's output: it is loaded and
 *     stored as 16 floats, nothing is reduced across lanes.
 * Each output sums its products in k order in one f32 lane: it differs
 * from the reference (double sums) by float rounding only. (A bf16 or f16
 * product is exact in f32: the FMA rounds once per element.)
 *
 * Packed group of 16 rows (exactly the bytes of the 16 original rows,
 * rearranged):
 *   f16x16: for each element k = 0 .. n-1, the 16 rows' f16 values, 32
 *     bytes; any n. A packed row is 2n bytes, a group 32n.
 *   bf16x16: for each pair of elements (k, k+1), k even, the 16 rows' pairs
 *     as 32-bit words, 64 bytes (one line); an odd n gets a zero pad
 *     element, so a packed row is 2 (n + n % 2) bytes. A pair's line gives
 *     both weight vectors with one ALU op each: element k is the word
 *     shifted up 16 bits, element k + 1 the word with its low half cleared
 *     (a bf16 is the top half of an f32). Element k is at byte 32 k of the
 *     group, as in f16x16.
 * BF16 has AVX512_BF16's vdpbf16ps (32 products per instruction into 16
 * lanes) for this, and that is what this layout was first tiled with. On
 * the Xeon host the device lent (Emerald Rapids; bench/RESULTS.md round 14,
 * kbench, one thread, 64 rows x 64 tokens, old and new in turn) those
 * tiles gave 46 GMAC/s in prefill, these 78-85 (F16's: 75-84); a whole
 * TinyLlama-shaped BF16 model's pp128 went from 84 to 134-136 tokens/s.
 * One token from L2, vdpbf16ps was ahead (38-39 GMAC/s against 34-36), but
 * decode streams from DRAM, where both read 30 GB/s with 2 threads
 * (decbench). And vdpbf16ps flushes denormal terms, which this does not.
 * The shift and the FMAs need AVX-512F alone, so every AVX-512 CPU gets
 * this layout.
 *
 * Tiles: G groups (16 G rows) x C tokens of accumulators. Per element a
 * tile issues G conversions (2G uops) and G C FMAs on ports 0/5, so its
 * share of peak is C / (C + 2) whatever G is: prefill wants the most
 * tokens per tile the registers allow, one group (CT = 24: 24
 * accumulators, the weight vectors, 4 spare). G only has to hide the
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
static_assert(sizeof(uint32_t) * 16 == 64, "bf16x16 pair: 16 rows' element pairs, one zmm");

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

// packed bytes per row of n elements: the bf16 row size, n rounded up to pairs
size_t tl_avx512_row_size_bf16x16(int64_t n) { return (size_t)(n + (n & 1)) * sizeof(uint16_t); }

/* W (nr, n) bf16, rows ldw bytes apart -> dst (nr / 16 groups of (n + n % 2)
 * / 2 pairs x 16 rows' 32-bit pairs), an odd n's last pair padded with a
 * zero. One gather per pair: the 16 rows' dwords at the pair's offset are
 * the packed vector as they come. */
void tl_avx512_pack_bf16x16(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr) {
    const int64_t np = (n + 1) / 2; /* pairs per row, the padded one included */
    const __m512i rows = tl_avx512_row_offsets(ldw);
    const bool gather = ldw <= TL_AVX512_GATHER_MAX_LDW;
    for (int64_t g0 = 0; g0 < nr; g0 += 16) {
        uint32_t *d = (uint32_t *)dst + (size_t)g0 * np;
        const uint8_t *src = (const uint8_t *)w + (size_t)g0 * ldw;
        int64_t p = 0;
        if (gather)
            for (; p < n / 2; p++)
                _mm512_storeu_si512(d + 16 * p, tl_avx512_gather16(rows, src + 4 * p));
        for (; p < np; p++)
            for (int i = 0; i < 16; i++) {
                const uint16_t *r = (const uint16_t *)(src + (size_t)i * ldw);
                d[16 * p + i] = r[2 * p] | (2 * p + 1 < n ? (uint32_t)r[2 * p + 1] << 16 : 0);
            }
    }
}

// wr[g] = the bf16x16 pair line at w of group g < G (groups gs bytes apart)
TL_AVX512_INLINE void ld_pairs(__m512i wr[4], const uint8_t *w, size_t gs, const int G) {
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) wr[g] = _mm512_loadu_si512(w + (size_t)g * gs);
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

/* the tiles' prefetch in decode (C <= 2), which streams each weight byte
 * once, from DRAM: each group's line at byte off of the len elements' 32
 * len PF_AHEAD bytes ahead; past the segment's end, where the stream goes
 * on, skip bytes further (its run's next group, tl_tile_stream_gather, or
 * the next tile's), which would otherwise start cold, rather than what
 * follows in this group (the next segment, or the tile's next group, being
 * read): +4-7% on the AVX2 tiles */
TL_AVX512_INLINE void pf_groups(const uint8_t *w, size_t off, int64_t len, size_t gs, size_t skip,
                                const int G) {
    const size_t run = 32 * (size_t)len;
    const uint8_t *pw = tl_tile_pf_target(w, off, PF_AHEAD, run, w + run + skip);
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) _mm_prefetch((const char *)pw + (size_t)g * gs, _MM_HINT_T0);
}

/* G groups x C tokens over elements [k0, k0 + len) (BF: bf16x16, len even,
 * else f16x16):
 *   y[c * ldy + 16 g + i] (+)= sum_k w[g][k][i] * xf[c * S + k - k0]
 * (first: start from 0). w: group 0 at element k0, groups gs bytes apart;
 * S = seg_len(C), the buffer's token stride. */
TL_AVX512_INLINE void tile(int64_t len, bool first, float *y, size_t ldy, const uint8_t *w,
                           size_t gs, size_t skip, const float *xf, const bool BF, const int G,
                           const int C) {
    const int64_t S = seg_len(C);
    __m512 acc[4][CT];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
#pragma GCC unroll 24
        for (int c = 0; c < C; c++)
            acc[g][c] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(y + (size_t)c * ldy + 16 * g);
    __m512 wa[4], wb[4];
    if (BF) {
        /* a pair a turn, its lines loaded one turn ahead; the shift and the
         * and are 1-cycle ops, so nothing else needs pipelining */
        const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
        __m512i wr[4];
        ld_pairs(wr, w, gs, G);
        for (int64_t k = 0; k < len; k += 2) {
            if (C <= 2) pf_groups(w, 32 * (size_t)k, len, gs, skip, G);
#pragma GCC unroll 4
            for (int g = 0; g < G; g++) {
                wa[g] = _mm512_castsi512_ps(_mm512_slli_epi32(wr[g], 16));
                wb[g] = _mm512_castsi512_ps(_mm512_and_si512(wr[g], hi));
            }
            if (k + 2 < len) ld_pairs(wr, w + 32 * (size_t)(k + 2), gs, G);
            fma_tokens(acc, wa, xf + k, S, G, C);
            fma_tokens(acc, wb, xf + k + 1, S, G, C);
        }
    } else {
        /* software-pipelined, two elements a turn: each element's
         * conversions are issued ahead of the previous element's FMAs, since
         * the scheduler runs the oldest ready uop first and a conversion
         * queued behind a tile's FMAs would expose its latency at every
         * element */
        ld_groups(wa, w, gs, G);
        int64_t k = 0;
        for (; k + 2 < len; k += 2) {
            if (C <= 2) pf_groups(w, 32 * (size_t)k, len, gs, skip, G);
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
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
#pragma GCC unroll 24
        for (int c = 0; c < C; c++) _mm512_storeu_ps(y + (size_t)c * ldy + 16 * g, acc[g][c]);
}

typedef void (*tile_fn)(int64_t len, bool first, float *y, size_t ldy, const uint8_t *w, size_t gs,
                        size_t skip, const float *xf);

#define TILE(P, BF, G, C)                                                                   \
    static void P##_tile_##G##_##C(int64_t len, bool first, float *y, size_t ldy,           \
                                   const uint8_t *w, size_t gs, size_t skip,                \
                                   const float *xf) {                                       \
        tile(len, first, y, ldy, w, gs, skip, xf, BF, G, C);                                \
    }
TL_AVX512_GROUP_TILES(TILE, f16, false)
TL_AVX512_GROUP_TILES(TILE, bf16, true)
#undef TILE
static_assert((int)CT == (int)TL_AVX512_GROUP_TILES_CT &&
                  sizeof f16_tiles1 / sizeof *f16_tiles1 == CT + 1,
              "one 1-group tile per token count 1..CT");

// 16 f16 (bf: bf16, the top halves of f32s) -> 16 f32, exactly
TL_AVX512_INLINE __m512 cvt16(__m256i h, bool bf) {
    return bf ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))
              : _mm512_cvtph_ps(h);
}

/* x (len,) f16 (bf: bf16) -> xf (len,) f32, exactly; bf with an odd len
 * also writes xf[len] = 0, the pad element's activation */
static void cvt_row(int64_t len, float *xf, const uint16_t *x, bool bf) {
    int64_t i = 0;
    for (; i + 16 <= len; i += 16)
        _mm512_store_ps(xf + i, cvt16(_mm256_loadu_si256((const __m256i *)(x + i)), bf));
    if (i < len) {
        const __mmask16 m = (__mmask16)((1u << (len - i)) - 1);
        _mm512_mask_storeu_ps(xf + i, m, cvt16(_mm256_maskz_loadu_epi16(m, x + i), bf));
    }
    if (bf && (len & 1)) xf[len] = 0.0f;
}

/* W (nr, n) f16x16 (bf: bf16x16) @ X^T (nc, n) f16 (bf16) -> y[c * ldy + r]
 * (nr % 16 == 0). Token tiles of up to CT (the remainder in one narrower
 * tile); K segments whose converted activations serve every row group of
 * the call; groups in tiles of the widest G the token count wants (4, for
 * 1-2 tokens: as streams, tiles.h), then narrower ones. Segments are a
 * multiple of 16 elements long, so a BF16 one starts on a pair; the last,
 * when n is odd, takes the pad element. */
TL_AVX512_INLINE void gemm_x16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy,
                               const uint8_t *w, size_t ldw, const uint8_t *x, size_t ldx,
                               const bool bf) {
    const size_t gs = 16 * ldw; /* bytes per group */
    const int64_t ng = nr / 16;
    const tile_fn *t4 = bf ? bf16_tiles4 : f16_tiles4, *t2 = bf ? bf16_tiles2 : f16_tiles2,
                  *t1 = bf ? bf16_tiles1 : f16_tiles1;
    _Alignas(64) float xf[XBUF];
    for (int64_t c0 = 0; c0 < nc; c0 += CT) {
        const int cc = nc - c0 < CT ? (int)(nc - c0) : CT;
        const int64_t seg = seg_len(cc);
        const int gmax = cc <= 2 ? 4 : cc <= 5 ? 2 : 1;
        float *yc = y + (size_t)c0 * ldy;
        for (int64_t k0 = 0; k0 < n; k0 += seg) {
            const int64_t len = n - k0 < seg ? n - k0 : seg;
            for (int c = 0; c < cc; c++)
                cvt_row(len, xf + c * seg, (const uint16_t *)(x + (size_t)(c0 + c) * ldx) + k0, bf);
            const int64_t tl = bf ? len + (len & 1) : len; /* <= seg: an odd len is short of it */
            const uint8_t *wk = w + 32 * (size_t)k0;
            const size_t run = 32 * (size_t)tl; /* bytes a tile reads of each group */
            int64_t g = 0;
            const bool first = k0 == 0;
            if (gmax >= 4 && ng >= 4) {
                /* decode: tile i takes group i of each of 4 streams (tiles.h) */
                const int64_t nt = ng / 4;
                float o[2 * 4 * 16]; /* tile i's outputs, token by token */
                for (int64_t i = 0; i < nt; i++) {
                    for (int c = 0; c < cc && !first; c++)
                        tl_tile_stream_gather(o + 64 * c, yc + c * ldy, i, nt, 4, 16);
                    t4[cc](tl, first, o, 64, wk + i * gs, (size_t)nt * gs, gs - run, xf);
                    for (int c = 0; c < cc; c++)
                        tl_tile_stream_scatter(yc + c * ldy, o + 64 * c, i, nt, 4, 16);
                }
                g = nt * 4;
            }
            /* the rest in adjacent groups: past its run, a stream goes on to the next tile's */
            if (gmax >= 2)
                for (; g + 2 <= ng; g += 2)
                    t2[cc](tl, first, yc + 16 * g, ldy, wk + g * gs, gs, 2 * gs - run, xf);
            for (; g < ng; g++) t1[cc](tl, first, yc + 16 * g, ldy, wk + g * gs, gs, gs - run, xf);
        }
    }
}

void tl_avx512_gemm_f16x16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                           size_t ldw, const void *x, size_t ldx) {
    gemm_x16(n, nr, nc, y, ldy, w, ldw, x, ldx, false);
}

void tl_avx512_gemm_bf16x16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                            size_t ldw, const void *x, size_t ldx) {
    gemm_x16(n, nr, nc, y, ldy, w, ldw, x, ldx, true);
}
