/* test_matmul.c — the CPU backend's matrix product driver (cpu_matmul.c).
 *
 *   - Every row of every matrix is computed once: outputs start as NaN, and
 *     each is checked against a double-precision reference over the
 *     dequantized weights and the activations as the kernels see them
 *     (quantized to the weight type's vec_dot_type), bias included once.
 *   - The same bits whatever the thread count, and however the rows were
 *     split into claims (decode's shrinking claims, prefill's fixed chunks):
 *     1, 2 and 3 threads are compared bit for bit. A kernel whose result
 *     depended on where a claim starts would make decode nondeterministic.
 *   - matmul_multi gives the bits of one matmul per matrix, for matrices
 *     that share the input's conversion (Q4_K and Q6_K: both Q8_K) and for
 *     ones that do not (F16 beside Q4_0; packed F16 beside row-major F16,
 *     whose activation forms differ on AVX2), and for ones whose gemms read
 *     different act_prep entries beside one conversion (Q4_0, Q5_0, Q8_0: a
 *     buffer each; packed Q4_K beside unpacked), with and without biases.
 * Every weight type that has a vec_dot in the selected kernel table is run,
 * through the variant's repacked gemm where its row count allows (d = 272:
 * 17 groups of 16, 34 of 8) and the row-by-row path where it does not
 * (d = 40 on AVX-512's 16-row groups).
 * Under the AVX-512 emulator (scripts/test-avx512.sh sets TL_TEST_EMU=1):
 * one thread, the only one it runs, batches of at most 9 tokens (a full
 * tile of 8 and one more) and 80 rows at most (a 4-group decode tile of 16
 * rows and one group more); the bit-for-bit checks then compare
 * differently split claims of one thread. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/dtype.h"
#include "core/fp16.h"
#include "harness.h"
#include "kern/kern.h"

enum { N_BE = 3, K = 512, MAX_D = 272, MAX_N = 70, MAX_MATS = 512 };

static tl_backend *be[N_BE]; /* 1, 2, 3 threads */
static int n_be = N_BE;

/* Every matrix made stays alive to the end: the backend keys its packed
 * copies by the data's address, which a freed buffer could hand on. */
static void *mats[MAX_MATS];
static int n_mats;

typedef struct mat {
    tl_tensor w, bias;
    float *wf;      /* (d, K) dequantized */
    float *bf;      /* (d,) or NULL */
} mat;

static float *fill(int64_t n, float amp) {
    float *f = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) f[i] = amp * tl_test_normal();
    return f;
}

static mat mat_make(tl_dtype t, int64_t d, bool with_bias) {
    const tl_dtype_traits *tr = tl_dtype_traits_of(t);
    const size_t row = tl_dtype_row_size(t, K);
    mat m = { 0 };
    uint8_t *data = aligned_alloc(64, (row * (size_t)d + 63) & ~(size_t)63);
    float *src = fill(K * d, 0.05f);
    m.wf = malloc(sizeof(float) * (size_t)(K * d));
    for (int64_t r = 0; r < d; r++) {
        tr->from_float(src + r * K, data + (size_t)r * row, K);
        tr->to_float(data + (size_t)r * row, m.wf + r * K, K);
    }
    free(src);
    mats[n_mats++] = data;
    m.w = (tl_tensor){ .name = "w", .type = t, .n_dims = 2, .ne = { K, d, 1, 1 }, .data = data,
                       .nbytes = row * (size_t)d };
    if (with_bias) {
        m.bf = fill(d, 1.0f);
        m.bias = (tl_tensor){ .name = "b", .type = TL_DTYPE_F32, .n_dims = 1, .ne = { d, 1, 1, 1 },
                              .data = m.bf, .nbytes = sizeof(float) * (size_t)d };
    }
    return m;
}

/* x (n, K) as the kernels of weight type t see it: through t's
 * vec_dot_type -> xs (n, K) floats; the quantized rows themselves are
 * returned (caller-frees; NULL when the type is F32, x used as is) */
static uint8_t *act_seen(tl_dtype t, const float *x, int n, float *xs) {
    const tl_dtype vt = tl_dtype_traits_of(t)->vec_dot_type;
    const tl_dtype_traits *vtr = tl_dtype_traits_of(vt);
    if (vt == TL_DTYPE_F32) {
        memcpy(xs, x, sizeof(float) * (size_t)(n * K));
        return NULL;
    }
    const size_t row = tl_dtype_row_size(vt, K);
    uint8_t *q = malloc(row * (size_t)n);
    for (int i = 0; i < n; i++) {
        vtr->from_float(x + i * K, q + row * (size_t)i, K);
        vtr->to_float(q + row * (size_t)i, xs + i * K, K);
    }
    return q;
}

/* Q8_1 activations (Q4_1, Q5_1 weights): the kernels take a block's
 * weight min m times the block's s field, d_x * sum(q) rounded to f16, not
 * the exact sum the reference makes; the difference is at most
 * |m s| 2^-11 per block. Their bound for row r of m against one token's
 * Q8_1 row q. */
