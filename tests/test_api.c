/* test_api.c — the public API end to end on a fixture model:
 * batched vs token-by-token evaluation agree, contexts report fullness and
 * bad ids, truncation rewinds, greedy decoding is deterministic, and a
 * seeded sampler reproduces its sequence. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "torchless.h"

static float max_abs_diff(const float *a, const float *b, int n) {
    float d = 0;
    for (int i = 0; i < n; i++) d = fmaxf(d, fabsf(a[i] - b[i]));
    return d;
}

static void generate(tl_model *m, const tl_sampler_params *sp, tl_token *out, int n) {
    tl_context_params cp = tl_context_default_params();
    cp.n_ctx = 64;
    tl_context *c = NULL;
    tl_sampler *s = NULL;
    CHECK(tl_context_init(m, &cp, &c) == TL_OK);
    CHECK(tl_sampler_init(sp, tl_model_n_vocab(m), &s) == TL_OK);
    tl_token t = tl_token_bos(m);
    for (int i = 0; i < n; i++) {
        CHECK(tl_decode(c, &t, 1) == TL_OK);
        t = out[i] = tl_sampler_sample(s, tl_get_logits(c, -1));
        tl_sampler_accept(s, t);
    }
    tl_sampler_free(s);
    tl_context_free(c);
}

int main(void) {
    tl_test_require_shared();
    tl_model *m = NULL;
    tl_model_params mp = tl_model_default_params();
    mp.n_threads = 2;
    if (tl_model_load(tl_test_shared("fixtures/models/llama.q8_0.gguf"), &mp, &m) != TL_OK) {
        fprintf(stderr, "load failed: %s\n", tl_last_error());
        return 1;
    }
    const int nv = tl_model_n_vocab(m);
    CHECK(nv == 512);
    CHECK(tl_token_bos(m) == 1);
    CHECK(tl_token_eos(m) == 2);

    /* batched (one pass, all logits) vs one token at a time, F32 cache */
    const tl_token toks[8] = { 1, 100, 200, 300, 400, 7, 8, 9 };
    tl_context_params cp = tl_context_default_params();
    cp.n_ctx = 16;
    cp.kv_type = TL_KV_F32;
    cp.all_logits = true;
    tl_context *cb = NULL, *cs = NULL;
    CHECK(tl_context_init(m, &cp, &cb) == TL_OK);
    cp.all_logits = false;
    CHECK(tl_context_init(m, &cp, &cs) == TL_OK);
    CHECK(tl_decode(cb, toks, 8) == TL_OK);
    for (int i = 0; i < 8; i++) {
        CHECK(tl_decode(cs, &toks[i], 1) == TL_OK);
        float d = max_abs_diff(tl_get_logits(cb, i), tl_get_logits(cs, -1), nv);
        /* same maths, different batch shapes: only summation order differs */
        CHECKF(d < 1e-3f, "position %d: batched vs sequential differ by %g", i, d);
    }
    CHECK(tl_get_logits(cb, 8) == NULL);
    CHECK(tl_context_n_past(cs) == 8);

    /* truncation rewinds: re-evaluating the last token gives the same logits */
    float last[512];
    memcpy(last, tl_get_logits(cs, -1), sizeof last);
    CHECK(tl_context_truncate(cs, 7) == TL_OK);
    CHECK(tl_decode(cs, &toks[7], 1) == TL_OK);
    CHECK(max_abs_diff(last, tl_get_logits(cs, -1), nv) == 0.0f);
    CHECK(tl_context_truncate(cs, 9) == TL_ERR_INVALID_ARG);

    /* a full context refuses more tokens with a message, and keeps its state */
    const tl_token many[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    CHECK(tl_decode(cs, many, 9) == TL_ERR_CONTEXT_FULL);
    CHECK(strlen(tl_context_error(cs)) > 0);
    CHECK(tl_context_n_past(cs) == 8);
    const tl_token bad = 512;
    CHECK(tl_decode(cs, &bad, 1) == TL_ERR_INVALID_ARG);
    CHECK(tl_decode(cs, many, 0) == TL_ERR_INVALID_ARG);
    tl_context_free(cb);
    tl_context_free(cs);

    /* greedy is deterministic; seeded sampling reproduces; seeds differ */
    tl_sampler_params sp = tl_sampler_default_params();
    sp.temperature = 0;
    tl_token a[16], b[16];
    generate(m, &sp, a, 16);
    generate(m, &sp, b, 16);
    CHECK(memcmp(a, b, sizeof a) == 0);
    sp = tl_sampler_default_params();
    sp.temperature = 1.5f;
    sp.top_k = 0;
    sp.top_p = 1;
    sp.min_p = 0;
    sp.seed = 1234;
    generate(m, &sp, a, 16);
    generate(m, &sp, b, 16);
    CHECK(memcmp(a, b, sizeof a) == 0);
    sp.seed = 99;
    generate(m, &sp, b, 16);
    CHECK(memcmp(a, b, sizeof a) != 0);

    /* errors on a handle-less call land in tl_last_error */
    tl_model *none = NULL;
    CHECK(tl_model_load("/nonexistent/model.gguf", NULL, &none) == TL_ERR_IO);
    CHECK(none == NULL && strlen(tl_last_error()) > 0);
    tl_model_free(NULL);
    tl_context_free(NULL);
    tl_sampler_free(NULL);

    /* file_type: what the GGUF says (llama-quantize's name), else the type
     * holding most weight bytes (llama.q4_k_m's largest tensors need not be
     * Q4_K) */
    tl_model_info in;
    tl_model_get_info(m, &in);
    CHECKF(strcmp(in.file_type, "Q8_0") == 0, "file_type %s", in.file_type);
    tl_model *km = NULL;
    if (tl_model_load(tl_test_shared("fixtures/models/llama.q4_k_m.gguf"), &mp, &km) == TL_OK) {
        tl_model_get_info(km, &in);
        CHECKF(strcmp(in.file_type, "Q4_K_M") == 0, "llama.q4_k_m file_type %s", in.file_type);
        tl_model_free(km);
    } else {
        CHECKF(0, "llama.q4_k_m: %s", tl_last_error());
    }

    tl_model_free(m);
    return tl_test_finish("test_api", 0);
}
