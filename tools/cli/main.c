/* main.c — `torchless`: subcommand dispatch and shared option parsing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

static const char *k_usage =
    "usage: torchless [run] MODEL PROMPT [options]   generate text (streams to stdout)\n"
    "       torchless run PROMPT [options]             with the default model\n"
    "       torchless logits MODEL --tokens FILE --out FILE [--kv-dtype f16|f32|q8_0]\n"
    "       torchless info MODEL                        format, hyperparameters, tensors\n"
    "       torchless tokenize MODEL (TEXT | --inp FILE)\n"
    "       torchless bench MODEL [-t N] [-p 128] [-n 32] [-d 0] [-r 3] [--kv-dtype T] [--csv]\n"
    "                                    -p, -n, -d: comma lists (-p 128,512), as llama-bench\n"
    "       torchless quantize IN.gguf OUT.gguf TYPE [--threads N] [--pure]\n"
    "                                    TYPE: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k\n"
    "                                    q3_k_s q3_k_m q3_k_l q4_k_s q4_k_m q5_k_s q5_k_m q6_k\n"
    "       torchless convert SRC OUT.gguf [--type auto|f32|f16|bf16|q8_0|q4_k_m|...]\n"
    "       torchless export SRC OUT.bin [--quant f32|int8]   Torchless native format\n"
    "       torchless synth OUT.gguf [--seed S] [--tiny]  random-weight TinyLlama-shaped model\n"
    "       torchless --help | --version\n"
    "\n"
    "MODEL is a GGUF file, a Hugging Face directory (config.json + safetensors +\n"
    "tokenizer.json) or a Torchless native .bin; the format is detected from content.\n"
    "\n"
    "generation options:\n"
    "  --max-tokens N       tokens to generate (default: until end of text or context)\n"
    "  --temperature T      0 = greedy (default 0.7)\n"
    "  --top-k K            (default 40, 0 = off)\n"
    "  --top-p P            (default 0.9, 1 = off)\n"
    "  --min-p P            (default 0.05, 0 = off)\n"
    "  --repeat-penalty R   (default 1.1, 1 = off)\n"
    "  --seed S             fixed seed: reproducible sampling\n"
    "  --threads N          (default: all cores)\n"
    "  --max-seq-len N      context length (default: trained length, at most 4096)\n"
    "  --kv-dtype T         KV cache type: f16 (default), f32, or q8_0 (half of f16's\n"
    "                       memory; needs head sizes that are multiples of 32)\n"
    "  --dtype TYPE         convert weights to TYPE (f32, f16, bf16, q8_0, q4_0, q4_k...)\n"
    "                       once at load; default: use them as stored, in place\n"
    "  --chat / --no-chat   apply the model's chat template to PROMPT\n"
    "  --system TEXT        system message (with --chat)\n"
    "  --debug              log loading details to stderr\n";

static bool parse_int(const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < -1 || v > 1 << 30) return false;
    *out = (int)v;
    return true;
}

/* "128" or "128,512,...": at most CLI_LIST_MAX values, each as parse_int */
static bool parse_list(const char *s, cli_list *out) {
    char buf[16];
    out->n = 0;
    for (const char *p = s;; p++) {
        const char *e = strchr(p, ',');
        const size_t len = e ? (size_t)(e - p) : strlen(p);
        if (out->n == CLI_LIST_MAX || len == 0 || len >= sizeof buf) return false;
        memcpy(buf, p, len);
        buf[len] = 0;
        if (!parse_int(buf, &out->v[out->n++])) return false;
        if (!e) return true;
        p = e;
    }
}

static bool parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || *end || end == s) return false;
    *out = v;
    return true;
}

