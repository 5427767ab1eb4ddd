/* test_kern_ref.c — the scalar reference kernels and the kernel selector.
 *
 * Each vec_dot is checked against the double-precision dot product of the
 * dequantized rows. (The ref kernels were additionally verified, off-line,
 * to be bit-identical to GGML's scalar ggml_vec_dot_* for every quant type.)
 * Any SIMD variant this build and CPU can run is checked against ref the
 * same way. gelu_mul (the f16 GELU table) is checked against the formula it
 * tabulates on every f16 value, every f16 rounding tie and its neighbours,
 * the clamps, infinities, NaNs and denormals, and a stride through all
 * float bit patterns. */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/gelu.h"
#include "core/quant.h"
#include "harness.h"
#include "kern/kern.h"

/* an f16 scale of random sign and magnitude in [1e-3, 1e-1) */
static tl_f16 rng_scale(void) {
    float v = 1e-3f * powf(100.0f, tl_test_uniform());
    return tl_f32_to_f16(tl_test_u32() & 1 ? v : -v);
}

static const tl_dtype weight_types[] = {
    TL_DTYPE_F32,  TL_DTYPE_F16,  TL_DTYPE_BF16, TL_DTYPE_Q4_0, TL_DTYPE_Q4_1,
    TL_DTYPE_Q5_0, TL_DTYPE_Q5_1, TL_DTYPE_Q8_0, TL_DTYPE_Q2_K, TL_DTYPE_Q3_K,
    TL_DTYPE_Q4_K, TL_DTYPE_Q5_K, TL_DTYPE_Q6_K,
};
#define N_WEIGHT_TYPES (int)(sizeof weight_types / sizeof weight_types[0])
enum { NMAX = 4096 };

/* ---- raw block generation ----------------------------------------------- */

/* Random bytes everywhere, then valid scales (random bytes could be f16
 * NaN/inf) and, for the activation formats, the derived fields (q8_1's s,
 * q8_K's bsums) made consistent with the quants as the quantizers make them.
 * fill: -1 random quant bytes, else every quant byte set to fill. */
