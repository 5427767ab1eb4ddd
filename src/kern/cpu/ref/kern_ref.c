/* kern_ref.c — scalar reference kernels and the reference kernel table.
 *
 * Every dot product follows GGML's arithmetic: within a block the quants are
 * multiplied and summed in exact integer arithmetic, and only then scaled by
 * the block scales in float; blocks accumulate in float (the 32-element
 * formats in the 8-lane order of GGML's x86 SIMD build, see below). The plain float
 * types accumulate in double, as GGML's scalar path does. These are the
 * ground truth the SIMD variants are tested against, so clarity wins over
 * speed here. */
#include "kern/kern.h"

#include <math.h>
#include <string.h>

#include "core/quant.h"
#include "core/vmath.h"

/* Same results on every target: no implicit fused multiply-add; where GGML's
 * SIMD code fuses, the fmaf is written out. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* ---- float types -------------------------------------------------------- */

// w (n,) f32 . x (n,) f32 -> *s
static void vec_dot_f32(int64_t n, float *s, const void *vw, const void *vx) {
    const float *w = vw, *x = vx;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(w[i] * x[i]);
    *s = (float)sum;
}

// w (n,) f16 . x (n,) f16 -> *s
static void vec_dot_f16(int64_t n, float *s, const void *vw, const void *vx) {
    const tl_f16 *w = vw, *x = vx;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(tl_f16_to_f32(w[i]) * tl_f16_to_f32(x[i]));
    *s = (float)sum;
}

// w (n,) bf16 . x (n,) bf16 -> *s
static void vec_dot_bf16(int64_t n, float *s, const void *vw, const void *vx) {
    const tl_bf16 *w = vw, *x = vx;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(tl_bf16_to_f32(w[i]) * tl_bf16_to_f32(x[i]));
    *s = (float)sum;
}

/* ---- 32-element block formats ------------------------------------------- *
 * As the reference engine's x86 SIMD dot products (AVX2 vec_dot_*_q8_* and
 * llamafile's tinyBLAS_Q0, which agree): a block's 32 products are summed
 * exactly in 8 lanes of 4 consecutive elements; each lane accumulates
 * fma(d_w * d_x, lane sum, acc) across blocks; the lanes are then reduced
 * ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)). The min term of q4_1 / q5_1,
 * m * s, accumulates separately as fma(m, s, summs) and is added last.
 * (The scalar build sums each block into one int instead; on a 30-layer
 * model the two orders flip enough Q8 rounding ties downstream to move
 * logits by 0.2.) */

/* q (32,) weight quants . p (32,) q8 quants, one block: the 8 lane sums */
static inline void block_lanes(const int q[32], const int8_t *p, int lane[8]) {
    for (int l = 0; l < 8; l++)
        lane[l] = q[4 * l] * p[4 * l] + q[4 * l + 1] * p[4 * l + 1] + q[4 * l + 2] * p[4 * l + 2] +
                  q[4 * l + 3] * p[4 * l + 3];
}

static inline void lanes_fma(float acc[8], float d, const int lane[8]) {
    for (int l = 0; l < 8; l++) acc[l] = fmaf(d, (float)lane[l], acc[l]);
}

static inline void unpack_q4(const uint8_t *qs, int off, int q[32]) {
    for (int j = 0; j < 16; j++) {
        q[j] = (qs[j] & 0xF) - off;
        q[j + 16] = (qs[j] >> 4) - off;
    }
}

static inline void unpack_q5(const uint8_t *qs, const uint8_t *qh4, int off, int q[32]) {
    uint32_t qh;
    memcpy(&qh, qh4, 4);
    for (int j = 0; j < 16; j++) {
        q[j] = ((qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4)) - off;
        q[j + 16] = ((qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4)) - off;
    }
}

