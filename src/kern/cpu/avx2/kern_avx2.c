/* kern_avx2.c — AVX2 (+FMA +F16C) float kernels, activation conversions and
 * the AVX2 kernel table.
 *
 * Activation quantizers produce the same bytes as the scalar reference's
 * (quant.c): same absmax, same scale expressions (q8_0/q8_1: id = 127/amax,
 * d = amax/127; q8_K: -127/max), same rounding (nearest-even), so every variant feeds identical activations to the dot
 * products and results differ only by the dot products' float order. */
#include <math.h>
#include <string.h>

#include "core/quant.h"
#include "kern/cpu/avx2/avx2.h"
#include "kern/cpu/tiles.h"

/* ---- float dot products ------------------------------------------------- *
 * Eight lanes, four accumulators, fused multiply-add; the reference sums in
 * double, so the tests allow n * 2^-23 relative to sum |w x|. */

// w (n,) f32 . x (n,) f32 -> *s
static void vec_dot_f32(int64_t n, float *s, const void *vw, const void *vx) {
    const float *w = vw, *x = vx;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
    float sum = tl_avx2_hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) sum += w[i] * x[i];
    *s = sum;
}

TL_AVX2_INLINE __m256 ld_f16(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
TL_AVX2_INLINE __m256 ld_bf16(const uint16_t *p) {
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

// w (n,) f16 . x (n,) f16 -> *s
static void vec_dot_f16(int64_t n, float *s, const void *vw, const void *vx) {
    const uint16_t *w = vw, *x = vx;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_fmadd_ps(ld_f16(w + i), ld_f16(x + i), a0);
        a1 = _mm256_fmadd_ps(ld_f16(w + i + 8), ld_f16(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(ld_f16(w + i + 16), ld_f16(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(ld_f16(w + i + 24), ld_f16(x + i + 24), a3);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(ld_f16(w + i), ld_f16(x + i), a0);
    float sum = tl_avx2_hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) sum += tl_avx2_h2f(w[i]) * tl_avx2_h2f(x[i]);
    *s = sum;
}

// w (n,) bf16 . x (n,) bf16 -> *s
static void vec_dot_bf16(int64_t n, float *s, const void *vw, const void *vx) {
    const uint16_t *w = vw, *x = vx;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(ld_bf16(w + i), ld_bf16(x + i), a0);
        a1 = _mm256_fmadd_ps(ld_bf16(w + i + 8), ld_bf16(x + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(ld_bf16(w + i), ld_bf16(x + i), a0);
    float sum = tl_avx2_hsum(_mm256_add_ps(a0, a1));
    for (; i < n; i++) sum += tl_bf16_to_f32(w[i]) * tl_bf16_to_f32(x[i]);
    *s = sum;
}

/* F16 tile: R rows x C tokens of 8-wide accumulators; each converted
 * activation vector serves R rows, each weight vector C tokens. */
#define F16_TILE(NAME, R, C)                                                                  \
    static void NAME(int64_t n, float *y, size_t ldy, const uint8_t *w, size_t ldw,           \
                     const uint8_t *x, size_t ldx) {                                         \
        __m256 acc[R][C];                                                                    \
        for (int r = 0; r < R; r++)                                                          \
            for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps();                     \
        int64_t i = 0;                                                                       \
        for (; i + 8 <= n; i += 8) {                                                         \
            __m256 xv[C];                                                                    \
            _Pragma("GCC unroll 8") for (int c = 0; c < C; c++)                              \
                xv[c] = ld_f16((const uint16_t *)(x + (size_t)c * ldx) + i);                 \
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                            \
                const __m256 wv = ld_f16((const uint16_t *)(w + (size_t)r * ldw) + i);       \
                _Pragma("GCC unroll 8") for (int c = 0; c < C; c++)                          \
                    acc[r][c] = _mm256_fmadd_ps(wv, xv[c], acc[r][c]);                       \
            }                                                                                \
        }                                                                                    \
        for (int r = 0; r < R; r++)                                                          \
            for (int c = 0; c < C; c++) {                                                    \
                float s = tl_avx2_hsum(acc[r][c]);                                           \
                const uint16_t *wr = (const uint16_t *)(w + (size_t)r * ldw);                \
                const uint16_t *xr = (const uint16_t *)(x + (size_t)c * ldx);                \
                for (int64_t j = i; j < n; j++) s += tl_avx2_h2f(wr[j]) * tl_avx2_h2f(xr[j]); \
                y[(size_t)c * ldy + r] = s;                                                  \
            }                                                                                \
    }

F16_TILE(f16_tile_4x3, 4, 3)
F16_TILE(f16_tile_4x1, 4, 1)
F16_TILE(f16_tile_1x1, 1, 1)

// W (nr, n) f16 @ X^T (nc, n) f16 -> y[c * ldy + r]
void tl_avx2_gemm_f16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *vw,
                      size_t ldw, const void *vx, size_t ldx) {
    tl_tile_walk(n, nr, nc, y, ldy, vw, ldw, vx, ldx, 4, 3, f16_tile_4x3, 4, f16_tile_4x1,
                 f16_tile_1x1);
}

/* ---- activation conversions --------------------------------------------- */

TL_AVX2_INLINE __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

TL_AVX2_INLINE float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* four vectors of int32 (each in [-127, 127]) -> 32 int8 in element order */
TL_AVX2_INLINE __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    const __m256i v = _mm256_packs_epi16(ab, cd);
    /* packs interleave 128-bit lanes: restore order */
    return _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* One 32-float block -> 32 int8 as the activation quantizers
 * (tl_quant_row_q8_0_act / _q8_1_act): id = 127 / amax, round half to
 * even (cvtps under the default rounding mode). q[0..3] get the int32
 * quants for q8_1's sum; returns d = amax / 127 (unrounded). */
TL_AVX2_INLINE float q8_act_block(const float *x, int8_t *qs, __m256i q[4]) {
    const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
    const __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    const float amax = hmax(_mm256_max_ps(_mm256_max_ps(abs_ps(v0), abs_ps(v1)),
                                          _mm256_max_ps(abs_ps(v2), abs_ps(v3))));
    const __m256 m = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    q[0] = _mm256_cvtps_epi32(_mm256_mul_ps(v0, m));
    q[1] = _mm256_cvtps_epi32(_mm256_mul_ps(v1, m));
    q[2] = _mm256_cvtps_epi32(_mm256_mul_ps(v2, m));
    q[3] = _mm256_cvtps_epi32(_mm256_mul_ps(v3, m));
    _mm256_storeu_si256((__m256i *)qs, pack32(q[0], q[1], q[2], q[3]));
    return amax / 127.0f;
}

// x (k,) f32 -> q8_0 blocks, as tl_quant_row_q8_0_act
static void from_float_q8_0(const float *x, void *vy, int64_t k) {
    tl_block_q8_0 *y = vy;
    __m256i q[4];
    for (int64_t i = 0; i < k / TL_QK8_0; i++, x += TL_QK8_0)
        y[i].d = (uint16_t)_cvtss_sh(q8_act_block(x, y[i].qs, q), 0);
}

// x (k,) f32 -> q8_1 blocks, as tl_quant_row_q8_1_act
static void from_float_q8_1(const float *x, void *vy, int64_t k) {
    tl_block_q8_1 *y = vy;
    __m256i q[4];
    for (int64_t i = 0; i < k / TL_QK8_1; i++, x += TL_QK8_1) {
        const float d = q8_act_block(x, y[i].qs, q);
        y[i].d = (uint16_t)_cvtss_sh(d, 0);
        __m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_hadd_epi32(s4, s4);
        s4 = _mm_hadd_epi32(s4, s4);
        y[i].s = (uint16_t)_cvtss_sh(d * (float)_mm_cvtsi128_si32(s4), 0);
    }
}

// x (k,) f32 -> q8_K blocks, as tl_quant_row_q8_K_ref
static void from_float_q8_K(const float *x, void *vy, int64_t k) {
    tl_block_q8_K *y = vy;
    for (int64_t i = 0; i < k / TL_QK_K; i++, x += TL_QK_K) {
        __m256 am = _mm256_setzero_ps();
        for (int j = 0; j < TL_QK_K; j += 8) am = _mm256_max_ps(am, abs_ps(_mm256_loadu_ps(x + j)));
        const float amax = hmax(am);
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        /* the reference keeps the first element of largest magnitude: its
         * sign decides the scale's */
        float max = 0;
        for (int j = 0; j < TL_QK_K; j++)
            if (fabsf(x[j]) == amax) { max = x[j]; break; }
        const float iscale = -127.f / max;
        const __m256 m = _mm256_set1_ps(iscale);
        const __m256i lim = _mm256_set1_epi32(127);
        for (int j = 0; j < TL_QK_K; j += 32) {
            __m256i q[4];
            for (int v = 0; v < 4; v++) {
                const __m256 p = _mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * v), m);
                /* nearest-even, as the reference's nearest_int */
                q[v] = _mm256_min_epi32(lim, _mm256_cvtps_epi32(
                                                 _mm256_round_ps(p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
            }
            const __m256i b = pack32(q[0], q[1], q[2], q[3]);
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), b);
            /* bsums of the two 16-element halves */
            const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), b);
            const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
            __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm_shuffle_epi32(_mm256_castsi256_si128(s32), 0x4E));
            __m128i g = _mm_add_epi32(_mm256_extracti128_si256(s32, 1),
                                      _mm_shuffle_epi32(_mm256_extracti128_si256(s32, 1), 0x4E));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
            g = _mm_add_epi32(g, _mm_shuffle_epi32(g, 0xB1));
            y[i].bsums[j / 16] = (int16_t)_mm_cvtsi128_si32(h);
            y[i].bsums[j / 16 + 1] = (int16_t)_mm_cvtsi128_si32(g);
        }
        y[i].d = 1 / iscale;
    }
}

// x (k,) f32 -> f16, round to nearest even
static void from_float_f16(const float *x, void *vy, int64_t k) {
    uint16_t *y = vy;
    int64_t i = 0;
    for (; i + 8 <= k; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < k; i++) y[i] = tl_f32_to_f16(x[i]);
}

// f16 (k,) -> f32
static void to_float_f16(const void *vx, float *y, int64_t k) {
    const uint16_t *x = vx;
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) _mm256_storeu_ps(y + i, ld_f16(x + i));
    for (; i < k; i++) y[i] = tl_f16_to_f32(x[i]);
}

