/* cmd_bench.c — `torchless bench`: prompt processing (pp) and generation (tg)
 * tokens per second, mean ± stddev over repetitions, like llama-bench; with
 * -d D both are timed after D tokens already in the cache (llama-bench's -d,
 * ik_llama.cpp's -gp), where attention over the cache adds to the weights.
 * -p, -n and -d take comma lists, as llama-bench's: one model load and one
 * context (sized for the largest) serve every test, each a line. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void stats(const double *v, int n, double *mean, double *sd) {
    double s = 0, q = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) q += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

static const char k_usage[] =
    "usage: torchless bench MODEL [-t N] [-p 128] [-n 32] [-d 0] [-r 3] [--csv] [--kv-dtype f16|f32|q8_0]\n"
    "       -p, -n and -d take comma lists (-p 128,512 -n 32 -d 0,2048): every -p and -n at every -d\n";

static int list_max(const cli_list *l) {
    int m = l->v[0];
    for (int i = 1; i < l->n; i++) m = l->v[i] > m ? l->v[i] : m;
    return m;
}

static int list_min(const cli_list *l) {
    int m = l->v[0];
    for (int i = 1; i < l->n; i++) m = l->v[i] < m ? l->v[i] : m;
    return m;
}

/* One test's repetitions: its tokens/s per repetition into v (r,), from
 * the cache truncated to depth d each time; pp: a batch of p prompt tokens
 * (toks + d), tg: n tokens decoded one at a time. */
typedef struct bench_run {
    tl_context *c;
    const tl_token *toks;
    tl_token t0;
    int nv, r;
} bench_run;

static tl_status time_pp(const bench_run *b, int d, int p, double *v) {
    tl_status st = TL_OK;
    for (int rep = 0; rep < b->r && st == TL_OK; rep++) {
        tl_context_truncate(b->c, d);
        const double t = cli_now();
        st = tl_decode(b->c, b->toks + d, p);
        v[rep] = p / (cli_now() - t);
    }
    return st;
}

static tl_status time_tg(const bench_run *b, int d, int n, double *v) {
    tl_status st = TL_OK;
    for (int rep = 0; rep < b->r && st == TL_OK; rep++) {
        tl_context_truncate(b->c, d);
        tl_token tok = b->t0;
        const double t = cli_now();
        for (int i = 0; i < n && st == TL_OK; i++) {
            st = tl_decode(b->c, &tok, 1);
            tok = (tl_token)((tok + 1) % b->nv);
        }
        v[rep] = n / (cli_now() - t);
    }
    return st;
}

