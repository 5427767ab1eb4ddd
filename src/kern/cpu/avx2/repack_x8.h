/* repack_x8.h — what the AVX2 8-row repacked tiles share (repack_avx2.c,
 * repack_k23_avx2.c): the register-level helpers, the decode prefetch
 * rules, the tile and kind types, and the one driver, tl_avx2_gemm_x8
 * (defined in repack_avx2.c, whose header comment explains the layout
 * family). Included only by files compiled with the AVX2 flags. */
#ifndef TL_KERN_CPU_AVX2_REPACK_X8_H
#define TL_KERN_CPU_AVX2_REPACK_X8_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/quant.h"
#include "kern/cpu/avx2/avx2.h"

enum {
    CT = 4,              /* tokens per full tile */
    GD = 4,              /* most groups per decode tile */
};

TL_AVX2_INLINE __m128i ld128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }
TL_AVX2_INLINE __m256i ld256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

TL_AVX2_INLINE __m256i bcast4(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* An empty asm that takes v in a register and gives it back: the compiler
 * can no longer see through it, so it keeps an accumulation chain as
 * written instead of reassociating it into a wider tree of partial sums,
 * which needs more registers than the tiles have and spills in the inner
 * loop (measured: gcc 12 does that to every tile here). */
#define KEEP(v) __asm__("" : "+x"(v))

TL_AVX2_INLINE int32_t hsum_epi32(__m256i v) {
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
    return _mm_cvtsi128_si32(h);
}

/* Decode streams each weight byte once, from DRAM; the hardware prefetchers
 * alone keep too few lines in flight (measured: 1 thread 13 -> 19 GB/s,
 * 2 threads 27 -> 35 GB/s on Zen 3 with the weights on huge pages), so the
 * one-token tiles ask for the block PF_AHEAD bytes ahead as they start a
 * block. Groups of a call lie back to back, so this runs into the next. */
enum { PF_AHEAD = 2048 };
TL_AVX2_INLINE void prefetch_at(const void *p, size_t ahead, size_t bytes) {
    const char *q = (const char *)p + ahead;
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(q + o, _MM_HINT_T0);
}
TL_AVX2_INLINE void prefetch_ahead(const void *p, size_t bytes) { prefetch_at(p, PF_AHEAD, bytes); }

/* Slice part (< nparts) of the lines prefetch_at(p, ahead, bytes) asks
 * for, slices in order. A K super-block is 19 (Q4_K) or 27 (Q6_K) lines:
 * asked for all at once as the block starts, the prefetches queue up behind
 * each other and stall the loads, so the K tiles ask for one slice per
 * sub-block step instead (Zen 3, decode from DRAM, 2 threads taking turns
 * at 64-row chunks: Q6_K +5-12%, Q4_K +0-8%; 1 thread Q6_K +15%). Finer
 * slices (a line per chunk) were no faster. Decode from DRAM is not bound
 * by the tiles' instructions: unrolling tile_q4_K's sub-block loop made it
 * 7-19% faster from L2 and 5-10% slower from DRAM. */
TL_AVX2_INLINE void prefetch_part(const void *p, size_t ahead, size_t bytes, size_t part,
                                  size_t nparts) {
    const char *q = (const char *)p + ahead;
    const size_t n = (bytes + 63) / 64;
    for (size_t i = n * part / nparts; i < n * (part + 1) / nparts; i++)
        _mm_prefetch(q + 64 * i, _MM_HINT_T0);
}

/* The GD-group decode tiles (dec_fn) prefetch each of their GD streams
 * PF_DEC bytes ahead (Zen 3, 2 threads, decode from DRAM: Q8_0 best at
 * 768-1536, slower at 512 and 2048; Q4_0 end to end 1024 > 2048). */
enum { PF_DEC = 1024 };

/* How far past byte at of a decode stream's segment run (seg bytes: the
 * blocks a dec_fn call reads of each group) its prefetch asks, for a
 * distance of dist bytes: past the run's end, skip bytes further on, where
 * the stream goes on (dec_fn) */
TL_AVX2_INLINE size_t stream_ahead(size_t at, size_t dist, size_t seg, size_t skip) {
    return dist + (at + dist >= seg ? skip : 0);
}

/* wb[g] = block b of group g < G (groups gs bytes apart, blocks of blk
 * bytes, nb of them in the segment) of a tile of G groups x C tokens. One
 * group and one token (the last groups of a call): the block PF_AHEAD ahead
 * is asked for. GD groups (decode, dec_fn): in each stream the block about
 * PF_DEC ahead, in whole blocks, so that past the run's end (see
 * stream_ahead) no block asked for straddles it. */
TL_AVX2_INLINE void group_blocks(const uint8_t *wb[GD], const uint8_t *w, size_t gs, size_t skip,
                                 size_t blk, int64_t b, int64_t nb, const int G, const int C) {
    if (G == 1) {
        wb[0] = w + (size_t)b * blk;
        if (C == 1) prefetch_ahead(wb[0], blk);
        return;
    }
    const size_t dist = blk * ((PF_DEC + blk / 2) / blk);
    const size_t ahead = stream_ahead((size_t)b * blk, dist, (size_t)nb * blk, skip);
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
        wb[g] = w + (size_t)g * gs + (size_t)b * blk;
        prefetch_at(wb[g], ahead, blk);
    }
}

