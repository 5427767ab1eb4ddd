/* attnbench.c — attention over the KV cache on its own: the CPU backend's
 * attention op (the real driver: units, key splits, the kernel table's
 * tiles) for n_tok queries at a depth of D cached positions, over L layers'
 * caches of a TinyLlama-shaped model (32 heads, 4 KV heads, head size 64),
 * timed in wall-clock time, reported as ms per call and GB/s of the cache
 * bytes read. Decode at depth (`torchless bench -d`) spends the time that
 * this adds to the weights' streaming.
 *
 *   run:   build/bin/attnbench [threads=2] [depth=2048] [n_tok=1] [rounds=7]
 *          KB_KV=f16|f32|q8_0 (default f16); KB_HEADS=32,4,64 (n_head,
 *          n_head_kv, head size)
 *
 * Each round attends once per layer (8 layers' caches: past the L2 at any
 * useful depth); the report gives the best and the median round. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/dtype.h"
#include "kern/kern.h"
#include "bench_util.h"

enum { LAYERS = 8 };

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 2, depth = argc > 2 ? atoi(argv[2]) : 2048;
    const int n_tok = argc > 3 ? atoi(argv[3]) : 1, rounds = argc > 4 ? atoi(argv[4]) : 7;
    int nh = 32, nkv = 4, hd = 64;
    const char *heads = getenv("KB_HEADS"), *kvs = getenv("KB_KV");
    if (heads && sscanf(heads, "%d,%d,%d", &nh, &nkv, &hd) != 3) nh = 0;
    const tl_dtype kt = !kvs || !strcmp(kvs, "f16") ? TL_DTYPE_F16
                        : !strcmp(kvs, "f32")       ? TL_DTYPE_F32
                        : !strcmp(kvs, "q8_0")      ? TL_DTYPE_Q8_0
                                                    : TL_DTYPE_COUNT;
    if (threads < 1 || depth < 0 || n_tok < 1 || rounds < 1 || nh < 1 || nkv < 1 || nh % nkv ||
        hd < 1 || hd % 32 || kt == TL_DTYPE_COUNT) {
        fprintf(stderr, "usage: attnbench [threads>=1] [depth>=0] [n_tok>=1] [rounds>=1]  "
                        "(KB_KV=f16|f32|q8_0, KB_HEADS=n_head,n_head_kv,head_size)\n");
        return 2;
    }
    tl_backend *b = NULL;
    tl_err err = { 0 };
    if (tl_backend_cpu_init(threads, &b, &err) != TL_OK ||
        b->ops->reserve(b, n_tok, nh * hd, &err) != TL_OK) {
        fprintf(stderr, "attnbench: %s\n", err.msg);
        tl_backend_free(b);
        return 1;
    }
    const int n_ctx = (depth + n_tok + TL_KV_CTX_ALIGN - 1) / TL_KV_CTX_ALIGN * TL_KV_CTX_ALIGN;
    const size_t row = tl_dtype_row_size(kt, (int64_t)nkv * hd), cache = row * (size_t)n_ctx;
    tl_kv_layer kv[LAYERS];
    float *q = malloc(sizeof(float) * (size_t)n_tok * nh * hd);
    float *out = malloc(sizeof(float) * (size_t)n_tok * nh * hd);
    float *f = malloc(sizeof(float) * (size_t)nkv * hd);
    double *sec = malloc(sizeof(double) * (size_t)rounds);
    if (!q || !out || !f || !sec) return 1;
    uint64_t s = 88172645463325252ull;
    for (int i = 0; i < n_tok * nh * hd; i++) q[i] = bench_frand(&s);
    tl_attn_params p = { .n_tok = n_tok, .pos0 = depth, .n_ctx = n_ctx, .n_head = nh, .n_head_kv = nkv,
                         .head_dim = hd, .head_dim_v = hd, .scale = 0.125f, .kv_type = kt };
    for (int l = 0; l < LAYERS; l++) {
        kv[l].k = malloc(cache);
        kv[l].v = malloc(cache);
        if (!kv[l].k || !kv[l].v) return 1;
        for (int t = 0; t < n_ctx; t++) { /* every row written, as kv_store would */
            tl_attn_params one = p;
            one.n_tok = 1, one.pos0 = t;
            for (int i = 0; i < nkv * hd; i++) f[i] = bench_frand(&s);
            b->ops->kv_store(b, &one, &kv[l], f, 0, f, 0);
        }
    }
    for (int r = -1; r < rounds; r++) { /* round -1 warms up */
        const double t0 = bench_wall_now();
        for (int l = 0; l < LAYERS; l++) b->ops->attention(b, &p, q, nh * hd, &kv[l], out);
        if (r >= 0) sec[r] = (bench_wall_now() - t0) / LAYERS;
    }
    qsort(sec, (size_t)rounds, sizeof *sec, bench_cmp_double);
    const double bytes = 2.0 * (double)cache;
    printf("attnbench: %s kernels, %d threads, %s cache, heads %d/%d x %d, %d queries at depth %d: "
           "best %.3f ms (%.2f GB/s)  median %.3f ms (%.2f GB/s) per layer\n",
           tl_kern_get()->name, threads, tl_dtype_name(kt), nh, nkv, hd, n_tok, depth, sec[0] * 1e3,
           bytes / sec[0] * 1e-9, sec[rounds / 2] * 1e3, bytes / sec[rounds / 2] * 1e-9);
    for (int l = 0; l < LAYERS; l++) free(kv[l].k), free(kv[l].v);
    free(q), free(out), free(f), free(sec);
    tl_backend_free(b);
    return 0;
}