static void make_raw_row(tl_dtype t, void *row, int64_t n, int fill) {
    const tl_dtype_traits *tr = tl_dtype_traits_of(t);
    const int64_t nb = n / tr->block_size;
    uint8_t *p = row;
    for (size_t i = 0; i < nb * tr->type_size; i++) p[i] = fill < 0 ? (uint8_t)tl_test_u32() : (uint8_t)fill;
    for (int64_t b = 0; b < nb; b++) {
        void *blk = p + b * tr->type_size;
        switch (t) {
        case TL_DTYPE_F32: ((float *)row)[b] = tl_test_normal(); break;
        case TL_DTYPE_F16: ((tl_f16 *)row)[b] = tl_f32_to_f16(tl_test_normal()); break;
        case TL_DTYPE_BF16: ((tl_bf16 *)row)[b] = tl_f32_to_bf16(tl_test_normal()); break;
        case TL_DTYPE_Q4_0: ((tl_block_q4_0 *)blk)->d = rng_scale(); break;
        case TL_DTYPE_Q5_0: ((tl_block_q5_0 *)blk)->d = rng_scale(); break;
        case TL_DTYPE_Q8_0: ((tl_block_q8_0 *)blk)->d = rng_scale(); break;
        case TL_DTYPE_Q4_1: ((tl_block_q4_1 *)blk)->d = rng_scale(); ((tl_block_q4_1 *)blk)->m = rng_scale(); break;
        case TL_DTYPE_Q5_1: ((tl_block_q5_1 *)blk)->d = rng_scale(); ((tl_block_q5_1 *)blk)->m = rng_scale(); break;
        case TL_DTYPE_Q8_1: {
            tl_block_q8_1 *q = blk;
            q->d = rng_scale();
            int sum = 0;
            for (int j = 0; j < TL_QK8_1; j++) sum += q->qs[j];
            q->s = tl_f32_to_f16(tl_f16_to_f32(q->d) * (float)sum);
            break;
        }
        case TL_DTYPE_Q2_K: ((tl_block_q2_K *)blk)->d = rng_scale(); ((tl_block_q2_K *)blk)->dmin = rng_scale(); break;
        case TL_DTYPE_Q3_K: ((tl_block_q3_K *)blk)->d = rng_scale(); break;
        case TL_DTYPE_Q4_K: ((tl_block_q4_K *)blk)->d = rng_scale(); ((tl_block_q4_K *)blk)->dmin = rng_scale(); break;
        case TL_DTYPE_Q5_K: ((tl_block_q5_K *)blk)->d = rng_scale(); ((tl_block_q5_K *)blk)->dmin = rng_scale(); break;
        case TL_DTYPE_Q6_K: ((tl_block_q6_K *)blk)->d = rng_scale(); break;
        case TL_DTYPE_Q8_K: {
            tl_block_q8_K *q = blk;
            q->d = tl_f16_to_f32(rng_scale());
            for (int j = 0; j < 16; j++) {
                int s = 0;
                for (int l = 0; l < 16; l++) s += q->qs[16 * j + l];
                q->bsums[j] = (int16_t)s;
            }
            break;
        }
        default: break;
        }
    }
    if (t == TL_DTYPE_F32 || t == TL_DTYPE_F16 || t == TL_DTYPE_BF16) {
        /* plain types: the "extreme" fills mean constant rows of 1e4 or 0 */
        if (fill >= 0) {
            for (int64_t i = 0; i < n; i++) {
                const float v = fill ? 1e4f : 0.0f;
                if (t == TL_DTYPE_F32) ((float *)row)[i] = v;
                else if (t == TL_DTYPE_F16) ((tl_f16 *)row)[i] = tl_f32_to_f16(v);
                else ((tl_bf16 *)row)[i] = tl_f32_to_bf16(v);
            }
        }
    }
}

/* ---- tolerance ------------------------------------------------------------ *
 * Both sides use the same quants, and the kernel's integer block sums are
 * exact, so they differ only by float roundings: the dequantization itself
 * (up to 2-3 ops per value, e.g. d*sc*q - dmin*m), the kernel's per-block
 * scale products and its float accumulation over nb blocks (or 8 lanes).
 * Each rounding is at most 2^-24 of a partial sum whose magnitude is bounded
 * by M = sum |w_i x_i| + ||w||_inf ||x||_1 (the second term covers the
 * cancellation inside d*q - m, whose parts are each at most about ||w||_inf).
 * So |err| <= (nb + 16) * 2^-23 * M, a 2x margin on that count. q8_1's s is
 * d*sum(q) rounded to f16 (2^-11) while the dequantized x uses d rounded to
 * f16 too, so the min term of q4_1/q5_1 adds sum_b |m_b| |d_b| sum|q_b| 2^-10. */
static double tolerance(tl_dtype wt, const void *qw, const void *qx, const float *w, const float *x,
                        int64_t n) {
    const tl_dtype_traits *tr = tl_dtype_traits_of(wt);
    double m1 = 0, l1x = 0, winf = 0;
    for (int64_t i = 0; i < n; i++) {
        m1 += fabs((double)w[i] * x[i]);
        l1x += fabs(x[i]);
        if (fabs(w[i]) > winf) winf = fabs(w[i]);
    }
    const int64_t nb = n / tr->block_size;
    double tol = (double)(nb + 16) * ldexp(1.0, -23) * (m1 + winf * l1x);
    if (wt == TL_DTYPE_Q4_1 || wt == TL_DTYPE_Q5_1) {
        const tl_block_q8_1 *y = qx;
        for (int64_t b = 0; b < nb; b++) {
            const float m = wt == TL_DTYPE_Q4_1 ? tl_f16_to_f32(((const tl_block_q4_1 *)qw)[b].m)
                                                : tl_f16_to_f32(((const tl_block_q5_1 *)qw)[b].m);
            int sq = 0;
            for (int j = 0; j < TL_QK8_1; j++) sq += abs(y[b].qs[j]);
            tol += fabs(m) * fabs(tl_f16_to_f32(y[b].d)) * sq * ldexp(1.0, -10);
        }
    }
    return tol + 1e-30;
}

