/* avx512.h — internals shared by the AVX-512 (F, BW, VL, DQ, VNNI) kernel
 * files. Only included from kern/cpu/avx512/, which is compiled with those
 * flags; the selector runs these kernels only where CPUID reports
 * avx512f/bw/vl/vnni, on top of the AVX2 table (whatever slot this variant
 * leaves NULL keeps the AVX2 kernel).
 *
 * Integer products use VNNI's vpdpbusd (u8 x s8, four products summed into
 * each int32 lane, no saturation): weights are made unsigned (nibbles as
 * they are, q8_0 biased by +128) and the activations stay signed q8, so
 * every block's integer sum is exact for every byte, -128 included. */
#ifndef TL_KERN_AVX512_H
#define TL_KERN_AVX512_H

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kern/cpu/tiles.h"
#include "kern/kern.h"

#define TL_AVX512_INLINE static inline __attribute__((always_inline))

// v (16,) -> sum, in a fixed order (the same for every caller)
TL_AVX512_INLINE float tl_avx512_hsum(__m512 v) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// 4 bytes at p, broadcast to every 32-bit lane (the activation operand of a
// row-interleaved tile: one row per lane, the same 4 activations for all)
TL_AVX512_INLINE __m512i tl_avx512_bcast4(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* s + vpdpbusd(u, 4 signed bytes at p broadcast): the broadcast always
 * embedded in the instruction (a memory operand {1to16}). With the
 * intrinsics, a tile that uses one activation dword against several weight
 * vectors (the decode tiles' groups) gets it hoisted into a register per
 * dword by the compiler: 8 per token and block, and past 2 tokens the
 * tile spills (gcc 12). */
TL_AVX512_INLINE __m512i tl_avx512_dpbusd_b4(__m512i s, __m512i u, const void *p) {
    __asm__("vpdpbusd %[x]%{1to16%}, %[u], %[s]" : [s] "+v"(s) : [u] "v"(u), [x] "m"(*(const int32_t *)p));
    return s;
}

/* Slot j of 32 elements of 16 rows in 5-bit planes (tiles.h,
 * tl_tile_pack_k5_slots; Q5_0, Q5_1, Q5_K) that start at p: each row lane's
 * 4 quants (0..31) as bytes. A slot is a mask, or 4-6 operations for the 3
 * split over the planes' top bits. The 16-bit shifts pull the next byte's
 * low bits into the top of each byte; the masks drop them. */
TL_AVX512_INLINE __m512i tl_avx512_k5_slot(const uint8_t *p, const int j) {
    const __m512i m7 = _mm512_set1_epi8(7);
    if (j < 5) return _mm512_and_si512(_mm512_loadu_si512(p + 64 * j), _mm512_set1_epi8(0x1F));
    if (j < 7) { /* 5: P0 and P1; 6: P2 and P3 */
        const uint8_t *pl = p + 128 * (j - 5);
        const __m512i lo = _mm512_srli_epi16(_mm512_loadu_si512(pl), 5);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(pl + 64), 2), _mm512_set1_epi8(0x18));
        return _mm512_ternarylogic_epi32(lo, hi, m7, 0xEC); /* (lo & 7) | hi */
    }
    const __m512i lo = _mm512_srli_epi16(_mm512_loadu_si512(p + 256), 5);
    const __m512i b3 = _mm512_srli_epi16(_mm512_loadu_si512(p + 64), 4);  /* bit 3 */
    const __m512i b4 = _mm512_srli_epi16(_mm512_loadu_si512(p + 192), 3); /* bit 4 */
    const __m512i hi = _mm512_and_si512(_mm512_ternarylogic_epi32(b3, b4, _mm512_set1_epi8(0x08), 0xE4),
                                        _mm512_set1_epi8(0x18)); /* bit 3 of b3, 4 of b4 */
    return _mm512_ternarylogic_epi32(lo, hi, m7, 0xEC);
}

/* The packers' gathers (weights are repacked at load, 16 rows to a group):
 * a packed chunk is one dword of each of the group's 16 rows, one
 * vpgatherdd over the rows' byte offsets i * ldw, i < 16. The offsets are
 * int32: the packers gather only where ldw <= TL_AVX512_GATHER_MAX_LDW and
 * keep a scalar copy for wider strides. */
#define TL_AVX512_GATHER_MAX_LDW ((size_t)INT32_MAX / 16)
TL_AVX512_INLINE __m512i tl_avx512_row_offsets(size_t ldw) {
    return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                              _mm512_set1_epi32((int32_t)ldw));
}

