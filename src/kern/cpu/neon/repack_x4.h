/* repack_x4.h — what the NEON 4-row repacked tiles share (repack_neon.c,
 * repack_k23_neon.c): the register-level helpers, the decode prefetch
 * rules, the tile and kind types, and the one driver, tl_neon_gemm_x4
 * (defined in repack_neon.c, whose header comment explains the layout
 * family). Included only by files compiled with the NEON flags. */
#ifndef TL_KERN_CPU_NEON_REPACK_X4_H
#define TL_KERN_CPU_NEON_REPACK_X4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kern/cpu/neon/neon.h"
#include "kern/cpu/tiles.h"

enum {
    CT = 4,            /* tokens per full tile */
    GT = 2,            /* groups per full tile, where the type has one */
    GD = 4,            /* groups per decode tile, where the type has one */
    ACT_BYTES = 8192,  /* prep scratch per call: one segment of CT tokens */
};

TL_NEON_INLINE int8x16_t s8(uint8x16_t v) { return vreinterpretq_s8_u8(v); }

/* acc + w . x[4 lane .. 4 lane + 3] per row lane (lane: a constant once
 * inlined and unrolled; the switch makes it one for the intrinsic) */
TL_NEON_INLINE int32x4_t dot_lane(int32x4_t acc, int8x16_t w, int8x16_t x, const int lane) {
    switch (lane) {
    case 0: return vdotq_laneq_s32(acc, w, x, 0);
    case 1: return vdotq_laneq_s32(acc, w, x, 1);
    case 2: return vdotq_laneq_s32(acc, w, x, 2);
    default: return vdotq_laneq_s32(acc, w, x, 3);
    }
}

/* A compiler barrier for memory accesses: the loads after it stay after
 * it. gcc's pre-RA scheduler otherwise hoists every chunk load and decode
 * of a block to its start (16 decoded chunks live in a 2-group tile), which
 * leaves no registers for the accumulators: they went to the stack, a load
 * and a store per fma (objdump). Register values are not affected. */
#define ORDER() __asm__ volatile("" ::: "memory")

/* acc + a * v[lane] (fused) */
TL_NEON_INLINE float32x4_t fma_lane(float32x4_t acc, float32x4_t a, float32x4_t v, const int lane) {
    switch (lane) {
    case 0: return vfmaq_laneq_f32(acc, a, v, 0);
    case 1: return vfmaq_laneq_f32(acc, a, v, 1);
    case 2: return vfmaq_laneq_f32(acc, a, v, 2);
    default: return vfmaq_laneq_f32(acc, a, v, 3);
    }
}

/* the 4 rows' f16 scales -> float */
TL_NEON_INLINE float32x4_t ld_f16x4(const uint16_t *p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

TL_NEON_INLINE float32x4_t acc_init(bool first, const float *y) {
    return first ? vdupq_n_f32(0.0f) : vld1q_f32(y);
}

/* sub-block s's 4 rows' unsigned bytes (from v: sub-blocks 4 (s / 4) ..,
 * 4 bytes each) -> int32x4 */
TL_NEON_INLINE int32x4_t widen_u8_sub(uint8x16_t v, const int s) {
    const uint16x8_t h = (s & 2) ? vmovl_high_u8(v) : vmovl_u8(vget_low_u8(v));
    return vreinterpretq_s32_u32((s & 1) ? vmovl_high_u16(h) : vmovl_u16(vget_low_u16(h)));
}

/* ms + m (int16 mins of two sub-blocks, 4 rows each) * their two lanes
 * 2k, 2k + 1 of ys */
TL_NEON_INLINE int32x4_t mins_pair(int32x4_t ms, int16x8_t m, int16x8_t ys, const int k) {
    switch (k) {
    case 0: return vmlal_high_laneq_s16(vmlal_laneq_s16(ms, vget_low_s16(m), ys, 0), m, ys, 1);
    case 1: return vmlal_high_laneq_s16(vmlal_laneq_s16(ms, vget_low_s16(m), ys, 2), m, ys, 3);
    case 2: return vmlal_high_laneq_s16(vmlal_laneq_s16(ms, vget_low_s16(m), ys, 4), m, ys, 5);
    default: return vmlal_high_laneq_s16(vmlal_laneq_s16(ms, vget_low_s16(m), ys, 6), m, ys, 7);
    }
}

/* acc - a * v[lane] (fused) */
TL_NEON_INLINE float32x4_t fms_lane(float32x4_t acc, float32x4_t a, float32x4_t v, const int lane) {
    switch (lane) {
    case 0: return vfmsq_laneq_f32(acc, a, v, 0);
    case 1: return vfmsq_laneq_f32(acc, a, v, 1);
    case 2: return vfmsq_laneq_f32(acc, a, v, 2);
    default: return vfmsq_laneq_f32(acc, a, v, 3);
    }
}

/* acc + a * token c's value, acc - a * it: ds holds the prep's values of
 * a segment block's tokens; a full tile (C = CT) reads them as the lanes of
 * one vector, a narrower tile, starting at token ct, token ct + c's in every
 * lane (the same fused products either way) */
TL_NEON_INLINE float32x4_t fma_tok(float32x4_t acc, float32x4_t a, const float *ds, int ct, const int c,
                                   const int C) {
    return C == CT ? fma_lane(acc, a, vld1q_f32(ds), c) : vfmaq_f32(acc, a, vdupq_n_f32(ds[ct + c]));
}
TL_NEON_INLINE float32x4_t fms_tok(float32x4_t acc, float32x4_t a, const float *ds, int ct, const int c,
                                   const int C) {
    return C == CT ? fms_lane(acc, a, vld1q_f32(ds), c) : vfmsq_f32(acc, a, vdupq_n_f32(ds[ct + c]));
}

/* Decode streams each weight byte once, from DRAM. As on x86 (see
 * repack_avx2.c, measured there on Zen 3), the one-token tiles ask for the
 * block PF_AHEAD bytes ahead as they start it (one group) or each of their
 * GD streams PF_DEC ahead. A group holds its blocks back to back and each
 * group is the next of its stream (tiles.h, tl_tile_stream_gather; one
 * group: the next tile's), so a prefetch past a group's end runs on into
 * the stream's next group. PRFM never faults, so running past the call's
 * last group is harmless. The distances are x86's, not tuned on ARM. */
enum { PF_AHEAD = 2048, PF_DEC = 1024 };

TL_NEON_INLINE void prefetch_lines(const uint8_t *p, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, 3);
}

