/* kbench.c — single-thread kernel throughput, timed in thread CPU time so
 * that a busy machine distorts it less than wall-clock benches.
 *
 *   run:   TL_CPU=avx2 build/bin/kbench [k] [d] [ntok]   (built by CMake)
 *
 * For each main weight type: W (d, k) @ X (ntok, k) via the variant's
 * repacked gemm when it has one ("pack"; KB_NOPACK=1 for the row-major
 * gemm), else its gemm, else vec_dot loops, in calls of as many rows as the
 * backend's chunks; reported as GMAC/s of CPU time, and the same for one
 * token (the decode GEMV), with the (original) weight bytes/s (KB_BEST=1:
 * the fastest of the 0.3 s's sweeps over the d rows, not their mean, which
 * a busy neighbour moves less: for A/B of a kernel change); and how
 * fast the repack slot packs the matrix (load time), in weight bytes/s.
 * KB_TYPE=Q4_0 (etc.) runs one type; KB_TYPE=attn times the attention
 * tiles over an F16 cache (attn_qk_f16, attn_pv_f16) and a Q8_0 cache
 * (attn_qk_q8_0, attn_pv_q8_0, next to the per-(row, key) vec_dot and
 * axpy_q8_0 calls they replace) on one L1-resident tile of 64 keys for
 * R = 1, 3, 4, 8, 15, 16 query rows and head size 64 and 128, as GMAC/s
 * (KB_BEST=1: of the fastest 64 calls).
 * KB_TYPE=gelu [n] times gelu_mul over n elements (default 5632 * 128),
 * gated and not, ref's (scalar table) and the variant's, as Gelem/s.
 * Also built by CMake: build/bin/kbench. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "kern/kern.h"
#include "bench_util.h"

static void run(const tl_kern *kern, tl_dtype t, int64_t k, int64_t d, int ntok) {
    const tl_dtype_traits *tr = tl_dtype_traits_of(t);
    const tl_dtype vt = tr->vec_dot_type;
    const size_t wrow = tl_dtype_row_size(t, k), xrow = tl_dtype_row_size(vt, k);
    uint8_t *w = aligned_alloc(64, (wrow * d + 63) & ~(size_t)63);
    uint8_t *x = aligned_alloc(64, (xrow * ntok + 63) & ~(size_t)63);
    float *f = malloc(sizeof(float) * k), *y = malloc(sizeof(float) * d * ntok);
    uint64_t s = 88172645463325252ull;
    for (int64_t r = 0; r < d; r++) {
        for (int64_t i = 0; i < k; i++) f[i] = 0.02f * bench_frand(&s);
        tr->from_float(f, w + r * wrow, k);
    }
    for (int c = 0; c < ntok; c++) {
        for (int64_t i = 0; i < k; i++) f[i] = bench_frand(&s);
        kern->from_float[vt](f, x + c * xrow, k);
    }
    /* with a repack slot: the packed copy and its gemm (KB_NOPACK=1: not) */
    const tl_repack *rp = &kern->repack[t];
    const bool packed = rp->rows && d % rp->rows == 0 && !getenv("KB_NOPACK");
    const bool best_of = getenv("KB_BEST") != NULL;
    const size_t prow = packed ? rp->row_size(k) : wrow;
    uint8_t *wp = packed ? aligned_alloc(64, (prow * d + 63) & ~(size_t)63) : NULL;
    if (packed) {
        /* packing is load time (time to the first token): timed too */
        int reps = 0;
        double t0 = bench_cpu_now(), t1;
        do {
            rp->pack(wp, w, wrow, k, d);
            reps++;
            t1 = bench_cpu_now();
        } while (t1 - t0 < 0.1);
        printf("%-6s %-5s pack k=%lld d=%lld  repacking %6.2f GB/s\n", kern->name, tr->name,
               (long long)k, (long long)d, (double)wrow * d * reps / (t1 - t0) * 1e-9);
    }
    /* the packed gemm's own act form, where it has one (the driver's); its
     * act_prep entries after the rows, made in each timed pass as the
     * driver makes them once per product */
    size_t ldx = xrow;
    uint8_t *xa = x;
    const bool prep = packed && rp->act_prep && !rp->act_from_float;
    if (prep) {
        ldx = tl_act_stride(tl_act_row_bytes(rp, tr->vec_dot_type, k));
        xa = aligned_alloc(64, (ldx * ntok + 63) & ~(size_t)63);
        for (int c = 0; c < ntok; c++) memcpy(xa + c * ldx, x + c * xrow, xrow);
    }
    if (packed && rp->act_from_float) {
        ldx = tl_act_stride(tl_dtype_row_size(rp->act_type, k));
        xa = aligned_alloc(64, (ldx * ntok + 63) & ~(size_t)63);
        s = 88172645463325252ull;
        for (int c = 0; c < ntok; c++) {
            for (int64_t i = 0; i < k; i++) f[i] = bench_frand(&s);
            rp->act_from_float(f, xa + c * ldx, k);
        }
    }
    const tl_gemm_fn gemm = packed ? rp->gemm : kern->gemm[t];
    const uint8_t *wu = packed ? wp : w;
    const int64_t rc = packed ? 64 : 24; /* rows per call, as the driver's prefill chunks */
    for (int pass = 0; pass < 2; pass++) {
        const int nt = pass == 0 ? ntok : 1;
        int reps = 0;
        double t0 = bench_cpu_now(), t1, best = 1e30;
        do {
            const double s0 = bench_cpu_now();
            if (prep) tl_act_prep_rows(rp, tr->vec_dot_type, k, xa, ldx, nt);
            if (gemm) {
                for (int64_t r0 = 0; r0 < d; r0 += rc)
                    gemm(k, d - r0 < rc ? d - r0 : rc, nt, y + r0, (size_t)d, wu + r0 * prow, prow, xa,
                         ldx);
            } else {
                for (int64_t r = 0; r < d; r++)
                    for (int c = 0; c < nt; c++) kern->vec_dot[t](k, y + c * d + r, w + r * wrow, x + c * xrow);
            }
            reps++;
            t1 = bench_cpu_now();
            if (t1 > s0 && t1 - s0 < best) best = t1 - s0; /* 0: the clock did not tick */
        } while (t1 - t0 < 0.3);
        const double sec = best_of ? best : (t1 - t0) / reps;
        printf("%-6s %-5s %s k=%lld d=%lld n=%-3d %7.2f GMAC/s  %6.2f GB/s weights\n", kern->name,
               tr->name, packed ? "pack" : gemm ? "gemm" : "dot ", (long long)k, (long long)d, nt,
               (double)k * d * nt / sec * 1e-9, (double)wrow * d / sec * 1e-9 * (nt == 1));
    }
    if (xa != x) free(xa);
    free(w), free(wp), free(x), free(f), free(y);
}

