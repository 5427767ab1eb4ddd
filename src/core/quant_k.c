/* quant_k.c — reference (de)quantization of the K-quant super-block formats
 * (q2_K, q3_K, q4_K, q5_K, q6_K).
 *
 * The quantizers follow llama.cpp's reference algorithms (make_qx_quants,
 * make_q3_quants, make_qkx2_quants) operation for operation: their output
 * must equal llama-quantize's bytes, and float rounding is part of that, so
 * expressions keep GGML's evaluation order (e.g. w*x*l is (w*x)*l). */
#include "core/quant.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

/* See quant.c: fused multiply-add would change the bytes. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* Below this a group counts as all zeros (GGML's GROUP_MAX_EPS). */
#define GROUP_MAX_EPS 1e-15f

static inline int imax(int a, int b) { return a > b ? a : b; }
static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int iclamp(int v, int lo, int hi) { return imax(lo, imin(hi, v)); }

/* Symmetric scale search with weights x^2 (GGML's make_qx_quants with
 * rmse_type 1 and no importance weights): tries iscale = -(nmax+0.1*is)/max
 * for is in [-9,9] and keeps the one maximising (sum w x l)^2 / sum w l^2.
 * L receives quants offset by nmax (in [0, 2*nmax-1]); returns the scale. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = iclamp(tl_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            const int l = iclamp(tl_nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                const int l = tl_nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + iclamp(l, -nmax, nmax - 1));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Symmetric 3-bit search (GGML's make_q3_quants with do_rmse): start from
 * iscale = -nmax/max, then up to 5 passes of per-element coordinate descent
 * on the weighted (w = x^2) error. L receives quants offset by nmax. */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    const float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = iclamp(tl_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                const int new_l = iclamp(tl_nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return sumlx / suml2;
}

/* Asymmetric search (GGML's make_qkx2_quants): x ~ scale*L - the_min with L
 * in [0,nmax]; tries nstep+1 scales around nmax/(max-min), solving the
 * weighted least-squares scale and min for each rounding, and keeps the one
 * with the least weighted error (|d| if use_mad, else d^2). Laux is scratch
 * of n bytes. Returns the scale; *the_min receives the (non-negative) min. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep,
                              bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_mad = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)iclamp(tl_nearest_int(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_mad += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const int l = iclamp(tl_nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float mad = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                mad += weights[i] * diff;
            }
            if (mad < best_mad) {
                memcpy(L, Laux, (size_t)n);
                best_mad = mad;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Packs 2-bit quants: element 128h + 32s + l -> bits 2s of qs[32h + l]. */
static void pack_2bit(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < TL_QK_K; j += 128) {
        for (int l = 0; l < 32; l++) {
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                      (L[j + l + 96] << 6));
        }
    }
}

/* ---- Q2_K --------------------------------------------------------------- */

void tl_quant_row_q2_K_ref(const float *x, void *vy, int64_t k) {
    tl_block_q2_K *y = vy;
    const int64_t nb = k / TL_QK_K;
    uint8_t L[TL_QK_K], Laux[16];
    float weights[16], mins[TL_QK_K / 16], scales[TL_QK_K / 16];
    const float q4scale = 15.f;

    for (int64_t i = 0; i < nb; i++, x += TL_QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < TL_QK_K / 16; j++) {
            for (int l = 0; l < 16; l++) weights[l] = fabsf(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux,
                                         -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < TL_QK_K / 16; j++)
                y[i].scales[j] = (uint8_t)tl_nearest_int(iscale * scales[j]);
            y[i].d = tl_f32_to_f16(max_scale / q4scale);
        } else {
            memset(y[i].scales, 0, sizeof y[i].scales);
            y[i].d = tl_f32_to_f16(0.f);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < TL_QK_K / 16; j++)
                y[i].scales[j] |= (uint8_t)(tl_nearest_int(iscale * mins[j]) << 4);
            y[i].dmin = tl_f32_to_f16(max_min / q4scale);
        } else {
            y[i].dmin = tl_f32_to_f16(0.f);
        }
        /* re-quantize against the scales as stored (rounded to 4 bits and
         * f16), so the quants fit the scales the decoder will see */
        for (int j = 0; j < TL_QK_K / 16; j++) {
            const float d = tl_f16_to_f32(y[i].d) * (y[i].scales[j] & 0xF);
            if (!d) continue;
            const float dm = tl_f16_to_f32(y[i].dmin) * (y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] = (uint8_t)iclamp(tl_nearest_int((x[16 * j + ii] + dm) / d), 0, 3);
        }
        pack_2bit(L, y[i].qs);
    }
}

