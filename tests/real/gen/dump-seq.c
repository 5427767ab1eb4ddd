// dump-seq MODEL TOKENS_FILE OUT_FILE [CHUNK]
// Like dump-logits, but feeds the tokens CHUNK at a time (default 1: one token per llama_decode),
// keeping every position's logits: raw little-endian float32 [n_tokens][n_vocab].
#include "common.h"

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s MODEL TOKENS_FILE OUT_FILE [CHUNK]\n", argv[0]); return 2; }
    int chunk = argc > 4 ? atoi(argv[4]) : 1;
    FILE *tf = fopen(argv[2], "r");
    if (!tf) { perror(argv[2]); return 1; }
    int cap = 1024, n = 0;
    llama_token *toks = malloc(sizeof(*toks) * cap);
    long v;
    while (fscanf(tf, "%ld", &v) == 1) {
        if (n == cap) toks = realloc(toks, sizeof(*toks) * (cap *= 2));
        toks[n++] = (llama_token)v;
    }
    fclose(tf);
    if (n == 0 || chunk < 1) { fprintf(stderr, "no tokens / bad chunk\n"); return 1; }
    struct llama_model *m = tl_load(argv[1]);
    const struct llama_vocab *vocab = llama_model_get_vocab(m);
    const int nv = llama_vocab_n_tokens(vocab);
    struct llama_context *c = tl_ctx(m, n < 16 ? 16 : n, chunk);
    FILE *of = fopen(argv[3], "wb");
    if (!of) { perror(argv[3]); return 1; }
    struct llama_batch b = llama_batch_init(chunk, 0, 1);
    for (int s = 0; s < n; s += chunk) {
        int k = n - s < chunk ? n - s : chunk;
        for (int i = 0; i < k; i++) {
            b.token[i] = toks[s + i]; b.pos[i] = s + i; b.n_seq_id[i] = 1; b.seq_id[i][0] = 0; b.logits[i] = 1;
        }
        b.n_tokens = k;
        if (llama_decode(c, b) != 0) { fprintf(stderr, "llama_decode failed\n"); return 1; }
        for (int i = 0; i < k; i++) {
            const float *l = llama_get_logits_ith(c, i);
            if (!l || fwrite(l, sizeof(float), nv, of) != (size_t)nv) { fprintf(stderr, "write failed\n"); return 1; }
        }
    }
    fclose(of);
    fprintf(stderr, "wrote %d x %d float32 logits to %s (chunk %d)\n", n, nv, argv[3], chunk);
    return 0;
}
