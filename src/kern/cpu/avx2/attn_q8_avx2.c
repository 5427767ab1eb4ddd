/* attn_q8_avx2.c — AVX2 (+FMA +F16C) attention tiles over a Q8_0 cache: the
 * kern.h slots attn_qk_q8_0 and attn_pv_q8_0.
 *
 * qk: a tile of rows x keys (8 pairs) loads each K block once for its rows
 * and each q block once for its keys. A pair's block is an exact integer
 * dot product by the sign trick: maddubs(|q|, k * sign(q)) then madd with
 * ones, 8 int32 lanes. Exact for every q byte, -128 included, and every k
 * byte but -128 (kern.h: K quants lie in [-127, 127], as the Q8_0 quantizer
 * writes them; -128 against a negative q would need k * sign(q) = +128,
 * which int8 lacks). The 8 pairs' lanes are then
 * folded by an integer hadd tree into two vectors of 4 pairs x 2 half-block
 * sums, converted once, scaled by d_q * d_k (a vector of the 8 pairs' scale
 * products) and accumulated in float: one conversion and one fma per 8
 * pairs instead of per pair (about 1.5x the throughput on Zen 3). The
 * result differs from vec_dot Q8_0 by float summation order only.
 *
 * pv: a V vector is converted to float once per key for every row of a
 * tile (4 rows x 2 vectors); each row adds it by an fma with a broadcast of
 * its weight p times the block scale d, rounded once as axpy_q8_0. For row
 * groups of 4 these products come from a table built per chunk of keys and
 * block (the scales converted once for all groups); the last R % 4 rows
 * compute them per key. The fma and the order of the sums are the only
 * differences from the reference. */
#include <string.h>

#include "core/quant.h"
#include "kern/cpu/avx2/avx2.h"

/* ---- qk ------------------------------------------------------------------ */

/* blocks per pass of qk: the q scales of a pass are laid out once per row
 * group in a table of this many entries; longer heads take several passes,
 * each adding to the scores of the previous ones */
enum { QK_BLOCKS = 8, QK_PF_KEYS = 64 /* keys ahead that qk prefetches */ };

TL_AVX2_INLINE uint16_t ld_u16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return h;
}

/* f16 scales h[0..n) (n = 2 or 4, at p[0], p[st], ..) -> lane j: h[j % n] */
TL_AVX2_INLINE __m256 k_scales(const int n, const uint8_t *p, size_t st) {
    __m128i x = _mm_cvtsi32_si128(ld_u16(p));
    x = _mm_insert_epi16(x, ld_u16(p + st), 1);
    if (n == 2) return _mm256_cvtph_ps(_mm_shuffle_epi32(x, 0));
    x = _mm_insert_epi16(x, ld_u16(p + 2 * st), 2);
    x = _mm_insert_epi16(x, ld_u16(p + 3 * st), 3);
    return _mm256_cvtph_ps(_mm_shuffle_epi32(x, 0x44));
}

/* rows RC x keys KC of S = Q . K^T over nb blocks, RC in {1, 2, 4}, KC <=
 * 8 / RC (a short tile at the key edge):
 *   Q (RC rows of nq blocks, contiguous) . K (KC rows ldk bytes apart) -> s[r * lds + i]
 * (+= when add: a later pass). Pair j = r * (8 / RC) + i; pairs 0..3 fold
 * into u0, 4..7 into u1, lanes j and j + 4 holding the two halves of pair
 * j & 3. qs holds per block the q scales of u0's and u1's lanes. */