/* the dwords at p + rows[i], i < 16. vpgatherdd merges into its destination
 * under its mask, so it waits for that register's last writer: given
 * _mm512_i32gather_epi32 (mask all ones, source undefined) GCC 12 reuses
 * one register, and a block's gathers queue one behind the other
 * (llvm-mca, Ice Lake server: a q8_0 block 237 cycles that way, 73 this
 * way; clang zeroes the destination itself for this reason). A mask GCC
 * cannot see through keeps the zero source: each gather starts from a
 * fresh zeroed register. */
TL_AVX512_INLINE __m512i tl_avx512_gather16(__m512i rows, const void *p) {
    __mmask16 all = 0xFFFF;
    __asm__("" : "+r"(all));
    return _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), all, rows, p, 1);
}

/* The index of a word permute (vpermw) that splits 16 dword lanes into
 * their low words, then their high words: word j < 16 from word 2j, word
 * j >= 16 from 2(j - 16) + 1 (two 2-byte fields gathered as one dword ->
 * the 16 rows' first field, then their second) */
TL_AVX512_INLINE __m512i tl_avx512_split_words(void) {
    return _mm512_setr_epi32(0x00020000, 0x00060004, 0x000A0008, 0x000E000C, 0x00120010, 0x00160014,
                             0x001A0018, 0x001E001C, 0x00030001, 0x00070005, 0x000B0009, 0x000F000D,
                             0x00130011, 0x00170015, 0x001B0019, 0x001F001D);
}

// sum of the 32 signed bytes at p
TL_AVX512_INLINE int32_t tl_avx512_sum32_i8(const int8_t *p) {
    const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1),
                                          _mm256_loadu_si256((const __m256i *)p));
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
    return _mm_cvtsi128_si32(h);
}

/* The vec_dot and gemm of a 2-byte element type (F16; BF16 in its own
 * file, the one built with -mavx512bf16) whose vector step takes W
 * elements into 16 f32 lanes: VEC the loaded type, LD(p) loads W elements,
 * LDP(p, m) the first m < W (the others 0: neither read nor counted),
 * MADD(acc, w, x) adds their products. Defines
 *   LINK void VEC_DOT(n, s, w, x)     // w (n,) . x (n,) -> *s, 4 accumulators
 *   LINK void GEMM(n, nr, nc, y, ldy, w, ldw, x, ldx)
 *                                     // W (nr, n) @ X^T (nc, n) -> y[c * ldy + r]
 * GEMM: tiles of R rows x C tokens (4x4, 4x1, 1x1 over tl_tile_walk) of
 * such accumulators, reduced at the end; each activation vector serves R
 * rows, each weight vector C tokens; the n % W tail is one masked step
 * after the loop (a branch inside it would cost the accumulators their
 * registers). */