void tl_dequant_row_q2_K(const void *vx, float *y, int64_t k) {
    const tl_block_q2_K *x = vx;
    const int64_t nb = k / TL_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const float d = tl_f16_to_f32(x[i].d);
        const float min = tl_f16_to_f32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        int is = 0;
        for (int n = 0; n < TL_QK_K; n += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half = 0; half < 2; half++) {
                    const uint8_t sc = x[i].scales[is++];
                    const float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                    for (int l = 0; l < 16; l++)
                        *y++ = dl * ((q[16 * half + l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

/* ---- Q3_K --------------------------------------------------------------- */

void tl_quant_row_q3_K_ref(const float *x, void *vy, int64_t k) {
    tl_block_q3_K *y = vy;
    const int64_t nb = k / TL_QK_K;
    int8_t L[TL_QK_K];
    float scales[TL_QK_K / 16];

    for (int64_t i = 0; i < nb; i++, x += TL_QK_K) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < TL_QK_K / 16; j++) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            const float scale = fabsf(scales[j]);
            if (scale > amax) {
                amax = scale;
                max_scale = scales[j];
            }
        }
        memset(y[i].scales, 0, 12);
        if (max_scale) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < TL_QK_K / 16; j++) {
                const int l = iclamp(tl_nearest_int(iscale * scales[j]), -32, 31) + 32;
                if (j < 8)
                    y[i].scales[j] = (uint8_t)(l & 0xF);
                else
                    y[i].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
                y[i].scales[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            y[i].d = tl_f32_to_f16(1 / iscale);
        } else {
            y[i].d = tl_f32_to_f16(0.f);
        }
        int8_t sc[16];
        tl_q3_K_scales(y[i].scales, sc);
        for (int j = 0; j < TL_QK_K / 16; j++) {
            const float d = tl_f16_to_f32(y[i].d) * sc[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) {
                const int l = iclamp(tl_nearest_int(x[16 * j + ii] / d), -4, 3);
                L[16 * j + ii] = (int8_t)(l + 4);
            }
        }
        /* bit 2 of element j goes to hmask[j % 32], bit j / 32 */
        memset(y[i].hmask, 0, sizeof y[i].hmask);
        for (int j = 0; j < TL_QK_K; j++) {
            if (L[j] > 3) {
                y[i].hmask[j % 32] |= (uint8_t)(1u << (j / 32));
                L[j] = (int8_t)(L[j] - 4);
            }
        }
        pack_2bit((const uint8_t *)L, y[i].qs);
    }
}

void tl_dequant_row_q3_K(const void *vx, float *y, int64_t k) {
    const tl_block_q3_K *x = vx;
    const int64_t nb = k / TL_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const float d_all = tl_f16_to_f32(x[i].d);
        int8_t sc[16];
        tl_q3_K_scales(x[i].scales, sc);
        const uint8_t *q = x[i].qs, *hm = x[i].hmask;
        uint8_t m = 1;
        int is = 0;
        for (int n = 0; n < TL_QK_K; n += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1)) {
                for (int half = 0; half < 2; half++) {
                    const float dl = d_all * sc[is++];
                    for (int l = 16 * half; l < 16 * half + 16; l++)
                        *y++ = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                }
            }
        }
    }
}

/* ---- Q4_K / Q5_K (shared scale handling) -------------------------------- */

/* Per 32-element sub-block asymmetric fit with weights av|x| + |x_i|, then
 * 6-bit scales/mins relative to the super-block maxima. Fills L (values in
 * [0, nmax]) and the d, dmin, scales fields. */