int cli_parse(int argc, char **argv, int first, cli_opts *o, const char **pos, int n_pos) {
    memset(o, 0, sizeof *o);
    o->max_tokens = -1;
    o->kv_type = TL_KV_F16;
    o->sp = tl_sampler_default_params();
    o->bench_p = (cli_list){ { 128 }, 1 };
    o->bench_n = (cli_list){ { 32 }, 1 };
    o->bench_d = (cli_list){ { 0 }, 1 };
    o->bench_r = 3;
    int np = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true, used = true;
#define INT_OPT(name, dst) else if (!strcmp(a, name)) ok = v && parse_int(v, &(dst))
#define FLT_OPT(name, dst) else if (!strcmp(a, name)) ok = v && parse_float(v, &(dst))
#define STR_OPT(name, dst) else if (!strcmp(a, name)) ok = v && ((dst) = v)
#define LIST_OPT(name, dst) else if (!strcmp(a, name)) ok = v && parse_list(v, &(dst))
        if (0) {}
        INT_OPT("--max-tokens", o->max_tokens);
        LIST_OPT("-n", o->bench_n);
        LIST_OPT("-p", o->bench_p);
        INT_OPT("-r", o->bench_r);
        LIST_OPT("-d", o->bench_d);
        INT_OPT("--threads", o->threads);
        INT_OPT("-t", o->threads);
        INT_OPT("--max-seq-len", o->max_seq_len);
        INT_OPT("--top-k", o->sp.top_k);
        FLT_OPT("--temperature", o->sp.temperature);
        FLT_OPT("--top-p", o->sp.top_p);
        FLT_OPT("--min-p", o->sp.min_p);
        FLT_OPT("--repeat-penalty", o->sp.repeat_penalty);
        STR_OPT("--tokens", o->tokens_file);
        STR_OPT("--out", o->out_file);
        STR_OPT("--inp", o->inp_file);
        STR_OPT("--system", o->system);
        STR_OPT("--dtype", o->dtype);
        else if (!strcmp(a, "--seed")) {
            char *end;
            ok = v && (o->sp.seed = strtoull(v, &end, 10), *end == 0);
        } else if (!strcmp(a, "--kv-dtype")) {
            static const struct { const char *name; tl_kv_type type; } kv[] = {
                { "f16", TL_KV_F16 }, { "f32", TL_KV_F32 }, { "q8_0", TL_KV_Q8_0 },
            };
            size_t k = 0;
            while (v && k < sizeof kv / sizeof kv[0] && strcmp(v, kv[k].name)) k++;
            if (!v || k == sizeof kv / sizeof kv[0]) {
                fprintf(stderr, "torchless: --kv-dtype '%s' is not a KV cache type (f16, f32, q8_0)\n",
                        v ? v : "");
                return -1;
            }
            o->kv_type = kv[k].type;
        } else {
            used = false;
            if (!strcmp(a, "--debug")) o->debug = true;
            else if (!strcmp(a, "--csv")) o->csv = true;
            else if (!strcmp(a, "--chat")) o->chat = o->chat_set = true;
            else if (!strcmp(a, "--no-chat")) o->chat = false, o->chat_set = true;
            else if (a[0] == '-' && a[1] && strcmp(a, "-") != 0) {
                fprintf(stderr, "torchless: unknown option '%s' (see --help)\n", a);
                return -1;
            } else if (np < n_pos) pos[np++] = a;
            else {
                fprintf(stderr, "torchless: unexpected argument '%s'\n", a);
                return -1;
            }
        }
        if (!ok) {
            fprintf(stderr, "torchless: option %s needs a valid value\n", a);
            return -1;
        }
        if (used) i++;
#undef INT_OPT
#undef FLT_OPT
#undef STR_OPT
#undef LIST_OPT
    }
    return np;
}

static void log_stderr(tl_log_level level, const char *msg, void *user) {
    (void)user;
    static const char *names[] = { "debug", "info", "warn", "error" };
    fprintf(stderr, "torchless: %s: %s\n", names[level], msg);
}

tl_model *cli_load(const cli_opts *o) {
    tl_log_set(log_stderr, NULL, o->debug ? TL_LOG_DEBUG : TL_LOG_WARN);
    tl_model_params mp = tl_model_default_params();
    mp.n_threads = o->threads;
    mp.dtype = o->dtype;
    tl_model *m = NULL;
    if (tl_model_load(o->model, &mp, &m) != TL_OK) {
        fprintf(stderr, "torchless: error: %s\n", tl_last_error());
        return NULL;
    }
    return m;
}

char *cli_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (cap - n - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

bool cli_threads_arg(const char *opt, const char *val, int *out) {
    int v;
    if (!val || !parse_int(val, &v) || v < 0 || v > 4096) {
        fprintf(stderr, "torchless: option %s needs a thread count in [0, 4096]\n", opt);
        return false;
    }
    *out = v;
    return true;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double cli_peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

const char *cli_default_model(void) {
    static char path[4096];
    const char *dir = getenv("TORCHLESS_MODELS");
    const char *home = getenv("HOME");
    if (dir && *dir) snprintf(path, sizeof path, "%s/SmolLM2-135M-Instruct.Q4_1.gguf", dir);
    else snprintf(path, sizeof path, "%s/.cache/torchless/models/SmolLM2-135M-Instruct.Q4_1.gguf",
                  home ? home : ".");
    struct stat st;
    return stat(path, &st) == 0 ? path : NULL;
}

/* --help / -h among a subcommand's arguments (from argv[first]) */
static bool wants_help(int argc, char **argv, int first) {
    for (int i = first; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return true;
    return false;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(k_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("torchless %s (cpu: %s)\n", TL_VERSION_STRING, tl_cpu_variant());
        return 0;
    }
    const char *cmd = argv[1];
    /* the commands that take the shared options (cli_parse) share this usage;
     * quantize, convert, export and synth print their own */
    static const char *const shared[] = { "run", "logits", "info", "tokenize", "bench" };
    for (size_t i = 0; i < sizeof shared / sizeof shared[0]; i++)
        if (!strcmp(cmd, shared[i]) && wants_help(argc, argv, 2)) {
            fputs(k_usage, stdout);
            return 0;
        }
    if (!strcmp(cmd, "run")) return cmd_run(argc, argv, 2);
    if (!strcmp(cmd, "logits")) return cmd_logits(argc, argv, 2);
    if (!strcmp(cmd, "info")) return cmd_info(argc, argv, 2);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc, argv, 2);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc, argv, 2);
    if (!strcmp(cmd, "synth")) return cmd_synth(argc, argv, 2);
    if (!strcmp(cmd, "quantize")) return cmd_quantize(argc, argv, 2);
    if (!strcmp(cmd, "convert")) return cmd_convert(argc, argv, 2);
    if (!strcmp(cmd, "export")) return cmd_export(argc, argv, 2);
    return cmd_run(argc, argv, 1); /* torchless MODEL PROMPT */
}