/* The K decode tiles' prefetch, a line at a time: the line at bytes past w
 * in each of the GD streams (w, gs, skip as for dec_fn; seg: the run's
 * bytes), PF_DEC ahead. */
TL_AVX2_INLINE void prefetch_groups_line(const uint8_t *w, size_t gs, size_t skip, size_t seg,
                                         size_t at) {
    const size_t ahead = stream_ahead(at, PF_DEC, seg, skip);
#pragma GCC unroll 4
    for (int g = 0; g < GD; g++)
        _mm_prefetch((const char *)w + (size_t)g * gs + at + ahead, _MM_HINT_T0);
}

TL_AVX2_INLINE __m256 acc_init(bool first, const float *y) {
    return first ? _mm256_setzero_ps() : _mm256_loadu_ps(y);
}

/* A G x C tile's float accumulators, acc[g][c] for outputs 8g .. 8g + 7 of
 * token c (token rows ldy apart in y): loaded from y, or zero when first;
 * stored back */
TL_AVX2_INLINE void tile_acc_init(__m256 acc[GD][CT], bool first, const float *y, size_t ldy, const int G,
                                  const int C) {
    for (int g = 0; g < G; g++)
        for (int c = 0; c < C; c++) acc[g][c] = acc_init(first, y + (size_t)c * ldy + 8 * g);
}
TL_AVX2_INLINE void tile_acc_store(float *y, size_t ldy, __m256 acc[GD][CT], const int G, const int C) {
    for (int g = 0; g < G; g++)
        for (int c = 0; c < C; c++) _mm256_storeu_ps(y + (size_t)c * ldy + 8 * g, acc[g][c]);
}

/* The bit-plane K tiles (Q2_K, Q3_K, Q5_K), G groups x C tokens over
 * Q8_K activations, share these steps:
 * k_group_blocks: group g's block b at wb[g]; GD groups (decode) take the
 *   pointers only (the tile asks for their lines a few per step,
 *   k_step_prefetch), one group group_blocks's; k_isum_zero: the block's
 *   int32 sums cleared;
 * k_slot_dot: one slot's products u . y for each token (y: token c's 4
 *   activation bytes at off of its block b), the slot's int16 sum started
 *   (j = 0) or added to;
 * k_widen: a run of slots' int16 sums times the madd operand sc (each row
 *   lane's scale as an int16 pair), into the int32 sums. */