/* ---- the table ---------------------------------------------------------- */

static const tl_kern avx2_table = {
    .name = "avx2",
    .vec_dot = {
        [TL_DTYPE_F32] = vec_dot_f32,
        [TL_DTYPE_F16] = vec_dot_f16,
        [TL_DTYPE_BF16] = vec_dot_bf16,
        [TL_DTYPE_Q4_0] = tl_avx2_vec_dot_q4_0,
        [TL_DTYPE_Q4_1] = tl_avx2_vec_dot_q4_1,
        [TL_DTYPE_Q5_0] = tl_avx2_vec_dot_q5_0,
        [TL_DTYPE_Q5_1] = tl_avx2_vec_dot_q5_1,
        [TL_DTYPE_Q8_0] = tl_avx2_vec_dot_q8_0,
        [TL_DTYPE_Q2_K] = tl_avx2_vec_dot_q2_K,
        [TL_DTYPE_Q3_K] = tl_avx2_vec_dot_q3_K,
        [TL_DTYPE_Q4_K] = tl_avx2_vec_dot_q4_K,
        [TL_DTYPE_Q5_K] = tl_avx2_vec_dot_q5_K,
        [TL_DTYPE_Q6_K] = tl_avx2_vec_dot_q6_K,
    },
    .gemm = {
        [TL_DTYPE_F16] = tl_avx2_gemm_f16,
        [TL_DTYPE_BF16] = tl_avx2_gemm_bf16,
        [TL_DTYPE_Q4_0] = tl_avx2_gemm_q4_0,
        [TL_DTYPE_Q4_1] = tl_avx2_gemm_q4_1,
        [TL_DTYPE_Q5_0] = tl_avx2_gemm_q5_0,
        [TL_DTYPE_Q5_1] = tl_avx2_gemm_q5_1,
        [TL_DTYPE_Q8_0] = tl_avx2_gemm_q8_0,
        [TL_DTYPE_Q2_K] = tl_avx2_gemm_q2_K,
        [TL_DTYPE_Q3_K] = tl_avx2_gemm_q3_K,
        [TL_DTYPE_Q4_K] = tl_avx2_gemm_q4_K,
        [TL_DTYPE_Q5_K] = tl_avx2_gemm_q5_K,
        [TL_DTYPE_Q6_K] = tl_avx2_gemm_q6_K,
    },
    .from_float = {
        [TL_DTYPE_F16] = from_float_f16,
        [TL_DTYPE_Q8_0] = from_float_q8_0,
        [TL_DTYPE_Q8_1] = from_float_q8_1,
        [TL_DTYPE_Q8_K] = from_float_q8_K,
    },
    .to_float = {
        [TL_DTYPE_F16] = to_float_f16,
    },
    .repack = {
        [TL_DTYPE_F16] = { 8, tl_avx2_row_size_f16x8, tl_avx2_pack_f16x8, tl_avx2_gemm_f16x8,
                           TL_DTYPE_F32, tl_avx2_act_f16r },
        [TL_DTYPE_BF16] = { 8, tl_avx2_row_size_bf16x8, tl_avx2_pack_bf16x8, tl_avx2_gemm_bf16x8,
                            TL_DTYPE_F32, tl_avx2_act_bf16r },
        [TL_DTYPE_Q4_0] = { 8, tl_avx2_row_size_q4_0x8, tl_avx2_pack_q4_0x8, tl_avx2_gemm_q4_0x8,
                            .act_prep = tl_avx2_act_prep_q4_0x8, .act_blk = TL_AVX2_ACT_Q4_0 },
        [TL_DTYPE_Q4_1] = { 8, tl_avx2_row_size_q4_1x8, tl_avx2_pack_q4_1x8, tl_avx2_gemm_q4_1x8,
                            .act_prep = tl_avx2_act_prep_q4_1x8, .act_blk = TL_AVX2_ACT_Q4_1 },
        [TL_DTYPE_Q5_0] = { 8, tl_avx2_row_size_q5_0x8, tl_avx2_pack_q5_0x8, tl_avx2_gemm_q5_0x8,
                            .act_prep = tl_avx2_act_prep_q5_0x8, .act_blk = TL_AVX2_ACT_Q4_0 },
        [TL_DTYPE_Q5_1] = { 8, tl_avx2_row_size_q5_1x8, tl_avx2_pack_q5_1x8, tl_avx2_gemm_q5_1x8,
                            .act_prep = tl_avx2_act_prep_q5_1x8, .act_blk = TL_AVX2_ACT_Q4_1 },
        [TL_DTYPE_Q8_0] = { 8, tl_avx2_row_size_q8_0x8, tl_avx2_pack_q8_0x8, tl_avx2_gemm_q8_0x8,
                            .act_prep = tl_avx2_act_prep_q8_0x8, .act_blk = TL_AVX2_ACT_Q8_0 },
        [TL_DTYPE_Q2_K] = { 8, tl_avx2_row_size_q2_Kx8, tl_avx2_pack_q2_Kx8, tl_avx2_gemm_q2_Kx8,
                            .act_prep = tl_avx2_act_prep_q2_Kx8, .act_blk = TL_AVX2_ACT_Q2_K },
        [TL_DTYPE_Q3_K] = { 8, tl_avx2_row_size_q3_Kx8, tl_avx2_pack_q3_Kx8, tl_avx2_gemm_q3_Kx8,
                            .act_prep = tl_avx2_act_prep_q3_Kx8, .act_blk = TL_AVX2_ACT_Q2_K },
        [TL_DTYPE_Q4_K] = { 8, tl_avx2_row_size_q4_Kx8, tl_avx2_pack_q4_Kx8, tl_avx2_gemm_q4_Kx8,
                            .act_prep = tl_avx2_act_prep_q4_Kx8, .act_blk = TL_AVX2_ACT_Q4_K },
        [TL_DTYPE_Q5_K] = { 8, tl_avx2_row_size_q5_Kx8, tl_avx2_pack_q5_Kx8, tl_avx2_gemm_q5_Kx8,
                            .act_prep = tl_avx2_act_prep_q5_Kx8, .act_blk = TL_AVX2_ACT_Q4_K },
        [TL_DTYPE_Q6_K] = { 8, tl_avx2_row_size_q6_Kx8, tl_avx2_pack_q6_Kx8, tl_avx2_gemm_q6_Kx8,
                            .act_prep = tl_avx2_act_prep_q6_Kx8, .act_blk = TL_AVX2_ACT_Q6_K },
    },
    .attn_qk_f16 = tl_avx2_attn_qk_f16,
    .attn_pv_f16 = tl_avx2_attn_pv_f16,
    .attn_qk_q8_0 = tl_avx2_attn_qk_q8_0,
    .attn_pv_q8_0 = tl_avx2_attn_pv_q8_0,
    .exp_sum = tl_avx2_exp_sum,
    .max_f32 = tl_avx2_max_f32,
    .axpy_q8_0 = tl_avx2_axpy_q8_0,
    .scale = tl_avx2_scale,
    .silu_mul = tl_avx2_silu_mul,
    .gelu_mul = tl_avx2_gelu_mul,
    .norm_row = tl_avx2_norm_row,
    .rope = tl_avx2_rope,
};

const tl_kern *tl_kern_avx2_table(void) { return &avx2_table; }
