/* simple.c — generate text with the torchless library in ~30 lines.
 * usage: example_simple MODEL PROMPT */
#include <stdio.h>
#include <string.h>
#include "torchless.h"

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s MODEL PROMPT\n", argv[0]); return 2; }
    tl_model *m = NULL;
    tl_context *c = NULL;
    tl_sampler *s = NULL;
    if (tl_model_load(argv[1], NULL, &m) != TL_OK) { fprintf(stderr, "%s\n", tl_last_error()); return 1; }
    tl_sampler_params sp = tl_sampler_default_params();
    sp.temperature = 0; /* greedy */
    if (tl_context_init(m, NULL, &c) != TL_OK || tl_sampler_init(&sp, tl_model_n_vocab(m), &s) != TL_OK) return 1;
    tl_token toks[512];
    int n = tl_tokenize(m, argv[2], strlen(argv[2]), toks, 512, true, false);
    if (n <= 0 || tl_decode(c, toks, n) != TL_OK) { fprintf(stderr, "%s\n", tl_context_error(c)); return 1; }
    printf("%s", argv[2]);
    for (int i = 0; i < 32; i++) {
        tl_token t = tl_sampler_sample(s, tl_get_logits(c, -1));
        if (tl_token_is_eog(m, t)) break;
        char piece[128];
        int len = tl_token_to_piece(m, t, piece, sizeof piece, false);
        if (len > 0) fwrite(piece, 1, len, stdout);
        if (tl_decode(c, &t, 1) != TL_OK) break;
    }
    printf("\n");
    tl_sampler_free(s);
    tl_context_free(c);
    tl_model_free(m);
    return 0;
}
