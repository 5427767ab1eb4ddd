/* test_kern_simd.c — every SIMD variant this CPU can run, slot by slot,
 * against the scalar reference (test_kern_ref.c covers vec_dot on raw and
 * extreme blocks; this file covers the rest):
 *   - from_float (activation quantizers): byte-identical to ref, on random
 *     rows of several magnitudes, zeros, exact rounding ties, and rows whose
 *     largest magnitude appears with both signs (q8_K keeps the first);
 *   - gemm tiles of every shape the drivers use (edges included) against
 *     the variant's own vec_dot — bit-identical for the quantized types,
 *     whose tiles do the same operations in the same order per output —
 *     and against ref's vec_dot within the float-rounding bound below;
 *   - float vec_dot tails (n not a multiple of the vector width);
 *   - repacked weights (pack + gemm) against ref's vec_dot;
 *   - the row kernels of the non-matmul ops (exp_sum, max_f32, axpy_q8_0, scale,
 *     silu_mul, gelu_mul, norm_row, rope) and the attention tiles over F16 and Q8_0
 *     caches (attn_qk_f16, attn_pv_f16, attn_qk_q8_0, attn_pv_q8_0, around
 *     their register tiles' edges): bit-exact where kern.h says so, else
 *     within a summation-order bound;
 *   - gelu_mul on every f16 value, every f16 rounding tie and the floats
 *     either side, the clamps, NaNs, infinities, denormals and a stride
 *     through all float bit patterns: bit-exact (NaN: NaN), in place too;
 *   - the TL_CPU override;
 *   - whose BF16 kernels each variant holds (printed, for
 *     scripts/test-avx512.sh): avx512's own exactly where the CPU has
 *     AVX512_BF16, vec_dot and gemm from the same table, and avx512's
 *     own bf16x16 repack on every AVX-512 CPU.
 * TL_TEST_VARIANTS=avx512 checks only the variants named; TL_TEST_TYPES=bf16
 * (dtype names, comma-separated) only those types' slots, and none of the
 * type-less row kernels; TL_TEST_SHARD=i/n only the units (a group of
 * checks for one type, or one type-less group) whose number is i mod n, so
 * that n processes share an emulated run. Each unit seeds the random
 * numbers from its own number: its inputs do not depend on the sharding. */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/fp16.h"
#include "core/quant.h"
#include "harness.h"
#include "kern/kern.h"


enum { KMAX = 2304, NRMAX = 9, NCMAX = 13, LDY = NRMAX + 2 };

/* Whether TL_TEST_TYPES (unset: every type) names t. An emulated run on a
 * second CPU model narrows to the kernels only that model selects. */
static bool type_wanted(tl_dtype t) {
    const char *only = getenv("TL_TEST_TYPES");
    if (!only || !*only) return true;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", only);
    for (char *save = NULL, *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        tl_dtype u;
        if (tl_dtype_from_name(tok, &u) && u == t) return true;
    }
    return false;
}

/* TL_TEST_SHARD=i/n: this process takes the units of checks numbered i mod
 * n (unset: all of them); each unit it takes starts from its own seed. */
static int g_shard, g_nshards = 1;

static void shard_init(void) {
    const char *s = getenv("TL_TEST_SHARD");
    if (s && *s && (sscanf(s, "%d/%d", &g_shard, &g_nshards) != 2 || g_nshards < 1 ||
                    g_shard < 0 || g_shard >= g_nshards)) {
        fprintf(stderr, "TL_TEST_SHARD=%s: want i/n with 0 <= i < n\n", s);
        exit(2);
    }
}

static bool unit_mine(void) {
    static int unit;
    const int u = unit++;
    if (u % g_nshards != g_shard) return false;
    tl_test_seed(0x9E3779B97F4A7C15ull ^ ((uint64_t)(u + 1) * 0xD1B54A32D192ED03ull));
    return true;
}

/* ---- activation quantizers ------------------------------------------------ */

static const tl_dtype act_types[] = { TL_DTYPE_Q8_0, TL_DTYPE_Q8_1, TL_DTYPE_Q8_K, TL_DTYPE_F16 };

/* fills x (k) in one of several regimes */
static void make_act(float *x, int64_t k, int mode) {
    for (int64_t i = 0; i < k; i++) {
        switch (mode) {
        case 0: x[i] = tl_test_normal(); break;
        case 1: x[i] = tl_test_normal() * 1e4f; break;           /* large magnitudes */
        case 2: x[i] = tl_test_normal() * 1e-6f; break;          /* tiny (f16 subnormal scales) */
        case 3: x[i] = 0.0f; break;                          /* zeros: d = 0 */
        case 4: x[i] = (float)((int)(tl_test_u32() % 255) - 127) * 0.5f; break; /* exact .5 ties */
        case 6: /* amax = 127 * 2^e, so x * 127/amax lands on exact .5 ties:
                 * tells half-even from half-away rounding */
            x[i] = ldexpf(i % 32 == 0 ? 127.0f : (float)((int)(tl_test_u32() % 253) - 126) + 0.5f,
                          (int)((i / 32) % 7) - 3);
            break;
        default: /* +-max in every block, the negative one first half the time */
            x[i] = tl_test_normal();
            if (i % 32 == 0) x[i] = (tl_test_u32() & 1) ? -8.0f : 8.0f;
            if (i % 32 == 1) x[i] = -x[i - 1];
            break;
        }
    }
}

static void test_from_float(const tl_kern *v) {
    static float x[KMAX];
    static uint8_t a[KMAX * 4], b[KMAX * 4];
    const tl_kern *ref = tl_kern_ref();
    for (size_t ti = 0; ti < sizeof act_types / sizeof act_types[0]; ti++) {
        const tl_dtype t = act_types[ti];
        if (!type_wanted(t) || !unit_mine()) continue;
        const int bs = tl_dtype_traits_of(t)->block_size;
        for (int mode = 0; mode < 7; mode++) {
            for (int64_t k = bs; k <= KMAX; k += (k < 4 * bs ? bs : KMAX - 4 * bs)) {
                if (k % bs) continue;
                make_act(x, k, mode);
                const size_t bytes = tl_dtype_row_size(t, k);
                memset(a, 0xA5, bytes);
                memset(b, 0x5A, bytes);
                ref->from_float[t](x, a, k);
                v->from_float[t](x, b, k);
                CHECKF(memcmp(a, b, bytes) == 0, "%s from_float %s mode %d k=%lld differs from ref",
                       v->name, tl_dtype_name(t), mode, (long long)k);
            }
        }
    }
}