static float wf[NMAX], xf[NMAX], wd[NMAX], xd[NMAX];
static uint8_t qw[NMAX * 4], qx[NMAX * 4];

/* Runs kern->vec_dot[wt] on qw/qx and compares with the dequantized dot. */
static void check_dot(const tl_kern *kern, tl_dtype wt, int64_t n, const char *what) {
    const tl_kern *ref = tl_kern_ref();
    const tl_dtype vt = tl_dtype_traits_of(wt)->vec_dot_type;
    ref->to_float[wt](qw, wd, n);
    tl_dtype_traits_of(vt)->to_float(qx, xd, n);
    double want = 0;
    for (int64_t i = 0; i < n; i++) want += (double)wd[i] * xd[i];
    float got = NAN;
    kern->vec_dot[wt](n, &got, qw, qx);
    const double tol = tolerance(wt, qw, qx, wd, xd, n);
    CHECKF(fabs(got - want) <= tol, "%s %s %s n=%lld: got %.9g want %.9g (tol %.3g)", kern->name,
           tl_dtype_name(wt), what, (long long)n, got, want, tol);
}

static void test_vec_dot(const tl_kern *kern) {
    for (int i = 0; i < N_WEIGHT_TYPES; i++) {
        const tl_dtype wt = weight_types[i];
        const tl_dtype_traits *tr = tl_dtype_traits_of(wt);
        const tl_dtype vt = tr->vec_dot_type;
        const int64_t sizes[3] = { tr->block_size, 4 * tr->block_size > NMAX ? NMAX : 4 * tr->block_size, NMAX };
        for (int si = 0; si < 3; si++) {
            const int64_t n = sizes[si];
            /* quantized random data, as in real use */
            for (int trial = 0; trial < 4; trial++) {
                const float xs = trial == 3 ? 1e3f : 1.0f;
                for (int64_t j = 0; j < n; j++) {
                    wf[j] = tl_test_normal() * 0.05f;
                    xf[j] = tl_test_normal() * xs;
                }
                tr->from_float(wf, qw, n);
                kern->from_float[vt](xf, qx, n);
                check_dot(kern, wt, n, "quantized");
            }
            /* zeros: exactly 0 */
            memset(wf, 0, n * sizeof *wf);
            for (int64_t j = 0; j < n; j++) xf[j] = tl_test_normal();
            tr->from_float(wf, qw, n);
            kern->from_float[vt](xf, qx, n);
            float got = NAN;
            kern->vec_dot[wt](n, &got, qw, qx);
            CHECKF(got == 0.0f, "%s %s zero weights n=%lld: %g", kern->name, tr->name, (long long)n, got);
            /* raw blocks: every bit pattern of the quants */
            for (int trial = 0; trial < 4; trial++) {
                make_raw_row(wt, qw, n, -1);
                make_raw_row(vt, qx, n, -1);
                check_dot(kern, wt, n, "raw");
            }
            /* extreme quants: all bits set against all-0x80 (-128) and 0x7F */
            make_raw_row(wt, qw, n, 0xFF);
            make_raw_row(vt, qx, n, 0x80);
            check_dot(kern, wt, n, "max/-128");
            make_raw_row(wt, qw, n, 0xFF);
            make_raw_row(vt, qx, n, 0x7F);
            check_dot(kern, wt, n, "max/127");
            make_raw_row(wt, qw, n, 0x00);
            make_raw_row(vt, qx, n, 0x80);
            check_dot(kern, wt, n, "min/-128");
        }
    }
}

/* ---- table shape and selection ------------------------------------------- */