/* the attention tiles: S (R, 64) = Q (R, hd) . K^T, O (R, hd) += P (R, 64) @ V,
 * over an F16 cache (attn_qk_f16, attn_pv_f16) and a Q8_0 one (attn_qk_q8_0,
 * attn_pv_q8_0; q quantized to Q8_0), and for reference the Q8_0 cache by
 * one vec_dot / axpy_q8_0 call per (row, key) */
static void run_attn(const tl_kern *kern) {
    const bool best_of = getenv("KB_BEST") != NULL; /* the fastest 64 calls, as run()'s */
    enum { NT = 64, RMAX = 16, HMAX = 128, QROW = HMAX / 32 * 34 };
    static float q[RMAX * HMAX], s[RMAX * NT], o[RMAX * HMAX], f[NT * HMAX];
    static uint16_t kv[NT * HMAX];
    static uint8_t kq[NT * QROW], qq[RMAX * QROW];
    uint64_t st = 88172645463325252ull;
    for (int i = 0; i < NT * HMAX; i++) f[i] = bench_frand(&st);
    kern->from_float[TL_DTYPE_F16](f, kv, NT * HMAX);
    for (int i = 0; i < RMAX * HMAX; i++) q[i] = 0.1f * bench_frand(&st);
    for (int i = 0; i < RMAX * NT; i++) s[i] = bench_frand(&st) * 0.01f;
    const int rs[] = { 1, 3, 4, 8, 15, 16 }, hds[] = { 64, 128 };
    for (int hi = 0; hi < 2; hi++)
        for (size_t ri = 0; ri < sizeof rs / sizeof rs[0]; ri++) {
            const int R = rs[ri], hd = hds[hi];
            const size_t krow = (size_t)hd / 32 * 34; /* Q8_0 rows, packed as the cache's */
            kern->from_float[TL_DTYPE_Q8_0](f, kq, (int64_t)NT * hd);
            kern->from_float[TL_DTYPE_Q8_0](q, qq, (int64_t)R * hd);
            double rate[6];
            for (int op = 0; op < 6; op++) {
                int reps = 0;
                double t0 = bench_cpu_now(), t1, best = 1e30;
                do {
                    const double s0 = bench_cpu_now();
                    for (int j = 0; j < 64; j++) {
                        switch (op) {
                        case 0: kern->attn_qk_f16(R, NT, hd, q, kv, s, NT); break;
                        case 1: kern->attn_pv_f16(R, NT, hd, o, s, NT, kv, (size_t)hd); break;
                        case 2: kern->attn_qk_q8_0(R, NT, hd, qq, kq, krow, s, NT); break;
                        case 3: kern->attn_pv_q8_0(R, NT, hd, o, s, NT, kq, krow); break;
                        case 4:
                            for (int r = 0; r < R; r++)
                                for (int i = 0; i < NT; i++)
                                    kern->vec_dot[TL_DTYPE_Q8_0](hd, s + r * NT + i, kq + i * krow,
                                                                 qq + r * krow);
                            break;
                        default:
                            for (int r = 0; r < R; r++)
                                for (int i = 0; i < NT; i++)
                                    kern->axpy_q8_0(hd, o + r * hd, s[r * NT + i], kq + i * krow);
                            break;
                        }
                    }
                    reps += 64;
                    t1 = bench_cpu_now();
                    if (t1 > s0 && t1 - s0 < best) best = t1 - s0;
                } while (t1 - t0 < 0.2);
                rate[op] = (double)R * NT * hd * (best_of ? 64 / best : reps / (t1 - t0)) * 1e-9;
            }
            printf("%-6s attn  R=%-2d hd=%-3d nt=%d   qk %6.2f GMAC/s   pv %6.2f GMAC/s\n", kern->name, R,
                   hd, NT, rate[0], rate[1]);
            printf("%-6s q8_0  R=%-2d hd=%-3d nt=%d   qk %6.2f GMAC/s   pv %6.2f GMAC/s   "
                   "(per row and key: vec_dot %6.2f, axpy_q8_0 %6.2f)\n",
                   kern->name, R, hd, NT, rate[2], rate[3], rate[4], rate[5]);
        }
}