// w (n,) q4_0 . x (n,) q8_0 -> *s    (n % 32 == 0)
static void vec_dot_q4_0(int64_t n, float *s, const void *vw, const void *vx) {
    const tl_block_q4_0 *w = vw;
    const tl_block_q8_0 *x = vx;
    float acc[8] = { 0 };
    int q[32], lane[8];
    for (int64_t b = 0; b < n / TL_QK4_0; b++) {
        unpack_q4(w[b].qs, 8, q);
        block_lanes(q, x[b].qs, lane);
        lanes_fma(acc, tl_f16_to_f32(w[b].d) * tl_f16_to_f32(x[b].d), lane);
    }
    *s = tl_hsum8_movehl(acc);
}

/* q4_1 / q5_1 carry a min m: sum_j (d_w q_j + m)(d_x p_j) = d_w d_x sum q p
 * + m * (d_x sum p), and q8_1's s field is exactly d_x sum p. */

// w (n,) q4_1 . x (n,) q8_1 -> *s    (n % 32 == 0)
static void vec_dot_q4_1(int64_t n, float *s, const void *vw, const void *vx) {
    const tl_block_q4_1 *w = vw;
    const tl_block_q8_1 *x = vx;
    float acc[8] = { 0 }, summs = 0.0f;
    int q[32], lane[8];
    for (int64_t b = 0; b < n / TL_QK4_1; b++) {
        summs = fmaf(tl_f16_to_f32(w[b].m), tl_f16_to_f32(x[b].s), summs);
        unpack_q4(w[b].qs, 0, q);
        block_lanes(q, x[b].qs, lane);
        lanes_fma(acc, tl_f16_to_f32(w[b].d) * tl_f16_to_f32(x[b].d), lane);
    }
    *s = tl_hsum8_movehl(acc) + summs;
}

// w (n,) q5_0 . x (n,) q8_0 -> *s    (n % 32 == 0)
static void vec_dot_q5_0(int64_t n, float *s, const void *vw, const void *vx) {
    const tl_block_q5_0 *w = vw;
    const tl_block_q8_0 *x = vx;
    float acc[8] = { 0 };
    int q[32], lane[8];
    for (int64_t b = 0; b < n / TL_QK5_0; b++) {
        unpack_q5(w[b].qs, w[b].qh, 16, q);
        block_lanes(q, x[b].qs, lane);
        lanes_fma(acc, tl_f16_to_f32(w[b].d) * tl_f16_to_f32(x[b].d), lane);
    }
    *s = tl_hsum8_movehl(acc);
}

// w (n,) q5_1 . x (n,) q8_1 -> *s    (n % 32 == 0)
static void vec_dot_q5_1(int64_t n, float *s, const void *vw, const void *vx) {
    const tl_block_q5_1 *w = vw;
    const tl_block_q8_1 *x = vx;
    float acc[8] = { 0 }, summs = 0.0f;
    int q[32], lane[8];
    for (int64_t b = 0; b < n / TL_QK5_1; b++) {
        summs = fmaf(tl_f16_to_f32(w[b].m), tl_f16_to_f32(x[b].s), summs);
        unpack_q5(w[b].qs, w[b].qh, 0, q);
        block_lanes(q, x[b].qs, lane);
        lanes_fma(acc, tl_f16_to_f32(w[b].d) * tl_f16_to_f32(x[b].d), lane);
    }
    *s = tl_hsum8_movehl(acc) + summs;
}

// w (n,) q8_0 . x (n,) q8_0 -> *s    (n % 32 == 0)
static void vec_dot_q8_0(int64_t n, float *s, const void *vw, const void *vx) {
    const tl_block_q8_0 *w = vw;
    const tl_block_q8_0 *x = vx;
    float acc[8] = { 0 };
    int q[32], lane[8];
    for (int64_t b = 0; b < n / TL_QK8_0; b++) {
        for (int j = 0; j < 32; j++) q[j] = w[b].qs[j];
        block_lanes(q, x[b].qs, lane);
        lanes_fma(acc, tl_f16_to_f32(w[b].d) * tl_f16_to_f32(x[b].d), lane);
    }
    *s = tl_hsum8_movehl(acc);
}