/* ---- gemm tiles ----------------------------------------------------------- */

static const tl_dtype weight_types[] = {
    TL_DTYPE_F32,  TL_DTYPE_F16,  TL_DTYPE_BF16, TL_DTYPE_Q4_0, TL_DTYPE_Q4_1,
    TL_DTYPE_Q5_0, TL_DTYPE_Q5_1, TL_DTYPE_Q8_0, TL_DTYPE_Q2_K, TL_DTYPE_Q3_K,
    TL_DTYPE_Q4_K, TL_DTYPE_Q5_K, TL_DTYPE_Q6_K,
};

/* Bound on |variant - ref| for one dot product: both take the same integer
 * block sums (exact) and differ in float roundings only: the per-block
 * scale products and the accumulation over nb blocks in a different order
 * (lanes vs serial), plus, for the min/offset terms, partial sums whose
 * parts are up to ||w||_inf * ||x||_1 before cancelling. Each rounding is
 * at most 2^-24 of a partial sum bounded by M = sum|w x| + ||w||_inf ||x||_1,
 * and there are at most nb + 16 of them in a chain (the float types: n/8 +
 * 16 per lane, and ref's double sum adds nothing), so
 * |err| <= (nb + 16) * 2^-23 * M, a 2x margin. The min term of q4_1/q5_1
 * uses q8_1's s, rounded identically on both sides, so it adds nothing. */
static double dot_tol(const float *w, const float *x, int64_t n, int64_t nb) {
    double m1 = 0, l1 = 0, winf = 0;
    for (int64_t i = 0; i < n; i++) {
        m1 += fabs((double)w[i] * x[i]);
        l1 += fabs(x[i]);
        winf = fmax(winf, fabs(w[i]));
    }
    return (double)(nb + 16) * ldexp(1.0, -23) * (m1 + winf * l1) + 1e-30;
}

static void test_gemm(const tl_kern *v) {
    const tl_kern *ref = tl_kern_ref();
    static float wf[NRMAX][KMAX], xf[NCMAX][KMAX], wd[KMAX], xd[KMAX];
    static uint8_t qw[NRMAX][KMAX * 4], qx[NCMAX][KMAX * 4];
    static float y[NCMAX * LDY];
    for (size_t ti = 0; ti < sizeof weight_types / sizeof weight_types[0]; ti++) {
        const tl_dtype t = weight_types[ti];
        if (!v->gemm[t] || !type_wanted(t) || !unit_mine()) continue;
        const tl_dtype_traits *tr = tl_dtype_traits_of(t);
        const tl_dtype vt = tr->vec_dot_type;
        const int bs = tr->block_size == 1 ? 8 : tr->block_size;
        /* sizes: one block, a few, and (for K-quants) more than the decode
         * chunk; the float types also get a tail */
        const int64_t ks[4] = { bs, 3 * bs, bs == 256 ? 9 * 256 : 2048, tr->block_size == 1 ? 2051 : bs };
        for (int ki = 0; ki < 4; ki++) {
            const int64_t k = ks[ki];
            const size_t wrow = tl_dtype_row_size(t, k), xrow = tl_dtype_row_size(vt, k);
            for (int r = 0; r < NRMAX; r++) {
                for (int64_t i = 0; i < k; i++) wf[r][i] = tl_test_normal() * (r == 3 ? 1e3f : 0.05f);
                tr->from_float(wf[r], qw[r], k);
            }
            for (int c = 0; c < NCMAX; c++) {
                for (int64_t i = 0; i < k; i++) xf[c][i] = c == 5 ? 0.0f : tl_test_normal();
                v->from_float[vt](xf[c], qx[c], k);
            }
            /* the variant's own dot, ref's and the bound depend on (r, c)
             * only: once per k, not once per tile shape */
            static float own[NRMAX][NCMAX], want[NRMAX][NCMAX];
            static double tol[NRMAX][NCMAX];
            for (int r = 0; r < NRMAX; r++) {
                ref->to_float[t](qw[r], wd, k);
                for (int c = 0; c < NCMAX; c++) {
                    v->vec_dot[t](k, &own[r][c], qw[r], qx[c]);
                    ref->vec_dot[t](k, &want[r][c], qw[r], qx[c]);
                    tl_dtype_traits_of(vt)->to_float(qx[c], xd, k);
                    tol[r][c] = dot_tol(wd, xd, k, k / bs);
                }
            }
            /* every tile shape up to NRMAX x NCMAX, rows/tokens packed */
            static const int shapes[][2] = { { 1, 1 }, { 4, 1 }, { 5, 1 }, { 2, 6 }, { 3, 4 },
                                             { 9, 13 }, { 7, 5 }, { 8, 12 }, { 1, 13 } };
            for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
                const int nr = shapes[si][0], nc = shapes[si][1];
                static uint8_t wpack[NRMAX * KMAX * 4], xpack[NCMAX * KMAX * 4];
                for (int r = 0; r < nr; r++) memcpy(wpack + r * wrow, qw[r], wrow);
                for (int c = 0; c < nc; c++) memcpy(xpack + c * xrow, qx[c], xrow);
                for (int i = 0; i < NCMAX * LDY; i++) y[i] = NAN;
                const size_t ldy = LDY;
                v->gemm[t](k, nr, nc, y, ldy, wpack, wrow, xpack, xrow);
                int bad_own = 0, bad_ref = 0;
                for (int r = 0; r < nr; r++) {
                    for (int c = 0; c < nc; c++) {
                        const float got = y[c * ldy + r];
                        if (tr->is_quant && memcmp(&got, &own[r][c], sizeof got) != 0) bad_own++;
                        if (!(fabs(got - want[r][c]) <= tol[r][c])) bad_ref++;
                    }
                }
                CHECKF(bad_own == 0, "%s gemm %s k=%lld %dx%d: %d outputs differ from its vec_dot",
                       v->name, tr->name, (long long)k, nr, nc, bad_own);
                CHECKF(bad_ref == 0, "%s gemm %s k=%lld %dx%d: %d outputs off ref", v->name,
                       tr->name, (long long)k, nr, nc, bad_ref);
                /* nothing outside the tile is written */
                int stray = 0;
                for (int c = 0; c < NCMAX; c++)
                    for (size_t r = 0; r < ldy; r++)
                        if ((c >= nc || (int)r >= nr) && !isnan(y[c * ldy + r])) stray++;
                CHECKF(stray == 0, "%s gemm %s %dx%d wrote %d values outside the tile", v->name,
                       tr->name, nr, nc, stray);
            }
        }
    }
}

