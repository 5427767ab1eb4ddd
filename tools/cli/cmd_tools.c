/* cmd_tools.c — `torchless logits`, `info` and `tokenize`. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Parses whitespace-separated token ids; returns a malloc'd array or NULL. */
static tl_token *read_tokens(const char *path, int *n_out) {
    char *txt = cli_read_file(path, NULL);
    if (!txt) return NULL;
    int cap = 256, n = 0;
    tl_token *t = malloc(sizeof(tl_token) * cap);
    char *p = txt;
    while (t) {
        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
        if (!*p) break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < -2147483647L || v > 2147483647L) {
            fprintf(stderr, "torchless: %s: not a token id near '%.10s'\n", path, p);
            free(t);
            t = NULL;
            break;
        }
        if (n == cap) {
            tl_token *nt = realloc(t, sizeof(tl_token) * (cap *= 2));
            if (!nt) { free(t); t = NULL; break; }
            t = nt;
        }
        t[n++] = (tl_token)v;
        p = end;
    }
    free(txt);
    *n_out = n;
    return t;
}

int cmd_logits(int argc, char **argv, int first) {
    cli_opts o;
    const char *pos[1];
    if (cli_parse(argc, argv, first, &o, pos, 1) != 1 || !o.tokens_file || !o.out_file) {
        fprintf(stderr, "usage: torchless logits MODEL --tokens FILE --out FILE [--kv-dtype f16|f32|q8_0]\n");
        return 2;
    }
    o.model = pos[0];
    int n = 0;
    tl_token *toks = read_tokens(o.tokens_file, &n);
    if (!toks || n == 0) {
        fprintf(stderr, "torchless: cannot read token ids from '%s'\n", o.tokens_file);
        free(toks);
        return 1;
    }
    tl_model *m = cli_load(&o);
    if (!m) { free(toks); return 1; }
    tl_context_params cp = tl_context_default_params();
    cp.kv_type = o.kv_type;
    cp.all_logits = true;
    cp.n_ctx = o.max_seq_len > n ? o.max_seq_len : n;
    cp.n_batch = n; /* the whole sequence as one batch */
    tl_context *c = NULL;
    int rc = 1;
    FILE *f = NULL;
    if (tl_context_init(m, &cp, &c) != TL_OK) {
        fprintf(stderr, "torchless: error: %s\n", tl_model_error(m));
        goto done;
    }
    if (tl_decode(c, toks, n) != TL_OK) {
        fprintf(stderr, "torchless: error: %s\n", tl_context_error(c));
        goto done;
    }
    f = fopen(o.out_file, "wb");
    if (!f) {
        fprintf(stderr, "torchless: cannot write '%s'\n", o.out_file);
        goto done;
    }
    const int nv = tl_model_n_vocab(m);
    bool ok = true;
    for (int i = 0; i < n && ok; i++) ok = fwrite(tl_get_logits(c, i), sizeof(float), nv, f) == (size_t)nv;
    if (fclose(f) != 0 || !ok) {
        fprintf(stderr, "torchless: error writing '%s'\n", o.out_file);
        goto done;
    }
    rc = 0;
done:
    free(toks);
    tl_context_free(c);
    tl_model_free(m);
    return rc;
}

int cmd_info(int argc, char **argv, int first) {
    cli_opts o;
    const char *pos[1];
    if (cli_parse(argc, argv, first, &o, pos, 1) != 1) {
        fprintf(stderr, "usage: torchless info MODEL\n");
        return 2;
    }
    o.model = pos[0];
    tl_model *m = cli_load(&o);
    if (!m) return 1;
    tl_model_info in;
    tl_model_get_info(m, &in);
    printf("format:          %s\n", in.format);
    printf("architecture:    %s\n", in.arch);
    printf("name:            %s\n", in.name);
    printf("weights:         %s, %.2f M parameters, %.1f MiB\n", in.file_type, in.n_params / 1e6,
           in.weight_bytes / 1048576.0);
    printf("vocab:           %d\n", in.n_vocab);
    printf("embedding:       %d\n", in.n_embd);
    printf("layers:          %d\n", in.n_layer);
    printf("heads:           %d (kv %d), head size %d\n", in.n_head, in.n_head_kv, in.head_dim);
    printf("ffn:             %d\n", in.n_ff);
    printf("context (train): %d\n", in.n_ctx_train);
    printf("rope:            theta %g, %d dims\n", in.rope_theta, in.rope_dims);
    printf("norm eps:        %g\n", in.norm_eps);
    if (in.sliding_window) printf("sliding window:  %d\n", in.sliding_window);
    printf("bos/eos:         %d / %d\n", tl_token_bos(m), tl_token_eos(m));
    printf("\nmetadata (%d keys):\n", tl_model_n_meta(m));
    for (int i = 0; i < tl_model_n_meta(m); i++) {
        const char *k, *v;
        tl_model_meta(m, i, &k, &v);
        printf("  %-40s %.100s\n", k, v);
    }
    printf("\ntensors (%d):\n", tl_model_n_tensors(m));
    for (int i = 0; i < tl_model_n_tensors(m); i++) {
        const char *name, *type;
        int nd;
        int64_t ne[4];
        tl_model_tensor_info(m, i, &name, &type, &nd, ne);
        printf("  %-40s %-6s [", name, type);
        for (int d = 0; d < nd; d++) printf("%s%lld", d ? ", " : "", (long long)ne[d]);
        printf("]\n");
    }
    tl_model_free(m);
    return 0;
}

static int print_ids(const tl_model *m, const char *s, size_t len, bool specials, const char *lead) {
    int cap = (int)len + 16;
    tl_token *t = malloc(sizeof(tl_token) * cap);
    if (!t) return 1;
    int n = tl_tokenize(m, s, len, t, cap, specials, false);
    if (n < 0) {
        free(t);
        return 1;
    }
    for (int i = 0; i < n; i++) printf("%s%d", i || *lead ? " " : "", t[i]);
    printf("\n");
    free(t);
    return 0;
}

int cmd_tokenize(int argc, char **argv, int first) {
    cli_opts o;
    const char *pos[2];
    int np = cli_parse(argc, argv, first, &o, pos, 2);
    if (np < 1 || (np == 1) != (o.inp_file != NULL)) {
        fprintf(stderr, "usage: torchless tokenize MODEL (TEXT | --inp FILE)\n");
        return 2;
    }
    o.model = pos[0];
    tl_model *m = cli_load(&o);
    if (!m) return 1;
    int rc = 0;
    if (!o.inp_file) {
        rc = print_ids(m, pos[1], strlen(pos[1]), true, "");
    } else {
        /* llama.cpp's vocab test format: strings separated by the line
         * __ggml_vocab_test__; one line of " id id ..." per string out */
        size_t len;
        char *txt = cli_read_file(o.inp_file, &len);
        if (!txt) {
            fprintf(stderr, "torchless: cannot read '%s'\n", o.inp_file);
            tl_model_free(m);
            return 1;
        }
        static const char sep[] = "\n__ggml_vocab_test__\n";
        char *p = txt;
        for (char *q; (q = strstr(p, sep)) != NULL; p = q + sizeof sep - 1)
            rc |= print_ids(m, p, (size_t)(q - p), false, " ");
        free(txt);
    }
    tl_model_free(m);
    return rc;
}
