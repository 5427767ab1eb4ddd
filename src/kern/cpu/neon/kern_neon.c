/* kern_neon.c — NEON (ARMv8.2-A + dotprod + fp16) float kernels, activation
 * conversions and the NEON kernel table.
 *
 * Activation quantizers produce the same bytes as the scalar reference's
 * (core/quant.c): same absmax, same scale expressions (q8_0/q8_1:
 * id = 127/amax, d = amax/127; q8_K: -127/max), and the rounding is the
 * reference's own nearest_int trick (add 1.5 * 2^23, keep the mantissa)
 * done four lanes at a time, narrowed by truncation as the reference's
 * (int8_t) cast. Every variant thus feeds identical activations to the dot
 * products. */
#include <math.h>
#include <string.h>

#include "core/quant.h"
#include "kern/cpu/neon/neon.h"
#include "kern/cpu/tiles.h"

/* ---- float dot products ------------------------------------------------- *
 * Four lanes, four accumulators, fused multiply-add; the reference sums in
 * double, so the tests allow n * 2^-23 relative to sum |w x|. */

// w (n,) f32 . x (n,) f32 -> *s
static void vec_dot_f32(int64_t n, float *s, const void *vw, const void *vx) {
    const float *w = vw, *x = vx;
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = vfmaq_f32(a0, vld1q_f32(w + i), vld1q_f32(x + i));
        a1 = vfmaq_f32(a1, vld1q_f32(w + i + 4), vld1q_f32(x + i + 4));
        a2 = vfmaq_f32(a2, vld1q_f32(w + i + 8), vld1q_f32(x + i + 8));
        a3 = vfmaq_f32(a3, vld1q_f32(w + i + 12), vld1q_f32(x + i + 12));
    }
    for (; i + 4 <= n; i += 4) a0 = vfmaq_f32(a0, vld1q_f32(w + i), vld1q_f32(x + i));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++) sum += w[i] * x[i];
    *s = sum;
}

/* 8 halves -> two float vectors */
TL_NEON_INLINE float32x4x2_t ld_f16x8(const uint16_t *p) {
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(p));
    float32x4x2_t r;
    r.val[0] = vcvt_f32_f16(vget_low_f16(h));
    r.val[1] = vcvt_high_f32_f16(h);
    return r;
}

TL_NEON_INLINE float32x4_t ld_f16x4(const uint16_t *p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

/* 8 bfloat16 -> two float vectors (a bf16 is the top half of a float) */
TL_NEON_INLINE float32x4x2_t ld_bf16x8(const uint16_t *p) {
    const uint16x8_t h = vld1q_u16(p);
    float32x4x2_t r;
    r.val[0] = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
    r.val[1] = vreinterpretq_f32_u32(vshll_high_n_u16(h, 16));
    return r;
}

// w (n,) f16 . x (n,) f16 -> *s
static void vec_dot_f16(int64_t n, float *s, const void *vw, const void *vx) {
    const uint16_t *w = vw, *x = vx;
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const float32x4x2_t w0 = ld_f16x8(w + i), x0 = ld_f16x8(x + i);
        const float32x4x2_t w1 = ld_f16x8(w + i + 8), x1 = ld_f16x8(x + i + 8);
        a0 = vfmaq_f32(a0, w0.val[0], x0.val[0]);
        a1 = vfmaq_f32(a1, w0.val[1], x0.val[1]);
        a2 = vfmaq_f32(a2, w1.val[0], x1.val[0]);
        a3 = vfmaq_f32(a3, w1.val[1], x1.val[1]);
    }
    for (; i + 4 <= n; i += 4) a0 = vfmaq_f32(a0, ld_f16x4(w + i), ld_f16x4(x + i));
    float sum = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
    for (; i < n; i++) sum += tl_neon_h2f(w[i]) * tl_neon_h2f(x[i]);
    *s = sum;
}

// w (n,) bf16 . x (n,) bf16 -> *s
static void vec_dot_bf16(int64_t n, float *s, const void *vw, const void *vx) {
    const uint16_t *w = vw, *x = vx;
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float32x4x2_t wv = ld_bf16x8(w + i), xv = ld_bf16x8(x + i);
        a0 = vfmaq_f32(a0, wv.val[0], xv.val[0]);
        a1 = vfmaq_f32(a1, wv.val[1], xv.val[1]);
    }
    float sum = vaddvq_f32(vaddq_f32(a0, a1));
    for (; i < n; i++) sum += tl_bf16_to_f32(w[i]) * tl_bf16_to_f32(x[i]);
    *s = sum;
}

