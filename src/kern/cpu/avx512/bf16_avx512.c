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
#include <assert.h>
#include <string.h>

#include "kern/cpu/avx512/avx512.h"
#include "kern/cpu/tiles.h"

// 32 bf16 at p
TL_AVX512_INLINE __m512bh ld_bf32(const uint16_t *p) { return (__m512bh)_mm512_loadu_si512(p); }
// the first m < 32 bf16 at p, the other elements 0
TL_AVX512_INLINE __m512bh ld_bf32_part(const uint16_t *p, int64_t m) {
    return (__m512bh)_mm512_maskz_loadu_epi16((__mmask32)((1u << m) - 1), p);
}

#define BF16_MADD(acc, w, x) _mm512_dpbf16_ps(acc, w, x)
// w (n,) bf16 . x (n,) bf16 -> *s;  W (nr, n) bf16 @ X^T (nc, n) bf16 -> y[c * ldy + r]
TL_AVX512_ELEM_KERNELS(, tl_avx512_vec_dot_bf16, tl_avx512_gemm_bf16, __m512bh, 32, ld_bf32, ld_bf32_part,
                       BF16_MADD)

/* ---- BF16 repacked 16 rows to a group (the kern.h repack slot) ----------- *
 * bf16x16: for each pair of elements (k, k+1), k even, the 16 rows' pairs
 * as 32-bit words, 64 bytes (one line); an odd n gets a zero pad element,
 * so a packed row is 2 (n + n % 2) bytes. A vdpbf16ps takes one such
 * vector and a token's pair broadcast (a load uop): 32 products into the
 * 16 rows' lanes, with no
 * conversion of either operand and no reduction across lanes at the end,
 * where the row-major gemm above reduces every output. The activations
 * stay the vec_dot_type's rows (no act form); each call copies a K
 * segment of them to a buffer, its lone last element (odd n) padded.
 *
 * Tiles: G groups (16 G rows) x C tokens of accumulators, as the F16
 * ones (repack_f16_avx512.c): one group by up to CT = 24 tokens in
 * prefill (24 accumulators and the weight vector of 32 zmm), 4 groups for
 * one or two tokens (decode), prefetching each group's stream PF_AHEAD
 * ahead, 2 for 3 to 5. Per pair a tile issues G weight loads, C broadcasts
 * and G C vdpbf16ps. */
enum {
    CT = 24,           /* tokens per tile */
    XPAIRS = CT * 256, /* activation pairs a K segment keeps in L1 (24 KiB): cc tokens x XPAIRS / cc */
    PF_AHEAD = 2048,   /* decode: weight bytes prefetched ahead of each group's stream */
    GD = 4,            /* groups per tile of 1 or 2 tokens */
};
static_assert(sizeof(uint32_t) * 16 == 64, "bf16x16 pair: 16 rows' element pairs, one zmm");

// pairs per K segment for tiles of cc tokens
TL_AVX512_INLINE int64_t seg_pairs(int cc) { return XPAIRS / cc / 16 * 16; }

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
            for (; p < n / 2; p++) _mm512_storeu_si512(d + 16 * p, tl_avx512_gather16(rows, src + 4 * p));
        for (; p < np; p++)
            for (int i = 0; i < 16; i++) {
                const uint16_t *r = (const uint16_t *)(src + (size_t)i * ldw);
                d[16 * p + i] = r[2 * p] | (2 * p + 1 < n ? (uint32_t)r[2 * p + 1] << 16 : 0);
            }
    }
}

/* acc[g][c] += the products of pair p: w (group 0 at pair 0, groups gs
 * bytes apart) and xp (token 0's pairs, tokens S pairs apart) */
TL_AVX512_INLINE void pair_step(__m512 acc[GD][CT], const uint8_t *w, size_t gs, const uint32_t *xp,
                                int64_t S, int64_t p, const int G, const int C) {
    __m512bh wv[GD];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) wv[g] = (__m512bh)_mm512_loadu_si512(w + (size_t)g * gs + 64 * (size_t)p);
#pragma GCC unroll 24
    for (int c = 0; c < C; c++) {
        const __m512bh xb = (__m512bh)_mm512_set1_epi32((int)xp[c * S + p]);
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) acc[g][c] = _mm512_dpbf16_ps(acc[g][c], wv[g], xb);
    }
}

/* G groups x C tokens over pairs [p0, p0 + len):
 *   y[c * ldy + 16 g + i] (+)= sum over the pairs of w[g][p][i] . xp[c][p]
 * (first: start from 0); w at pair p0, as pair_step's; xp the segment's
 * pairs, S = seg_pairs(C) apart per token (a constant in each tile). */