TL_AVX2_INLINE void qk_tile(const int RC, const int KC, int nb, const tl_block_q8_0 *q, int nq,
                            const uint8_t *k, size_t ldk, const __m256 *qs, float *s, size_t lds,
                            bool add) {
    const int KF = 8 / RC; /* keys of a full tile */
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m256i kv[8];
#pragma GCC unroll 8
        for (int i = 0; i < KC; i++) {
            const tl_block_q8_0 *kb = (const tl_block_q8_0 *)(k + (size_t)i * ldk) + b;
            kv[i] = _mm256_loadu_si256((const __m256i *)kb->qs);
        }
        __m256i pr[8];
#pragma GCC unroll 4
        for (int r = 0; r < RC; r++) {
            const __m256i qv = _mm256_loadu_si256((const __m256i *)q[(size_t)r * nq + b].qs);
            const __m256i aq = _mm256_sign_epi8(qv, qv);
#pragma GCC unroll 8
            for (int i = 0; i < KF; i++)
                pr[r * KF + i] = i < KC ? _mm256_madd_epi16(
                                              _mm256_maddubs_epi16(aq, _mm256_sign_epi8(kv[i], qv)), ones)
                                        : _mm256_setzero_si256(); /* a missing key */
        }
        const __m256i t0 = _mm256_hadd_epi32(pr[0], pr[1]), t1 = _mm256_hadd_epi32(pr[2], pr[3]);
        const __m256i t2 = _mm256_hadd_epi32(pr[4], pr[5]), t3 = _mm256_hadd_epi32(pr[6], pr[7]);
        const __m256i u0 = _mm256_hadd_epi32(t0, t1), u1 = _mm256_hadd_epi32(t2, t3);
        /* the keys' scales by pair: lane l of d0 is pair l & 3's key, of d1 pair 4 + (l & 3)'s */
        const uint8_t *kd = (const uint8_t *)((const tl_block_q8_0 *)k + b);
        __m256 d0, d1;
        if (KC == KF && RC == 4) {
            d0 = d1 = k_scales(2, kd, ldk);
        } else if (KC == KF && RC == 2) {
            d0 = d1 = k_scales(4, kd, ldk);
        } else if (KC == KF) {
            d0 = k_scales(4, kd, ldk);
            d1 = k_scales(4, kd + 4 * ldk, ldk);
        } else { /* the key edge: a missing key's scale 0 (its sums are 0) */
            float dk[8], t[16];
            for (int i = 0; i < KC; i++) dk[i] = tl_avx2_h2f(ld_u16(kd + i * ldk));
            for (int l = 0; l < 8; l++) {
                const int i0 = (l & 3) % KF, i1 = (4 + (l & 3)) % KF;
                t[l] = i0 < KC ? dk[i0] : 0.0f;
                t[l + 8] = i1 < KC ? dk[i1] : 0.0f;
            }
            d0 = _mm256_loadu_ps(t);
            d1 = _mm256_loadu_ps(t + 8);
        }
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(u0), _mm256_mul_ps(qs[2 * b], d0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(u1), _mm256_mul_ps(qs[2 * b + 1], d1), acc1);
    }
    const __m128 r0 = _mm_add_ps(_mm256_castps256_ps128(acc0), _mm256_extractf128_ps(acc0, 1));
    const __m128 r1 = _mm_add_ps(_mm256_castps256_ps128(acc1), _mm256_extractf128_ps(acc1, 1));
    float out[8];
    _mm_storeu_ps(out, r0);
    _mm_storeu_ps(out + 4, r1);
    if (add || KC < KF) {
        for (int r = 0; r < RC; r++)
            for (int i = 0; i < KC; i++)
                s[(size_t)r * lds + i] = (add ? s[(size_t)r * lds + i] : 0.0f) + out[r * KF + i];
    } else if (RC == 4) {
        _mm_storel_pi((__m64 *)s, r0);
        _mm_storeh_pi((__m64 *)(s + lds), r0);
        _mm_storel_pi((__m64 *)(s + 2 * lds), r1);
        _mm_storeh_pi((__m64 *)(s + 3 * lds), r1);
    } else if (RC == 2) {
        _mm_storeu_ps(s, r0);
        _mm_storeu_ps(s + lds, r1);
    } else {
        _mm_storeu_ps(s, r0);
        _mm_storeu_ps(s + 4, r1);
    }
}