/* F16 tile: R rows x C tokens of 4-wide accumulators; each converted
 * activation vector serves R rows, each weight vector C tokens.
 *   W (R, n) f16 @ X^T (C, n) f16 -> y[c * ldy + r] */
#define F16_TILE(NAME, R, C)                                                                  \
    static void NAME(int64_t n, float *y, size_t ldy, const uint8_t *w, size_t ldw,           \
                     const uint8_t *x, size_t ldx) {                                         \
        float32x4_t acc[R][C];                                                               \
        for (int r = 0; r < R; r++)                                                          \
            for (int c = 0; c < C; c++) acc[r][c] = vdupq_n_f32(0.0f);                       \
        int64_t i = 0;                                                                       \
        for (; i + 4 <= n; i += 4) {                                                         \
            float32x4_t xv[C];                                                               \
            _Pragma("GCC unroll 8") for (int c = 0; c < C; c++)                              \
                xv[c] = ld_f16x4((const uint16_t *)(x + (size_t)c * ldx) + i);               \
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                            \
                const float32x4_t wv = ld_f16x4((const uint16_t *)(w + (size_t)r * ldw) + i); \
                _Pragma("GCC unroll 8") for (int c = 0; c < C; c++)                          \
                    acc[r][c] = vfmaq_f32(acc[r][c], wv, xv[c]);                             \
            }                                                                                \
        }                                                                                    \
        for (int r = 0; r < R; r++)                                                          \
            for (int c = 0; c < C; c++) {                                                    \
                float s = vaddvq_f32(acc[r][c]);                                             \
                const uint16_t *wr = (const uint16_t *)(w + (size_t)r * ldw);                \
                const uint16_t *xr = (const uint16_t *)(x + (size_t)c * ldx);                \
                for (int64_t j = i; j < n; j++) s += tl_neon_h2f(wr[j]) * tl_neon_h2f(xr[j]); \
                y[(size_t)c * ldy + r] = s;                                                  \
            }                                                                                \
    }

F16_TILE(f16_tile_4x4, 4, 4)
F16_TILE(f16_tile_4x1, 4, 1)
F16_TILE(f16_tile_1x1, 1, 1)

// W (nr, n) f16 @ X^T (nc, n) f16 -> y[c * ldy + r]
static void gemm_f16(int64_t n, int64_t nr, int64_t nc, float *y, size_t ldy, const void *vw,
                     size_t ldw, const void *vx, size_t ldx) {
    tl_tile_walk(n, nr, nc, y, ldy, vw, ldw, vx, ldx, 4, 4, f16_tile_4x4, 4, f16_tile_4x1,
                 f16_tile_1x1);
}

/* ---- activation conversions --------------------------------------------- */

/* v (4,) -> tl_nearest_int(v) (4,): the same float add and bit extraction,
 * so it agrees with the reference on every input, ties (to even) included */
TL_NEON_INLINE int32x4_t nearest_int4(float32x4_t v) {
    const int32x4_t t = vreinterpretq_s32_f32(vaddq_f32(v, vdupq_n_f32(12582912.f)));
    return vsubq_s32(vandq_s32(t, vdupq_n_s32(0x007fffff)), vdupq_n_s32(0x00400000));
}

/* four int32 vectors -> 16 int8 by truncation, as an (int8_t) cast */
TL_NEON_INLINE int8x16_t narrow16(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
    const int16x8_t ab = vcombine_s16(vmovn_s32(a), vmovn_s32(b));
    const int16x8_t cd = vcombine_s16(vmovn_s32(c), vmovn_s32(d));
    return vcombine_s8(vmovn_s16(ab), vmovn_s16(cd));
}

/* One 32-float block -> 32 int8 as the activation quantizers
 * (tl_quant_row_q8_0_act / _q8_1_act): id = 127 / amax, nearest_int.
 * Returns d = amax / 127 (unrounded); *sum gets the sum of the int8s. */