TL_AVX512_INLINE void tile(int64_t len, bool first, float *y, size_t ldy, const uint8_t *w,
                           size_t gs, const uint32_t *xp, const int G, const int C) {
    const int64_t S = seg_pairs(C);
    __m512 acc[GD][CT];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
#pragma GCC unroll 24
        for (int c = 0; c < C; c++)
            acc[g][c] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(y + (size_t)c * ldy + 16 * g);
    for (int64_t p = 0; p < len; p++) {
        if (C <= 2) {
            /* decode streams each weight byte once, from DRAM: each group's
             * line PF_AHEAD bytes ahead; past the segment's end, the same
             * offset in the next tile's group (G groups on), which would
             * otherwise start cold */
            const uint8_t *pw = tl_tile_pf_target(w, 64 * (size_t)p, PF_AHEAD, 64 * (size_t)len,
                                                  w + (size_t)G * gs);
#pragma GCC unroll 4
            for (int g = 0; g < G; g++) _mm_prefetch((const char *)pw + (size_t)g * gs, _MM_HINT_T0);
        }
        pair_step(acc, w, gs, xp, S, p, G, C);
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
#pragma GCC unroll 24
        for (int c = 0; c < C; c++) _mm512_storeu_ps(y + (size_t)c * ldy + 16 * g, acc[g][c]);
}

typedef void (*tile_fn)(int64_t len, bool first, float *y, size_t ldy, const uint8_t *w, size_t gs,
                        const uint32_t *xp);

#define TILE(G, C)                                                                             \
    static void tile_##G##_##C(int64_t len, bool first, float *y, size_t ldy, const uint8_t *w, \
                               size_t gs, const uint32_t *xp) {                                \
        tile(len, first, y, ldy, w, gs, xp, G, C);                                             \
    }
TL_AVX512_GROUP_TILES(TILE)
#undef TILE
static_assert((int)CT == (int)TL_AVX512_GROUP_TILES_CT && sizeof tiles1 / sizeof *tiles1 == CT + 1,
              "one 1-group tile per token count 1..CT");

/* x (2 len elements, or 2 len - 1 when half: a row's lone last one) bf16
 * -> xp (len,) pairs, that lone element's pair padded with a zero */
static void copy_pairs(int64_t len, bool half, uint32_t *xp, const uint8_t *x) {
    memcpy(xp, x, 4 * (size_t)(len - half));
    if (half) {
        uint16_t e;
        memcpy(&e, x + 4 * (size_t)(len - 1), sizeof e);
        xp[len - 1] = e;
    }
}

/* W (nr, n) bf16x16 @ X^T (nc, n) bf16 -> y[c * ldy + r]   (nr % 16 == 0)
 * Token tiles of up to CT (the remainder in one narrower tile); K segments
 * whose activation pairs, copied to a stack buffer a constant stride apart
 * (one base register for a tile's tokens, as the F16 tiles' converted
 * rows), serve every row group of the call; groups in tiles of the widest
 * G the token count wants, then narrower ones. */
void tl_avx512_gemm_bf16x16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *vw,
                            size_t ldw, const void *vx, size_t ldx) {
    const uint8_t *w = vw, *x = vx;
    const size_t gs = 16 * ldw; /* bytes per group */
    const int64_t ng = nr / 16, npt = (n + 1) / 2; /* pairs, a lone last element's included */
    _Alignas(64) uint32_t xp[XPAIRS];
    for (int64_t c0 = 0; c0 < nc; c0 += CT) {
        const int cc = nc - c0 < CT ? (int)(nc - c0) : CT;
        const int64_t seg = seg_pairs(cc);
        const int gmax = cc <= 2 ? 4 : cc <= 5 ? 2 : 1;
        float *yc = y + (size_t)c0 * ldy;
        for (int64_t p0 = 0; p0 < npt; p0 += seg) {
            const int64_t len = npt - p0 < seg ? npt - p0 : seg;
            const bool half = (n & 1) && p0 + len == npt; /* the segment ends on the lone element */
            for (int c = 0; c < cc; c++)
                copy_pairs(len, half, xp + c * seg, x + (size_t)(c0 + c) * ldx + 4 * (size_t)p0);
            const uint8_t *wk = w + 64 * (size_t)p0;
            const bool first = p0 == 0;
            int64_t g = 0;
            if (gmax >= 4)
                for (; g + 4 <= ng; g += 4) tiles4[cc](len, first, yc + 16 * g, ldy, wk + g * gs, gs, xp);
            if (gmax >= 2)
                for (; g + 2 <= ng; g += 2) tiles2[cc](len, first, yc + 16 * g, ldy, wk + g * gs, gs, xp);
            for (; g < ng; g++) tiles1[cc](len, first, yc + 16 * g, ldy, wk + g * gs, gs, xp);
        }
    }
}