/* ---- float vec_dot tails ---------------------------------------------------- */

static void test_float_tails(const tl_kern *v) {
    static float w[KMAX], x[KMAX], wd[KMAX], xd[KMAX];
    static uint16_t w16[KMAX], x16[KMAX];
    const tl_dtype types[] = { TL_DTYPE_F32, TL_DTYPE_F16, TL_DTYPE_BF16 };
    const int64_t ns[] = { 1, 7, 8, 9, 31, 33, 100, 2051 };
    for (size_t ti = 0; ti < 3; ti++) {
        const tl_dtype t = types[ti];
        if (!type_wanted(t) || !unit_mine()) continue;
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
            const int64_t n = ns[ni];
            for (int64_t i = 0; i < n; i++) w[i] = tl_test_normal(), x[i] = tl_test_normal() * 100.0f;
            const void *pw = w, *px = x;
            if (t != TL_DTYPE_F32) {
                tl_kern_ref()->from_float[t](w, w16, n);
                tl_kern_ref()->from_float[t](x, x16, n);
                pw = w16, px = x16;
            }
            tl_kern_ref()->to_float[t](pw, wd, n);
            tl_kern_ref()->to_float[t](px, xd, n);
            float got, want;
            v->vec_dot[t](n, &got, pw, px);
            tl_kern_ref()->vec_dot[t](n, &want, pw, px);
            const double tol = dot_tol(wd, xd, n, n / 8 + 1);
            CHECKF(fabs(got - want) <= tol, "%s vec_dot %s n=%lld: %.9g vs %.9g", v->name,
                   tl_dtype_name(t), (long long)n, got, want);
        }
    }
}

/* ---- repacked weights ------------------------------------------------------ *
 * pack + gemm over the packed rows against ref's vec_dot on the original
 * rows, within the float-rounding bound; every tile width and row-group
 * count, and a k long enough to cross the kernels' activation segments. */

/* the most tokens a decode (stream) tile takes: AVX-512's quantized ones, 4 */
enum { NC_STREAMS = 4 };

static void test_repack(const tl_kern *v) {
    const tl_kern *ref = tl_kern_ref();
    for (int t = 0; t < TL_DTYPE_COUNT; t++) {
        const tl_repack *rp = &v->repack[t];
        if (!rp->rows || !type_wanted((tl_dtype)t) || !unit_mine()) continue;
        const tl_dtype_traits *tr = tl_dtype_traits_of((tl_dtype)t);
        const tl_dtype vt = tr->vec_dot_type;
        printf("checking %s repack %s x%d\n", v->name, tr->name, rp->rows);
        /* the last k spans several K segments of any tile; for the
         * element types it is odd, so that a BF16 pair's pad element
         * falls in a segment that accumulates onto earlier ones */
        const int64_t ks[] = { tr->block_size, 3 * tr->block_size, 2048,
                               17 * 1024 + 2 * tr->block_size + (tr->block_size == 1) };
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
            const int64_t k = ks[ki];
            /* element types (F16, BF16), k up to 2048 (the emulator's time):
             * 7 groups and 27 tokens also reach the F16 tiles of 4, 2 and 1
             * groups and their 24-token limit; quantized types: 6 groups,
             * called from the second, reach a 4-group decode tile and a
             * one-group tile after it in the same call. Then, for 1 to 4
             * tokens (decode and its few-token tiles) only, 11 groups
             * (quantized: 9) reach two 4-group tiles whose streams each run
             * over two groups (and over 2-3 K segments at the longest k),
             * then 2 and 1 groups. */
            const bool wide = tr->block_size == 1 && k <= 2048;
            const int nrs[] = { rp->rows, (wide ? 8 : 6) * rp->rows, (wide ? 12 : 10) * rp->rows };
            const int nrmax = (wide ? 12 : 10) * rp->rows, ncmax = wide ? 27 : 9;
            const size_t wrow = tl_dtype_row_size((tl_dtype)t, k), xrow = tl_dtype_row_size(vt, k);
            float *f = malloc(sizeof(float) * k), *wd = malloc(sizeof(float) * k * nrmax),
                  *xd = malloc(sizeof(float) * k * ncmax), *y = malloc(sizeof(float) * ncmax * nrmax);
            const size_t prow = rp->row_size(k);
            CHECK(prow >= wrow);
            uint8_t *w = malloc(wrow * nrmax), *wp = malloc(prow * nrmax), *x = malloc(xrow * ncmax);
            for (int r = 0; r < nrmax; r++) {
                for (int64_t i = 0; i < k; i++) f[i] = tl_test_normal() * (r == 3 ? 1e3f : 0.05f);
                tr->from_float(f, w + r * wrow, k);
                ref->to_float[t](w + r * wrow, wd + r * k, k);
            }
            for (int c = 0; c < ncmax; c++) {
                for (int64_t i = 0; i < k; i++) f[i] = c == 5 ? 0.0f : tl_test_normal();
                v->from_float[vt](f, x + c * xrow, k);
                tl_dtype_traits_of(vt)->to_float(x + c * xrow, xd + c * k, k);
            }
            /* the gemm's own act form, where it has one: the same values as
             * the vec_dot_type rows, rows a line further apart than packed;
             * where it reads act_prep entries, the rows copied with theirs
             * after them (the bytes between left as garbage) */
            const size_t arow = rp->act_from_float ? tl_dtype_row_size(rp->act_type, k) + 64
                                : rp->act_prep    ? tl_act_row_bytes(rp, vt, k) + 64
                                                  : xrow;
            uint8_t *xa = rp->act_from_float || rp->act_prep ? malloc(arow * ncmax) : x;
            if (rp->act_prep && !rp->act_from_float) {
                memset(xa, 0xA5, arow * ncmax);
                for (int c = 0; c < ncmax; c++) memcpy(xa + c * arow, x + c * xrow, xrow);
                tl_act_prep_rows(rp, vt, k, xa, arow, ncmax);
            }
            if (rp->act_from_float) {
                float *back = malloc(sizeof(float) * k);
                int diff = 0;
                for (int c = 0; c < ncmax; c++) {
                    for (int64_t i = 0; i < k; i++) f[i] = c == 5 ? 0.0f : tl_test_normal();
                    v->from_float[vt](f, x + c * xrow, k);
                    tl_dtype_traits_of(vt)->to_float(x + c * xrow, xd + c * k, k);
                    rp->act_from_float(f, xa + c * arow, k);
                    tl_dtype_traits_of(rp->act_type)->to_float(xa + c * arow, back, k);
                    diff += memcmp(back, xd + c * k, sizeof(float) * k) != 0;
                }
                CHECKF(diff == 0, "%s repack %s act form: %d rows differ from %s rows", v->name,
                       tr->name, diff, tl_dtype_name(vt));
                free(back);
            }
            /* ref's dot and its bound depend on (r, c) only: once per k,
             * for the tokens each row is called with */
            float *want = malloc(sizeof(float) * nrmax * ncmax);
            double *tol = malloc(sizeof(double) * nrmax * ncmax);
            for (int r = 0; r < nrmax; r++)
                for (int c = 0; c < (r < nrs[1] ? ncmax : NC_STREAMS); c++) {
                    ref->vec_dot[t](k, &want[r * ncmax + c], w + r * wrow, x + c * xrow);
                    tol[r * ncmax + c] = dot_tol(wd + r * k, xd + c * k, k, k / tr->block_size);
                }
            for (size_t ri = 0; ri < 3; ri++) {
                const int nr = nrs[ri];
                rp->pack(wp, w, wrow, k, nr);
                for (int nc = 1; nc <= (ri == 2 ? NC_STREAMS : ncmax); nc++) {
                    for (int i = 0; i < ncmax * nrmax; i++) y[i] = NAN;
                    /* the second row group on its own, as the driver calls it */
                    const int r0 = nr > rp->rows ? rp->rows : 0, rn = nr > rp->rows ? nr - rp->rows : nr;
                    rp->gemm(k, rn, nc, y + r0, (size_t)nrmax, wp + r0 * prow, prow, xa, arow);
                    int bad = 0, stray = 0;
                    for (int c = 0; c < ncmax; c++)
                        for (int r = 0; r < nrmax; r++) {
                            const float got = y[c * nrmax + r];
                            if (c >= nc || r < r0 || r >= r0 + rn) {
                                stray += !isnan(got);
                                continue;
                            }
                            if (!(fabs(got - want[r * ncmax + c]) <= tol[r * ncmax + c])) bad++;
                        }
                    CHECKF(bad == 0, "%s repacked gemm %s k=%lld %dx%d: %d outputs off ref", v->name,
                           tr->name, (long long)k, rn, nc, bad);
                    CHECKF(stray == 0, "%s repacked gemm %s %dx%d wrote %d values outside the tile",
                           v->name, tr->name, rn, nc, stray);
                }
            }
            if (xa != x) free(xa);
            free(f), free(wd), free(xd), free(y), free(w), free(wp), free(x), free(want), free(tol);
        }
    }
}