TL_AVX2_INLINE void k_group_blocks(const uint8_t *wb[GD], const uint8_t *w, size_t gs, size_t skip,
                                   size_t blk, int64_t b, int64_t nb, const int G, const int C) {
    if (G == GD)
        for (int g = 0; g < G; g++) wb[g] = w + (size_t)g * gs + (size_t)b * blk;
    else
        group_blocks(wb, w, gs, skip, blk, b, nb, G, C);
}
TL_AVX2_INLINE void k_isum_zero(__m256i isum[GD][CT], const int G, const int C) {
    for (int g = 0; g < G; g++)
        for (int c = 0; c < C; c++) isum[g][c] = _mm256_setzero_si256();
}
/* k_step_prefetch: the decode tile (GD groups) asks for n lines of each
 * group's stream from at (bytes into the run of seg), PF_DEC ahead */
TL_AVX2_INLINE void k_step_prefetch(const uint8_t *w, size_t gs, size_t skip, size_t seg, size_t at, int n,
                                    const int G) {
    if (G == GD)
        for (int l = 0; l < n; l++) prefetch_groups_line(w, gs, skip, seg, at + 64 * (size_t)l);
}
TL_AVX2_INLINE void k_slot_dot(__m256i ss[CT], __m256i u, int j, const uint8_t *x, size_t ldx, int64_t b,
                               int off, const int C) {
#pragma GCC unroll 4
    for (int c = 0; c < C; c++) {
        const int8_t *xq = ((const tl_block_q8_K *)(x + (size_t)c * ldx) + b)->qs;
        const __m256i p = _mm256_maddubs_epi16(u, bcast4(xq + off));
        ss[c] = j ? _mm256_add_epi16(ss[c], p) : p;
        KEEP(ss[c]);
    }
}
TL_AVX2_INLINE void k_widen(__m256i isum[CT], const __m256i ss[CT], __m256i sc, const int C) {
#pragma GCC unroll 4
    for (int c = 0; c < C; c++) {
        isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(ss[c], sc));
        KEEP(isum[c]);
    }
}


TL_AVX2_INLINE __m256 ld_f16x8(const uint16_t *p) {
    return _mm256_cvtph_ps(ld128(p));
}

/* ---- the driver ------------------------------------------------------------ */

/* One group of 8 packed rows (w: its first block of the segment) x C
 * tokens, C = CT (tile), 3 (tile3) or 1 (tile1), over nb blocks:
 *   y[c * ldy + i] (+)= row i . token c   (first: from 0, else onto y) */
typedef void (*tile_fn)(int64_t nb, bool first, float *y, size_t ldy, const uint8_t *w,
                        const uint8_t *x, size_t ldx, const uint8_t *a, size_t lda);

/* GD groups (8 GD rows; w: group 0's first block of the segment, the
 * tile's groups gs bytes apart) x one token, over nb blocks:
 *   y[8 g + i] (+)= row 8 g + i . token   (first: from 0, else onto y)
 * Each row's arithmetic is tile1's, step for step (same outputs, bit for
 * bit); the groups take turns within each block, so that a thread reads GD
 * weight streams at once: with each prefetched, more lines are in flight
 * from DRAM than one stream gets (Zen 3, 2 threads: Q8_0 decode ~20 -> ~27
 * GB/s, Q4_0 ~35 -> ~40). Each group is the next of a stream (tiles.h,
 * tl_tile_stream_gather): after this segment's nb blocks the stream goes
 * on skip bytes further, at the next group's same blocks (0 when the
 * segment is the whole row), and the prefetches follow it there (Zen 3,
 * decbench KB_SHAPE=640,262144: 1 thread 12.4-15.5 -> 15.6-18.6 GB/s, 2
 * threads 26.0-26.5 -> 32.3-35.0; TinyLlama's matrices +2-7%).
 * The K types' 1-2 KB super-blocks want their prefetches spread out: four
 * groups that each asked for a whole block at its start were slower than
 * tile1 (Q4_K 35 -> 27 GB/s), and so were four with prefetch_part's
 * quarter-block slices (14% slower, 1 thread); a line per group every
 * chunk or two, as dec_q4_K_4 asks, made four groups the faster way. */
