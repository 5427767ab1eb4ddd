/* quant.c — reference (de)quantization of the float types and the 32-element
 * block formats (q4_0, q4_1, q5_0, q5_1, q8_0, q8_1) plus q8_K.
 *
 * Bit-exactness with llama.cpp depends on doing the same float operations in
 * the same order and rounding (e.g. (int)(v + 8.5f) truncation for q4_0,
 * roundf for q8_0), so the arithmetic below is deliberately literal. */
#include "core/quant.h"

/* llama.cpp's reference quantizers are built without FMA; a fused a*b+c
 * (GCC contracts by default on targets with FMA, e.g. aarch64) would change
 * roundings and hence bytes. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <float.h>
#include <math.h>
#include <string.h>

/* ---- F16 / BF16 --------------------------------------------------------- */

void tl_dequant_row_f16(const void *x, float *y, int64_t k) {
    const tl_f16 *h = x;
    for (int64_t i = 0; i < k; i++) y[i] = tl_f16_to_f32(h[i]);
}

void tl_dequant_row_bf16(const void *x, float *y, int64_t k) {
    const tl_bf16 *h = x;
    for (int64_t i = 0; i < k; i++) y[i] = tl_bf16_to_f32(h[i]);
}

void tl_quant_row_f16_ref(const float *x, void *y, int64_t k) {
    tl_f16 *h = y;
    for (int64_t i = 0; i < k; i++) h[i] = tl_f32_to_f16(x[i]);
}

void tl_quant_row_bf16_ref(const float *x, void *y, int64_t k) {
    tl_bf16 *h = y;
    for (int64_t i = 0; i < k; i++) h[i] = tl_f32_to_bf16(x[i]);
}

/* ---- helpers ------------------------------------------------------------ */

/* Value of largest magnitude in a block (first one wins on ties), sign kept:
 * the symmetric formats map it to the most negative quant so the full range
 * on that side is used. */
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void min_max(const float *x, int n, float *mn, float *mx) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

static inline int imin(int a, int b) { return a < b ? a : b; }

/* ---- Q4_0 --------------------------------------------------------------- */