/* ---- attention tiles over an F16 cache ------------------------------------ */

/* attn_qk_f16 and attn_pv_f16 against the reference for row counts, key
 * counts and head sizes around the variants' tile edges (4 rows x 2 blocks
 * of 8 keys, partial blocks, vectors of 8 and 16), V rows further apart
 * than a head */
static void test_attn_tiles(const tl_kern *v) {
    const tl_kern *ref = tl_kern_ref();
    enum { RM = 17, NTM = 67, HM = 264 };
    static float q[RM * HM], sa[RM * NTM], sb[RM * NTM], pw[RM * NTM], oa[RM * HM], ob[RM * HM];
    static float kvf[NTM * (2 * HM + 8)];
    static uint16_t kv[NTM * (2 * HM + 8)];
    static uint16_t kb[(NTM + TL_KV_KEYS) * HM]; /* K rows of kv, in blocks of 8 keys (kern.h) */
    const int Rs[] = { 1, 3, 4, 5, 8, 16, 17 }, nts[] = { 1, 2, 7, 8, 9, 64, 67 };
    const int hds[] = { 8, 13, 20, 64, 80, 128, 136, 264 };
    for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++) {
        const int hd = hds[hi];
        const size_t ld = 2 * (size_t)hd + 8; /* elements between cache rows */
        for (size_t i = 0; i < NTM * ld; i++) kvf[i] = tl_test_normal();
        ref->from_float[TL_DTYPE_F16](kvf, kv, (int64_t)(NTM * ld));
        ref->to_float[TL_DTYPE_F16](kv, kvf, (int64_t)(NTM * ld));
        for (int i = 0; i < (NTM + TL_KV_KEYS) / TL_KV_KEYS * TL_KV_KEYS; i++)
            for (int d = 0; d < hd; d++)
                kb[(size_t)(i / TL_KV_KEYS) * TL_KV_KEYS * hd + (size_t)d * TL_KV_KEYS + i % TL_KV_KEYS] =
                    i < NTM ? kv[i * ld + d] : 0x7e00; /* past the keys: NaN, never a score */
        for (int i = 0; i < RM * hd; i++) q[i] = tl_test_normal() * 0.3f;
        for (size_t ri = 0; ri < sizeof Rs / sizeof Rs[0]; ri++)
            for (size_t ni = 0; ni < sizeof nts / sizeof nts[0]; ni++) {
                const int R = Rs[ri], nt = nts[ni];
                int bad = 0;
                /* S (R, nt) rows NTM apart */
                for (int i = 0; i < R * NTM; i++) sa[i] = sb[i] = 12345.0f;
                ref->attn_qk_f16(R, nt, hd, q, kb, sa, NTM);
                v->attn_qk_f16(R, nt, hd, q, kb, sb, NTM);
                for (int r = 0; r < R; r++)
                    for (int i = 0; i < nt; i++) {
                        const double tol = dot_tol(q + r * hd, kvf + i * ld, hd, hd / 8 + 1);
                        bad += !(fabs(sa[r * NTM + i] - sb[r * NTM + i]) <= tol);
                    }
                CHECKF(bad == 0, "%s attn_qk_f16 R=%d nt=%d hd=%d: %d scores off ref", v->name, R, nt,
                       hd, bad);
                /* a partial last block's other lanes are read, never written */
                bad = 0;
                for (int i = nt; i < R * NTM; i++) bad += i % NTM >= nt && sb[i] != 12345.0f;
                CHECKF(bad == 0, "%s attn_qk_f16 R=%d nt=%d hd=%d: %d writes past the keys", v->name,
                       R, nt, hd, bad);
                /* O (R, hd) += P (R, nt) @ V, P with zeros as masked keys */
                for (int i = 0; i < R * NTM; i++) pw[i] = i % 11 == 0 ? 0.0f : tl_test_uniform();
                for (int i = 0; i < R * hd; i++) oa[i] = ob[i] = tl_test_normal();
                ref->attn_pv_f16(R, nt, hd, oa, pw, NTM, kv + hd, ld);
                v->attn_pv_f16(R, nt, hd, ob, pw, NTM, kv + hd, ld);
                bad = 0;
                for (int r = 0; r < R; r++)
                    for (int d = 0; d < hd; d++) {
                        double m1 = fabs(ob[r * hd + d]);
                        for (int i = 0; i < nt; i++) m1 += fabs(pw[r * NTM + i] * kvf[i * ld + hd + d]);
                        bad += !(fabs(oa[r * hd + d] - ob[r * hd + d]) <= (nt + 16) * ldexp(1.0, -23) * m1);
                    }
                CHECKF(bad == 0, "%s attn_pv_f16 R=%d nt=%d hd=%d: %d outputs off ref", v->name, R, nt,
                       hd, bad);
            }
    }
}