static void test_tables(void) {
    /* chosen before the first tl_kern_get(), so this run must use ref */
    setenv("TL_CPU", "ref", 1);
    const tl_kern *k = tl_kern_get();
    CHECK(k != NULL);
    if (!k) return;
    CHECK(strcmp(k->name, "ref") == 0);
    CHECK(tl_kern_get() == k);
    const tl_kern *ref = tl_kern_ref();
    CHECK(strcmp(ref->name, "ref") == 0);
    CHECK(tl_kern_variant("ref") != NULL);
    CHECK(tl_kern_variant("bogus") == NULL);
    CHECK(tl_kern_variant(NULL) == NULL);
    for (int i = 0; i < N_WEIGHT_TYPES; i++) {
        const tl_dtype wt = weight_types[i];
        const tl_dtype vt = tl_dtype_traits_of(wt)->vec_dot_type;
        CHECKF(ref->vec_dot[wt] && ref->to_float[wt], "%s", tl_dtype_name(wt));
        CHECKF(ref->from_float[vt] != NULL, "%s activations", tl_dtype_name(vt));
        CHECK(ref->gemm[wt] == NULL);
        CHECK(k->vec_dot[wt] == ref->vec_dot[wt]);
    }
    CHECK(ref->from_float[TL_DTYPE_Q8_K] && ref->from_float[TL_DTYPE_Q8_1]);
    /* every usable variant is a superset of ref */
    static const char *const names[] = { "avx2", "avx512", "neon" };
    for (int v = 0; v < 3; v++) {
        const tl_kern *vk = tl_kern_variant(names[v]);
        if (!vk) continue;
        CHECK(strcmp(vk->name, names[v]) == 0);
        for (int t = 0; t < TL_DTYPE_COUNT; t++) {
            CHECK(!ref->vec_dot[t] || vk->vec_dot[t]);
            CHECK(!ref->to_float[t] || vk->to_float[t]);
            CHECK(!ref->from_float[t] || vk->from_float[t]);
        }
    }
}

/* to_float of a variant against ref: dequantization is a couple of float
 * ops per value, so 2^-22 relative to the value's parts (bounded by the row
 * max) allows for a fused multiply-add. */
static void test_to_float(const tl_kern *kern) {
    for (int i = 0; i < N_WEIGHT_TYPES; i++) {
        const tl_dtype wt = weight_types[i];
        make_raw_row(wt, qw, NMAX, -1);
        tl_kern_ref()->to_float[wt](qw, wd, NMAX);
        kern->to_float[wt](qw, xd, NMAX);
        double inf = 0;
        for (int j = 0; j < NMAX; j++) inf = fmax(inf, fabs(wd[j]));
        int bad = 0;
        for (int j = 0; j < NMAX; j++) bad += fabs(wd[j] - xd[j]) > ldexp(inf, -22);
        CHECKF(bad == 0, "%s to_float %s: %d values off", kern->name, tl_dtype_name(wt), bad);
    }
}

/* ---- gelu_mul against the formula ------------------------------------------ */

/* The CPU backend's per-element GELU before the table (src/backend/cpu/cpu.c
 * up to the gelu_mul slot), verbatim: the ground truth the table must
 * reproduce bit for bit. Unfused, as it was compiled. */
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
static float gelu_formula(float x) {
    const float c = 0.79788456080286535588f; /* sqrt(2/pi) */
    if (x <= -10.0f) return 0.0f;
    if (x >= 10.0f) return x;
    float xh = tl_f16_to_f32(tl_f32_to_f16(x));
    return tl_f16_to_f32(tl_f32_to_f16(0.5f * xh * (1.0f + tanhf(c * xh * (1.0f + 0.044715f * xh * xh)))));
}
#pragma GCC pop_options

/* the same float, NaN payloads aside */
static bool same_float(float a, float b) {
    return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b));
}