static double min_term_slack(const mat *m, int64_t r, const uint8_t *q) {
    const tl_dtype_traits *tr = tl_dtype_traits_of(m->w.type);
    if (tr->vec_dot_type != TL_DTYPE_Q8_1) return 0;
    const tl_dtype_traits *vtr = tl_dtype_traits_of(TL_DTYPE_Q8_1);
    const uint8_t *w = (const uint8_t *)m->w.data + (size_t)r * tl_dtype_row_size(m->w.type, K);
    double slack = 0;
    for (int b = 0; b < K / 32; b++) { /* the min and s: each block's second f16 */
        uint16_t mb, sb;
        memcpy(&mb, w + (size_t)b * tr->type_size + 2, 2);
        memcpy(&sb, q + (size_t)b * vtr->type_size + 2, 2);
        slack += fabs((double)tl_f16_to_f32(mb) * tl_f16_to_f32(sb)) * 0x1p-11;
    }
    return slack;
}

/* y (n, d) against the reference; returns false (and says where) on the first miss */
static bool check_ref(const char *what, const mat *m, const float *x, int n, const float *y) {
    const int64_t d = m->w.ne[1];
    float *xs = malloc(sizeof(float) * (size_t)(n * K));
    uint8_t *xq = act_seen(m->w.type, x, n, xs);
    const size_t xq_row = tl_dtype_row_size(tl_dtype_traits_of(m->w.type)->vec_dot_type, K);
    bool ok = true;
    for (int t = 0; t < n && ok; t++)
        for (int64_t r = 0; r < d && ok; r++) {
            double s = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                s += (double)m->wf[r * K + k] * xs[t * K + k];
                mag += fabs((double)m->wf[r * K + k] * xs[t * K + k]);
            }
            if (m->bf) s += m->bf[r], mag += fabs(m->bf[r]);
            const double v = y[(size_t)t * d + r];
            ok = isfinite(v) && fabs(v - s) <= 1e-4 * mag + 1e-6 +
                               (xq ? min_term_slack(m, r, xq + xq_row * (size_t)t) : 0);
            CHECKF(ok, "%s %s d=%lld n=%d: y[%d][%lld] = %g, reference %g", what,
                   tl_dtype_name(m->w.type), (long long)d, n, t, (long long)r, v, s);
        }
    free(xs), free(xq);
    return ok;
}

static float *out_alloc(const mat *m, int n) {
    float *y = malloc(sizeof(float) * (size_t)(n * m->w.ne[1]));
    for (int64_t i = 0; i < n * m->w.ne[1]; i++) y[i] = NAN;
    return y;
}

static bool same_bits(const float *a, const float *b, size_t n) {
    return !memcmp(a, b, sizeof(float) * n);
}

/* one matrix: matmul on 1, 2 and 3 threads, the same bits, right against the reference */
static void run_one(tl_dtype t, int64_t d, int n, bool with_bias) {
    const mat m = mat_make(t, d, with_bias);
    float *x = fill((int64_t)n * K, 1.0f);
    float *y[N_BE];
    for (int i = 0; i < n_be; i++) {
        y[i] = out_alloc(&m, n);
        be[i]->ops->matmul(be[i], &m.w, with_bias ? &m.bias : NULL, x, n, y[i]);
    }
    if (check_ref("matmul", &m, x, n, y[0]))
        for (int i = 1; i < n_be; i++)
            CHECKF(same_bits(y[0], y[i], (size_t)(n * d)),
                   "%s d=%lld n=%d: %d threads differ from 1", tl_dtype_name(t), (long long)d, n,
                   i + 1);
    for (int i = 0; i < n_be; i++) free(y[i]);
    free(x), free(m.wf), free(m.bf);
}

/* count matrices of one input: matmul_multi on 1, 2 and 3 threads against
 * one matmul per matrix on 1 thread, bit for bit */
static void run_multi(int count, const tl_dtype *types, const int64_t *ds, int n, bool with_bias) {
    mat m[TL_MATMUL_MULTI_MAX];
    const tl_tensor *w[TL_MATMUL_MULTI_MAX], *bias[TL_MATMUL_MULTI_MAX];
    float *base[TL_MATMUL_MULTI_MAX], *y[TL_MATMUL_MULTI_MAX];
    float *x = fill((int64_t)n * K, 1.0f);
    for (int i = 0; i < count; i++) {
        m[i] = mat_make(types[i], ds[i], with_bias && i != 1); /* the middle one without */
        w[i] = &m[i].w;
        bias[i] = m[i].bf ? &m[i].bias : NULL;
        base[i] = out_alloc(&m[i], n);
        be[0]->ops->matmul(be[0], w[i], bias[i], x, n, base[i]);
        check_ref("matmul", &m[i], x, n, base[i]);
    }
    for (int b = 0; b < n_be; b++) {
        for (int i = 0; i < count; i++) y[i] = out_alloc(&m[i], n);
        be[b]->ops->matmul_multi(be[b], count, w, bias, x, n, y);
        for (int i = 0; i < count; i++) {
            CHECKF(same_bits(base[i], y[i], (size_t)(n * ds[i])),
                   "matmul_multi of %d (%s ...), %d threads, n=%d: matrix %d (%s) differs "
                   "from matmul",
                   count, tl_dtype_name(types[0]), b + 1, n, i, tl_dtype_name(types[i]));
            free(y[i]);
        }
    }
    for (int i = 0; i < count; i++) free(base[i]), free(m[i].wf), free(m[i].bf);
    free(x);
}