/* RC rows (of nq blocks) against all nt keys: per pass of up to QK_BLOCKS
 * blocks, the table of q scales, then full tiles and one short tile */
TL_AVX2_INLINE void qk_rows(const int RC, int nt, int nq, const tl_block_q8_0 *q, const uint8_t *k,
                            size_t ldk, float *s, size_t lds, bool pf) {
    const int KF = 8 / RC;
    __m256 qs[2 * QK_BLOCKS];
    for (int b0 = 0; b0 < nq; b0 += QK_BLOCKS) {
        const int nb = nq - b0 < QK_BLOCKS ? nq - b0 : QK_BLOCKS;
        for (int b = 0; b < nb; b++) {
            float d[4];
            for (int r = 0; r < RC; r++) d[r] = tl_avx2_h2f(q[(size_t)r * nq + b0 + b].d);
            if (RC == 4) { /* pairs r * 2 + i */
                qs[2 * b] = _mm256_setr_ps(d[0], d[0], d[1], d[1], d[0], d[0], d[1], d[1]);
                qs[2 * b + 1] = _mm256_setr_ps(d[2], d[2], d[3], d[3], d[2], d[2], d[3], d[3]);
            } else { /* pairs r * 4 + i, or i */
                qs[2 * b] = _mm256_set1_ps(d[0]);
                qs[2 * b + 1] = _mm256_set1_ps(d[RC - 1]);
            }
        }
        const tl_block_q8_0 *qg = q + b0;
        const uint8_t *kg = k + (size_t)b0 * sizeof(tl_block_q8_0);
        const bool add = b0 > 0;
        int i = 0;
        for (; i + KF <= nt; i += KF) {
            /* the rows QK_PF_KEYS on, each line once (as attn_avx2.c) */
            if (pf && !add)
                for (size_t off = 0; off < (size_t)KF * ldk; off += 64)
                    _mm_prefetch((const char *)(k + (size_t)(i + QK_PF_KEYS) * ldk + off), _MM_HINT_T0);
            qk_tile(RC, KF, nb, qg, nq, kg + (size_t)i * ldk, ldk, qs, s + i, lds, add);
        }
        const uint8_t *ki = kg + (size_t)i * ldk;
        float *si = s + i;
        switch (nt - i) { /* KC a constant (< KF) per call: the tile's loops stay unrolled */
        case 7: if (7 < KF) qk_tile(RC, 7, nb, qg, nq, ki, ldk, qs, si, lds, add); break;
        case 6: if (6 < KF) qk_tile(RC, 6, nb, qg, nq, ki, ldk, qs, si, lds, add); break;
        case 5: if (5 < KF) qk_tile(RC, 5, nb, qg, nq, ki, ldk, qs, si, lds, add); break;
        case 4: if (4 < KF) qk_tile(RC, 4, nb, qg, nq, ki, ldk, qs, si, lds, add); break;
        case 3: if (3 < KF) qk_tile(RC, 3, nb, qg, nq, ki, ldk, qs, si, lds, add); break;
        case 2: if (2 < KF) qk_tile(RC, 2, nb, qg, nq, ki, ldk, qs, si, lds, add); break;
        case 1: if (1 < KF) qk_tile(RC, 1, nb, qg, nq, ki, ldk, qs, si, lds, add); break;
        default: break;
        }
    }
}

