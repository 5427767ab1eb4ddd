/* cmd_bench.c — `torchless bench`: prompt processing (pp) and generation (tg)
 * tokens per second, mean ± stddev over repetitions, like llama-bench; with
 * -d D both are timed after D tokens already in the cache (llama-bench's -d,
 * ik_llama.cpp's -gp), where attention over the cache adds to the weights. */
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
    "usage: torchless bench MODEL [-t N] [-p 128] [-n 32] [-d 0] [-r 3] [--csv] [--kv-dtype f16|f32|q8_0]\n";

int cmd_bench(int argc, char **argv, int first) {
    cli_opts o;
    const char *pos[1];
    if (cli_parse(argc, argv, first, &o, pos, 1) != 1) {
        fprintf(stderr, "%s", k_usage);
        return 2;
    }
    const char *bad = o.bench_p < 0   ? "-p (prompt tokens) must be >= 0"
                      : o.bench_n < 0 ? "-n (generated tokens) must be >= 0"
                      : o.bench_d < 0 ? "-d (depth) must be >= 0"
                      : o.bench_r < 1 ? "-r (repetitions) must be >= 1"
                      : o.bench_p == 0 && o.bench_n == 0 ? "nothing to time: -p and -n are both 0"
                      : o.bench_d > (1 << 20) - o.bench_p - o.bench_n
                          ? "-d + -p + -n must stay within 1048576 tokens"
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
    const int p = o.bench_p, n = o.bench_n, r = o.bench_r, d = o.bench_d;
    if (in.n_ctx_train > 0 && d + p + n > in.n_ctx_train)
        fprintf(stderr,
                "torchless: bench: warning: -d + -p + -n = %d tokens, past the model's trained "
                "context of %d (timed all the same; the cache is sized for them)\n",
                d + p + n, in.n_ctx_train);
    tl_context_params cp = tl_context_default_params();
    cp.n_ctx = d + p + n + 1;
    cp.n_batch = p > 0 ? p : 1;
    if (cp.n_batch < d) cp.n_batch = d < 512 ? d : 512; /* the depth's prefill */
    cp.kv_type = o.kv_type;
    tl_context *c = NULL;
    if (tl_context_init(m, &cp, &c) != TL_OK) {
        fprintf(stderr, "torchless: error: %s\n", tl_model_error(m));
        tl_model_free(m);
        return 1;
    }
    /* a fixed pseudo-random depth and prompt: speed does not depend on the ids */
    const int nv = tl_model_n_vocab(m);
    tl_token *toks = malloc(sizeof(tl_token) * (size_t)(d + p + 1));
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < d + p; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        toks[i] = (tl_token)(x % (uint64_t)nv);
    }
    double *pp = calloc(r, sizeof(double)), *tg = calloc(r, sizeof(double));
    tl_token t0 = tl_token_bos(m) >= 0 ? tl_token_bos(m) : 0;
    /* warm-up (page in weights, spin up threads), then the depth, once */
    tl_status st = tl_decode(c, &t0, 1);
    tl_context_reset(c);
    if (st == TL_OK && d > 0) st = tl_decode(c, toks, d);
    for (int rep = 0; rep < r && st == TL_OK; rep++) {
        if (p > 0) {
            tl_context_truncate(c, d);
            double t = cli_now();
            st = tl_decode(c, toks + d, p);
            pp[rep] = p / (cli_now() - t);
        }
        if (n > 0 && st == TL_OK) {
            tl_context_truncate(c, d);
            tl_token tok = t0;
            double t = cli_now();
            for (int i = 0; i < n && st == TL_OK; i++) {
                st = tl_decode(c, &tok, 1);
                tok = (tl_token)((tok + 1) % nv);
            }
            tg[rep] = n / (cli_now() - t);
        }
    }
    if (st != TL_OK) {
        fprintf(stderr, "torchless: error: %s\n", tl_context_error(c));
        free(pp), free(tg), free(toks);
        tl_context_free(c);
        tl_model_free(m);
        return 1;
    }
    double pm, ps, gm, gs;
    stats(pp, r, &pm, &ps);
    stats(tg, r, &gm, &gs);
    char at[32] = ""; /* the test names' depth suffix: "pp128@d2048" */
    if (d > 0) snprintf(at, sizeof at, "@d%d", d);
    if (o.csv) {
        if (p > 0) printf("pp%d%s,%.2f,%.2f\n", p, at, pm, ps);
        if (n > 0) printf("tg%d%s,%.2f,%.2f\n", n, at, gm, gs);
    } else {
        printf("| model | type | size | threads | cpu | test | t/s | GB/s |\n");
        printf("|---|---|---|---|---|---|---|---|\n");
        const char *name = strrchr(o.model, '/') ? strrchr(o.model, '/') + 1 : o.model;
        /* bytes a generated token reads: the weights, and the cache rows it
         * attends to, d + (n + 1) / 2 on average (fewer under a sliding
         * window: then this overstates) */
        const double kv_row = (double)tl_context_memory(c) / cp.n_ctx;
        const double tok_bytes = (double)in.weight_bytes + kv_row * (d + (n + 1) / 2.0);
        double gib = in.weight_bytes / 1073741824.0;
        if (p > 0)
            printf("| %s | %s | %.2f GiB | %d | %s | pp%d%s | %.2f ± %.2f | |\n", name,
                   in.file_type, gib, in.n_threads, tl_cpu_variant(), p, at, pm, ps);
        if (n > 0)
            printf("| %s | %s | %.2f GiB | %d | %s | tg%d%s | %.2f ± %.2f | %.1f |\n", name,
                   in.file_type, gib, in.n_threads, tl_cpu_variant(), n, at, gm, gs,
                   gm * tok_bytes / 1e9);
    }
    free(pp);
    free(tg);
    free(toks);
    tl_context_free(c);
    tl_model_free(m);
    return 0;
}
