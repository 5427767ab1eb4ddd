/* test_kv_cache.c — the KV cache types through the public API: a Q8_0 cache
 * tracks an F32 one over contexts longer than one 64-key attention tile
 * (with a sliding window and softcap on gemma2), token-by-token decoding
 * reads back what batched decoding wrote (F16 too, in a context whose
 * length is not a multiple of 8), the memory report follows the
 * type, and the refusals are clear: an unknown tl_kv_type value, and Q8_0
 * on a model whose head size is not a multiple of 32 (built here from
 * llama.f32.gguf with twice the heads at half the size). The fixture logits
 * themselves are checked by test_kv_q8.sh. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "lib/gguf_copy.h"
#include "io/gguf.h"
#include "torchless.h"

enum { N_TOK = 200 }; /* > 3 tiles of 64 keys */

static tl_model *load(const char *rel) {
    tl_model *m = NULL;
    tl_model_params mp = tl_model_default_params();
    mp.n_threads = 2;
    if (tl_model_load(tl_test_shared(rel), &mp, &m) != TL_OK)
        fprintf(stderr, "%s: %s\n", rel, tl_last_error());
    return m;
}

static tl_context *context(tl_model *m, tl_kv_type kv, int n_ctx, bool all_logits) {
    tl_context_params cp = tl_context_default_params();
    cp.n_ctx = n_ctx;
    cp.kv_type = kv;
    cp.all_logits = all_logits;
    tl_context *c = NULL;
    if (tl_context_init(m, &cp, &c) != TL_OK) fprintf(stderr, "context: %s\n", tl_last_error());
    return c;
}