/* ---- attention tiles over a Q8_0 cache ------------------------------------- */

/* one random Q8_0 block: quants from lo to 127 (lo = -128 or -127), the
 * extremes often, a random-sign scale; f (32) gets its dequantized values */
static void rand_q8_block(tl_block_q8_0 *b, float *f, int lo) {
    b->d = tl_f32_to_f16(tl_test_normal() * 0.02f);
    const float d = tl_f16_to_f32(b->d);
    for (int j = 0; j < TL_QK8_0; j++) {
        const uint32_t u = tl_test_u32();
        b->qs[j] = (int8_t)(u % 7 == 0 ? (u & 8 ? lo : 127) : lo + (int)((u >> 8) % (unsigned)(128 - lo)));
        f[j] = d * b->qs[j];
    }
}

/* attn_qk_q8_0 and attn_pv_q8_0 against the reference for row counts, key
 * counts and head sizes around the variants' tile edges (and past the AVX2
 * qk's pass of 8 blocks), with cache rows further apart than a head (blocks
 * 2-byte aligned, as in a cache, but not 4). q quants span the whole int8
 * range, K quants [-127, 127] (kern.h), V quants all of it. The reference
 * qk must equal its vec_dot bit for bit. */
static void test_attn_q8_tiles(const tl_kern *v) {
    const tl_kern *ref = tl_kern_ref();
    enum { RM = 17, NTM = 67, HM = 288, RB = HM / TL_QK8_0 * (int)sizeof(tl_block_q8_0) };
    enum { LDMAX = 2 * RB + 6 };
    static float qf[RM * HM], sa[RM * NTM], sb[RM * NTM], pw[RM * NTM], oa[RM * HM], ob[RM * HM];
    static float kf[NTM * HM], vf[NTM * HM];
    static tl_block_q8_0 qb[RM * HM / TL_QK8_0];
    _Alignas(32) static uint8_t kv[NTM * LDMAX];
    const int Rs[] = { 1, 3, 4, 5, 8, 16, 17 }, nts[] = { 1, 2, 7, 8, 9, 64, 67 };
    const int hds[] = { 32, 64, 96, 128, 256, 288 };
    for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++) {
        const int hd = hds[hi], nb = hd / TL_QK8_0;
        const size_t rb = (size_t)nb * sizeof(tl_block_q8_0);
        const size_t ld = 2 * rb + 6; /* bytes between cache rows: K at 0, V at rb + 2 */
        tl_block_q8_0 blk;
        for (int i = 0; i < NTM; i++)
            for (int b = 0; b < nb; b++) {
                rand_q8_block(&blk, kf + i * hd + b * TL_QK8_0, -127);
                memcpy(kv + i * ld + b * sizeof blk, &blk, sizeof blk);
                rand_q8_block(&blk, vf + i * hd + b * TL_QK8_0, -128);
                memcpy(kv + i * ld + rb + 2 + b * sizeof blk, &blk, sizeof blk);
            }
        for (int b = 0; b < RM * nb; b++) rand_q8_block(qb + b, qf + b * TL_QK8_0, -128);
        for (size_t ri = 0; ri < sizeof Rs / sizeof Rs[0]; ri++)
            for (size_t ni = 0; ni < sizeof nts / sizeof nts[0]; ni++) {
                const int R = Rs[ri], nt = nts[ni];
                int bad = 0, notdot = 0;
                /* S (R, nt) rows NTM apart */
                ref->attn_qk_q8_0(R, nt, hd, qb, kv, ld, sa, NTM);
                v->attn_qk_q8_0(R, nt, hd, qb, kv, ld, sb, NTM);
                for (int r = 0; r < R; r++)
                    for (int i = 0; i < nt; i++) {
                        float want;
                        ref->vec_dot[TL_DTYPE_Q8_0](hd, &want, kv + i * ld, qb + r * nb);
                        notdot += memcmp(&want, &sa[r * NTM + i], sizeof want) != 0;
                        const double tol = dot_tol(qf + r * hd, kf + i * hd, hd, nb);
                        bad += !(fabs(sa[r * NTM + i] - sb[r * NTM + i]) <= tol);
                    }
                CHECKF(notdot == 0, "ref attn_qk_q8_0 R=%d nt=%d hd=%d: %d scores not ref's vec_dot", R,
                       nt, hd, notdot);
                CHECKF(bad == 0, "%s attn_qk_q8_0 R=%d nt=%d hd=%d: %d scores off ref", v->name, R, nt,
                       hd, bad);
                /* O (R, hd) += P (R, nt) @ V, P with zeros as masked keys */
                for (int i = 0; i < R * NTM; i++) pw[i] = i % 11 == 0 ? 0.0f : tl_test_uniform();
                for (int i = 0; i < R * hd; i++) oa[i] = ob[i] = tl_test_normal();
                ref->attn_pv_q8_0(R, nt, hd, oa, pw, NTM, kv + rb + 2, ld);
                v->attn_pv_q8_0(R, nt, hd, ob, pw, NTM, kv + rb + 2, ld);
                bad = 0;
                for (int r = 0; r < R; r++)
                    for (int d = 0; d < hd; d++) {
                        double m1 = fabs(ob[r * hd + d]);
                        for (int i = 0; i < nt; i++) m1 += fabs(pw[r * NTM + i] * vf[i * hd + d]);
                        bad += !(fabs(oa[r * hd + d] - ob[r * hd + d]) <= (nt + 16) * ldexp(1.0, -23) * m1);
                    }
                CHECKF(bad == 0, "%s attn_pv_q8_0 R=%d nt=%d hd=%d: %d outputs off ref", v->name, R, nt,
                       hd, bad);
            }
    }
}