void tl_quant_row_q4_0_ref(const float *x, void *vy, int64_t k) {
    tl_block_q4_0 *y = vy;
    const int64_t nb = k / TL_QK4_0;
    for (int64_t i = 0; i < nb; i++, x += TL_QK4_0) {
        const float max = signed_absmax(x, TL_QK4_0);
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = tl_f32_to_f16(d);
        for (int j = 0; j < TL_QK4_0 / 2; j++) {
            const float x0 = x[j] * id;
            const float x1 = x[TL_QK4_0 / 2 + j] * id;
            /* truncation of v + 8.5 (v >= -8) rounds half up, as GGML does */
            const int q0 = imin(15, (int)(x0 + 8.5f));
            const int q1 = imin(15, (int)(x1 + 8.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void tl_dequant_row_q4_0(const void *vx, float *y, int64_t k) {
    const tl_block_q4_0 *x = vx;
    const int64_t nb = k / TL_QK4_0;
    for (int64_t i = 0; i < nb; i++, y += TL_QK4_0) {
        const float d = tl_f16_to_f32(x[i].d);
        for (int j = 0; j < TL_QK4_0 / 2; j++) {
            y[j] = (float)((x[i].qs[j] & 0xF) - 8) * d;
            y[j + TL_QK4_0 / 2] = (float)((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

/* ---- Q4_1 --------------------------------------------------------------- */

void tl_quant_row_q4_1_ref(const float *x, void *vy, int64_t k) {
    tl_block_q4_1 *y = vy;
    const int64_t nb = k / TL_QK4_1;
    for (int64_t i = 0; i < nb; i++, x += TL_QK4_1) {
        float min, max;
        min_max(x, TL_QK4_1, &min, &max);
        const float d = (max - min) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = tl_f32_to_f16(d);
        y[i].m = tl_f32_to_f16(min);
        for (int j = 0; j < TL_QK4_1 / 2; j++) {
            const float x0 = (x[j] - min) * id;
            const float x1 = (x[TL_QK4_1 / 2 + j] - min) * id;
            const int q0 = imin(15, (int)(x0 + 0.5f));
            const int q1 = imin(15, (int)(x1 + 0.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void tl_dequant_row_q4_1(const void *vx, float *y, int64_t k) {
    const tl_block_q4_1 *x = vx;
    const int64_t nb = k / TL_QK4_1;
    for (int64_t i = 0; i < nb; i++, y += TL_QK4_1) {
        const float d = tl_f16_to_f32(x[i].d);
        const float m = tl_f16_to_f32(x[i].m);
        for (int j = 0; j < TL_QK4_1 / 2; j++) {
            y[j] = (float)(x[i].qs[j] & 0xF) * d + m;
            y[j + TL_QK4_1 / 2] = (float)(x[i].qs[j] >> 4) * d + m;
        }
    }
}

/* ---- Q5_0 --------------------------------------------------------------- */

void tl_quant_row_q5_0_ref(const float *x, void *vy, int64_t k) {
    tl_block_q5_0 *y = vy;
    const int64_t nb = k / TL_QK5_0;
    for (int64_t i = 0; i < nb; i++, x += TL_QK5_0) {
        const float max = signed_absmax(x, TL_QK5_0);
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = tl_f32_to_f16(d);
        uint32_t qh = 0;
        for (int j = 0; j < TL_QK5_0 / 2; j++) {
            const float x0 = x[j] * id;
            const float x1 = x[TL_QK5_0 / 2 + j] * id;
            const int q0 = imin(31, (int)(x0 + 16.5f));
            const int q1 = imin(31, (int)(x1 + 16.5f));
            y[i].qs[j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + TL_QK5_0 / 2);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

void tl_dequant_row_q5_0(const void *vx, float *y, int64_t k) {
    const tl_block_q5_0 *x = vx;
    const int64_t nb = k / TL_QK5_0;
    for (int64_t i = 0; i < nb; i++, y += TL_QK5_0) {
        const float d = tl_f16_to_f32(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < TL_QK5_0 / 2; j++) {
            const int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            y[j] = (float)(((x[i].qs[j] & 0xF) | (h0 << 4)) - 16) * d;
            y[j + TL_QK5_0 / 2] = (float)(((x[i].qs[j] >> 4) | (h1 << 4)) - 16) * d;
        }
    }
}

/* ---- Q5_1 --------------------------------------------------------------- */

void tl_quant_row_q5_1_ref(const float *x, void *vy, int64_t k) {
    tl_block_q5_1 *y = vy;
    const int64_t nb = k / TL_QK5_1;
    for (int64_t i = 0; i < nb; i++, x += TL_QK5_1) {
        float min, max;
        min_max(x, TL_QK5_1, &min, &max);
        const float d = (max - min) / 31;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = tl_f32_to_f16(d);
        y[i].m = tl_f32_to_f16(min);
        uint32_t qh = 0;
        for (int j = 0; j < TL_QK5_1 / 2; j++) {
            const float x0 = (x[j] - min) * id;
            const float x1 = (x[TL_QK5_1 / 2 + j] - min) * id;
            /* GGML applies no clamp here: (max-min)*id rounds to <= 31.5 */
            const int q0 = (uint8_t)(int)(x0 + 0.5f);
            const int q1 = (uint8_t)(int)(x1 + 0.5f);
            y[i].qs[j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= (uint32_t)((q0 & 0x10) >> 4) << j;
            qh |= (uint32_t)((q1 & 0x10) >> 4) << (j + TL_QK5_1 / 2);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

void tl_dequant_row_q5_1(const void *vx, float *y, int64_t k) {
    const tl_block_q5_1 *x = vx;
    const int64_t nb = k / TL_QK5_1;
    for (int64_t i = 0; i < nb; i++, y += TL_QK5_1) {
        const float d = tl_f16_to_f32(x[i].d);
        const float m = tl_f16_to_f32(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, 4);
        for (int j = 0; j < TL_QK5_1 / 2; j++) {
            const int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
            y[j] = (float)((x[i].qs[j] & 0xF) | (h0 << 4)) * d + m;
            y[j + TL_QK5_1 / 2] = (float)((x[i].qs[j] >> 4) | (h1 << 4)) * d + m;
        }
    }
}

/* ---- Q8_0 / Q8_1 -------------------------------------------------------- */

static float absmax(const float *x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; j++) {
        const float a = fabsf(x[j]);
        amax = amax > a ? amax : a;
    }
    return amax;
}

void tl_quant_row_q8_0_ref(const float *x, void *vy, int64_t k) {
    tl_block_q8_0 *y = vy;
    const int64_t nb = k / TL_QK8_0;
    for (int64_t i = 0; i < nb; i++, x += TL_QK8_0) {
        const float d = absmax(x, TL_QK8_0) / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = tl_f32_to_f16(d);
        for (int j = 0; j < TL_QK8_0; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

void tl_quant_row_q8_1_ref(const float *x, void *vy, int64_t k) {
    tl_block_q8_1 *y = vy;
    const int64_t nb = k / TL_QK8_1;
    for (int64_t i = 0; i < nb; i++, x += TL_QK8_1) {
        const float d = absmax(x, TL_QK8_1) / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = tl_f32_to_f16(d);
        int sum = 0;
        for (int j = 0; j < TL_QK8_1; j++) {
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
            sum += y[i].qs[j];
        }
        /* s uses the unrounded float d, as GGML does */
        y[i].s = tl_f32_to_f16((float)sum * d);
    }
}

void tl_quant_row_q8_0_act(const float *x, void *vy, int64_t k) {
    tl_block_q8_0 *y = vy;
    const int64_t nb = k / TL_QK8_0;
    for (int64_t i = 0; i < nb; i++, x += TL_QK8_0) {
        const float amax = absmax(x, TL_QK8_0);
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[i].d = tl_f32_to_f16(amax / 127.0f);
        for (int j = 0; j < TL_QK8_0; j++) y[i].qs[j] = (int8_t)tl_nearest_int(x[j] * id);
    }
}

void tl_quant_row_q8_1_act(const float *x, void *vy, int64_t k) {
    tl_block_q8_1 *y = vy;
    const int64_t nb = k / TL_QK8_1;
    for (int64_t i = 0; i < nb; i++, x += TL_QK8_1) {
        const float amax = absmax(x, TL_QK8_1);
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        y[i].d = tl_f32_to_f16(d);
        int sum = 0;
        for (int j = 0; j < TL_QK8_1; j++) {
            y[i].qs[j] = (int8_t)tl_nearest_int(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = tl_f32_to_f16(d * (float)sum);
    }
}

void tl_dequant_row_q8_0(const void *vx, float *y, int64_t k) {
    const tl_block_q8_0 *x = vx;
    const int64_t nb = k / TL_QK8_0;
    for (int64_t i = 0; i < nb; i++, y += TL_QK8_0) {
        const float d = tl_f16_to_f32(x[i].d);
        for (int j = 0; j < TL_QK8_0; j++) y[j] = (float)x[i].qs[j] * d;
    }
}

void tl_dequant_row_q8_1(const void *vx, float *y, int64_t k) {
    const tl_block_q8_1 *x = vx;
    const int64_t nb = k / TL_QK8_1;
    for (int64_t i = 0; i < nb; i++, y += TL_QK8_1) {
        const float d = tl_f16_to_f32(x[i].d);
        for (int j = 0; j < TL_QK8_1; j++) y[j] = (float)x[i].qs[j] * d;
    }
}

/* ---- Q8_K --------------------------------------------------------------- */

void tl_quant_row_q8_K_ref(const float *x, void *vy, int64_t k) {
    tl_block_q8_K *y = vy;
    const int64_t nb = k / TL_QK_K;
    for (int64_t i = 0; i < nb; i++, x += TL_QK_K) {
        const float max = signed_absmax(x, TL_QK_K);
        if (max == 0.0f) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        /* -127 rather than -128 keeps every quant in [-127,127], which the
         * SIMD kernels rely on (sign tricks with maddubs) */
        const float iscale = -127.f / max;
        for (int j = 0; j < TL_QK_K; j++) {
            const int v = tl_nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)imin(127, v);
        }
        for (int j = 0; j < TL_QK_K / 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += y[i].qs[16 * j + l];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
    }
}

void tl_dequant_row_q8_K(const void *vx, float *y, int64_t k) {
    const tl_block_q8_K *x = vx;
    const int64_t nb = k / TL_QK_K;
    for (int64_t i = 0; i < nb; i++, y += TL_QK_K) {
        for (int j = 0; j < TL_QK_K; j++) y[j] = x[i].d * (float)x[i].qs[j];
    }
}