/* GELU over n elements (default 5632 * 128: an FFN's width times a prefill
 * chunk): o = gelu(g) * u (the gated FFN, glu) and x = gelu(x) (Phi-2's
 * FFN, unary), by ref's gelu_mul (scalar table lookups) and the variant's;
 * Gelem/s of thread CPU time (the per-element formula the table replaced
 * ran at 0.024: bench/RESULTS.md round 7). Activations
 * ~ 3 * U(-1, 1), inside the clamps as a real FFN's mostly are. */
static void run_gelu(const tl_kern *kern, int64_t n) {
    float *g = malloc(sizeof(float) * n), *u = malloc(sizeof(float) * n), *o = malloc(sizeof(float) * n);
    uint64_t st = 88172645463325252ull;
    for (int64_t i = 0; i < n; i++) g[i] = 3.0f * bench_frand(&st), u[i] = bench_frand(&st);
    const tl_kern *ref = tl_kern_ref();
    const tl_gelu_mul_fn fns[2] = { ref->gelu_mul, kern->gelu_mul };
    const char *names[2] = { "ref", kern->name };
    for (int gated = 1; gated >= 0; gated--)
        for (int f = 0; f < 2; f++) {
            int reps = 0;
            double t0 = bench_cpu_now(), t1;
            do {
                fns[f]((int)n, o, g, gated ? u : NULL);
                reps++;
                t1 = bench_cpu_now();
            } while (t1 - t0 < 0.3);
            printf("%-6s gelu  %-5s n=%lld  %-7s %7.3f Gelem/s\n", kern->name, gated ? "glu" : "unary",
                   (long long)n, names[f], (double)n * reps / (t1 - t0) * 1e-9);
        }
    free(g), free(u), free(o);
}

int main(int argc, char **argv) {
    const int64_t k = argc > 1 ? atoll(argv[1]) : 2048, d = argc > 2 ? atoll(argv[2]) : 2048;
    const int ntok = argc > 3 ? atoi(argv[3]) : 64;
    const char *only = getenv("KB_TYPE");
    const tl_dtype types[] = { TL_DTYPE_Q4_0, TL_DTYPE_Q4_1, TL_DTYPE_Q5_0, TL_DTYPE_Q5_1,
                               TL_DTYPE_Q8_0, TL_DTYPE_Q2_K, TL_DTYPE_Q3_K, TL_DTYPE_Q4_K,
                               TL_DTYPE_Q5_K, TL_DTYPE_Q6_K, TL_DTYPE_F16,  TL_DTYPE_BF16 };
    const tl_kern *kern = tl_kern_get();
    if (only && !strcmp(only, "attn")) {
        run_attn(kern);
        return 0;
    }
    if (only && !strcmp(only, "gelu")) {
        run_gelu(kern, argc > 1 ? atoll(argv[1]) : 5632 * 128);
        return 0;
    }
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!only || !strcmp(only, tl_dtype_name(types[i]))) run(kern, types[i], k, d, ntok);
    return 0;
}