/* ---- row kernels of the non-matmul ops ------------------------------------ */

static void test_row_kernels(const tl_kern *v) {
    const tl_kern *ref = tl_kern_ref();
    enum { N = 5640 };
    static float x[N], g[N], u[N], w[N], bb[N], ya[N], yb[N];
    static uint16_t h[N];
    const int ns[] = { 1, 7, 8, 9, 16, 17, 64, 100, 128, 2051, 5632, N };
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
        const int n = ns[ni];
        for (int i = 0; i < n; i++) {
            x[i] = tl_test_normal() * (i % 97 == 0 ? 300.0f : 3.0f);
            /* silu's exp leaves its normal range below about -87 and above 88 */
            g[i] = i % 13 == 0 ? (tl_test_uniform() - 0.5f) * 400.0f : tl_test_normal() * 4.0f;
            u[i] = tl_test_normal();
            w[i] = 1.0f + 0.1f * tl_test_normal();
            bb[i] = 0.1f * tl_test_normal();
        }
        tl_kern_ref()->from_float[TL_DTYPE_F16](u, h, n);
        static float hd[N];
        tl_kern_ref()->to_float[TL_DTYPE_F16](h, hd, n);

        /* exp(x - m): tl_vexpf lane for lane, the sum in any order */
        for (int i = 0; i < n; i++) ya[i] = yb[i] = i % 29 == 0 ? -INFINITY : -0.6f * fabsf(g[i]);
        const float sa = ref->exp_sum(n, ya, 0.5f), sb = v->exp_sum(n, yb, 0.5f);
        int bad = 0;
        for (int i = 0; i < n; i++) bad += memcmp(&ya[i], &yb[i], sizeof(float)) != 0;
        CHECKF(bad == 0, "%s exp_sum n=%d: %d outputs differ from ref", v->name, n, bad);
        CHECKF(fabsf(sa - sb) <= ldexpf(sa, -22) * (float)(n / 8 + 1), "%s exp_sum n=%d: sum %.9g vs %.9g",
               v->name, n, sb, sa);

        /* max: exact, whatever the order */
        CHECKF(v->max_f32(n, x) == ref->max_f32(n, x), "%s max_f32 n=%d: %g vs %g", v->name, n,
               v->max_f32(n, x), ref->max_f32(n, x));

        /* y += a * V[j] from Q8_0 blocks (the whole blocks of the row):
         * bit-exact with ref, and ref within two roundings of y + a * deq */
        const int nq = n & ~(TL_QK8_0 - 1);
        if (nq > 0) {
            static tl_block_q8_0 q8[N / TL_QK8_0];
            static float qd[N];
            ref->from_float[TL_DTYPE_Q8_0](u, q8, nq);
            ref->to_float[TL_DTYPE_Q8_0](q8, qd, nq);
            const float as[] = { 0.37f, -1.5e-3f, 0.0f };
            for (size_t ai = 0; ai < sizeof as / sizeof as[0]; ai++) {
                for (int i = 0; i < nq; i++) ya[i] = yb[i] = x[i];
                ref->axpy_q8_0(nq, ya, as[ai], q8);
                v->axpy_q8_0(nq, yb, as[ai], q8);
                CHECKF(memcmp(ya, yb, sizeof(float) * nq) == 0, "%s axpy_q8_0 n=%d a=%g differs from ref",
                       v->name, nq, as[ai]);
                bad = 0;
                for (int i = 0; i < nq; i++)
                    if (!(fabsf(ya[i] - (x[i] + as[ai] * qd[i])) <= ldexpf(fabsf(x[i]) + fabsf(as[ai] * qd[i]), -21)))
                        bad++;
                CHECKF(bad == 0, "ref axpy_q8_0 n=%d a=%g: %d outputs off y + a * dequant", nq, as[ai], bad);
            }
        }

        /* bit-exact slots */
        for (int i = 0; i < n; i++) ya[i] = yb[i] = x[i];
        ref->scale(n, ya, 0.125f * 3.3f);
        v->scale(n, yb, 0.125f * 3.3f);
        CHECKF(memcmp(ya, yb, sizeof(float) * n) == 0, "%s scale n=%d differs from ref", v->name, n);
        ref->silu_mul(n, ya, g, u);
        v->silu_mul(n, yb, g, u);
        bad = 0;
        for (int i = 0; i < n; i++) bad += memcmp(&ya[i], &yb[i], sizeof(float)) != 0;
        CHECKF(bad == 0, "%s silu_mul n=%d: %d outputs differ from ref", v->name, n, bad);
        for (int i = 0; i < n; i++) yb[i] = g[i];
        v->silu_mul(n, yb, yb, u); /* in place */
        CHECKF(memcmp(ya, yb, sizeof(float) * n) == 0, "%s silu_mul in place n=%d", v->name, n);

        ref->gelu_mul(n, ya, g, u);
        v->gelu_mul(n, yb, g, u);
        CHECKF(memcmp(ya, yb, sizeof(float) * n) == 0, "%s gelu_mul n=%d differs from ref", v->name, n);

        /* norms: the double sums differ in order only, so the scale is the
         * same float or one ulp off */
        for (int mode = 0; mode < 4; mode++) {
            const bool layer = mode & 1;
            const float *pw = mode >= 2 ? w : NULL, *pb = mode == 3 ? bb : NULL;
            ref->norm_row(n, ya, x, pw, pb, 1e-5f, layer);
            v->norm_row(n, yb, x, pw, pb, 1e-5f, layer);
            bad = 0;
            for (int i = 0; i < n; i++)
                if (!(fabsf(ya[i] - yb[i]) <= 3e-7f * (fabsf(ya[i]) + (pb ? fabsf(pb[i]) : 0.0f))))
                    bad++;
            CHECKF(bad == 0, "%s norm_row n=%d layer=%d w=%d b=%d: %d outputs off", v->name, n,
                   layer, pw != NULL, pb != NULL, bad);
        }
    }
}