typedef void (*dec_fn)(int64_t nb, bool first, float *y, const uint8_t *w, size_t gs,
                       size_t skip, const uint8_t *x, const uint8_t *a);

/* dec_fn's tile for two tokens (token c: x + c ldx, prep a + c lda,
 * outputs y + c ldy), each weight chunk decoded once for both. The same
 * outputs as two dec_fn calls, bit for bit; two tokens (a batch of two
 * sequences, a speculative draft) were each a dec_fn call, which decoded
 * every weight twice and made them 1.5x one token's time (AVX2, Zen 3, 2
 * threads, TinyLlama-shaped pp2, abbench 10 rounds: Q4_0 1.30x, Q8_0 1.37x,
 * 10 of 10 pairs; the K types' own, dec_k4 and dec_q6_K: Q4_K_M 1.19x). */
typedef void (*dec2_fn)(int64_t nb, bool first, float *y, size_t ldy, const uint8_t *w, size_t gs,
                        size_t skip, const uint8_t *x, size_t ldx, const uint8_t *a, size_t lda);

typedef struct x8_kind {
    int64_t qk;   /* elements per block */
    size_t wblk;  /* packed bytes per group and block */
    size_t xblk;  /* activation (vec_dot_type) bytes per block */
    size_t ablk;  /* prep bytes per token and block (the slot's act_blk) */
    int64_t seg;  /* blocks per segment: a token tile's pass over the row groups */
    /* nb blocks of an activation row -> what the tiles read beside them,
     * ablk bytes a block: the slot's act_prep, which the backend runs once
     * per product and lays after each row's blocks (a + c * lda) */
    tl_act_prep_fn prep;
    tile_fn tile, tile1;
    tile_fn tile3; /* 3 tokens, one group */
    dec_fn dec;   /* for cc of 1-2, GD groups at a time (NULL: tile1 on every group) */
    dec2_fn dec2; /* for a pair of those tokens (NULL: dec on each) */
    /* decode (cc < CT): ask for the call's first PF_AHEAD weight bytes
     * before the tiles start. They prefetch PF_AHEAD past the block in use,
     * which leaves those cold unless the previous call ran into them, and
     * the backend's threads take turns at 64-row chunks (the K types: Zen 3,
     * 2 threads, decode from DRAM: +1-3%) */
    bool pf_start;
} x8_kind;

/* kind_T, from the x8_kind fields given (tile, tile1 and dec are X8_TILES_G's
 * instances for T; dec2 too where given), and tl_avx2_gemm_Tx8, the kern.h gemm of T's layout:
 *   W (nr, n) T packed by 8 @ X^T (nc, n) -> y[c * ldy + r]   (n % qk == 0, nr % 8 == 0)
 * with tl_avx2_act_prep_Tx8, its act_prep (the rows x carry its entries) */
#define X8_GEMM(T, ...)                                                                         \
    static const x8_kind kind_##T = { .tile = tile_##T##_full, .tile1 = tile_##T##_1,           \
                                      .tile3 = tile_##T##_3, .dec = dec_##T##_4, __VA_ARGS__ };  \
    void tl_avx2_gemm_##T##x8(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy,          \
                              const void *w, size_t ldw, const void *x, size_t ldx) {           \
        tl_avx2_gemm_x8(&kind_##T, n, nr, nc, y, ldy, w, ldw, x, ldx);                          \
    }                                                                                           \
    void tl_avx2_act_prep_##T##x8(void *dst, const void *x, int64_t nb) {                       \
        kind_##T.prep(dst, x, nb);                                                              \
    }

// W (nr, n) packed by 8 @ X^T (nc, n) -> y[c * ldy + r]   (n % qk == 0, nr % 8 == 0)
void tl_avx2_gemm_x8(const x8_kind *k, int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy,
                     const void *w, size_t ldw, const void *x, size_t ldx);