TL_NEON_INLINE float q8_act_block(const float *x, int8_t *qs, int *sum) {
    float32x4_t v[8];
    float32x4_t m = vdupq_n_f32(0.0f);
    for (int j = 0; j < 8; j++) {
        v[j] = vld1q_f32(x + 4 * j);
        m = vmaxq_f32(m, vabsq_f32(v[j]));
    }
    const float amax = vmaxvq_f32(m);
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int32x4_t q[8];
    for (int j = 0; j < 8; j++) q[j] = nearest_int4(vmulq_n_f32(v[j], id));
    const int8x16_t b0 = narrow16(q[0], q[1], q[2], q[3]), b1 = narrow16(q[4], q[5], q[6], q[7]);
    vst1q_s8(qs, b0);
    vst1q_s8(qs + 16, b1);
    *sum = vaddlvq_s8(b0) + vaddlvq_s8(b1);
    return amax / 127.0f;
}

// x (k,) f32 -> q8_0 blocks (k % 32 == 0), as tl_quant_row_q8_0_act
static void from_float_q8_0(const float *x, void *vy, int64_t k) {
    tl_block_q8_0 *y = vy;
    int sum;
    for (int64_t i = 0; i < k / TL_QK8_0; i++, x += TL_QK8_0)
        y[i].d = tl_neon_f2h(q8_act_block(x, y[i].qs, &sum));
}

// x (k,) f32 -> q8_1 blocks (k % 32 == 0), as tl_quant_row_q8_1_act
static void from_float_q8_1(const float *x, void *vy, int64_t k) {
    tl_block_q8_1 *y = vy;
    int sum;
    for (int64_t i = 0; i < k / TL_QK8_1; i++, x += TL_QK8_1) {
        const float d = q8_act_block(x, y[i].qs, &sum);
        y[i].d = tl_neon_f2h(d);
        y[i].s = tl_neon_f2h(d * (float)sum);
    }
}

// x (k,) f32 -> q8_K blocks (k % 256 == 0), as tl_quant_row_q8_K_ref
static void from_float_q8_K(const float *x, void *vy, int64_t k) {
    tl_block_q8_K *y = vy;
    for (int64_t i = 0; i < k / TL_QK_K; i++, x += TL_QK_K) {
        float32x4_t am = vdupq_n_f32(0.0f);
        for (int j = 0; j < TL_QK_K; j += 4) am = vmaxq_f32(am, vabsq_f32(vld1q_f32(x + j)));
        const float amax = vmaxvq_f32(am);
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
        const int32x4_t lim = vdupq_n_s32(127);
        for (int j = 0; j < TL_QK_K; j += 16) {
            int32x4_t q[4];
            for (int v = 0; v < 4; v++)
                q[v] = vminq_s32(lim, nearest_int4(vmulq_n_f32(vld1q_f32(x + j + 4 * v), iscale)));
            const int8x16_t b = narrow16(q[0], q[1], q[2], q[3]);
            vst1q_s8(y[i].qs + j, b);
            y[i].bsums[j / 16] = vaddlvq_s8(b);
        }
        y[i].d = 1 / iscale;
    }
}

// x (k,) f32 -> f16 (k,), round to nearest even
static void from_float_f16(const float *x, void *vy, int64_t k) {
    uint16_t *y = vy;
    int64_t i = 0;
    for (; i + 4 <= k; i += 4) vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    for (; i < k; i++) y[i] = tl_f32_to_f16(x[i]);
}

// f16 (k,) -> f32 (k,)
static void to_float_f16(const void *vx, float *y, int64_t k) {
    const uint16_t *x = vx;
    int64_t i = 0;
    for (; i + 4 <= k; i += 4) vst1q_f32(y + i, ld_f16x4(x + i));
    for (; i < k; i++) y[i] = tl_f16_to_f32(x[i]);
}

/* ---- the table ---------------------------------------------------------- */

