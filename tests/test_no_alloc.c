/* test_no_alloc.c — the token loop allocates nothing.
 *
 * A context sizes every buffer when it is created (activations, KV cache,
 * the backend's scratch), and weights are repacked on their first use; from
 * then on, evaluating tokens and sampling must not touch the heap, so that a
 * long generation neither fragments memory nor pays for malloc per token.
 * This test is linked with --wrap for the allocator entry points (see
 * tests/CMakeLists.txt): every call the library makes goes through the
 * counters below. After a warm-up (a prompt, one token, one sample), it
 * counts the calls made by decoding 24 more tokens one at a time with a
 * sampler that uses every stage (penalties, top-k, top-p, min-p,
 * temperature), then a batch of 8, over each architecture family and each
 * KV cache type. */
#include <stdatomic.h>
#include <stdlib.h>

#include "harness.h"
#include "torchless.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
int __real_posix_memalign(void **p, size_t align, size_t n);

static atomic_bool counting;
static atomic_int n_calls;

static void count(void) {
    if (atomic_load(&counting)) atomic_fetch_add(&n_calls, 1);
}

void *__wrap_malloc(size_t n);
void *__wrap_malloc(size_t n) {
    count();
    return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size) {
    count();
    return __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n) {
    count();
    return __real_realloc(p, n);
}
void *__wrap_aligned_alloc(size_t align, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t n) {
    count();
    return __real_aligned_alloc(align, n);
}
int __wrap_posix_memalign(void **p, size_t align, size_t n);
int __wrap_posix_memalign(void **p, size_t align, size_t n) {
    count();
    return __real_posix_memalign(p, align, n);
}

static void check_model(const char *file, tl_kv_type kv) {
    tl_model_params mp = tl_model_default_params();
    mp.n_threads = 2;
    tl_model *m = NULL;
    if (tl_model_load(tl_test_shared(file), &mp, &m) != TL_OK) {
        CHECKF(false, "%s: load failed: %s", file, tl_last_error());
        return;
    }
    tl_context_params cp = tl_context_default_params();
    cp.n_ctx = 64;
    cp.kv_type = kv;
    tl_context *c = NULL;
    tl_sampler *s = NULL;
    tl_sampler_params sp = tl_sampler_default_params();
    sp.seed = 42;
    sp.frequency_penalty = 0.1f;
    sp.presence_penalty = 0.1f;
    /* the control: creating a context allocates, and the counters see it */
    atomic_store(&n_calls, 0);
    atomic_store(&counting, true);
    CHECK(tl_context_init(m, &cp, &c) == TL_OK);
    atomic_store(&counting, false);
    CHECKF(atomic_load(&n_calls) > 0, "%s: the allocator wrappers saw no call", file);
    CHECK(tl_sampler_init(&sp, tl_model_n_vocab(m), &s) == TL_OK);
    if (!c || !s) goto done;
    /* warm-up: the first use of each weight repacks it */
    const tl_token prompt[9] = { 1, 10, 20, 30, 40, 50, 60, 70, 80 };
    CHECK(tl_decode(c, prompt, 9) == TL_OK);
    tl_token t = tl_sampler_sample(s, tl_get_logits(c, -1));
    tl_sampler_accept(s, t);
    CHECK(tl_decode(c, &t, 1) == TL_OK);

    atomic_store(&n_calls, 0);
    atomic_store(&counting, true);
    bool ok = true;
    for (int i = 0; i < 24 && ok; i++) {
        t = tl_sampler_sample(s, tl_get_logits(c, -1));
        tl_sampler_accept(s, t);
        ok = tl_decode(c, &t, 1) == TL_OK;
    }
    ok = ok && tl_decode(c, prompt + 1, 8) == TL_OK;
    atomic_store(&counting, false);
    CHECKF(ok, "%s: decode failed: %s", file, tl_context_error(c));
    CHECKF(atomic_load(&n_calls) == 0, "%s, KV %d: %d allocations in the token loop", file, (int)kv,
           atomic_load(&n_calls));
done:
    tl_sampler_free(s);
    tl_context_free(c);
    tl_model_free(m);
}

int main(void) {
    tl_test_require_shared();
    const char *files[] = { "fixtures/models/llama.q4_0.gguf",   "fixtures/models/mistral.q8_0.gguf",
                            "fixtures/models/qwen2.q4_k_m.gguf", "fixtures/models/phi2.q8_0.gguf",
                            "fixtures/models/phi3.q8_0.gguf",    "fixtures/models/gemma2.q8_0.gguf" };
    const tl_kv_type kvs[] = { TL_KV_F16, TL_KV_F32, TL_KV_Q8_0 };
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++)
        for (size_t k = 0; k < sizeof kvs / sizeof kvs[0]; k++) check_model(files[f], kvs[k]);
    return tl_test_finish("test_no_alloc", 0);
}