/* tile_T_full / tile_T_3 / tile_T_1: the tile_fn instances of an
 * always-inline body BODY(P C, ...) for C = CT, 3 and 1. P: the body's
 * leading arguments (a type switch), each followed by a comma, or nothing. */
#define X8_TILES(T, BODY, ...)                                                                \
    static void tile_##T##_full(int64_t nb, bool first, float *y, size_t ldy, const uint8_t *w, \
                                const uint8_t *x, size_t ldx, const uint8_t *a, size_t lda) { \
        BODY(__VA_ARGS__ CT, nb, first, y, ldy, w, x, ldx, a, lda);                          \
    }                                                                                        \
    static void tile_##T##_1(int64_t nb, bool first, float *y, size_t ldy, const uint8_t *w,   \
                             const uint8_t *x, size_t ldx, const uint8_t *a, size_t lda) {    \
        BODY(__VA_ARGS__ 1, nb, first, y, ldy, w, x, ldx, a, lda);                           \
    }                                                                                        \
    static void tile_##T##_3(int64_t nb, bool first, float *y, size_t ldy, const uint8_t *w,   \
                             const uint8_t *x, size_t ldx, const uint8_t *a, size_t lda) {    \
        BODY(__VA_ARGS__ 3, nb, first, y, ldy, w, x, ldx, a, lda);                           \
    }

/* dec_T_4 and dec2_T_4: the dec_fn and dec2_fn instances of an
 * always-inline decode body BODY(P C, nb, first, y, ldy, w, gs, skip, x,
 * ldx, a, lda) of GD groups x C tokens, for C = 1 and 2; P as for X8_TILES */
#define X8_DECS(T, BODY, ...)                                                                 \
    static void dec_##T##_4(int64_t nb, bool first, float *y, const uint8_t *w, size_t gs,      \
                            size_t skip, const uint8_t *x, const uint8_t *a) {                 \
        BODY(__VA_ARGS__ 1, nb, first, y, 0, w, gs, skip, x, 0, a, 0);                       \
    }                                                                                        \
    static void dec2_##T##_4(int64_t nb, bool first, float *y, size_t ldy, const uint8_t *w,   \
                             size_t gs, size_t skip, const uint8_t *x, size_t ldx,             \
                             const uint8_t *a, size_t lda) {                                   \
        BODY(__VA_ARGS__ 2, nb, first, y, ldy, w, gs, skip, x, ldx, a, lda);                 \
    }

/* tile_T_full, tile_T_1, tile_T_3, dec_T_4 and dec2_T_4: the instances of
 * one always-inline body BODY(P G, C, ...) of G groups x C tokens, for
 * (1, CT), (1, 1), (1, 3), (GD, 1) and (GD, 2); P as for X8_TILES */
#define X8_TILES_G(T, BODY, ...)                                                              \
    static void tile_##T##_full(int64_t nb, bool first, float *y, size_t ldy, const uint8_t *w, \
                                const uint8_t *x, size_t ldx, const uint8_t *a, size_t lda) { \
        BODY(__VA_ARGS__ 1, CT, nb, first, y, ldy, w, 0, 0, x, ldx, a, lda);                 \
    }                                                                                        \
    static void tile_##T##_1(int64_t nb, bool first, float *y, size_t ldy, const uint8_t *w,   \
                             const uint8_t *x, size_t ldx, const uint8_t *a, size_t lda) {    \
        BODY(__VA_ARGS__ 1, 1, nb, first, y, ldy, w, 0, 0, x, ldx, a, lda);                  \
    }                                                                                        \
    static void tile_##T##_3(int64_t nb, bool first, float *y, size_t ldy, const uint8_t *w,   \
                             const uint8_t *x, size_t ldx, const uint8_t *a, size_t lda) {    \
        BODY(__VA_ARGS__ 1, 3, nb, first, y, ldy, w, 0, 0, x, ldx, a, lda);                  \
    }                                                                                        \
    X8_DECS(T, BODY, __VA_ARGS__ GD,)

#endif
