/* abbench.c — two builds of the library in one process, timed in
 * alternating rounds: does a change make torchless faster?
 *
 * On a shared machine the DRAM bandwidth drifts by tens of percent within
 * minutes, so two binaries timed one after the other compare the minutes
 * they ran in as much as the code (this VM: +-20% between runs of the same
 * binary). Here two builds of libtorchless.so are loaded side by side
 * (dlopen, each with its own kernels, thread pool and packed weights), the
 * same model is opened in each, and rounds alternate between them in ABBA
 * order, so that a slow stretch falls on both. Each round empties the
 * cache, runs a P-token prompt as one batch, then N tokens one at a time
 * (as `torchless bench` does). Reported: each side's median tokens/s
 * over the rounds and the ratio B/A of the two; the median over the pairs
 * (a round of A and the round of B next to it) of each pair's own ratio,
 * which follows the drift less; and in how many pairs B was faster. Two
 * copies of one build (an A/A run) show the noise: on this VM, 20 rounds
 * of Q4_0 tg32 gave 1.057 by the medians and B faster in 8 of 20 pairs.
 *
 *   run:   build/bin/abbench LIB_A LIB_B MODEL [-t 2] [-p 0] [-n 32] [-r 20]
 *   e.g.   old=$(mktemp -d); git archive REV | tar -x -C $old
 *          cmake -S $old -B $old/build -DCMAKE_BUILD_TYPE=Release
 *          cmake --build $old/build --target torchless_shared
 *          build/bin/abbench $old/build/lib/libtorchless.so build/lib/libtorchless.so MODEL
 *
 * Only the public API (include/torchless.h) is called, through dlsym, so
 * any two builds that have it compare. Both copies of the weights are held
 * at once: the memory of two loads.
 *
 * Meant for models whose rounds take milliseconds at least (TinyLlama
 * size: 20-80 ms a token here). Each build's idle workers spin for 50 us
 * after its last job before they sleep, on the cores the other build is
 * using: with the test fixtures' tiny models (a round in well under a
 * millisecond) that dominates, and one side comes out 3-6x slower, either
 * one from run to run. An A/A run (two copies of one build) tells whether
 * a setting is fair. The load order can favour one side too (this VM,
 * 2026-11-29: A/A on TinyLlama Q4_0 pp128 1.039 by pair, the second
 * faster; SmolLM2 builds favoured whichever ran first, by 6-8%): run both
 * orders, A B and B A, and take both ratios' mean. */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torchless.h"
#include "bench_util.h"

/* the entry points of one loaded build */
typedef struct lib {
    const char *path;
    void *h;
    __typeof__(&tl_model_default_params) model_default_params;
    __typeof__(&tl_model_load) model_load;
    __typeof__(&tl_model_free) model_free;
    __typeof__(&tl_model_n_vocab) model_n_vocab;
    __typeof__(&tl_context_default_params) context_default_params;
    __typeof__(&tl_context_init) context_init;
    __typeof__(&tl_context_free) context_free;
    __typeof__(&tl_context_reset) context_reset;
    __typeof__(&tl_decode) decode;
    __typeof__(&tl_last_error) last_error;
    __typeof__(&tl_cpu_variant) cpu_variant;
    tl_model *m;
    tl_context *c;
} lib;