/* Slice part (< nparts) of the lines of the block ahead bytes past p
 * (PF_AHEAD: one group; PF_DEC: each of GD streams): a K super-block is
 * 9-14 lines, asked for a slice per sub-block step rather than all at once
 * (repack_avx2.c prefetch_part: measured there). */
TL_NEON_INLINE void prefetch_part(const uint8_t *p, size_t ahead, size_t bytes, int part, int nparts) {
    const size_t n = (bytes + 63) / 64;
    for (size_t i = n * (size_t)part / (size_t)nparts; i < n * (size_t)(part + 1) / (size_t)nparts; i++)
        __builtin_prefetch(p + ahead + 64 * i, 0, 3);
}

/* wb[g] = block b (blk bytes) of group g < G of a tile (groups gs bytes
 * apart), prefetching ahead in the decode shapes (C < CT) */
TL_NEON_INLINE void group_blocks(const uint8_t *wb[GD], const uint8_t *w, size_t gs, size_t blk,
                                 int64_t b, const int G, const int C) {
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
        wb[g] = w + (size_t)g * gs + (size_t)b * blk;
        if (C < CT) prefetch_lines(wb[g] + (G == 1 ? PF_AHEAD : PF_DEC), blk);
    }
}


/* Per token c < nc and block b < nb of x (vec_dot_type rows ldx apart, from
 * block b0) -> the segment's prep a (one struct per block, token lanes
 * interleaved). */
typedef void (*prep_fn)(uint8_t *a, const uint8_t *x, size_t ldx, int nc, int64_t b0, int64_t nb);

/* G groups of 4 packed rows (w: the first group, groups gs bytes apart, nbt
 * blocks each) x C tokens (x: token 0's row, rows ldx bytes apart; prep
 * lanes ct .. ct + C - 1 of a), over blocks [b0, b0 + nb):
 *   y[c * ldy + 4 g + i] (+)= row 4 g + i . token c   (first: from 0, else onto y)
 * The shape (G, C) is the instance's: (GT, CT), (1, CT) or (1, 3) tiles,
 * (GD, 1), (GD, 2) or (1, 1) decode. */
typedef void (*tile_fn)(int64_t b0, int64_t nb, int64_t nbt, bool first, float *y, size_t ldy,
                        const uint8_t *w, size_t gs, const uint8_t *x, size_t ldx,
                        const uint8_t *a, int ct);

typedef struct x4_kind {
    int64_t qk;    /* elements per block */
    int64_t seg;   /* blocks per segment: seg blocks of prep fit ACT_BYTES */
    prep_fn prep;
    tile_fn tile_g; /* GT groups x CT tokens (NULL: tile_c on each group) */
    tile_fn tile_c; /* 1 group x CT tokens */
    tile_fn dec;    /* GD groups x 1 token (NULL: tile_1 on each group) */
    tile_fn dec2;   /* GD groups x 2 tokens (NULL: dec on each token) */
    tile_fn tile_1; /* 1 group x 1 token */
    tile_fn tile3;  /* 1 group x 3 tokens */
} x4_kind;

/* The driver (repack_neon.c, whose header comment tells how it walks):
 * W (nr, n) packed by 4 @ X^T (nc, n) -> y[c * ldy + r]   (n % qk == 0, nr % 4 == 0) */
void tl_neon_gemm_x4(const x4_kind *k, int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy,
                     const void *vw, size_t ldw, const void *vx, size_t ldx);

/* The tile_fn instances of an always-inline body tile_T(G, C, ...) */
#define X4_TILE(T, NAME, G, C)                                                                 \
    static void NAME(int64_t b0, int64_t nb, int64_t nbt, bool first, float *y, size_t ldy,     \
                     const uint8_t *w, size_t gs, const uint8_t *x, size_t ldx,                 \
                     const uint8_t *a, int ct) {                                                \
        tile_##T(G, C, b0, nb, nbt, first, y, ldy, w, gs, x, ldx, a, ct);                      \
    }

#endif
