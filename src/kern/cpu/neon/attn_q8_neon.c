/* attn_q8_neon.c — NEON (ARMv8.2-A + dotprod) attention tiles over a Q8_0
 * cache: the kern.h slots attn_qk_q8_0 and attn_pv_q8_0.
 *
 * qk: a tile of up to 4 rows x 4 keys loads each K block once for its rows
 * and each q block once for its keys. A pair's block is two vdotq_s32 of
 * signed bytes, exact for every quant (-128 included on both sides, unlike
 * the x86 sign trick); a pairwise-add tree folds a row's 4 pairs into one
 * vector of their block sums, converted once and accumulated in float by
 * one fma with the 4 pairs' d_q * d_k. The result differs from vec_dot Q8_0
 * by float summation order only.
 *
 * pv: a V block's quants are widened to float once per key for every row of
 * a tile (4 rows x 16 columns, 16 accumulators of 32 registers); each row
 * adds them by a by-element fma with its weight p times the block scale d,
 * rounded once as axpy_q8_0. The fma and the order of the sums are the only
 * differences from the reference. */
#include "core/quant.h"
#include "kern/cpu/neon/neon.h"

/* ---- qk ------------------------------------------------------------------ */

/* rows RC x keys KC (RC, KC <= 4) of S = Q . K^T over nb blocks:
 *   Q (RC rows of nb blocks, contiguous) . K (KC rows ldk bytes apart) -> s[r * lds + i] */
TL_NEON_INLINE void qk_tile(const int RC, const int KC, int nb, const tl_block_q8_0 *q,
                            const uint8_t *k, size_t ldk, float *s, size_t lds) {
    const int32x4_t zero = vdupq_n_s32(0);
    float32x4_t acc[4];
#pragma GCC unroll 4
    for (int r = 0; r < RC; r++) acc[r] = vdupq_n_f32(0.0f);
    for (int b = 0; b < nb; b++) {
        int8x16x2_t kv[4];
        uint16_t kd[4] = { 0 }; /* a missing key: scale 0, sums 0 */
#pragma GCC unroll 4
        for (int i = 0; i < KC; i++) {
            const tl_block_q8_0 *kb = (const tl_block_q8_0 *)(k + (size_t)i * ldk) + b;
            kv[i] = vld1q_s8_x2(kb->qs);
            kd[i] = kb->d;
        }
        const float32x4_t dk = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(kd)));
#pragma GCC unroll 4
        for (int r = 0; r < RC; r++) {
            const tl_block_q8_0 *qb = q + (size_t)r * nb + b;
            const int8x16x2_t qv = vld1q_s8_x2(qb->qs);
            int32x4_t ps[4];
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++)
                ps[i] = i < KC ? vdotq_s32(vdotq_s32(zero, qv.val[0], kv[i].val[0]), qv.val[1], kv[i].val[1])
                               : zero;
            /* lane i: the block sum of pair (r, i) */
            const int32x4_t t = vpaddq_s32(vpaddq_s32(ps[0], ps[1]), vpaddq_s32(ps[2], ps[3]));
            acc[r] = vfmaq_f32(acc[r], vcvtq_f32_s32(t), vmulq_n_f32(dk, tl_neon_h2f(qb->d)));
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < RC; r++) {
        float *sr = s + (size_t)r * lds;
        if (KC == 4) {
            vst1q_f32(sr, acc[r]);
        } else {
            sr[0] = vgetq_lane_f32(acc[r], 0);
            if (KC > 1) sr[1] = vgetq_lane_f32(acc[r], 1);
            if (KC > 2) sr[2] = vgetq_lane_f32(acc[r], 2);
        }
    }
}

/* RC rows against all nt keys: tiles of 4 keys, then one short tile */
TL_NEON_INLINE void qk_rows(const int RC, int nt, int nb, const tl_block_q8_0 *q, const uint8_t *k,
                            size_t ldk, float *s, size_t lds) {
    int i = 0;
    for (; i + 4 <= nt; i += 4) qk_tile(RC, 4, nb, q, k + (size_t)i * ldk, ldk, s + i, lds);
    k += (size_t)i * ldk, s += i;
    switch (nt - i) {
    case 3: qk_tile(RC, 3, nb, q, k, ldk, s, lds); break;
    case 2: qk_tile(RC, 2, nb, q, k, ldk, s, lds); break;
    case 1: qk_tile(RC, 1, nb, q, k, ldk, s, lds); break;
    default: break;
    }
}