// Q (R, hd) Q8_0 rows hd / 32 blocks apart . K (nt, hd) Q8_0 rows ldk bytes apart
// -> S (R, nt) rows lds apart
void tl_avx2_attn_qk_q8_0(int R, int nt, int hd, const void *q, const void *k, size_t ldk,
                          float *s, size_t lds) {
    const int nq = hd / TL_QK8_0;
    const tl_block_q8_0 *qb = q;
    int r = 0;
    /* 4 rows x 2 keys: per block 2 K loads and 4 q loads for 8 pair dots */
    for (; r + 4 <= R; r += 4)
        qk_rows(4, nt, nq, qb + (size_t)r * nq, k, ldk, s + (size_t)r * lds, lds, r == 0);
    if (r + 2 <= R) {
        qk_rows(2, nt, nq, qb + (size_t)r * nq, k, ldk, s + (size_t)r * lds, lds, r == 0);
        r += 2;
    }
    if (r < R) qk_rows(1, nt, nq, qb + (size_t)r * nq, k, ldk, s + (size_t)r * lds, lds, r == 0);
}

/* ---- pv ------------------------------------------------------------------ */

/* keys per weight table: the tables live on the stack, so a long key run is
 * taken in chunks (the accumulators go through o between chunks) */
enum { PV_KEYS = 64 };

/* rows RC x vectors DC of O += P @ V over n keys, vectors c0 .. c0 + DC of
 * one block (DC <= 4) or the 8 of two blocks, with each row's weight times
 * the block scale rounded once (as axpy_q8_0):
 *   o[r * hdv + 8 c ..] += sum_i (p[r][i] * d_i) * q_i[8 (c0 + c) ..]
 * (o at the tile's first column, v at its first block of key 0). TAB: the
 * products come from a table, w[r * PV_KEYS + i] (one block, DC <= 4);
 * else from p (rows ldp apart) and the blocks' scales, per key. */
TL_AVX2_INLINE void pv_tile(const bool TAB, const int RC, const int DC, int c0, int n, float *o,
                            int hdv, const float *w, size_t ldp, const uint8_t *v, size_t ldv) {
    __m256 acc[8];
#pragma GCC unroll 8
    for (int r = 0; r < RC; r++)
#pragma GCC unroll 8
        for (int c = 0; c < DC; c++) acc[r * DC + c] = _mm256_loadu_ps(o + (size_t)r * hdv + 8 * c);
    for (int i = 0; i < n; i++) {
        const tl_block_q8_0 *vb = (const tl_block_q8_0 *)(v + (size_t)i * ldv);
        __m256 vv[8];
#pragma GCC unroll 8
        for (int c = 0; c < DC; c++) {
            const int8_t *q = vb[c / 4].qs + 8 * (c0 + c % 4);
            vv[c] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)q)));
        }
        const float d0 = TAB ? 0.0f : tl_avx2_h2f(vb[0].d), d1 = DC > 4 ? tl_avx2_h2f(vb[1].d) : 0.0f;
#pragma GCC unroll 8
        for (int r = 0; r < RC; r++) {
            __m256 w0, w1;
            if (TAB) {
                w0 = w1 = _mm256_broadcast_ss(w + r * PV_KEYS + i);
            } else {
                const float pr = w[(size_t)r * ldp + i];
                w0 = _mm256_set1_ps(pr * d0);
                w1 = DC > 4 ? _mm256_set1_ps(pr * d1) : w0;
            }
#pragma GCC unroll 8
            for (int c = 0; c < DC; c++)
                acc[r * DC + c] = _mm256_fmadd_ps(c < 4 ? w0 : w1, vv[c], acc[r * DC + c]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < RC; r++)
#pragma GCC unroll 8
        for (int c = 0; c < DC; c++) _mm256_storeu_ps(o + (size_t)r * hdv + 8 * c, acc[r * DC + c]);
}

/* Groups of 4 rows (R4 of them, a multiple of 4): per chunk of keys the
 * block scales, converted once for every group, and per group and block
 * the table of weight x scale, then tiles of 4 rows x 2 vectors: 2
 * conversions and 4 broadcasts per 8 fma. */