static void quantize_k4_scales(const float *x, int nmax, float rmin, int nstep, uint8_t *L,
                               tl_f16 *d_out, tl_f16 *dmin_out, uint8_t *packed) {
    uint8_t Laux[32];
    float weights[32], mins[TL_QK_K / 32], scales[TL_QK_K / 32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < TL_QK_K / 32; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                     rmin, 0.1f, nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < TL_QK_K / 32; j++) {
        /* the uint8 wrap before the clamp is GGML's and kept on purpose */
        uint8_t ls = (uint8_t)tl_nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)tl_nearest_int(inv_min * mins[j]);
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        if (j < 4) {
            packed[j] = ls;
            packed[j + 4] = lm;
        } else {
            packed[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            packed[j - 4] |= (uint8_t)((ls >> 4) << 6);
            packed[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *d_out = tl_f32_to_f16(max_scale / 63.f);
    *dmin_out = tl_f32_to_f16(max_min / 63.f);
    for (int j = 0; j < TL_QK_K / 32; j++) {
        uint8_t sc, m;
        tl_get_scale_min_k4(j, packed, &sc, &m);
        const float d = tl_f16_to_f32(*d_out) * sc;
        if (!d) continue;
        const float dm = tl_f16_to_f32(*dmin_out) * m;
        for (int ii = 0; ii < 32; ii++)
            L[32 * j + ii] = (uint8_t)iclamp(tl_nearest_int((x[32 * j + ii] + dm) / d), 0, nmax);
    }
}

void tl_quant_row_q4_K_ref(const float *x, void *vy, int64_t k) {
    tl_block_q4_K *y = vy;
    const int64_t nb = k / TL_QK_K;
    uint8_t L[TL_QK_K];
    for (int64_t i = 0; i < nb; i++, x += TL_QK_K) {
        memset(y[i].scales, 0, sizeof y[i].scales);
        quantize_k4_scales(x, 15, -1.f, 20, L, &y[i].d, &y[i].dmin, y[i].scales);
        uint8_t *q = y[i].qs;
        for (int j = 0; j < TL_QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

void tl_dequant_row_q4_K(const void *vx, float *y, int64_t k) {
    const tl_block_q4_K *x = vx;
    const int64_t nb = k / TL_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const float d = tl_f16_to_f32(x[i].d);
        const float min = tl_f16_to_f32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        for (int j = 0, is = 0; j < TL_QK_K; j += 64, q += 32, is += 2) {
            uint8_t sc, m;
            tl_get_scale_min_k4(is, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            tl_get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

/* ---- Q5_K --------------------------------------------------------------- */

void tl_quant_row_q5_K_ref(const float *x, void *vy, int64_t k) {
    tl_block_q5_K *y = vy;
    const int64_t nb = k / TL_QK_K;
    uint8_t L[TL_QK_K];
    for (int64_t i = 0; i < nb; i++, x += TL_QK_K) {
        memset(y[i].scales, 0, sizeof y[i].scales);
        quantize_k4_scales(x, 31, -0.5f, 15, L, &y[i].d, &y[i].dmin, y[i].scales);
        uint8_t *qh = y[i].qh, *ql = y[i].qs;
        memset(qh, 0, TL_QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int n = 0; n < TL_QK_K; n += 64, ql += 32) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[n + j], l2 = L[n + j + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
            m1 = (uint8_t)(m1 << 2);
            m2 = (uint8_t)(m2 << 2);
        }
    }
}

void tl_dequant_row_q5_K(const void *vx, float *y, int64_t k) {
    const tl_block_q5_K *x = vx;
    const int64_t nb = k / TL_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const float d = tl_f16_to_f32(x[i].d);
        const float min = tl_f16_to_f32(x[i].dmin);
        const uint8_t *ql = x[i].qs, *qh = x[i].qh;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0, is = 0; j < TL_QK_K; j += 64, ql += 32, is += 2) {
            uint8_t sc, m;
            tl_get_scale_min_k4(is, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            tl_get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            u1 = (uint8_t)(u1 << 2);
            u2 = (uint8_t)(u2 << 2);
        }
    }
}

/* ---- Q6_K --------------------------------------------------------------- */

void tl_quant_row_q6_K_ref(const float *x, void *vy, int64_t k) {
    tl_block_q6_K *y = vy;
    const int64_t nb = k / TL_QK_K;
    int8_t L[TL_QK_K];
    float scales[TL_QK_K / 16];

    for (int64_t i = 0; i < nb; i++, x += TL_QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < TL_QK_K / 16; ib++) {
            scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            const float abs_scale = fabsf(scales[ib]);
            if (abs_scale > max_abs_scale) {
                max_abs_scale = abs_scale;
                max_scale = scales[ib];
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -128.f / max_scale;
        y[i].d = tl_f32_to_f16(1 / iscale);
        for (int ib = 0; ib < TL_QK_K / 16; ib++)
            y[i].scales[ib] = (int8_t)imin(127, tl_nearest_int(iscale * scales[ib]));
        for (int j = 0; j < TL_QK_K / 16; j++) {
            const float d = tl_f16_to_f32(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) {
                const int l = iclamp(tl_nearest_int(x[16 * j + ii] / d), -32, 31);
                L[16 * j + ii] = (int8_t)(l + 32);
            }
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < TL_QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
                ql[l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
    }
}

void tl_dequant_row_q6_K(const void *vx, float *y, int64_t k) {
    const tl_block_q6_K *x = vx;
    const int64_t nb = k / TL_QK_K;
    for (int64_t i = 0; i < nb; i++) {
        const float d = tl_f16_to_f32(x[i].d);
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int n = 0; n < TL_QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}
