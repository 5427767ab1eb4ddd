/* decbench.c — decode's weight streaming on its own: the CPU backend's
 * matmul (the real driver: activation quantisation, chunk claims, repacked
 * tiles) over L TinyLlama-shaped layers of one weight type, one token at a
 * time, timed in wall-clock time, reported as GB/s of the weights' file
 * bytes. Attention, norms and sampling are left out, so a change to how
 * decode reads weights shows here with less noise than in `torchless
 * bench`, and with the threads sharing DRAM as they do in decode (kbench
 * times one thread).
 *
 *   run:   build/bin/decbench [threads=2] [layers=8] [rounds=7]
 *          KB_TYPE=Q4_0 (any type; default Q4_0 Q8_0 Q4_K Q5_K Q6_K F16 BF16) runs one type
 *          KB_SHAPE=K,D[:K,D...]: each layer is one W (D, K) of each shape
 *          instead (a real model's odd matrix: e.g. 640,262144, Gemma 3
 *          270M's tied output), each shape also reported on its own line,
 *          so shapes alternate within the rounds of one process
 *
 * Each round reads every layer once; the report gives the best and the
 * median round. 8 layers of Q8_0 are ~470 MB: far past any cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/dtype.h"
#include "kern/kern.h"
#include "bench_util.h"

enum { NMAT = 7, MAX_SHAPES = 8 };
/* per layer, (k, d) of W (d, k): q, k, v, o, gate, up, down (or KB_SHAPE's) */
static int64_t shapes[MAX_SHAPES][2] = {
    { 2048, 2048 }, { 2048, 256 }, { 2048, 256 }, { 2048, 2048 },
    { 2048, 5632 }, { 2048, 5632 }, { 5632, 2048 },
};
static int nmat = NMAT;
static bool per_shape;       /* KB_SHAPE: report each shape on its own line too */
static int64_t maxdim = 5632; /* the longest k or d: x and y are this long */

// one line: bytes read per round, round times sec (sorted here)
static void report(const char *what, double bytes, double *sec, int rounds) {
    qsort(sec, (size_t)rounds, sizeof *sec, bench_cmp_double);
    printf("%-26s %7.1f MB  best %6.2f GB/s  median %6.2f GB/s  (%.2f ms/round)\n", what, bytes * 1e-6,
           bytes / sec[0] * 1e-9, bytes / sec[rounds / 2] * 1e-9, sec[rounds / 2] * 1e3);
}

static int run(tl_backend *b, tl_dtype t, int layers, int rounds) {
    const tl_dtype_traits *tr = tl_dtype_traits_of(t);
    const int nw = layers * nmat;
    for (int i = 0; i < nmat; i++)
        if (shapes[i][0] % tr->block_size) {
            printf("%-5s skipped: K=%lld is not a multiple of its %d-element blocks\n", tr->name,
                   (long long)shapes[i][0], tr->block_size);
            return 0;
        }
    tl_tensor *w = calloc((size_t)nw, sizeof *w);
    float *f = malloc(sizeof(float) * maxdim), *x = malloc(sizeof(float) * maxdim);
    float *y = malloc(sizeof(float) * maxdim);
    /* sec[i * rounds + r]: shape i's matrices in round r; sec[nmat * rounds + r]: all */
    double *sec = calloc((size_t)(nmat + 1) * rounds, sizeof(double)), bytes[MAX_SHAPES + 1] = { 0 };
    if (!w || !f || !x || !y || !sec) return 1;
    uint64_t s = 88172645463325252ull;
    for (int64_t i = 0; i < maxdim; i++) x[i] = bench_frand(&s);
    for (int i = 0; i < nw; i++) {
        const int64_t k = shapes[i % nmat][0], d = shapes[i % nmat][1];
        const size_t row = tl_dtype_row_size(t, k);
        uint8_t *data = malloc(row * (size_t)d);
        if (!data) return 1;
        for (int64_t r = 0; r < d; r++) {
            for (int64_t e = 0; e < k; e++) f[e] = 0.02f * bench_frand(&s);
            tr->from_float(f, data + (size_t)r * row, k);
        }
        w[i] = (tl_tensor){ .name = "w", .type = t, .n_dims = 2, .ne = { k, d, 1, 1 },
                            .data = data, .nbytes = row * (size_t)d };
        if (b->ops->prepare) b->ops->prepare(b, &w[i]);
        bytes[i % nmat] += (double)w[i].nbytes;
        bytes[nmat] += (double)w[i].nbytes;
    }
    for (int r = -1; r < rounds; r++) { /* round -1 warms up */
        double t0 = bench_wall_now();
        for (int i = 0; i < nw; i++) {
            b->ops->matmul(b, &w[i], NULL, x, 1, y);
            const double t1 = bench_wall_now();
            if (r >= 0) sec[(i % nmat) * rounds + r] += t1 - t0, sec[nmat * rounds + r] += t1 - t0;
            t0 = t1;
        }
    }
    char what[64];
    for (int i = 0; i < nmat && per_shape && nmat > 1; i++) {
        snprintf(what, sizeof what, "%s %lld x %lld (x%d)", tr->name, (long long)shapes[i][1],
                 (long long)shapes[i][0], layers);
        report(what, bytes[i], sec + (size_t)i * rounds, rounds);
    }
    snprintf(what, sizeof what, "%s %d x %d matrices", tr->name, layers, nmat);
    report(what, bytes[nmat], sec + (size_t)nmat * rounds, rounds);
    for (int i = 0; i < nw; i++) free((void *)w[i].data);
    free(w), free(f), free(x), free(y), free(sec);
    return 0;
}