#define SYM(L, f)                                                                   \
    do {                                                                            \
        *(void **)&(L)->f = dlsym((L)->h, "tl_" #f);                                \
        if (!(L)->f) {                                                              \
            fprintf(stderr, "abbench: %s has no tl_" #f "\n", (L)->path);          \
            return false;                                                           \
        }                                                                           \
    } while (0)

static bool lib_open(lib *L, const char *path, const char *model, int threads, int n_ctx,
                     int n_batch) {
    L->path = path;
    /* RTLD_LOCAL: the two builds' symbols stay apart (same names, both loaded) */
    L->h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!L->h) {
        fprintf(stderr, "abbench: %s\n", dlerror());
        return false;
    }
    SYM(L, model_default_params);
    SYM(L, model_load);
    SYM(L, model_free);
    SYM(L, model_n_vocab);
    SYM(L, context_default_params);
    SYM(L, context_init);
    SYM(L, context_free);
    SYM(L, context_reset);
    SYM(L, decode);
    SYM(L, last_error);
    SYM(L, cpu_variant);
    tl_model_params mp = L->model_default_params();
    mp.n_threads = threads;
    if (L->model_load(model, &mp, &L->m) != TL_OK) {
        fprintf(stderr, "abbench: %s: %s\n", path, L->last_error());
        return false;
    }
    tl_context_params cp = L->context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch;
    if (L->context_init(L->m, &cp, &L->c) != TL_OK) {
        fprintf(stderr, "abbench: %s: %s\n", path, L->last_error());
        return false;
    }
    return true;
}

/* one round: seconds for the prompt (pp) and for the n tokens after it (tg) */
static bool lib_round(lib *L, const tl_token *toks, int p, int n, double *pp, double *tg) {
    L->context_reset(L->c);
    const double t0 = bench_wall_now();
    if (p > 0 && L->decode(L->c, toks, p) != TL_OK) return false;
    const double t1 = bench_wall_now();
    for (int i = 0; i < n; i++)
        if (L->decode(L->c, toks + p + i, 1) != TL_OK) return false;
    *pp = t1 - t0;
    *tg = bench_wall_now() - t1;
    return true;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// per-round seconds of A and B over tokens -> one line of the table
static void report(const char *test, int tokens, const double *a, const double *b, int r) {
    int b_faster = 0;
    double *sa = malloc(sizeof(double) * (size_t)r), *sb = malloc(sizeof(double) * (size_t)r);
    double *q = malloc(sizeof(double) * (size_t)r);
    for (int i = 0; i < r; i++) {
        b_faster += b[i] < a[i];
        sa[i] = a[i], sb[i] = b[i], q[i] = a[i] / b[i];
    }
    const double ma = median(sa, r), mb = median(sb, r), mq = median(q, r);
    printf("| %s%d | %.2f | %.2f | %.3f | %.3f | %d of %d |\n", test, tokens, tokens / ma,
           tokens / mb, ma / mb, mq, b_faster, r);
    free(sa), free(sb), free(q);
}

static int usage(void) {
    fprintf(stderr, "usage: abbench LIB_A LIB_B MODEL [-t 2] [-p 0] [-n 32] [-r 20]\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 4) return usage();
    int threads = 2, p = 0, n = 32, r = 20;
    if ((argc - 4) % 2) return usage(); /* options come in pairs: -x VALUE */
    for (int i = 4; i < argc; i += 2) {
        const int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "-t")) threads = v;
        else if (!strcmp(argv[i], "-p")) p = v;
        else if (!strcmp(argv[i], "-n")) n = v;
        else if (!strcmp(argv[i], "-r")) r = v;
        else return usage();
    }
    if (threads < 0 || p < 0 || n < 0 || p + n < 1 || p > 4096 || n > 4096 || r < 1 || r > 10000) {
        fprintf(stderr, "abbench: need -t >= 0, 0 <= -p, -n <= 4096 (not both 0), "
                        "1 <= -r <= 10000\n");
        return 2;
    }
    lib L[2] = { 0 };
    const int n_ctx = (p + n + 7) / 8 * 8;
    const int n_batch = p > 512 ? p : 0; /* 0: the default, 512 */
    if (!lib_open(&L[0], argv[1], argv[3], threads, n_ctx, n_batch) ||
        !lib_open(&L[1], argv[2], argv[3], threads, n_ctx, n_batch))
        return 1;
    const int vocab = L[0].model_n_vocab(L[0].m);
    tl_token *toks = malloc(sizeof(tl_token) * (size_t)(p + n));
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < p + n; i++)
        toks[i] = (tl_token)((bench_frand(&s) * 0.5f + 0.5f) * (float)(vocab - 1));
    double *pp[2], *tg[2];
    for (int k = 0; k < 2; k++) {
        pp[k] = malloc(sizeof(double) * (size_t)r);
        tg[k] = malloc(sizeof(double) * (size_t)r);
    }
    printf("abbench: A = %s (cpu: %s)\n         B = %s (cpu: %s)\n         %s, %d threads, %d "
           "rounds each, ABBA order\n\n",
           argv[1], L[0].cpu_variant(), argv[2], L[1].cpu_variant(), argv[3], threads, r);
    /* one warm-up round each (first touches, packing already done at load) */
    double x, y;
    if (!lib_round(&L[0], toks, p, n, &x, &y) || !lib_round(&L[1], toks, p, n, &x, &y)) {
        fprintf(stderr, "abbench: decode failed\n");
        return 1;
    }
    for (int i = 0; i < r; i++)
        for (int j = 0; j < 2; j++) {
            const int k = (i % 2) ^ j; /* A B, then B A */
            if (!lib_round(&L[k], toks, p, n, &pp[k][i], &tg[k][i])) {
                fprintf(stderr, "abbench: decode failed\n");
                return 1;
            }
        }
    printf("| test | A t/s | B t/s | B / A | B / A by pair | B faster |\n"
           "|---|---|---|---|---|---|\n");
    if (p > 0) report("pp", p, pp[0], pp[1], r);
    if (n > 0) report("tg", n, tg[0], tg[1], r);
    for (int k = 0; k < 2; k++) {
        L[k].context_free(L[k].c);
        L[k].model_free(L[k].m);
        free(pp[k]), free(tg[k]);
        /* not dlclose'd: a build's pool threads may still be winding down */
    }
    free(toks);
    return 0;
}
