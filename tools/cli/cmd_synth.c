/* cmd_synth.c — `torchless synth OUT.gguf`: a random-weight model with
 * TinyLlama-1.1B's shape (llama arch, dim 2048, 22 layers, 32 heads, 4 KV
 * heads, FFN 5632, vocab 32000) for speed measurements that anyone can
 * reproduce from a seed. Weights are N(0, 0.02) so activations stay in a
 * sane range through all layers; norms are 1. The vocabulary is a minimal
 * valid SentencePiece one: <unk>, <s>, </s>, the 256 byte tokens, then
 * unique filler pieces with decreasing scores. Quantized versions are made
 * from it with llama-quantize (same files for every engine). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/fp16.h"
#include "io/gguf.h"

typedef struct synth_shape {
    int dim, n_layer, n_head, n_head_kv, ffn, vocab, ctx;
} synth_shape;

static const synth_shape k_tinyllama = { 2048, 22, 32, 4, 5632, 32000, 2048 };
/* --tiny: a few-MB model for a first run when no real model can be fetched */
static const synth_shape k_tiny = { 256, 2, 8, 2, 512, 1024, 512 };

/* xorshift64* + Box-Muller: fast enough for a billion draws, and the
 * stream depends only on the seed. */
typedef struct rng { uint64_t s; bool has; float spare; } rng;

static uint64_t rng_u64(rng *r) {
    r->s ^= r->s >> 12, r->s ^= r->s << 25, r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ull;
}

static float rng_normal(rng *r) {
    if (r->has) { r->has = false; return r->spare; }
    const double u1 = ((rng_u64(r) >> 11) + 1) * (1.0 / 9007199254740993.0); /* (0,1] */
    const double u2 = (rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    const double rad = sqrt(-2.0 * log(u1)), a = 6.283185307179586 * u2;
    r->spare = (float)(rad * sin(a));
    r->has = true;
    return (float)(rad * cos(a));
}

/* One tensor's storage, kept alive until the writer has written. */
typedef struct synth_buf { void *p; } synth_buf;

static void *add_weight(tl_gguf_writer *w, const char *name, tl_dtype type, int64_t n0, int64_t n1,
                        rng *r, float stddev, float fill) {
    const int64_t ne[4] = { n0, n1, 1, 1 };
    const size_t count = (size_t)(n0 * n1);
    const size_t bytes = tl_dtype_row_size(type, n0) * (size_t)n1;
    void *p = malloc(bytes ? bytes : 1);
    if (!p) return NULL;
    for (size_t i = 0; i < count; i++) {
        const float v = stddev > 0 ? stddev * rng_normal(r) : fill;
        if (type == TL_DTYPE_F16) ((tl_f16 *)p)[i] = tl_f32_to_f16(v);
        else if (type == TL_DTYPE_BF16) ((tl_bf16 *)p)[i] = tl_f32_to_bf16(v);
        else ((float *)p)[i] = v;
    }
    if (tl_gguf_writer_add_tensor(w, name, type, n1 > 1 ? 2 : 1, ne, p, bytes) != TL_OK) {
        free(p);
        return NULL;
    }
    return p;
}

/* Filler piece i >= 0: "▁" followed by a base-26 lowercase spelling of i,
 * so every piece is distinct and none collides with the special/byte ones. */
static char *filler_piece(int i) {
    char tmp[16];
    int n = 0;
    do { tmp[n++] = (char)('a' + i % 26); i /= 26; } while (i > 0 && n < 15);
    char *s = malloc(3 + (size_t)n + 1);
    if (!s) return NULL;
    memcpy(s, "\xe2\x96\x81", 3);
    for (int k = 0; k < n; k++) s[3 + k] = tmp[n - 1 - k];
    s[3 + n] = 0;
    return s;
}

static bool set_vocab(tl_gguf_writer *w, int n_vocab) {
    char **toks = calloc((size_t)n_vocab, sizeof *toks);
    float *scores = calloc((size_t)n_vocab, sizeof *scores);
    int32_t *types = calloc((size_t)n_vocab, sizeof *types);
    bool ok = toks && scores && types;
    for (int i = 0; ok && i < n_vocab; i++) {
        if (i == 0) toks[i] = strdup("<unk>"), types[i] = 2;       /* UNKNOWN */
        else if (i == 1) toks[i] = strdup("<s>"), types[i] = 3;    /* CONTROL */
        else if (i == 2) toks[i] = strdup("</s>"), types[i] = 3;
        else if (i < 259) {
            toks[i] = malloc(8);
            if (toks[i]) snprintf(toks[i], 8, "<0x%02X>", i - 3);
            types[i] = 6;                                          /* BYTE */
        } else {
            toks[i] = filler_piece(i - 259);
            types[i] = 1;                                          /* NORMAL */
            scores[i] = -(float)(i - 259);
        }
        ok = toks[i] != NULL;
    }
    if (ok) {
        tl_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
        tl_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks,
                                   (uint64_t)n_vocab);
        tl_gguf_writer_set_arr(w, "tokenizer.ggml.scores", TL_GGUF_FLOAT32, scores, (uint64_t)n_vocab);
        tl_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", TL_GGUF_INT32, types, (uint64_t)n_vocab);
        tl_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
        tl_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
        tl_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
        tl_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    }
    for (int i = 0; toks && i < n_vocab; i++) free(toks[i]);
    free(toks);
    free(scores);
    free(types);
    return ok;
}