/* KB_SHAPE = "K,D[:K,D...]" -> shapes, nmat; false on a bad list */
static bool parse_shapes(const char *spec) {
    int n = 0;
    for (const char *p = spec; n < MAX_SHAPES; n++) {
        long long k = 0, d = 0;
        int used = 0;
        if (sscanf(p, "%lld,%lld%n", &k, &d, &used) != 2 || k < 32 || k % 32 || d < 64 || d % 64 ||
            d > ((long long)1 << 24) || k > ((long long)1 << 20))
            return false;
        shapes[n][0] = k, shapes[n][1] = d;
        if (k > maxdim) maxdim = k;
        if (d > maxdim) maxdim = d;
        p += used;
        if (!*p) {
            nmat = n + 1;
            return true;
        }
        if (*p++ != ':') return false;
    }
    return false;
}

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 2, layers = argc > 2 ? atoi(argv[2]) : 8;
    const int rounds = argc > 3 ? atoi(argv[3]) : 7;
    const char *shape = getenv("KB_SHAPE");
    if (shape && !parse_shapes(shape)) {
        fprintf(stderr, "decbench: KB_SHAPE=K,D[:K,D...] (at most %d) wants each K a multiple of 32, "
                        "D of 64\n", MAX_SHAPES);
        return 2;
    }
    per_shape = shape != NULL;
    if (threads < 1 || layers < 1 || rounds < 1) {
        fprintf(stderr, "usage: [KB_TYPE=T] [KB_SHAPE=K,D[:K,D...]] decbench [threads>=1] [layers>=1] [rounds>=1]\n");
        return 2;
    }
    tl_backend *b = NULL;
    tl_err err = { 0 };
    if (tl_backend_cpu_init(threads, &b, &err) != TL_OK) {
        fprintf(stderr, "decbench: %s\n", err.msg);
        return 1;
    }
    if (b->ops->reserve(b, 1, maxdim, &err) != TL_OK) {
        fprintf(stderr, "decbench: %s\n", err.msg);
        tl_backend_free(b);
        return 1;
    }
    printf("decbench: %s kernels, %d threads\n", tl_kern_get()->name, threads);
    const char *only = getenv("KB_TYPE");
    const tl_dtype types[] = { TL_DTYPE_Q4_0, TL_DTYPE_Q8_0, TL_DTYPE_Q4_K, TL_DTYPE_Q5_K,
                               TL_DTYPE_Q6_K, TL_DTYPE_F16, TL_DTYPE_BF16 };
    int rc = 0;
    tl_dtype one;
    if (only && !tl_dtype_from_name(only, &one)) {
        fprintf(stderr, "decbench: unknown KB_TYPE '%s'\n", only);
        rc = 2;
    } else if (only) {
        rc = run(b, one, layers, rounds);
    }
    for (size_t i = 0; i < sizeof types / sizeof types[0] && !rc && !only; i++)
        rc = run(b, types[i], layers, rounds);
    tl_backend_free(b);
    return rc;
}