static double cosine(const float *a, const float *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

static int argmax(const float *x, int n) {
    int k = 0;
    for (int i = 1; i < n; i++) k = x[i] > x[k] ? i : k;
    return k;
}

/* A cache of type kv against an F32 one on n tokens in one batch (a
 * context of exactly n), by a cmp_logits.py tier (min cosine, top-1
 * agreement in percent); then the kv cache fed one token at a time past a
 * batched prefix of `prefix` tokens must give the batched rows (rows
 * already in the cache are read back, not recomputed: the incremental rows
 * differ from the batched ones by matmul order only), up to a full
 * context. */
static void compare_caches(const char *rel, const tl_token *toks, int n, tl_kv_type kv,
                           const char *name, double min_cos_tier, int top1_pct, int prefix) {
    tl_model *m = load(rel);
    CHECKF(m != NULL, "%s", rel);
    if (!m) return;
    const int nv = tl_model_n_vocab(m);
    tl_context *cf = context(m, TL_KV_F32, n, true), *ck = context(m, kv, n, true);
    tl_context *ci = context(m, kv, n, false);
    CHECK(cf && ck && ci);
    if (cf && ck && ci && tl_decode(cf, toks, n) == TL_OK && tl_decode(ck, toks, n) == TL_OK &&
        tl_decode(ci, toks, prefix) == TL_OK) {
        double min_cos = 1, min_inc = 1;
        int agree = 0;
        for (int i = 0; i < n; i++) {
            const float *a = tl_get_logits(cf, i), *b = tl_get_logits(ck, i);
            const double cs = cosine(a, b, nv);
            min_cos = cs < min_cos ? cs : min_cos;
            agree += argmax(a, nv) == argmax(b, nv);
        }
        CHECKF(min_cos >= min_cos_tier, "%s: %s vs F32 cache min cosine %.6f", rel, name, min_cos);
        CHECKF(agree >= n * top1_pct / 100, "%s: top-1 agrees on %d of %d", rel, agree, n);
        for (int i = prefix; i < n; i++) {
            CHECK(tl_decode(ci, &toks[i], 1) == TL_OK);
            const double cs = cosine(tl_get_logits(ci, -1), tl_get_logits(ck, i), nv);
            min_inc = cs < min_inc ? cs : min_inc;
        }
        CHECKF(min_inc >= 0.99999, "%s: %s token-by-token vs batched min cosine %.7f", rel, name,
               min_inc);
        CHECK(tl_decode(ci, toks, 1) == TL_ERR_CONTEXT_FULL);
    } else {
        CHECKF(false, "%s: decode failed: %s", rel, tl_last_error());
    }
    tl_context_free(cf);
    tl_context_free(ck);
    tl_context_free(ci);
    tl_model_free(m);
}

/* Copies llama.f32.gguf to path with n_head and n_head_kv doubled (head
 * size 16, every tensor shape still consistent) and no rope.dimension_count
 * (it then follows the head size). Returns 0 on success. */
static int write_half_heads(const tl_gguf *src, const char *path) {
    tl_err err = { 0 };
    tl_gguf_writer *w = NULL;
    if (tl_gguf_writer_init(&w, &err) != TL_OK) return -1;
    for (int64_t i = 0; i < tl_gguf_n_kv(src); i++) {
        const tl_gguf_kv *kv = tl_gguf_kv_at(src, i);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.ptr);
        if (!strcmp(key, "llama.rope.dimension_count")) continue;
        const bool heads = !strcmp(key, "llama.attention.head_count") ||
                           !strcmp(key, "llama.attention.head_count_kv");
        if (heads)
            tl_gguf_writer_set_u32(w, key, (uint32_t)kv->v.u64 * 2);
        else
            tl_test_gguf_copy_kv(w, src, kv, key);
    }
    for (int64_t i = 0; i < tl_gguf_n_tensors(src); i++) {
        const tl_gguf_tensor *t = tl_gguf_tensor_at(src, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        int64_t ne[4] = { t->ne[0], t->ne[1], t->ne[2], t->ne[3] };
        tl_gguf_writer_add_tensor(w, name, t->type, t->n_dims, ne, t->data, t->nbytes);
    }
    tl_status rc = tl_gguf_writer_write(w, path, &err);
    tl_gguf_writer_free(w);
    return rc == TL_OK ? 0 : -1;
}

static void head_size_refusal(void) {
    tl_err err = { 0 };
    tl_gguf *src = NULL;
    if (tl_gguf_open(tl_test_shared("fixtures/models/llama.f32.gguf"), &src, &err) != TL_OK) {
        CHECKF(false, "open llama.f32.gguf: %s", err.msg);
        return;
    }
    char path[] = "/tmp/tl_kv_cache_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    const bool written = fd >= 0 && write_half_heads(src, path) == 0;
    tl_gguf_free(src);
    CHECK(written);
    tl_model *m = NULL;
    if (written && tl_model_load(path, NULL, &m) == TL_OK) {
        tl_model_info in;
        tl_model_get_info(m, &in);
        CHECKF(in.head_dim == 16, "head size %d, want 16", in.head_dim);
        tl_context_params cp = tl_context_default_params();
        cp.n_ctx = 8;
        cp.kv_type = TL_KV_Q8_0;
        tl_context *c = NULL;
        tl_status rc = tl_context_init(m, &cp, &c);
        CHECKF(rc == TL_ERR_UNSUPPORTED, "Q8_0 cache with head size 16: status %d", rc);
        CHECK(c == NULL);
        CHECKF(strstr(tl_model_error(m), "multiples of 32") && strstr(tl_model_error(m), "16"),
               "message: %s", tl_model_error(m));
        /* the same model runs with an F16 cache: the refusal is the type's */
        cp.kv_type = TL_KV_F16;
        const tl_token t[2] = { 1, 100 };
        CHECK(tl_context_init(m, &cp, &c) == TL_OK && tl_decode(c, t, 2) == TL_OK);
        tl_context_free(c);
    } else {
        CHECKF(false, "head-size-16 model does not load: %s", tl_last_error());
    }
    tl_model_free(m);
    unlink(path);
}

int main(void) {
    tl_test_require_shared();
    tl_test_seed(0x6b76);
    tl_token toks[N_TOK + 3];
    toks[0] = 1;
    for (int i = 1; i < N_TOK + 3; i++) toks[i] = (tl_token)(3 + tl_test_u32() % 509);

    /* gemma2: window 32, softcap, head size 64 */
    const char *models[] = { "fixtures/models/llama.f32.gguf", "fixtures/models/gemma2.f32.gguf" };
    for (int i = 0; i < 2; i++) {
        /* Q8_0 by the quant tier */
        compare_caches(models[i], toks, N_TOK, TL_KV_Q8_0, "Q8_0", 0.995, 85, 130);
        /* F16 by the half tier, in a context whose length is not a multiple
         * of 8 (its K is kept in blocks of 8 positions, the rows per head
         * rounded up), from an odd prefix */
        compare_caches(models[i], toks, N_TOK + 3, TL_KV_F16, "F16", 0.9999, 95, 131);
    }

    tl_model *m = load("fixtures/models/llama.f32.gguf");
    CHECK(m != NULL);
    if (m) {
        /* K and V rows of n_head_kv * head_dim values per layer and position:
         * 2 bytes a value in F16, 34 bytes per 32 values in Q8_0 */
        tl_model_info in;
        tl_model_get_info(m, &in);
        const size_t vals = (size_t)in.n_layer * 128 * 2 * in.n_head_kv * in.head_dim;
        tl_context *c16 = context(m, TL_KV_F16, 128, false), *cq = context(m, TL_KV_Q8_0, 128, false);
        CHECK(c16 && cq);
        if (c16) CHECKF(tl_context_memory(c16) == vals * 2, "F16: %zu bytes", tl_context_memory(c16));
        if (cq) CHECKF(tl_context_memory(cq) == vals / 32 * 34, "Q8_0: %zu bytes", tl_context_memory(cq));
        tl_context_free(c16);
        tl_context_free(cq);

        tl_context_params cp = tl_context_default_params();
        cp.kv_type = (tl_kv_type)7;
        tl_context *c = NULL;
        CHECK(tl_context_init(m, &cp, &c) == TL_ERR_INVALID_ARG && c == NULL);
        CHECKF(strstr(tl_model_error(m), "KV cache type"), "message: %s", tl_model_error(m));
        tl_model_free(m);
    }
    head_size_refusal();
    return tl_test_finish("test_kv_cache", 0);
}