int cmd_bench(int argc, char **argv, int first) {
    cli_opts o;
    const char *pos[1];
    if (cli_parse(argc, argv, first, &o, pos, 1) != 1) {
        fprintf(stderr, "%s", k_usage);
        return 2;
    }
    const cli_list *pl = &o.bench_p, *nl = &o.bench_n, *dl = &o.bench_d;
    const int P = list_max(pl), N = list_max(nl), D = list_max(dl), r = o.bench_r;
    const char *bad = list_min(pl) < 0   ? "-p (prompt tokens) must be >= 0"
                      : list_min(nl) < 0 ? "-n (generated tokens) must be >= 0"
                      : list_min(dl) < 0 ? "-d (depth) must be >= 0"
                      : r < 1            ? "-r (repetitions) must be >= 1"
                      : P == 0 && N == 0 ? "nothing to time: -p and -n are both 0"
                      : D > (1 << 20) - P - N ? "-d + -p + -n must stay within 1048576 tokens"
                                              : NULL;
    if (bad) {
        fprintf(stderr, "torchless: bench: %s\n%s", bad, k_usage);
        return 2;
    }
    o.model = pos[0];
    tl_model *m = cli_load(&o);
    if (!m) return 1;
    tl_model_info in;
    tl_model_get_info(m, &in);
    if (in.n_ctx_train > 0 && D + P + N > in.n_ctx_train)
        fprintf(stderr,
                "torchless: bench: warning: -d + -p + -n = %d tokens, past the model's trained "
                "context of %d (timed all the same; the cache is sized for them)\n",
                D + P + N, in.n_ctx_train);
    /* one context for every test: sized for the largest depth, prompt and generation */
    tl_context_params cp = tl_context_default_params();
    cp.n_ctx = D + P + N + 1;
    cp.n_batch = P > 0 ? P : 1;
    if (cp.n_batch < D) cp.n_batch = D < 512 ? D : 512; /* the depth's prefill */
    cp.kv_type = o.kv_type;
    tl_context *c = NULL;
    if (tl_context_init(m, &cp, &c) != TL_OK) {
        fprintf(stderr, "torchless: error: %s\n", tl_model_error(m));
        tl_model_free(m);
        return 1;
    }
    /* a fixed pseudo-random depth and prompt: speed does not depend on the ids */
    const int nv = tl_model_n_vocab(m);
    tl_token *toks = malloc(sizeof(tl_token) * (size_t)(D + P + 1));
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < D + P; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        toks[i] = (tl_token)(x % (uint64_t)nv);
    }
    double *v = calloc(r, sizeof(double));
    const bench_run b = { c, toks, tl_token_bos(m) >= 0 ? tl_token_bos(m) : 0, nv, r };
    /* warm-up (page in weights, spin up threads) */
    tl_status st = tl_decode(c, &b.t0, 1);
    const char *name = strrchr(o.model, '/') ? strrchr(o.model, '/') + 1 : o.model;
    const double gib = in.weight_bytes / 1073741824.0;
    const double kv_row = (double)tl_context_memory(c) / cp.n_ctx; /* cache bytes per position */
    if (!o.csv) {
        printf("| model | type | size | threads | cpu | test | t/s | GB/s |\n");
        printf("|---|---|---|---|---|---|---|---|\n");
    }
    for (int di = 0; di < dl->n && st == TL_OK; di++) {
        const int d = dl->v[di];
        char at[32] = ""; /* the test names' depth suffix: "pp128@d2048" */
        if (d > 0) snprintf(at, sizeof at, "@d%d", d);
        /* the depth, once for all of its tests */
        tl_context_reset(c);
        if (d > 0) st = tl_decode(c, toks, d);
        for (int pi = 0; pi < pl->n && st == TL_OK; pi++) {
            const int p = pl->v[pi];
            if (p == 0 || (st = time_pp(&b, d, p, v)) != TL_OK) continue;
            double mean, sd;
            stats(v, r, &mean, &sd);
            if (o.csv) printf("pp%d%s,%.2f,%.2f\n", p, at, mean, sd);
            else
                printf("| %s | %s | %.2f GiB | %d | %s | pp%d%s | %.2f ± %.2f | |\n", name,
                       in.file_type, gib, in.n_threads, tl_cpu_variant(), p, at, mean, sd);
        }
        for (int ni = 0; ni < nl->n && st == TL_OK; ni++) {
            const int n = nl->v[ni];
            if (n == 0 || (st = time_tg(&b, d, n, v)) != TL_OK) continue;
            double mean, sd;
            stats(v, r, &mean, &sd);
            /* bytes a generated token reads: the weights, and the cache rows
             * it attends to, d + (n + 1) / 2 on average (fewer under a
             * sliding window: then this overstates) */
            const double tok_bytes = (double)in.weight_bytes + kv_row * (d + (n + 1) / 2.0);
            if (o.csv) printf("tg%d%s,%.2f,%.2f\n", n, at, mean, sd);
            else
                printf("| %s | %s | %.2f GiB | %d | %s | tg%d%s | %.2f ± %.2f | %.1f |\n", name,
                       in.file_type, gib, in.n_threads, tl_cpu_variant(), n, at, mean, sd,
                       mean * tok_bytes / 1e9);
        }
        fflush(stdout);
    }
    const int rc = st == TL_OK ? 0 : 1;
    if (st != TL_OK) fprintf(stderr, "torchless: error: %s\n", tl_context_error(c));
    free(v);
    free(toks);
    tl_context_free(c);
    tl_model_free(m);
    return rc;
}
