/* cmd_run.c — `torchless run`: prompt in one batch, then stream sampled tokens. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

/* Emits bytes to stdout, holding back an incomplete trailing UTF-8 sequence
 * until the token that completes it arrives. */
typedef struct utf8_out {
    char buf[64];
    int n;
} utf8_out;

static int utf8_len(unsigned char c) {
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) return 2;
    if ((c & 0xF0) == 0xE0) return 3;
    if ((c & 0xF8) == 0xF0) return 4;
    return 1; /* stray continuation byte: pass through */
}

static void utf8_push(utf8_out *u, const char *s, int n, bool flush) {
    for (int i = 0; i < n; i++) {
        if (u->n == (int)sizeof u->buf) { fwrite(u->buf, 1, u->n, stdout); u->n = 0; }
        u->buf[u->n++] = s[i];
    }
    int end = 0; /* emit up to the last complete sequence */
    while (end < u->n) {
        int l = utf8_len((unsigned char)u->buf[end]);
        if (end + l > u->n && !flush) break;
        end += l;
    }
    if (end > u->n) end = u->n;
    fwrite(u->buf, 1, end, stdout);
    memmove(u->buf, u->buf + end, u->n - end);
    u->n -= end;
    fflush(stdout);
}

static bool is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

int cmd_run(int argc, char **argv, int first) {
    cli_opts o;
    const char *pos[2];
    int np = cli_parse(argc, argv, first, &o, pos, 2);
    if (np < 0) return 2;
    if (np == 2) {
        o.model = pos[0];
        o.prompt = pos[1];
    } else if (np == 1 && !is_file(pos[0])) {
        o.model = cli_default_model();
        o.prompt = pos[0];
        if (!o.model) {
            fprintf(stderr, "torchless: no MODEL given and the default model is not installed; "
                            "run scripts/fetch-models.sh or pass a GGUF path\n");
            return 2;
        }
        if (!o.chat_set) o.chat = true;
    } else {
        fprintf(stderr, "usage: torchless run MODEL PROMPT [options] (see --help)\n");
        return 2;
    }

    double t_load = cli_now();
    tl_model *m = cli_load(&o);
    if (!m) return 1;
    t_load = cli_now() - t_load;
    tl_context_params cp = tl_context_default_params();
    cp.n_ctx = o.max_seq_len;
    cp.kv_type = o.kv_type;
    tl_context *c = NULL;
    tl_sampler *s = NULL;
    int rc = 1;
    tl_token *toks = NULL;
    char *formatted = NULL;
    if (tl_context_init(m, &cp, &c) != TL_OK) {
        fprintf(stderr, "torchless: error: %s\n", tl_model_error(m));
        goto done;
    }
    if (tl_sampler_init(&o.sp, tl_model_n_vocab(m), &s) != TL_OK) {
        fprintf(stderr, "torchless: error: %s\n", tl_last_error());
        goto done;
    }
    const char *text = o.prompt;
    if (o.chat) {
        formatted = tl_chat_format(m, o.system, o.prompt);
        if (formatted) text = formatted;
        else fprintf(stderr, "torchless: note: model has no chat template; using the prompt as is\n");
    }
    int n_ctx = tl_context_n_ctx(c);
    toks = malloc(sizeof(tl_token) * (size_t)n_ctx);
    int n = toks ? tl_tokenize(m, text, strlen(text), toks, n_ctx, true, o.chat) : 0;
    if (n <= 0 || n >= n_ctx) {
        fprintf(stderr, "torchless: error: prompt is empty or longer than the context (%d tokens)\n", n_ctx);
        goto done;
    }
    if (o.debug) {
        fprintf(stderr, "prompt tokens:");
        for (int i = 0; i < n; i++) fprintf(stderr, " %d", toks[i]);
        fprintf(stderr, "\n");
    }
    for (int i = 0; i < n; i++) tl_sampler_accept(s, toks[i]);
    if (!o.chat) fputs(o.prompt, stdout), fflush(stdout);

    double t0 = cli_now();
    if (tl_decode(c, toks, n) != TL_OK) {
        fprintf(stderr, "\ntorchless: error: %s\n", tl_context_error(c));
        goto done;
    }
    double t_prompt = cli_now() - t0;
    int max_new = o.max_tokens >= 0 ? o.max_tokens : n_ctx - n;
    int n_gen = 0;
    utf8_out u = { .n = 0 };
    char piece[256];
    t0 = cli_now();
    while (n_gen < max_new && tl_context_n_past(c) < n_ctx) {
        tl_token t = tl_sampler_sample(s, tl_get_logits(c, -1));
        tl_sampler_accept(s, t);
        n_gen++;
        if (tl_token_is_eog(m, t)) break;
        int len = tl_token_to_piece(m, t, piece, sizeof piece, false);
        if (len > 0) utf8_push(&u, piece, len, false);
        if (n_gen == max_new || tl_context_n_past(c) >= n_ctx) break;
        if (tl_decode(c, &t, 1) != TL_OK) {
            fprintf(stderr, "\ntorchless: error: %s\n", tl_context_error(c));
            goto done;
        }
    }
    utf8_push(&u, "", 0, true);
    double t_gen = cli_now() - t0;
    printf("\n");
    fprintf(stderr,
            "\nload %.2f s | prompt %d tokens, %.2f tok/s | generation %d tokens, %.2f tok/s | "
            "memory: peak RSS %.1f MiB (KV cache %.1f MiB, model allocations %.1f MiB, "
            "weights mapped) | cpu %s\n",
            t_load, n, n / (t_prompt > 0 ? t_prompt : 1e-9), n_gen,
            n_gen / (t_gen > 0 ? t_gen : 1e-9), cli_peak_rss_mib(),
            tl_context_memory(c) / 1048576.0, tl_model_memory(m) / 1048576.0, tl_cpu_variant());
    rc = 0;
done:
    free(formatted);
    free(toks);
    tl_sampler_free(s);
    tl_context_free(c);
    tl_model_free(m);
    return rc;
}