/* Checks ref->gelu_mul on x (n,), with u = NULL, with u, and in place. */
static void check_gelu(const float *x, int n, const char *what) {
    const tl_kern *ref = tl_kern_ref();
    float *y = malloc(sizeof(float) * n), *u = malloc(sizeof(float) * n);
    if (!y || !u) {
        CHECK(y && u);
        free(y), free(u);
        return;
    }
    ref->gelu_mul(n, y, x, NULL);
    int bad = 0;
    for (int i = 0; i < n; i++)
        if (!same_float(y[i], gelu_formula(x[i])) && bad++ < 4)
            fprintf(stderr, "gelu(%a = 0x%08x): %a, formula %a\n", x[i], tl_f32_bits(x[i]), y[i],
                    gelu_formula(x[i]));
    CHECKF(bad == 0, "ref gelu_mul %s: %d of %d outputs differ from the formula", what, bad, n);
    for (int i = 0; i < n; i++) u[i] = tl_test_normal();
    memcpy(y, x, sizeof(float) * n);
    ref->gelu_mul(n, y, y, u); /* in place over g */
    bad = 0;
    for (int i = 0; i < n; i++) bad += !same_float(y[i], gelu_formula(x[i]) * u[i]);
    CHECKF(bad == 0, "ref gelu_mul %s with u: %d of %d outputs differ from formula * u", what, bad, n);
    free(y), free(u);
}

static void test_gelu(void) {
    /* every f16 value, NaNs and infinities included */
    enum { NH = 65536 };
    static float x[4 * NH];
    for (int h = 0; h < NH; h++) x[h] = tl_f16_to_f32((tl_f16)h);
    check_gelu(x, NH, "f16 grid");
    /* the f16 rounding boundaries: each midpoint between neighbouring f16
     * values (a tie, rounded to even) and the floats either side of it */
    int n = tl_test_f16_ties(x);
    check_gelu(x, n, "f16 midpoints");
    /* the clamps, infinities, NaNs, float denormals, the f16 overflow */
    const float sp[] = {
        -10.0f, 10.0f, nextafterf(-10.0f, 0.0f), nextafterf(10.0f, 0.0f), nextafterf(-10.0f, -20.0f),
        nextafterf(10.0f, 20.0f), -9.999f, 9.999f, -9.99609375f, 9.99609375f, -9.9921875f, 9.9921875f,
        INFINITY, -INFINITY, NAN, -NAN, tl_f32_from_bits(0x7f800001u), tl_f32_from_bits(0xffbfffffu),
        tl_f32_from_bits(0x7fffffffu), 0.0f, -0.0f, tl_f32_from_bits(1), tl_f32_from_bits(0x80000001u),
        tl_f32_from_bits(0x007fffffu), tl_f32_from_bits(0x807fffffu), 0x1p-24f, -0x1p-24f, 0x1p-25f,
        -0x1p-25f, 0x1.8p-25f, 0x1p-14f, 65504.0f, -65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e30f,
        -1e30f, FLT_MAX, -FLT_MAX, 0.5f, -0.5f, 1.0f, -1.0f, 3.0f, -3.0f,
    };
    n = (int)(sizeof sp / sizeof sp[0]);
    memcpy(x, sp, sizeof sp);
    check_gelu(x, n, "special values");
    /* all float bit patterns, strided */
    n = 0;
    for (uint64_t b = 12345; b < ((uint64_t)1 << 32) && n < 4 * NH; b += 65521) x[n++] = tl_f32_from_bits((uint32_t)b);
    check_gelu(x, n, "strided bit patterns");
    /* the table is built once: the same pointer on every call */
    CHECK(tl_gelu_table() == tl_gelu_table());
}

int main(void) {
    tl_test_seed(0x2545F4914F6CDD1Dull);
    test_tables();
    test_vec_dot(tl_kern_ref());
    test_gelu();
    static const char *const names[] = { "avx2", "avx512", "neon" };
    for (int v = 0; v < 3; v++) {
        const tl_kern *vk = tl_kern_variant(names[v]);
        if (!vk) continue;
        printf("checking variant %s against ref\n", names[v]);
        test_vec_dot(vk);
        test_to_float(vk);
    }
    return tl_test_finish("test_kern_ref", 0);
}