/* rope over heads of several sizes, whole and partial rotations (Phi-2: 32
 * of 80 dims), both pairings, pair counts with and without vector tails:
 * bit-exact with ref, the unrotated dims untouched; ref itself within
 * rounding of the rotation in double */
static void test_rope(const tl_kern *v) {
    const tl_kern *ref = tl_kern_ref();
    enum { NH = 3, MAXHD = 256 };
    static float x[NH * MAXHD], ya[NH * MAXHD], yb[NH * MAXHD], cs[MAXHD / 2], sn[MAXHD / 2];
    const int shapes[][2] = { { 64, 64 },  { 128, 128 }, { 80, 32 }, { 96, 96 }, { 256, 256 },
                              { 12, 12 },  { 40, 24 },   { 64, 2 },  { 10, 6 },  { 72, 72 } };
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const int hd = shapes[si][0], nr = shapes[si][1];
        for (int neox = 0; neox < 2; neox++) {
            for (int i = 0; i < NH * hd; i++) x[i] = ya[i] = yb[i] = tl_test_normal() * (i % 31 == 0 ? 50.0f : 2.0f);
            for (int i = 0; i < nr / 2; i++) {
                const double th = (tl_test_uniform() - 0.5) * 2000.0;
                cs[i] = (float)cos(th) * 1.1f;
                sn[i] = (float)sin(th) * 1.1f;
            }
            ref->rope(NH, hd, nr, neox, ya, cs, sn);
            v->rope(NH, hd, nr, neox, yb, cs, sn);
            int bad = 0, off = 0;
            for (int i = 0; i < NH * hd; i++) bad += memcmp(&ya[i], &yb[i], sizeof(float)) != 0;
            CHECKF(bad == 0, "%s rope hd=%d nr=%d neox=%d: %d outputs differ from ref", v->name, hd, nr,
                   neox, bad);
            for (int h = 0; h < NH; h++) {
                const float *xh = x + h * hd, *rh = ya + h * hd;
                for (int i = nr; i < hd; i++) off += memcmp(&xh[i], &rh[i], sizeof(float)) != 0;
                for (int i = 0; i < nr / 2; i++) {
                    const int a = neox ? i : 2 * i, c = neox ? i + nr / 2 : 2 * i + 1;
                    const double ea = (double)xh[a] * cs[i] - (double)xh[c] * sn[i];
                    const double ec = (double)xh[a] * sn[i] + (double)xh[c] * cs[i];
                    const double tol = 2e-7 * (fabs(xh[a]) + fabs(xh[c])) * 1.1;
                    off += !(fabs(rh[a] - ea) <= tol) + !(fabs(rh[c] - ec) <= tol);
                }
            }
            CHECKF(off == 0, "ref rope hd=%d nr=%d neox=%d: %d outputs off the rotation", hd, nr, neox, off);
        }
    }
}

/* ---- gelu_mul on every f16 value and rounding tie ------------------------- */

/* the same float, NaN payloads aside */
static bool same_float(float a, float b) {
    return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b));
}

/* v->gelu_mul against ref's on g (n,): without u, with u, in place over g
 * and over u, at every start offset mod 8 and with tails of every length */
static void check_gelu_rows(const tl_kern *v, const float *g, int n, const char *what) {
    const tl_kern *ref = tl_kern_ref();
    float *u = malloc(sizeof(float) * n), *ya = malloc(sizeof(float) * n), *yb = malloc(sizeof(float) * n);
    if (!u || !ya || !yb) {
        CHECK(u && ya && yb);
        free(u), free(ya), free(yb);
        return;
    }
    for (int i = 0; i < n; i++) u[i] = tl_test_normal();
    for (int pass = 0; pass < 4; pass++) {
        const float *pu = pass == 0 ? NULL : u;
        ref->gelu_mul(n, ya, g, pu);
        if (pass < 2) {
            v->gelu_mul(n, yb, g, pu);
        } else if (pass == 2) { /* o == g */
            memcpy(yb, g, sizeof(float) * n);
            v->gelu_mul(n, yb, yb, u);
        } else {                /* o == u */
            memcpy(yb, u, sizeof(float) * n);
            v->gelu_mul(n, yb, g, yb);
        }
        int bad = 0;
        for (int i = 0; i < n; i++)
            if (!same_float(ya[i], yb[i]) && bad++ < 4)
                fprintf(stderr, "%s gelu(0x%08x): %a, ref %a\n", v->name, tl_f32_bits(g[i]), yb[i], ya[i]);
        CHECKF(bad == 0, "%s gelu_mul %s pass %d: %d of %d outputs differ from ref", v->name, what, pass,
               bad, n);
    }
    /* short rows at every offset: each tail length, each alignment */
    for (int off = 0; off < 8 && off < n; off++)
        for (int len = 1; len <= 19 && off + len <= n; len++) {
            ref->gelu_mul(len, ya, g + off, u + off);
            v->gelu_mul(len, yb, g + off, u + off);
            int bad = 0;
            for (int i = 0; i < len; i++) bad += !same_float(ya[i], yb[i]);
            CHECKF(bad == 0, "%s gelu_mul %s off=%d n=%d: %d outputs differ", v->name, what, off, len, bad);
        }
    free(u), free(ya), free(yb);
}

