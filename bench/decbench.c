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
 *          KB_TYPE=Q4_0 (etc.; default Q4_0 Q8_0 Q4_K Q5_K Q6_K F16 BF16) runs one type
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

enum { NMAT = 7 };
/* per layer, (k, d) of W (d, k): q, k, v, o, gate, up, down */
static const int64_t shapes[NMAT][2] = {
    { 2048, 2048 }, { 2048, 256 }, { 2048, 256 }, { 2048, 2048 },
    { 2048, 5632 }, { 2048, 5632 }, { 5632, 2048 },
};

static int run(tl_backend *b, tl_dtype t, int layers, int rounds) {
    const tl_dtype_traits *tr = tl_dtype_traits_of(t);
    const int nw = layers * NMAT;
    tl_tensor *w = calloc((size_t)nw, sizeof *w);
    float *f = malloc(sizeof(float) * 5632), *x = malloc(sizeof(float) * 5632);
    float *y = malloc(sizeof(float) * 5632);
    double *sec = malloc(sizeof(double) * (size_t)rounds), bytes = 0;
    if (!w || !f || !x || !y || !sec) return 1;
    uint64_t s = 88172645463325252ull;
    for (int i = 0; i < 5632; i++) x[i] = bench_frand(&s);
    for (int i = 0; i < nw; i++) {
        const int64_t k = shapes[i % NMAT][0], d = shapes[i % NMAT][1];
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
        bytes += (double)w[i].nbytes;
    }
    for (int r = -1; r < rounds; r++) { /* round -1 warms up */
        const double t0 = bench_wall_now();
        for (int i = 0; i < nw; i++) b->ops->matmul(b, &w[i], NULL, x, 1, y);
        if (r >= 0) sec[r] = bench_wall_now() - t0;
    }
    qsort(sec, (size_t)rounds, sizeof *sec, bench_cmp_double);
    printf("%-5s %d layers %7.1f MB  best %6.2f GB/s  median %6.2f GB/s  (%.2f ms/round)\n",
           tr->name, layers, bytes * 1e-6, bytes / sec[0] * 1e-9, bytes / sec[rounds / 2] * 1e-9,
           sec[rounds / 2] * 1e3);
    for (int i = 0; i < nw; i++) free((void *)w[i].data);
    free(w), free(f), free(x), free(y), free(sec);
    return 0;
}

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 2, layers = argc > 2 ? atoi(argv[2]) : 8;
    const int rounds = argc > 3 ? atoi(argv[3]) : 7;
    if (threads < 1 || layers < 1 || rounds < 1) {
        fprintf(stderr, "usage: decbench [threads>=1] [layers>=1] [rounds>=1]\n");
        return 2;
    }
    tl_backend *b = NULL;
    tl_err err = { 0 };
    if (tl_backend_cpu_init(threads, &b, &err) != TL_OK) {
        fprintf(stderr, "decbench: %s\n", err.msg);
        return 1;
    }
    if (b->ops->reserve(b, 1, 5632, &err) != TL_OK) {
        fprintf(stderr, "decbench: %s\n", err.msg);
        tl_backend_free(b);
        return 1;
    }
    printf("decbench: %s kernels, %d threads\n", tl_kern_get()->name, threads);
    const char *only = getenv("KB_TYPE");
    const tl_dtype types[] = { TL_DTYPE_Q4_0, TL_DTYPE_Q8_0, TL_DTYPE_Q4_K, TL_DTYPE_Q5_K,
                               TL_DTYPE_Q6_K, TL_DTYPE_F16, TL_DTYPE_BF16 };
    int rc = 0;
    for (size_t i = 0; i < sizeof types / sizeof types[0] && !rc; i++)
        if (!only || !strcmp(only, tl_dtype_name(types[i]))) rc = run(b, types[i], layers, rounds);
    tl_backend_free(b);
    return rc;
}
