/* cmd_convert.c — `torchless convert SRC OUT.gguf [--type T]` and
 * `torchless export SRC OUT.bin [--quant f32|int8]`: one progress line per
 * tensor on stderr. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char k_convert_usage[] =
    "usage: torchless convert SRC OUT.gguf [--type TYPE] [--pure] [--threads N]\n"
    "SRC: a GGUF file, a Hugging Face directory or a Torchless .bin\n"
    "TYPE: auto (default: every tensor keeps its type), f32, f16, bf16, or a\n"
    "      quantization type of `torchless quantize` (q8_0, q4_0, q4_k_m, ...),\n"
    "      applied with llama-quantize's per-tensor choices (--pure: none)\n";

static const char k_export_usage[] =
    "usage: torchless export SRC OUT.bin [--quant f32|int8] [--threads N]\n"
    "writes the Torchless native format (llama-architecture models only)\n";

static void on_log(tl_log_level level, const char *msg, void *user) {
    (void)user;
    fprintf(stderr, "torchless: %s: %s\n", level >= TL_LOG_WARN ? "warning" : "info", msg);
}

typedef struct prog {
    const char *stage;  /* last stage seen: the totals are the final stage's */
    uint64_t out_bytes;
} prog;

static void on_progress(const tl_convert_progress *p, void *user) {
    prog *st = user;
    if (!st->stage || strcmp(st->stage, p->stage) != 0) st->out_bytes = 0;
    st->stage = p->stage;
    st->out_bytes += p->to_bytes;
    char shape[96];
    int n = snprintf(shape, sizeof shape, "[%lld", (long long)p->ne[0]);
    for (int d = 1; d < p->n_dims && n > 0 && (size_t)n < sizeof shape; d++)
        n += snprintf(shape + n, sizeof shape - (size_t)n, ", %lld", (long long)p->ne[d]);
    if (n > 0 && (size_t)n < sizeof shape) snprintf(shape + n, sizeof shape - (size_t)n, "]");
    const double mib = 1024.0 * 1024.0;
    fprintf(stderr, "%-8s [%4d/%4d] %-40s %-16s %5s -> %-5s %9.3f MiB%s%s\n", p->stage,
            p->index + 1, p->count, p->name, shape, p->from_type, p->to_type, p->to_bytes / mib,
            p->note ? "  " : "", p->note ? p->note : "");
}

/* Parses SRC OUT and the options shared by both commands; *val gets the
 * value of `opt` (--type / --quant). Returns -1 on success, else an exit code. */
static int parse(int argc, char **argv, int first, const char *usage, const char *opt,
                 const char **val, bool *pure, int *threads, const char **pos) {
    int np = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if (pure && !strcmp(a, "--pure")) {
            *pure = true;
        } else if (!strcmp(a, opt)) {
            if (i + 1 >= argc) {
                fprintf(stderr, "torchless: option %s needs a value\n", a);
                return 2;
            }
            *val = argv[++i];
        } else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            if (!cli_threads_arg(a, i + 1 < argc ? argv[i + 1] : NULL, threads)) return 2;
            i++;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "torchless: unknown option '%s'\n%s", a, usage);
            return 2;
        } else if (np < 2) {
            pos[np++] = a;
        } else {
            fprintf(stderr, "torchless: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (np != 2) {
        fputs(usage, stderr);
        return 2;
    }
    return -1;
}

static int finish(tl_status rc, const prog *st, double t0, const char *out) {
    if (rc != TL_OK) {
        fprintf(stderr, "torchless: error: %s\n", tl_last_error());
        return 1;
    }
    const double mib = 1024.0 * 1024.0;
    fprintf(stderr, "torchless: wrote %s (%.2f MiB of tensors) in %.2f s\n", out,
            st->out_bytes / mib, cli_now() - t0);
    return 0;
}

int cmd_convert(int argc, char **argv, int first) {
    const char *pos[2];
    tl_convert_params cp = tl_convert_default_params();
    int rc = parse(argc, argv, first, k_convert_usage, "--type", &cp.type, &cp.pure,
                   &cp.n_threads, pos);
    if (rc >= 0) return rc;
    prog st = { 0 };
    cp.progress = on_progress;
    cp.progress_user = &st;
    tl_log_set(on_log, NULL, TL_LOG_WARN);
    fprintf(stderr, "torchless: converting %s to %s (type %s)\n", pos[0], pos[1],
            cp.type ? cp.type : "auto");
    const double t0 = cli_now();
    return finish(tl_convert(pos[0], pos[1], &cp), &st, t0, pos[1]);
}

int cmd_export(int argc, char **argv, int first) {
    const char *pos[2], *quant = "f32";
    tl_export_params ep = tl_export_default_params();
    int rc = parse(argc, argv, first, k_export_usage, "--quant", &quant, NULL, &ep.n_threads, pos);
    if (rc >= 0) return rc;
    if (!strcmp(quant, "f32")) ep.quant = TL_EXPORT_F32;
    else if (!strcmp(quant, "int8")) ep.quant = TL_EXPORT_INT8;
    else {
        fprintf(stderr, "torchless: --quant must be f32 or int8, not '%s'\n", quant);
        return 2;
    }
    prog st = { 0 };
    ep.progress = on_progress;
    ep.progress_user = &st;
    tl_log_set(on_log, NULL, TL_LOG_WARN);
    fprintf(stderr, "torchless: exporting %s to %s (%s)\n", pos[0], pos[1], quant);
    const double t0 = cli_now();
    return finish(tl_export_native(pos[0], pos[1], &ep), &st, t0, pos[1]);
}