#define TL_AVX512_ELEM_KERNELS(LINK, VEC_DOT, GEMM, VEC, W, LD, LDP, MADD)                    \
    LINK void VEC_DOT(int64_t n, float *s, const void *vw, const void *vx) {                  \
        const uint16_t *w = vw, *x = vx;                                                      \
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                           \
        int64_t i = 0;                                                                        \
        for (; i + 4 * (W) <= n; i += 4 * (W)) {                                              \
            a0 = MADD(a0, LD(w + i), LD(x + i));                                              \
            a1 = MADD(a1, LD(w + i + (W)), LD(x + i + (W)));                                  \
            a2 = MADD(a2, LD(w + i + 2 * (W)), LD(x + i + 2 * (W)));                          \
            a3 = MADD(a3, LD(w + i + 3 * (W)), LD(x + i + 3 * (W)));                          \
        }                                                                                     \
        for (; i + (W) <= n; i += (W)) a0 = MADD(a0, LD(w + i), LD(x + i));                   \
        if (i < n) a1 = MADD(a1, LDP(w + i, n - i), LDP(x + i, n - i));                       \
        *s = tl_avx512_hsum(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));     \
    }                                                                                         \
    /* elements [i, i + m) (m <= W) of R rows and C tokens into acc[r][c] */                  \
    TL_AVX512_INLINE void GEMM##_step(__m512 acc[4][4], int64_t i, int64_t m, const uint8_t *w, \
                                      size_t ldw, const uint8_t *x, size_t ldx, const int R,  \
                                      const int C) {                                          \
        VEC xv[4];                                                                            \
        _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) {                                 \
            const uint16_t *xr = (const uint16_t *)(x + (size_t)c * ldx) + i;                 \
            xv[c] = m == (W) ? LD(xr) : LDP(xr, m);                                           \
        }                                                                                     \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {                                 \
            const uint16_t *wr = (const uint16_t *)(w + (size_t)r * ldw) + i;                 \
            const VEC wv = m == (W) ? LD(wr) : LDP(wr, m);                                    \
            _Pragma("GCC unroll 4") for (int c = 0; c < C; c++) acc[r][c] =                   \
                MADD(acc[r][c], wv, xv[c]);                                                   \
        }                                                                                     \
    }                                                                                         \
    TL_AVX512_INLINE void GEMM##_tile(int64_t n, float *y, size_t ldy, const uint8_t *w,      \
                                      size_t ldw, const uint8_t *x, size_t ldx, const int R,  \
                                      const int C) {                                          \
        __m512 acc[4][4];                                                                     \
        for (int r = 0; r < R; r++)                                                           \
            for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_ps();                      \
        int64_t i = 0;                                                                        \
        for (; i + (W) <= n; i += (W)) GEMM##_step(acc, i, (W), w, ldw, x, ldx, R, C);        \
        if (i < n) GEMM##_step(acc, i, n - i, w, ldw, x, ldx, R, C);                          \
        for (int r = 0; r < R; r++)                                                           \
            for (int c = 0; c < C; c++) y[(size_t)c * ldy + r] = tl_avx512_hsum(acc[r][c]);   \
    }                                                                                         \
    static void GEMM##_4x4(int64_t n, float *y, size_t ldy, const uint8_t *w, size_t ldw,     \
                           const uint8_t *x, size_t ldx) {                                    \
        GEMM##_tile(n, y, ldy, w, ldw, x, ldx, 4, 4);                                         \
    }                                                                                         \
    static void GEMM##_4x1(int64_t n, float *y, size_t ldy, const uint8_t *w, size_t ldw,     \
                           const uint8_t *x, size_t ldx) {                                    \
        GEMM##_tile(n, y, ldy, w, ldw, x, ldx, 4, 1);                                         \
    }                                                                                         \
    static void GEMM##_1x1(int64_t n, float *y, size_t ldy, const uint8_t *w, size_t ldw,     \
                           const uint8_t *x, size_t ldx) {                                    \
        GEMM##_tile(n, y, ldy, w, ldw, x, ldx, 1, 1);                                         \
    }                                                                                         \
    LINK void GEMM(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *vw,   \
                   size_t ldw, const void *vx, size_t ldx) {                                  \
        tl_tile_walk(n, nr, nc, y, ldy, vw, ldw, vx, ldx, 4, 4, GEMM##_4x4, 4, GEMM##_4x1,    \
                     GEMM##_1x1);                                                             \
    }

/* Row-major quantized kernels (quant_avx512.c: q4_0, q8_0; kquant_avx512.c:
 * q4_K, q5_K, q6_K), with the kern.h contracts: vec_dot_T (tl_vec_dot_fn),
 * gemm_T (tl_gemm_fn). Each vec_dot is its gemm's 1 x 1 case, so the two
 * agree bit for bit. */
#define TL_AVX512_QDECL(T)                                                                   \
    void tl_avx512_vec_dot_##T(int64_t n, float *s, const void *w, const void *x);           \
    void tl_avx512_gemm_##T(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy,         \
                            const void *w, size_t ldw, const void *x, size_t ldx);
TL_AVX512_QDECL(q4_0)
TL_AVX512_QDECL(q8_0)
TL_AVX512_QDECL(q4_K)
TL_AVX512_QDECL(q5_K)
TL_AVX512_QDECL(q6_K)
#undef TL_AVX512_QDECL

/* Q4_0, Q8_0, Q5_0, Q4_1, Q5_1 (repack_avx512.c), Q2_K, Q3_K
 * (repack_k23_avx512.c), Q4_K, Q5_K and Q6_K (repack_k_avx512.c)
 * repacked 16 rows to a group, one row per 32-bit lane of a zmm: the kern.h
 * repack slot's row_size, pack and gemm (nr % 16 == 0). */
#define TL_AVX512_RDECL(T)                                                                   \
    size_t tl_avx512_row_size_##T(int64_t n);                                                \
    void tl_avx512_pack_##T(void *dst, const void *w, size_t ldw, int64_t n, int64_t nr);    \
    void tl_avx512_gemm_##T(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy,         \
                            const void *w, size_t ldw, const void *x, size_t ldx);
TL_AVX512_RDECL(q4_0x16)
TL_AVX512_RDECL(q8_0x16)
TL_AVX512_RDECL(q5_0x16)
TL_AVX512_RDECL(q4_1x16)
TL_AVX512_RDECL(q5_1x16)
/* and their slots' act_prep: per activation block, TL_AVX512_ACT_X16
 * bytes (the tiles' seed, d and s, repack_avx512.c) */