static const tl_kern neon_table = {
    .name = "neon",
    .vec_dot = {
        [TL_DTYPE_F32] = vec_dot_f32,
        [TL_DTYPE_F16] = vec_dot_f16,
        [TL_DTYPE_BF16] = vec_dot_bf16,
        [TL_DTYPE_Q4_0] = tl_neon_vec_dot_q4_0,
        [TL_DTYPE_Q4_1] = tl_neon_vec_dot_q4_1,
        [TL_DTYPE_Q5_0] = tl_neon_vec_dot_q5_0,
        [TL_DTYPE_Q5_1] = tl_neon_vec_dot_q5_1,
        [TL_DTYPE_Q8_0] = tl_neon_vec_dot_q8_0,
        [TL_DTYPE_Q2_K] = tl_neon_vec_dot_q2_K,
        [TL_DTYPE_Q3_K] = tl_neon_vec_dot_q3_K,
        [TL_DTYPE_Q4_K] = tl_neon_vec_dot_q4_K,
        [TL_DTYPE_Q5_K] = tl_neon_vec_dot_q5_K,
        [TL_DTYPE_Q6_K] = tl_neon_vec_dot_q6_K,
    },
    .gemm = {
        [TL_DTYPE_F16] = gemm_f16,
        [TL_DTYPE_Q4_0] = tl_neon_gemm_q4_0,
        [TL_DTYPE_Q4_1] = tl_neon_gemm_q4_1,
        [TL_DTYPE_Q5_0] = tl_neon_gemm_q5_0,
        [TL_DTYPE_Q5_1] = tl_neon_gemm_q5_1,
        [TL_DTYPE_Q8_0] = tl_neon_gemm_q8_0,
        [TL_DTYPE_Q2_K] = tl_neon_gemm_q2_K,
        [TL_DTYPE_Q3_K] = tl_neon_gemm_q3_K,
        [TL_DTYPE_Q4_K] = tl_neon_gemm_q4_K,
        [TL_DTYPE_Q5_K] = tl_neon_gemm_q5_K,
        [TL_DTYPE_Q6_K] = tl_neon_gemm_q6_K,
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
        [TL_DTYPE_F16] = { 4, tl_neon_row_size_half_x4, tl_neon_pack_half_x4, tl_neon_gemm_f16x4,
                           TL_DTYPE_F32, tl_neon_act_f16r },
        [TL_DTYPE_BF16] = { 4, tl_neon_row_size_half_x4, tl_neon_pack_half_x4, tl_neon_gemm_bf16x4,
                            TL_DTYPE_F32, tl_neon_act_bf16r },
        [TL_DTYPE_Q4_0] = { 4, tl_neon_row_size_q4_0x4, tl_neon_pack_q4_0x4, tl_neon_gemm_q4_0x4 },
        [TL_DTYPE_Q4_1] = { 4, tl_neon_row_size_q4_1x4, tl_neon_pack_q4_1x4, tl_neon_gemm_q4_1x4 },
        [TL_DTYPE_Q5_0] = { 4, tl_neon_row_size_q5_0x4, tl_neon_pack_q5_0x4, tl_neon_gemm_q5_0x4 },
        [TL_DTYPE_Q5_1] = { 4, tl_neon_row_size_q5_1x4, tl_neon_pack_q5_1x4, tl_neon_gemm_q5_1x4 },
        [TL_DTYPE_Q8_0] = { 4, tl_neon_row_size_q8_0x4, tl_neon_pack_q8_0x4, tl_neon_gemm_q8_0x4 },
        [TL_DTYPE_Q2_K] = { 4, tl_neon_row_size_q2_Kx4, tl_neon_pack_q2_Kx4, tl_neon_gemm_q2_Kx4 },
        [TL_DTYPE_Q3_K] = { 4, tl_neon_row_size_q3_Kx4, tl_neon_pack_q3_Kx4, tl_neon_gemm_q3_Kx4 },
        [TL_DTYPE_Q4_K] = { 4, tl_neon_row_size_q4_Kx4, tl_neon_pack_q4_Kx4, tl_neon_gemm_q4_Kx4 },
        [TL_DTYPE_Q5_K] = { 4, tl_neon_row_size_q5_Kx4, tl_neon_pack_q5_Kx4, tl_neon_gemm_q5_Kx4 },
        [TL_DTYPE_Q6_K] = { 4, tl_neon_row_size_q6_Kx4, tl_neon_pack_q6_Kx4, tl_neon_gemm_q6_Kx4 },
    },
    .attn_qk_f16 = tl_neon_attn_qk_f16,
    .attn_pv_f16 = tl_neon_attn_pv_f16,
    .attn_qk_q8_0 = tl_neon_attn_qk_q8_0,
    .attn_pv_q8_0 = tl_neon_attn_pv_q8_0,
    .exp_sum = tl_neon_exp_sum,
    .max_f32 = tl_neon_max_f32,
    .axpy_q8_0 = tl_neon_axpy_q8_0,
    .scale = tl_neon_scale,
    .silu_mul = tl_neon_silu_mul,
    .gelu_mul = tl_neon_gelu_mul,
    .norm_row = tl_neon_norm_row,
    .rope = tl_neon_rope,
};

const tl_kern *tl_kern_neon_table(void) { return &neon_table; }