static const char k_synth_usage[] =
    "usage: torchless synth OUT.gguf [--seed S] [--type f16|bf16|f32] [--layers N] [--tiny]\n";

int cmd_synth(int argc, char **argv, int first) {
    const char *out = NULL;
    uint64_t seed = 1;
    tl_dtype type = TL_DTYPE_F16;
    synth_shape sh = k_tinyllama;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(k_synth_usage, stdout);
            return 0;
        }
        if (!strcmp(a, "--seed") && v) {
            char *end;
            i++;
            seed = strtoull(v, &end, 10);
            if (!*v || *end) {
                fprintf(stderr, "torchless synth: --seed wants an unsigned integer, not '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--type") && v) {
            i++;
            if (!tl_dtype_from_name(v, &type) ||
                (type != TL_DTYPE_F16 && type != TL_DTYPE_F32 && type != TL_DTYPE_BF16)) {
                fprintf(stderr, "torchless synth: --type must be f16, bf16 or f32\n");
                return 2;
            }
        } else if (!strcmp(a, "--tiny")) {
            sh = k_tiny;
        } else if (!strcmp(a, "--layers") && v) {
            sh.n_layer = atoi(argv[++i]);
            if (sh.n_layer < 1 || sh.n_layer > 1000) {
                fprintf(stderr, "torchless synth: --layers must be in [1, 1000]\n");
                return 2;
            }
        } else if (a[0] != '-' && !out) out = a;
        else out = NULL, i = argc;
    }
    if (!out) {
        fputs(k_synth_usage, stderr);
        return 2;
    }
    tl_err err = { 0 };
    tl_gguf_writer *w = NULL;
    if (tl_gguf_writer_init(&w, &err) != TL_OK) {
        fprintf(stderr, "torchless synth: %s\n", err.msg);
        return 1;
    }
    const int hd = sh.dim / sh.n_head, kv = hd * sh.n_head_kv;
    tl_gguf_writer_set_str(w, "general.architecture", "llama");
    tl_gguf_writer_set_str(w, "general.name", "torchless-synth-tinyllama");
    tl_gguf_writer_set_u32(w, "general.file_type",
                           type == TL_DTYPE_F32 ? 0 : type == TL_DTYPE_F16 ? 1 : 32);
    tl_gguf_writer_set_u32(w, "llama.context_length", (uint32_t)sh.ctx);
    tl_gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)sh.dim);
    tl_gguf_writer_set_u32(w, "llama.block_count", (uint32_t)sh.n_layer);
    tl_gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)sh.ffn);
    tl_gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)hd);
    tl_gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)sh.n_head);
    tl_gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)sh.n_head_kv);
    tl_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    tl_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    tl_gguf_writer_set_u32(w, "llama.vocab_size", (uint32_t)sh.vocab);
    bool ok = set_vocab(w, sh.vocab);

    /* every buffer stays allocated until the write: the writer borrows them */
    const int max_bufs = 3 + 9 * sh.n_layer;
    void **bufs = calloc((size_t)max_bufs, sizeof *bufs);
    int nb = 0;
    rng r = { .s = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull };
    const float sd = 0.02f;
#define W(name, t, n0, n1, s, fill) \
    (ok = ok && (bufs[nb++] = add_weight(w, name, t, n0, n1, &r, s, fill)) != NULL)
    ok = ok && bufs;
    W("token_embd.weight", type, sh.dim, sh.vocab, sd, 0);
    char name[64];
    for (int l = 0; l < sh.n_layer && ok; l++) {
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        W(name, TL_DTYPE_F32, sh.dim, 1, 0, 1.0f);
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", l);
        W(name, type, sh.dim, sh.dim, sd, 0);
        snprintf(name, sizeof name, "blk.%d.attn_k.weight", l);
        W(name, type, sh.dim, kv, sd, 0);
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        W(name, type, sh.dim, kv, sd, 0);
        snprintf(name, sizeof name, "blk.%d.attn_output.weight", l);
        W(name, type, sh.dim, sh.dim, sd, 0);
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        W(name, TL_DTYPE_F32, sh.dim, 1, 0, 1.0f);
        snprintf(name, sizeof name, "blk.%d.ffn_gate.weight", l);
        W(name, type, sh.dim, sh.ffn, sd, 0);
        snprintf(name, sizeof name, "blk.%d.ffn_up.weight", l);
        W(name, type, sh.dim, sh.ffn, sd, 0);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        W(name, type, sh.ffn, sh.dim, sd, 0);
    }
    W("output_norm.weight", TL_DTYPE_F32, sh.dim, 1, 0, 1.0f);
    W("output.weight", type, sh.dim, sh.vocab, sd, 0);
#undef W
    int rc = 0;
    if (!ok) {
        fprintf(stderr, "torchless synth: out of memory\n");
        rc = 1;
    } else if (tl_gguf_writer_write(w, out, &err) != TL_OK) {
        fprintf(stderr, "torchless synth: %s\n", err.msg);
        rc = 1;
    }
    for (int i = 0; bufs && i < nb; i++) free(bufs[i]);
    free(bufs);
    tl_gguf_writer_free(w);
    return rc;
}