static void test_gelu(const tl_kern *v) {
    enum { NH = 65536 };
    static float x[3 * NH];
    /* every f16 value (NaNs, infinities, subnormals included) */
    for (int h = 0; h < NH; h++) x[h] = tl_f16_to_f32((tl_f16)h);
    check_gelu_rows(v, x, NH, "f16 grid");
    /* the f16 rounding ties (half an f16 ulp from each value) and the
     * floats either side, where a conversion that rounds otherwise than
     * tl_f32_to_f16 would pick another entry */
    int n = tl_test_f16_ties(x);
    check_gelu_rows(v, x, n, "f16 ties");
    /* the clamps and the values that round onto +-10, infinities, NaNs,
     * float denormals, the f16 overflow boundary; then strided bit patterns */
    const float sp[] = {
        -10.0f, 10.0f, nextafterf(-10.0f, 0.0f), nextafterf(10.0f, 0.0f), nextafterf(-10.0f, -20.0f),
        nextafterf(10.0f, 20.0f), -9.999f, 9.999f, -9.99609375f, 9.99609375f, INFINITY, -INFINITY,
        NAN, -NAN, tl_f32_from_bits(0x7f800001u), tl_f32_from_bits(0xffbfffffu), 0.0f, -0.0f,
        tl_f32_from_bits(1), tl_f32_from_bits(0x80000001u), tl_f32_from_bits(0x807fffffu), 0x1p-25f,
        -0x1.8p-25f, 65504.0f, 65519.99f, 65520.0f, -65520.0f, FLT_MAX, -FLT_MAX,
    };
    n = 0;
    for (int r = 0; r < 8; r++) /* every special in every lane */
        for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++) x[n++] = sp[(i + (size_t)r) % (sizeof sp / sizeof sp[0])];
    for (uint64_t b = 777; b < ((uint64_t)1 << 32); b += 65537) x[n++] = tl_f32_from_bits((uint32_t)b);
    check_gelu_rows(v, x, n, "specials and strided bit patterns");
}

/* ---- whose BF16 kernels ---------------------------------------------------- *
 * Merged tables are copies, so a slot a variant inherits holds the same
 * function pointer as the table beneath it: the first variant (in
 * selection order) with v's BF16 vec_dot is where v's BF16 vec_dot and
 * gemm come from. avx512 has its own only where CPUID reports AVX512_BF16
 * (kern_avx512.c); without it they must stay avx2's. avx512's 16-row
 * bf16x16 repack needs AVX-512F alone: it is its own on every AVX-512 CPU. */
static const char *const variant_names[] = { "ref", "avx2", "avx512", "neon" };

static void test_bf16_origin(const tl_kern *v) {
    const tl_dtype t = TL_DTYPE_BF16;
    const tl_kern *from = v;
    for (size_t i = 0; i < sizeof variant_names / sizeof variant_names[0]; i++) {
        const tl_kern *o = tl_kern_variant(variant_names[i]);
        if (o && o->vec_dot[t] == v->vec_dot[t]) {
            from = o;
            break;
        }
    }
    printf("checking variant %s: bf16 kernels from %s\n", v->name, from->name);
    CHECKF(from->gemm[t] == v->gemm[t], "%s: bf16 vec_dot from %s but not its gemm", v->name, from->name);
#if defined(__x86_64__) || defined(__i386__)
    if (strcmp(v->name, "avx512") == 0) {
        __builtin_cpu_init();
        const bool has = __builtin_cpu_supports("avx512bf16");
        CHECKF(strcmp(from->name, has ? "avx512" : "avx2") == 0,
               "avx512 bf16 kernels from %s on a CPU %s AVX512_BF16", from->name,
               has ? "with" : "without");
        CHECKF(!has || v->gemm[t], "avx512 has no bf16 gemm");
        CHECKF(v->repack[t].rows == 16, "avx512 has no bf16x16 repack (rows %d)", v->repack[t].rows);
        return;
    }
#endif
    CHECKF(from->repack[t].gemm == v->repack[t].gemm, "%s: bf16 vec_dot from %s but not its repack",
           v->name, from->name);
}

int main(void) {
    shard_init();
    tl_test_seed(0x9E3779B97F4A7C15ull);
    /* TL_CPU picks the variant at the first tl_kern_get(): ask for this
     * architecture's baseline SIMD variant, which must be honoured exactly
     * when this CPU/build can run it (else the best available is used,
     * which is ref when that one is missing) */
#if defined(__aarch64__)
    const char *want = "neon";
#else
    const char *want = "avx2";
#endif
    setenv("TL_CPU", want, 1);
    const tl_kern *sel = tl_kern_get();
    const tl_kern *wanted = tl_kern_variant(want);
    CHECK(sel == (wanted ? wanted : tl_kern_variant("ref")));
    int ran = 0;
    for (size_t i = 1; i < sizeof variant_names / sizeof variant_names[0]; i++) {
        const char *name = variant_names[i]; /* every SIMD variant: ref is what they are checked against */
        const tl_kern *v = tl_kern_variant(name);
        if (!v) continue;
        /* TL_TEST_VARIANTS=avx512: only those (scripts/test-avx512.sh runs
         * this under an emulator, where avx2 would double the time) */
        const char *only = getenv("TL_TEST_VARIANTS");
        if (only && *only && !strstr(only, name)) continue;
        printf("checking variant %s\n", name);
        ran++;
        test_bf16_origin(v);
        test_from_float(v);
        test_gemm(v);
        test_float_tails(v);
        test_repack(v);
        const char *types = getenv("TL_TEST_TYPES");
        if (types && *types) continue;
        if (unit_mine()) test_row_kernels(v);
        if (unit_mine()) test_gelu(v);
        if (unit_mine()) test_rope(v);
        if (unit_mine()) test_attn_tiles(v);
        if (unit_mine()) test_attn_q8_tiles(v);
    }
    if (!ran) printf("no SIMD variant on this CPU/build: nothing to compare\n");
    return tl_test_finish("test_kern_simd", 0);
}