int main(void) {
    tl_test_seed(0x6d61746d756cull);
    const bool emu = getenv("TL_TEST_EMU") != NULL;
    if (emu) n_be = 1;
    /* 80: one 4-group decode tile of 16 rows and one group more */
    const int64_t D = emu ? 80 : MAX_D;
    for (int i = 0; i < n_be; i++) {
        tl_err err = { 0 };
        if (tl_backend_cpu_init(i + 1, &be[i], &err) != TL_OK ||
            be[i]->ops->reserve(be[i], MAX_N, MAX_D > K ? MAX_D : K, &err) != TL_OK) {
            fprintf(stderr, "test_matmul: %s\n", err.msg);
            return 1;
        }
    }
    const tl_kern *kern = tl_kern_get();
    printf("test_matmul: %s kernels\n", kern->name);

    int types_run = 0;
    for (int t = 0; t < TL_DTYPE_COUNT; t++) {
        const tl_dtype_traits *tr = tl_dtype_traits_of(t);
        if (!tr || !tr->to_float || !tr->from_float || !kern->vec_dot[t] ||
            !tl_dtype_row_size(t, K))
            continue;
        if (!be[0]->ops->supports(be[0], TL_OP_MATMUL, (tl_dtype)t)) continue;
        types_run++;
        const int64_t ds[] = { 40, D };
        const int ns[] = { 1, 3, emu ? 9 : MAX_N };
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 3; b++) run_one((tl_dtype)t, ds[a], ns[b], b == 1);
    }
    CHECKF(types_run >= 8, "only %d weight types ran", types_run);

    const int ns[] = { 1, 5 };
    for (int i = 0; i < 2; i++) {
        run_multi(3, (const tl_dtype[]){ TL_DTYPE_Q4_K, TL_DTYPE_Q4_K, TL_DTYPE_Q6_K },
                  (const int64_t[]){ D, 48, 48 }, ns[i], true);
        run_multi(3, (const tl_dtype[]){ TL_DTYPE_Q8_0, TL_DTYPE_Q8_0, TL_DTYPE_Q8_0 },
                  (const int64_t[]){ 48, 16, 40 }, ns[i], false);
        /* one act type, three gemms' act_prep entries (AVX2, AVX-512: a
         * buffer each), and entries beside plain rows (44 rows fit no group
         * count: not packed) */
        run_multi(3, (const tl_dtype[]){ TL_DTYPE_Q4_0, TL_DTYPE_Q5_0, TL_DTYPE_Q8_0 },
                  (const int64_t[]){ D, 48, 40 }, ns[i], true);
        run_multi(3, (const tl_dtype[]){ TL_DTYPE_Q4_K, TL_DTYPE_Q6_K, TL_DTYPE_Q4_K },
                  (const int64_t[]){ 44, D, 48 }, ns[i], false);
        run_multi(2, (const tl_dtype[]){ TL_DTYPE_Q4_0, TL_DTYPE_Q4_0 },
                  (const int64_t[]){ D, D }, ns[i], false);
        run_multi(2, (const tl_dtype[]){ TL_DTYPE_F16, TL_DTYPE_Q4_0 },
                  (const int64_t[]){ 48, D }, ns[i], true);
        /* one type, two activation forms: packed (AVX2: the gemm's act form,
         * F32 rows) and not (44 rows fit no group count: F16 rows) */
        run_multi(2, (const tl_dtype[]){ TL_DTYPE_F16, TL_DTYPE_F16 },
                  (const int64_t[]){ D, 44 }, ns[i], false);
        run_multi(2, (const tl_dtype[]){ TL_DTYPE_BF16, TL_DTYPE_BF16 },
                  (const int64_t[]){ 44, D }, ns[i], true);
        /* two act forms of one act type (AVX2: F32 rows carrying F16 values,
         * and carrying BF16 ones): the driver must not share them */
        run_multi(2, (const tl_dtype[]){ TL_DTYPE_F16, TL_DTYPE_BF16 },
                  (const int64_t[]){ D, D }, ns[i], false);
    }

    for (int i = 0; i < n_be; i++) tl_backend_free(be[i]);
    for (int i = 0; i < n_mats; i++) free(mats[i]);
    return tl_test_finish("test_matmul", 0);
}
