/* attn_neon.c — NEON (ARMv8.2-A + fp16) attention tiles over an F16 cache:
 * the kern.h slots attn_qk_f16, attn_pv_f16, exp_sum and max_f32.
 *
 * Both tiles keep up to 16 four-lane accumulators in registers (AArch64 has
 * 32 vector registers) and convert each K or V vector once for every query
 * row of the tile (the R rows share one KV head), instead of once per
 * (head, key). K is stored with 8 keys in the lanes (kern.h), so qk's
 * accumulators are scores with no pairwise-add tree. Both differ from the
 * reference by summation order only. exp_sum is tl_vexpf lane for lane (neon.h's tl_neon_exp4; bit-exact:
 * the file is compiled without fp contraction, see neon.h). */
#include "core/vmath.h"
#include "kern/cpu/neon/neon.h"

TL_NEON_INLINE float32x4_t ld_h4(const uint16_t *p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

/* rows RC x blocks BC (RC <= 4, BC <= 2) of S = Q . K^T, K in blocks of
 * 8 keys, dim-major (kern.h): per dim, a block is two 4-lane vectors of
 * keys, each multiplied by every row's q element, so the accumulators are
 * scores with no pairwise-add tree.
 *   Q (RC, hd) rows hd apart . K (8 BC keys) -> s[r * lds + 8 b + i], the
 *   last block's first `last` (1..8) keys only */
TL_NEON_INLINE void qk_tile(const int RC, const int BC, int hd, const float *q, const uint16_t *k,
                            float *s, size_t lds, int last) {
    float32x4_t acc[16];
#pragma GCC unroll 16
    for (int a = 0; a < RC * BC * 2; a++) acc[a] = vdupq_n_f32(0.0f);
#pragma GCC unroll 2
    for (int d = 0; d < hd; d++) {
        float32x4_t kv[4];
#pragma GCC unroll 2
        for (int b = 0; b < BC; b++) {
            const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(k + ((size_t)b * hd + d) * TL_KV_KEYS));
            kv[2 * b] = vcvt_f32_f16(vget_low_f16(h));
            kv[2 * b + 1] = vcvt_high_f32_f16(h);
        }
#pragma GCC unroll 4
        for (int r = 0; r < RC; r++) {
            const float qd = q[(size_t)r * hd + d];
#pragma GCC unroll 4
            for (int j = 0; j < 2 * BC; j++) acc[r * 2 * BC + j] = vfmaq_n_f32(acc[r * 2 * BC + j], kv[j], qd);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < RC; r++)
#pragma GCC unroll 2
        for (int b = 0; b < BC; b++) {
            float *sr = s + (size_t)r * lds + (size_t)b * TL_KV_KEYS;
            const float32x4_t lo = acc[r * 2 * BC + 2 * b], hi = acc[r * 2 * BC + 2 * b + 1];
            if (b < BC - 1 || last == TL_KV_KEYS) {
                vst1q_f32(sr, lo);
                vst1q_f32(sr + 4, hi);
            } else {
                float t[TL_KV_KEYS];
                vst1q_f32(t, lo);
                vst1q_f32(t + 4, hi);
                for (int i = 0; i < last; i++) sr[i] = t[i];
            }
        }
}

// Q (R, hd) . K (nt, hd) f16 in blocks of 8 keys -> S (R, nt) rows lds apart
void tl_neon_attn_qk_f16(int R, int nt, int hd, const float *q, const uint16_t *k, float *s,
                         size_t lds) {
    const int nb = (nt + TL_KV_KEYS - 1) / TL_KV_KEYS, last = nt - TL_KV_KEYS * (nb - 1);
    /* 4 rows x 2 blocks: 4 conversions and 4 scalars per 16 fma */
    for (int r = 0; r < R; r += 4) {
        const int rc = R - r < 4 ? R - r : 4;
        const float *qr = q + (size_t)r * hd;
        float *sr = s + (size_t)r * lds;
        for (int b = 0; b < nb; b += 2) {
            const int bc = nb - b < 2 ? 1 : 2, lb = b + bc == nb ? last : TL_KV_KEYS;
            const uint16_t *kb = k + (size_t)b * TL_KV_KEYS * hd;
            float *sb = sr + (size_t)b * TL_KV_KEYS;
            switch ((rc - 1) * 2 + bc - 1) {
            case 0: qk_tile(1, 1, hd, qr, kb, sb, lds, lb); break;
            case 1: qk_tile(1, 2, hd, qr, kb, sb, lds, lb); break;
            case 2: qk_tile(2, 1, hd, qr, kb, sb, lds, lb); break;
            case 3: qk_tile(2, 2, hd, qr, kb, sb, lds, lb); break;
            case 4: qk_tile(3, 1, hd, qr, kb, sb, lds, lb); break;
            case 5: qk_tile(3, 2, hd, qr, kb, sb, lds, lb); break;
            case 6: qk_tile(4, 1, hd, qr, kb, sb, lds, lb); break;
            default: qk_tile(4, 2, hd, qr, kb, sb, lds, lb); break;
            }
        }
    }
}

/* rows RC x vectors DC (RC * DC <= 16) of O += P @ V, over nt keys:
 *   o[r * hdv + 4 c ..] += sum_i p[r * ldp + i] * V[i][4 c ..]  (o, v at the tile's first column) */
TL_NEON_INLINE void pv_tile(const int RC, const int DC, int nt, float *o, int hdv, const float *p,
                            size_t ldp, const uint16_t *v, size_t ldv) {
    float32x4_t acc[16];
#pragma GCC unroll 4
    for (int r = 0; r < RC; r++)
#pragma GCC unroll 8
        for (int c = 0; c < DC; c++) acc[r * DC + c] = vld1q_f32(o + (size_t)r * hdv + 4 * c);
    for (int i = 0; i < nt; i++) {
        float32x4_t vv[8];
#pragma GCC unroll 8
        for (int c = 0; c < DC; c++) vv[c] = ld_h4(v + (size_t)i * ldv + 4 * c);
#pragma GCC unroll 4
        for (int r = 0; r < RC; r++) {
            const float pr = p[(size_t)r * ldp + i];
#pragma GCC unroll 8
            for (int c = 0; c < DC; c++) acc[r * DC + c] = vfmaq_n_f32(acc[r * DC + c], vv[c], pr);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < RC; r++)
#pragma GCC unroll 8
        for (int c = 0; c < DC; c++) vst1q_f32(o + (size_t)r * hdv + 4 * c, acc[r * DC + c]);
}

/* RC rows over all hdv columns: tiles of DC vectors, then single vectors,
 * then the hdv % 4 tail in scalar */
TL_NEON_INLINE void pv_rows(const int RC, const int DC, int nt, int hdv, float *o, const float *p,
                            size_t ldp, const uint16_t *v, size_t ldv) {
    int d = 0;
    for (; d + 4 * DC <= hdv; d += 4 * DC) pv_tile(RC, DC, nt, o + d, hdv, p, ldp, v + d, ldv);
    for (; d + 4 <= hdv; d += 4) pv_tile(RC, 1, nt, o + d, hdv, p, ldp, v + d, ldv);
    for (; d < hdv; d++)
        for (int r = 0; r < RC; r++)
            for (int i = 0; i < nt; i++)
                o[(size_t)r * hdv + d] += p[(size_t)r * ldp + i] * tl_neon_h2f(v[(size_t)i * ldv + d]);
}

// O (R, hdv) += P (R, nt) rows ldp apart @ V (nt, hdv) f16 rows ldv apart
void tl_neon_attn_pv_f16(int R, int nt, int hdv, float *o, const float *p, size_t ldp,
                         const uint16_t *v, size_t ldv) {
    int r = 0;
    /* 4 rows x 4 vectors: 4 conversions and 4 weights per 16 fma */
    for (; r + 4 <= R; r += 4)
        pv_rows(4, 4, nt, hdv, o + (size_t)r * hdv, p + (size_t)r * ldp, ldp, v, ldv);
    float *orow = o + (size_t)r * hdv;
    const float *pr = p + (size_t)r * ldp;
    switch (R - r) {
    case 3: pv_rows(3, 4, nt, hdv, orow, pr, ldp, v, ldv); break;
    case 2: pv_rows(2, 4, nt, hdv, orow, pr, ldp, v, ldv); break;
    case 1: pv_rows(1, 8, nt, hdv, orow, pr, ldp, v, ldv); break; /* 8 independent chains */
    default: break;
    }
}

// x (n,) -> exp(x - m) (n,) as tl_vexpf; returns the sum
float tl_neon_exp_sum(int n, float *x, float m) {
    const float32x4_t mv = vdupq_n_f32(m);
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const float32x4_t e0 = tl_neon_exp4(vsubq_f32(vld1q_f32(x + i), mv));
        const float32x4_t e1 = tl_neon_exp4(vsubq_f32(vld1q_f32(x + i + 4), mv));
        vst1q_f32(x + i, e0);
        vst1q_f32(x + i + 4, e1);
        a0 = vaddq_f32(a0, e0);
        a1 = vaddq_f32(a1, e1);
    }
    if (i + 4 <= n) {
        const float32x4_t e = tl_neon_exp4(vsubq_f32(vld1q_f32(x + i), mv));
        vst1q_f32(x + i, e);
        a0 = vaddq_f32(a0, e);
        i += 4;
    }
    float s = vaddvq_f32(vaddq_f32(a0, a1));
    for (; i < n; i++) { /* n % 4 */
        x[i] = tl_vexpf(x[i] - m);
        s += x[i];
    }
    return s;
}

// max of x (n,)
float tl_neon_max_f32(int n, const float *x) {
    int i = 0;
    float m = x[0];
    if (n >= 4) {
        float32x4_t mv = vld1q_f32(x);
        for (i = 4; i + 4 <= n; i += 4) mv = vmaxq_f32(mv, vld1q_f32(x + i));
        m = vmaxvq_f32(mv);
    }
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}