/* ---- K-quants against q8_K ---------------------------------------------- *
 * Sub-block mins (q2_K, q4_K, q5_K) enter through q8_K's bsums: the min term
 * of a sub-block is m * sum(p), and sum(p) over each 16 elements is stored. */

// w (n,) q2_K . x (n,) q8_K -> *s    (n % 256 == 0)
static void vec_dot_q2_K(int64_t n, float *s, const void *vw, const void *vx) {
    const tl_block_q2_K *w = vw;
    const tl_block_q8_K *x = vx;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / TL_QK_K; b++) {
        const uint8_t *sc = w[b].scales;
        int summs = 0;
        for (int j = 0; j < 16; j++) summs += x[b].bsums[j] * (sc[j] >> 4);
        /* element 128h + 32s + l is bits 2s of qs[32h + l]; sub-block
         * (16 elements) index = (128h + 32s + l) / 16 */
        int isum = 0;
        for (int e = 0; e < TL_QK_K; e += 16) {
            const int h = e / 128, sh = 2 * ((e % 128) / 32), l0 = e % 32;
            int isuml = 0;
            for (int l = 0; l < 16; l++)
                isuml += x[b].qs[e + l] * ((w[b].qs[32 * h + l0 + l] >> sh) & 3);
            isum += (sc[e / 16] & 0xF) * isuml;
        }
        const float dall = x[b].d * tl_f16_to_f32(w[b].d);
        const float dmin = x[b].d * tl_f16_to_f32(w[b].dmin);
        sum += dall * (float)isum - dmin * (float)summs;
    }
    *s = sum;
}

/* q3_K..q6_K: GGML's scalar kernels keep the integer products in 8 lanes
 * (lane = element index mod 8) and scale each lane separately, summing the
 * lanes at the very end. Integer order is irrelevant, but that float
 * grouping is not: following it makes these kernels bit-identical to GGML's
 * reference (checked against ggml-cpu-quants.c built without SIMD).
 * q: the 256 decoded quants, sc16: the scale of each 16-element group. */
static void lanes8(const int8_t *q8, const int *q, const int *sc16, int32_t aux32[8]) {
    memset(aux32, 0, 8 * sizeof *aux32);
    for (int e = 0; e < TL_QK_K; e++) aux32[e % 8] += sc16[e / 16] * (q8[e] * q[e]);
}

// w (n,) q3_K . x (n,) q8_K -> *s    (n % 256 == 0)
static void vec_dot_q3_K(int64_t n, float *s, const void *vw, const void *vx) {
    const tl_block_q3_K *w = vw;
    const tl_block_q8_K *x = vx;
    float sums[8] = { 0 };
    int q[TL_QK_K], sc16[16];
    int32_t aux32[8];
    for (int64_t b = 0; b < n / TL_QK_K; b++) {
        /* element 128h + 32s + l: low bits 2s of qs[32h + l], high bit s + 4h
         * of hmask[l]; a clear high bit means -4 */
        for (int e = 0; e < TL_QK_K; e++) {
            const int h = e / 128, sh = 2 * ((e % 128) / 32), l = e % 32;
            const int lo = (w[b].qs[32 * h + l] >> sh) & 3;
            q[e] = lo - (((w[b].hmask[l] >> (e / 32)) & 1) ? 0 : 4);
        }
        int8_t sc[16];
        tl_q3_K_scales(w[b].scales, sc);
        for (int j = 0; j < 16; j++) sc16[j] = sc[j];
        lanes8(x[b].qs, q, sc16, aux32);
        const float d = tl_f16_to_f32(w[b].d) * x[b].d;
        for (int l = 0; l < 8; l++) sums[l] += d * (float)aux32[l];
    }
    float sum = 0.0f;
    for (int l = 0; l < 8; l++) sum += sums[l];
    *s = sum;
}