// Q (R, hd) Q8_0 rows hd / 32 blocks apart . K (nt, hd) Q8_0 rows ldk bytes apart
// -> S (R, nt) rows lds apart
void tl_neon_attn_qk_q8_0(int R, int nt, int hd, const void *q, const void *k, size_t ldk,
                          float *s, size_t lds) {
    const int nb = hd / TL_QK8_0;
    const tl_block_q8_0 *qb = q;
    int r = 0;
    /* 4 rows x 4 keys: per block 4 K and 4 q loads for 32 vdot */
    for (; r + 4 <= R; r += 4) qk_rows(4, nt, nb, qb + (size_t)r * nb, k, ldk, s + (size_t)r * lds, lds);
    const tl_block_q8_0 *qr = qb + (size_t)r * nb;
    float *sr = s + (size_t)r * lds;
    switch (R - r) {
    case 3: qk_rows(3, nt, nb, qr, k, ldk, sr, lds); break;
    case 2: qk_rows(2, nt, nb, qr, k, ldk, sr, lds); break;
    case 1: qk_rows(1, nt, nb, qr, k, ldk, sr, lds); break;
    default: break;
    }
}

/* ---- pv ------------------------------------------------------------------ */

/* 16 quants -> 4 float vectors */
TL_NEON_INLINE void cvt16(const int8_t *q, float32x4_t f[4]) {
    const int8x16_t v = vld1q_s8(q);
    const int16x8_t lo = vmovl_s8(vget_low_s8(v)), hi = vmovl_high_s8(v);
    f[0] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo)));
    f[1] = vcvtq_f32_s32(vmovl_high_s16(lo));
    f[2] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi)));
    f[3] = vcvtq_f32_s32(vmovl_high_s16(hi));
}

/* rows RC x vectors DC (DC = 4: the half h of a block, 8: all of it) of
 * O += P @ V over nt keys:
 *   o[r * hdv + 4 c ..] += sum_i (p[r * ldp + i] * d_i) * q_i[16 h + 4 c ..]
 * (o at the tile's first column, v at its block of key 0) */
TL_NEON_INLINE void pv_tile(const int RC, const int DC, int h, int nt, float *o, int hdv,
                            const float *p, size_t ldp, const uint8_t *v, size_t ldv) {
    float32x4_t acc[16];
#pragma GCC unroll 4
    for (int r = 0; r < RC; r++)
#pragma GCC unroll 8
        for (int c = 0; c < DC; c++) acc[r * DC + c] = vld1q_f32(o + (size_t)r * hdv + 4 * c);
    for (int i = 0; i < nt; i++) {
        const tl_block_q8_0 *vb = (const tl_block_q8_0 *)(v + (size_t)i * ldv);
        float32x4_t vv[8];
        cvt16(vb->qs + 16 * h, vv);
        if (DC > 4) cvt16(vb->qs + 16, vv + 4);
        const float d = tl_neon_h2f(vb->d);
#pragma GCC unroll 4
        for (int r = 0; r < RC; r++) {
            const float w = p[(size_t)r * ldp + i] * d;
#pragma GCC unroll 8
            for (int c = 0; c < DC; c++) acc[r * DC + c] = vfmaq_n_f32(acc[r * DC + c], vv[c], w);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < RC; r++)
#pragma GCC unroll 8
        for (int c = 0; c < DC; c++) vst1q_f32(o + (size_t)r * hdv + 4 * c, acc[r * DC + c]);
}

/* RC rows over all hdv columns, block by block (DC = 4: by halves) */
TL_NEON_INLINE void pv_rows(const int RC, const int DC, int nt, int hdv, float *o, const float *p,
                            size_t ldp, const uint8_t *v, size_t ldv) {
    for (int b = 0; b < hdv / TL_QK8_0; b++) {
        float *ob = o + b * TL_QK8_0;
        const uint8_t *vb = v + (size_t)b * sizeof(tl_block_q8_0);
        if (DC > 4) {
            pv_tile(RC, 8, 0, nt, ob, hdv, p, ldp, vb, ldv);
        } else {
            pv_tile(RC, 4, 0, nt, ob, hdv, p, ldp, vb, ldv);
            pv_tile(RC, 4, 1, nt, ob + 16, hdv, p, ldp, vb, ldv);
        }
    }
}

// O (R, hdv) f32 rows hdv apart += P (R, nt) rows ldp apart @ dequant(V) (nt, hdv),
// V Q8_0 rows ldv bytes apart
void tl_neon_attn_pv_q8_0(int R, int nt, int hdv, float *o, const float *p, size_t ldp,
                          const void *v, size_t ldv) {
    int r = 0;
    /* 4 rows x 4 vectors: one widening of 16 quants per 16 fma */
    for (; r + 4 <= R; r += 4) pv_rows(4, 4, nt, hdv, o + (size_t)r * hdv, p + (size_t)r * ldp, ldp, v, ldv);
    float *orow = o + (size_t)r * hdv;
    const float *prow = p + (size_t)r * ldp;
    switch (R - r) {
    case 3: pv_rows(3, 4, nt, hdv, orow, prow, ldp, v, ldv); break;
    case 2: pv_rows(2, 8, nt, hdv, orow, prow, ldp, v, ldv); break;
    case 1: pv_rows(1, 8, nt, hdv, orow, prow, ldp, v, ldv); break; /* 8 independent chains */
    default: break;
    }
}