enum { TL_AVX512_ACT_X16 = 12 };
void tl_avx512_act_prep_q4_0x16(void *dst, const void *x, int64_t nb);
void tl_avx512_act_prep_q8_0x16(void *dst, const void *x, int64_t nb);
void tl_avx512_act_prep_q5_0x16(void *dst, const void *x, int64_t nb);
void tl_avx512_act_prep_q8_1x16(void *dst, const void *x, int64_t nb);
TL_AVX512_RDECL(q2_Kx16)
TL_AVX512_RDECL(q3_Kx16)
TL_AVX512_RDECL(q4_Kx16)
TL_AVX512_RDECL(q5_Kx16)
TL_AVX512_RDECL(q6_Kx16)
/* F16 and BF16 (repack_half_avx512.c): 16 rows' values per element (BF16:
 * per pair of elements), one row per lane; the activations (f16 / bf16
 * rows) are converted once per K segment, not per step. AVX-512F only. */
TL_AVX512_RDECL(f16x16)
TL_AVX512_RDECL(bf16x16)
#undef TL_AVX512_RDECL

/* Attention tiles over an F16 cache (attn_avx512.c), with the kern.h
 * contracts of the slots attn_qk_f16 and attn_pv_f16. */
void tl_avx512_attn_qk_f16(int R, int nt, int hd, const float *q, const uint16_t *k, float *s,
                           size_t lds);
void tl_avx512_attn_pv_f16(int R, int nt, int hdv, float *o, const float *p, size_t ldp,
                           const uint16_t *v, size_t ldv);

/* The tile set of the 2-byte element layouts (f16x16, bf16x16):
 * TILE(P, A, G, C) defines P_tile_G_C, a tile of G groups x C tokens (A:
 * what the file's tiles take besides), for the shapes their gemms call: 4
 * groups x 1-2 tokens (decode), 2 x 1-5, 1 x 1-24 (CT); then P_tiles4,
 * P_tiles2 and P_tiles1, indexed by the token count, of the file's tile_fn
 * type. */
#define TL_AVX512_GROUP_TILES(TILE, P, A)                                                      \
    TILE(P, A, 4, 1) TILE(P, A, 4, 2)                                                          \
    TILE(P, A, 2, 1) TILE(P, A, 2, 2) TILE(P, A, 2, 3) TILE(P, A, 2, 4) TILE(P, A, 2, 5)       \
    TILE(P, A, 1, 1) TILE(P, A, 1, 2) TILE(P, A, 1, 3) TILE(P, A, 1, 4) TILE(P, A, 1, 5)       \
    TILE(P, A, 1, 6) TILE(P, A, 1, 7) TILE(P, A, 1, 8) TILE(P, A, 1, 9) TILE(P, A, 1, 10)      \
    TILE(P, A, 1, 11) TILE(P, A, 1, 12) TILE(P, A, 1, 13) TILE(P, A, 1, 14) TILE(P, A, 1, 15)  \
    TILE(P, A, 1, 16) TILE(P, A, 1, 17) TILE(P, A, 1, 18) TILE(P, A, 1, 19) TILE(P, A, 1, 20)  \
    TILE(P, A, 1, 21) TILE(P, A, 1, 22) TILE(P, A, 1, 23) TILE(P, A, 1, 24)                    \
    static const tile_fn P##_tiles4[] = { NULL, P##_tile_4_1, P##_tile_4_2 };                 \
    static const tile_fn P##_tiles2[] = { NULL,         P##_tile_2_1, P##_tile_2_2,           \
                                          P##_tile_2_3, P##_tile_2_4, P##_tile_2_5 };         \
    static const tile_fn P##_tiles1[] = {                                                      \
        NULL,          P##_tile_1_1,  P##_tile_1_2,  P##_tile_1_3,  P##_tile_1_4,              \
        P##_tile_1_5,  P##_tile_1_6,  P##_tile_1_7,  P##_tile_1_8,  P##_tile_1_9,              \
        P##_tile_1_10, P##_tile_1_11, P##_tile_1_12, P##_tile_1_13, P##_tile_1_14,             \
        P##_tile_1_15, P##_tile_1_16, P##_tile_1_17, P##_tile_1_18, P##_tile_1_19,             \
        P##_tile_1_20, P##_tile_1_21, P##_tile_1_22, P##_tile_1_23, P##_tile_1_24,             \
    };
enum { TL_AVX512_GROUP_TILES_CT = 24 }; /* the widest 1-group tile of that set */

/* BF16 (bf16_avx512.c, the one file built with -mavx512bf16): kern.h's
 * vec_dot and gemm contracts. Callable only where CPUID reports
 * AVX512_BF16, which kern_avx512.c checks before it puts them in its
 * table. */
void tl_avx512_vec_dot_bf16(int64_t n, float *s, const void *w, const void *x);
void tl_avx512_gemm_bf16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *w,
                         size_t ldw, const void *x, size_t ldx);

#endif