/* q4_K/q5_K share everything but the quant decoding. Their sub-block mins
 * enter as sum_j m_j * (bsums[2j] + bsums[2j+1]), subtracted per block. */
static void k4_accumulate(const tl_block_q8_K *x, const uint8_t *scales, const int *q, float d,
                          float dmin, float sums[8], float *sum) {
    int sc16[16], summs = 0;
    int32_t aux32[8];
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        tl_get_scale_min_k4(j, scales, &sc, &m);
        sc16[2 * j] = sc16[2 * j + 1] = sc;
        summs += m * (x->bsums[2 * j] + x->bsums[2 * j + 1]);
    }
    lanes8(x->qs, q, sc16, aux32);
    const float dd = d * x->d;
    for (int l = 0; l < 8; l++) sums[l] += dd * (float)aux32[l];
    *sum -= (dmin * x->d) * (float)summs;
}

// w (n,) q4_K . x (n,) q8_K -> *s    (n % 256 == 0)
static void vec_dot_q4_K(int64_t n, float *s, const void *vw, const void *vx) {
    const tl_block_q4_K *w = vw;
    const tl_block_q8_K *x = vx;
    float sums[8] = { 0 }, sum = 0.0f;
    int q[TL_QK_K];
    for (int64_t b = 0; b < n / TL_QK_K; b++) {
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                q[64 * c + l] = w[b].qs[32 * c + l] & 0xF;
                q[64 * c + 32 + l] = w[b].qs[32 * c + l] >> 4;
            }
        }
        k4_accumulate(&x[b], w[b].scales, q, tl_f16_to_f32(w[b].d), tl_f16_to_f32(w[b].dmin), sums,
                      &sum);
    }
    for (int l = 0; l < 8; l++) sum += sums[l];
    *s = sum;
}

// w (n,) q5_K . x (n,) q8_K -> *s    (n % 256 == 0)
static void vec_dot_q5_K(int64_t n, float *s, const void *vw, const void *vx) {
    const tl_block_q5_K *w = vw;
    const tl_block_q8_K *x = vx;
    float sums[8] = { 0 }, sum = 0.0f;
    int q[TL_QK_K];
    for (int64_t b = 0; b < n / TL_QK_K; b++) {
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                const int hb = w[b].qh[l];
                q[64 * c + l] = (w[b].qs[32 * c + l] & 0xF) | (((hb >> (2 * c)) & 1) << 4);
                q[64 * c + 32 + l] = (w[b].qs[32 * c + l] >> 4) | (((hb >> (2 * c + 1)) & 1) << 4);
            }
        }
        k4_accumulate(&x[b], w[b].scales, q, tl_f16_to_f32(w[b].d), tl_f16_to_f32(w[b].dmin), sums,
                      &sum);
    }
    for (int l = 0; l < 8; l++) sum += sums[l];
    *s = sum;
}

