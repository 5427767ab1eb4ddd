/* bench_tok.c — tokenizer throughput on ~1 MB of text made by repeating the
 * strings of a llama.cpp vocab test file.
 *
 *   bench_tok [VOCAB.gguf [MB]]     (default ../shared/fixtures/tokenizer/vocab-llama3.gguf, 1)
 *
 * Built by CMake as build/bin/bench_tok. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/clock.h"
#include "io/gguf.h"
#include "tok/tok.h"

static double cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) *len = (size_t)n;
    return b;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "../shared/fixtures/tokenizer/vocab-llama3.gguf";
    double mb = argc > 2 ? atof(argv[2]) : 1.0;
    tl_err err = {0};
    tl_gguf *g = NULL;
    uint64_t t0 = tl_clock_ns();
    if (tl_gguf_open(path, &g, &err)) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return 1;
    }
    uint64_t tg = tl_clock_ns();
    tl_tok *t = NULL;
    if (tl_tok_init_gguf(g, &t, &err)) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return 1;
    }
    uint64_t t1 = tl_clock_ns();

    char inp_path[4096];
    snprintf(inp_path, sizeof inp_path, "%s.inp", path);
    size_t il = 0;
    char *inp = read_all(inp_path, &il);
    if (!inp) {
        fprintf(stderr, "cannot read %s\n", inp_path);
        return 1;
    }
    tl_tok_span *sp = NULL;
    size_t ns = 0;
    tl_tok_split_vocab_test(inp, il, &sp, &ns, &err);
    size_t target = (size_t)(mb * 1e6);
    char *text = malloc(target + il + 2);
    size_t len = 0;
    while (len < target)
        for (size_t k = 0; k < ns && len < target; k++) {
            memcpy(text + len, inp + sp[k].off, sp[k].len);
            len += sp[k].len;
            text[len++] = '\n';
        }

    int cap = (int)len + 16;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    int n = 0;
    double best = 1e30, best_cpu = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        uint64_t a = tl_clock_ns();
        double ca = cpu_ms();
        n = tl_tok_encode(t, text, len, ids, cap, false, false);
        double cb = cpu_ms();
        uint64_t b = tl_clock_ns();
        if ((double)(b - a) < best) best = (double)(b - a);
        if (cb - ca < best_cpu) best_cpu = cb - ca;
    }
    char *dec = malloc(len * 2 + 16);
    uint64_t d0 = tl_clock_ns();
    int dl = tl_tok_decode_ex(t, ids, n, dec, (int)len * 2 + 16, TL_TOK_DECODE_NO_CLEANUP);
    uint64_t d1 = tl_clock_ns();
    printf("vocab      %s (%d tokens)\n", path, tl_tok_n_vocab(t));
    printf("load       %.1f ms GGUF open + %.1f ms tokenizer init\n", (double)(tg - t0) / 1e6,
           (double)(t1 - tg) / 1e6);
    printf("encode     %zu bytes -> %d tokens in %.1f ms wall: %.2f M tokens/s, %.1f MB/s (best of 5)\n",
           len, n, best / 1e6, n / (best / 1e9) / 1e6, (double)len / (best / 1e9) / 1e6);
    printf("           %.1f ms thread CPU: %.2f M tokens/s, %.1f MB/s\n", best_cpu,
           n / best_cpu / 1e3, (double)len / best_cpu / 1e3);
    printf("decode     %d tokens in %.1f ms, round trip %s\n", n, (double)(d1 - d0) / 1e6,
           (dl == (int)len && !memcmp(dec, text, len)) ? "exact" : "DIFFERS");
    free(dec);
    free(ids);
    free(text);
    free(sp);
    free(inp);
    tl_tok_free(t);
    tl_gguf_free(g);
    return 0;
}
