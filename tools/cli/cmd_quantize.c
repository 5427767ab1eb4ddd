/* cmd_quantize.c — `torchless quantize IN.gguf OUT.gguf TYPE [--threads N]
 * [--pure]`: llama-quantize's type mixes, one progress line per tensor on
 * stderr, and a throughput summary at the end. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct progress_state {
    double t0, t_last;  /* start; last tensor converted (the file write follows) */
    uint64_t in_bytes, out_bytes;
    int n_converted, n_tensors;
} progress_state;

static void print_usage(FILE *f) {
    fputs("usage: torchless quantize IN.gguf OUT.gguf TYPE [--threads N] [--pure]\n"
          "TYPE (as llama-quantize):", f);
    for (int i = 0; tl_quantize_type_name(i); i++) fprintf(f, " %s", tl_quantize_type_name(i));
    fputs("\n      aliases: Q3_K = Q3_K_M, Q4_K = Q4_K_M, Q5_K = Q5_K_M\n"
          "--pure: every quantizable tensor gets TYPE's base type (no mix rules)\n", f);
}

static void on_log(tl_log_level level, const char *msg, void *user) {
    (void)user;
    fprintf(stderr, "torchless: %s: %s\n", level >= TL_LOG_WARN ? "warning" : "info", msg);
}

static void on_progress(const tl_quantize_progress *p, void *user) {
    progress_state *st = user;
    st->in_bytes += p->from_bytes;
    st->out_bytes += p->to_bytes;
    st->n_converted += p->converted;
    st->t_last = cli_now();
    st->n_tensors = p->count;
    char shape[96];
    int n = snprintf(shape, sizeof shape, "[%lld", (long long)p->ne[0]);
    for (int d = 1; d < p->n_dims && n > 0 && (size_t)n < sizeof shape; d++)
        n += snprintf(shape + n, sizeof shape - (size_t)n, ", %lld", (long long)p->ne[d]);
    if (n > 0 && (size_t)n < sizeof shape) snprintf(shape + n, sizeof shape - (size_t)n, "]");
    const double mib = 1024.0 * 1024.0;
    if (p->converted)
        fprintf(stderr, "[%4d/%4d] %-32s %-18s %5s -> %-5s %9.3f MiB -> %9.3f MiB%s%s\n",
                p->index + 1, p->count, p->name, shape, p->from_type, p->to_type,
                p->from_bytes / mib, p->to_bytes / mib, p->requantized ? "  (requantized)" : "",
                p->note ? "  (fallback: row length)" : "");
    else
        fprintf(stderr, "[%4d/%4d] %-32s %-18s %5s    (copied) %9.3f MiB\n", p->index + 1, p->count,
                p->name, shape, p->from_type, p->from_bytes / mib);
}

int cmd_quantize(int argc, char **argv, int first) {
    const char *pos[3];
    int np = 0;
    tl_quantize_params qp = tl_quantize_default_params();
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--pure")) {
            qp.pure = true;
        } else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            if (!cli_threads_arg(a, i + 1 < argc ? argv[i + 1] : NULL, &qp.n_threads)) return 2;
            i++;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "torchless: unknown option '%s'\n", a);
            print_usage(stderr);
            return 2;
        } else if (np < 3) {
            pos[np++] = a;
        } else {
            fprintf(stderr, "torchless: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (np != 3) {
        print_usage(stderr);
        return 2;
    }
    qp.type = pos[2];
    progress_state st = { .t0 = cli_now() };
    qp.progress = on_progress;
    qp.progress_user = &st;
    tl_log_set(on_log, NULL, TL_LOG_WARN);
    fprintf(stderr, "torchless: quantizing %s to %s as %s%s\n", pos[0], pos[1], pos[2],
            qp.pure ? " (pure)" : "");
    if (tl_quantize(pos[0], pos[1], &qp) != TL_OK) {
        fprintf(stderr, "torchless: error: %s\n", tl_last_error());
        return 1;
    }
    const double dt = cli_now() - st.t0, mib = 1024.0 * 1024.0;
    fprintf(stderr,
            "torchless: %d of %d tensors converted: %.2f MiB -> %.2f MiB in %.2f s (%.2f s writing), "
            "%.1f MB/s of input\n",
            st.n_converted, st.n_tensors, st.in_bytes / mib, st.out_bytes / mib, dt, dt - (st.t_last - st.t0),
            dt > 0 ? st.in_bytes / 1e6 / dt : 0.0);
    return 0;
}