// w (n,) q6_K . x (n,) q8_K -> *s    (n % 256 == 0)
static void vec_dot_q6_K(int64_t n, float *s, const void *vw, const void *vx) {
    const tl_block_q6_K *w = vw;
    const tl_block_q8_K *x = vx;
    float sums[8] = { 0 };
    int q[TL_QK_K], sc16[16];
    int32_t aux32[8];
    for (int64_t b = 0; b < n / TL_QK_K; b++) {
        const uint8_t *ql = w[b].ql, *qh = w[b].qh;
        for (int h = 0; h < 2; h++, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                q[128 * h + l] = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                q[128 * h + l + 32] = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                q[128 * h + l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                q[128 * h + l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            }
        }
        for (int j = 0; j < 16; j++) sc16[j] = w[b].scales[j];
        lanes8(x[b].qs, q, sc16, aux32);
        const float d = tl_f16_to_f32(w[b].d) * x[b].d;
        for (int l = 0; l < 8; l++) sums[l] += d * (float)aux32[l];
    }
    float sum = 0.0f;
    for (int l = 0; l < 8; l++) sum += sums[l];
    *s = sum;
}

/* ---- the table ---------------------------------------------------------- */

static void f32_copy_to(const void *x, float *y, int64_t n) { memcpy(y, x, (size_t)n * sizeof(float)); }
static void f32_copy_from(const float *x, void *y, int64_t n) { memcpy(y, x, (size_t)n * sizeof(float)); }

static const tl_kern ref_table = {
    .name = "ref",
    .vec_dot = {
        [TL_DTYPE_F32] = vec_dot_f32,
        [TL_DTYPE_F16] = vec_dot_f16,
        [TL_DTYPE_BF16] = vec_dot_bf16,
        [TL_DTYPE_Q4_0] = vec_dot_q4_0,
        [TL_DTYPE_Q4_1] = vec_dot_q4_1,
        [TL_DTYPE_Q5_0] = vec_dot_q5_0,
        [TL_DTYPE_Q5_1] = vec_dot_q5_1,
        [TL_DTYPE_Q8_0] = vec_dot_q8_0,
        [TL_DTYPE_Q2_K] = vec_dot_q2_K,
        [TL_DTYPE_Q3_K] = vec_dot_q3_K,
        [TL_DTYPE_Q4_K] = vec_dot_q4_K,
        [TL_DTYPE_Q5_K] = vec_dot_q5_K,
        [TL_DTYPE_Q6_K] = vec_dot_q6_K,
    },
    /* activation conversions: the vec_dot types above */
    .from_float = {
        [TL_DTYPE_F32] = f32_copy_from,
        [TL_DTYPE_F16] = tl_quant_row_f16_ref,
        [TL_DTYPE_BF16] = tl_quant_row_bf16_ref,
        [TL_DTYPE_Q8_0] = tl_quant_row_q8_0_act,
        [TL_DTYPE_Q8_1] = tl_quant_row_q8_1_act,
        [TL_DTYPE_Q8_K] = tl_quant_row_q8_K_ref,
    },
    .to_float = {
        [TL_DTYPE_F32] = f32_copy_to,
        [TL_DTYPE_F16] = tl_dequant_row_f16,
        [TL_DTYPE_BF16] = tl_dequant_row_bf16,
        [TL_DTYPE_Q4_0] = tl_dequant_row_q4_0,
        [TL_DTYPE_Q4_1] = tl_dequant_row_q4_1,
        [TL_DTYPE_Q5_0] = tl_dequant_row_q5_0,
        [TL_DTYPE_Q5_1] = tl_dequant_row_q5_1,
        [TL_DTYPE_Q8_0] = tl_dequant_row_q8_0,
        [TL_DTYPE_Q2_K] = tl_dequant_row_q2_K,
        [TL_DTYPE_Q3_K] = tl_dequant_row_q3_K,
        [TL_DTYPE_Q4_K] = tl_dequant_row_q4_K,
        [TL_DTYPE_Q5_K] = tl_dequant_row_q5_K,
        [TL_DTYPE_Q6_K] = tl_dequant_row_q6_K,
    },
    /* row kernels of the non-matmul ops: kern_ref_f32.c */
    .attn_qk_f16 = tl_ref_attn_qk_f16,
    .attn_pv_f16 = tl_ref_attn_pv_f16,
    .attn_qk_q8_0 = tl_ref_attn_qk_q8_0,
    .attn_pv_q8_0 = tl_ref_attn_pv_q8_0,
    .exp_sum = tl_ref_exp_sum,
    .max_f32 = tl_ref_max_f32,
    .axpy_q8_0 = tl_ref_axpy_q8_0,
    .scale = tl_ref_scale,
    .silu_mul = tl_ref_silu_mul,
    .gelu_mul = tl_ref_gelu_mul,
    .norm_row = tl_ref_norm_row,
    .rope = tl_ref_rope,
};

const tl_kern *tl_kern_ref(void) { return &ref_table; }