static void pv_rows4(int R4, int nt, int hdv, float *o, const float *p, size_t ldp, const uint8_t *v,
                     size_t ldv) {
    const int nb = hdv / TL_QK8_0;
    float d[PV_KEYS], w[4 * PV_KEYS];
    for (int i0 = 0; i0 < nt; i0 += PV_KEYS) {
        const int n = nt - i0 < PV_KEYS ? nt - i0 : PV_KEYS;
        const uint8_t *vc = v + (size_t)i0 * ldv;
        for (int b = 0; b < nb; b++) {
            const uint8_t *vb = vc + (size_t)b * sizeof(tl_block_q8_0);
            for (int i = 0; i < n; i++) {
                /* the first touch of the key's block: fetch the next chunk's
                 * (as attn_avx2.c, for a cache past the L2) */
                _mm_prefetch((const char *)(vb + (size_t)(i + PV_KEYS) * ldv), _MM_HINT_T0);
                d[i] = tl_avx2_h2f(((const tl_block_q8_0 *)(vb + (size_t)i * ldv))->d);
            }
            for (int r0 = 0; r0 < R4; r0 += 4) {
                for (int r = 0; r < 4; r++) {
                    const float *pr = p + (size_t)(r0 + r) * ldp + i0;
                    float *wr = w + r * PV_KEYS;
                    int i = 0;
                    for (; i + 8 <= n; i += 8)
                        _mm256_storeu_ps(wr + i, _mm256_mul_ps(_mm256_loadu_ps(pr + i), _mm256_loadu_ps(d + i)));
                    for (; i < n; i++) wr[i] = pr[i] * d[i];
                }
                float *ob = o + (size_t)r0 * hdv + b * TL_QK8_0;
                pv_tile(true, 4, 2, 0, n, ob, hdv, w, 0, vb, ldv);
                pv_tile(true, 4, 2, 2, n, ob + 16, hdv, w, 0, vb, ldv);
            }
        }
    }
}

/* Fewer than 4 rows: a table would be read too few times to pay for
 * itself; tiles of RC rows x DC vectors (DC = 8: block pairs, then an odd
 * block by 4) */
TL_AVX2_INLINE void pv_rows(const int RC, const int DC, int nt, int hdv, float *o, const float *p,
                            size_t ldp, const uint8_t *v, size_t ldv) {
    const int nb = hdv / TL_QK8_0;
    const size_t bs = sizeof(tl_block_q8_0);
    int b = 0;
    if (DC > 4) {
        for (; b + 2 <= nb; b += 2) pv_tile(false, RC, 8, 0, nt, o + b * TL_QK8_0, hdv, p, ldp, v + b * bs, ldv);
        if (b < nb) pv_tile(false, RC, 4, 0, nt, o + b * TL_QK8_0, hdv, p, ldp, v + b * bs, ldv);
        return;
    }
    for (; b < nb; b++)
#pragma GCC unroll 4
        for (int c = 0; c < 4; c += DC)
            pv_tile(false, RC, DC, c, nt, o + b * TL_QK8_0 + 8 * c, hdv, p, ldp, v + b * bs, ldv);
}

// O (R, hdv) f32 rows hdv apart += P (R, nt) rows ldp apart @ dequant(V) (nt, hdv),
// V Q8_0 rows ldv bytes apart
void tl_avx2_attn_pv_q8_0(int R, int nt, int hdv, float *o, const float *p, size_t ldp,
                          const void *v, size_t ldv) {
    const int R4 = R & ~3;
    if (R4) pv_rows4(R4, nt, hdv, o, p, ldp, v, ldv);
    o += (size_t)R4 * hdv, p += (size_t)R4 * ldp;
    switch (R - R4) {
    case 3: pv_rows(3, 2, nt, hdv, o, p, ldp, v, ldv); break;
    case 2: pv_rows(2, 4, nt, hdv, o, p, ldp, v, ldv); break;
    case 1: pv_rows(1, 8, nt, hdv, o, p, ldp, v, ldv); break; /* 8 independent chains */
    default: break;
    }
}
