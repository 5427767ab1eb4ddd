/* test_model_errors.c — damaged but well-formed models: a missing tensor, an
 * unknown architecture, a wrong shape, missing hyperparameters. Each must
 * fail to load with TL_ERR_* and a message naming what is wrong.
 * Built from llama.f32.gguf with the GGUF writer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "lib/gguf_copy.h"
#include "io/gguf.h"
#include "torchless.h"

/* Copies src into path, dropping tensor `drop` and key `drop_key`, overriding
 * the architecture when arch != NULL, and giving tensor `reshape` a bogus
 * shape. Returns 0 on success. */
static int rewrite(const tl_gguf *src, const char *path, const char *drop, const char *drop_key,
                   const char *arch, const char *reshape) {
    tl_err err = { 0 };
    tl_gguf_writer *w = NULL;
    if (tl_gguf_writer_init(&w, &err) != TL_OK) return -1;
    for (int64_t i = 0; i < tl_gguf_n_kv(src); i++) {
        const tl_gguf_kv *kv = tl_gguf_kv_at(src, i);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.ptr);
        if (drop_key && !strcmp(key, drop_key)) continue;
        if (arch && !strcmp(key, "general.architecture"))
            tl_gguf_writer_set_str(w, key, arch);
        else
            tl_test_gguf_copy_kv(w, src, kv, key);
    }
    for (int64_t i = 0; i < tl_gguf_n_tensors(src); i++) {
        const tl_gguf_tensor *t = tl_gguf_tensor_at(src, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (drop && !strcmp(name, drop)) continue;
        int64_t ne[4] = { t->ne[0], t->ne[1], t->ne[2], t->ne[3] };
        if (reshape && !strcmp(name, reshape)) { ne[0] = t->ne[1]; ne[1] = t->ne[0]; }
        tl_gguf_writer_add_tensor(w, name, t->type, t->n_dims, ne, t->data, t->nbytes);
    }
    tl_status rc = tl_gguf_writer_write(w, path, &err);
    tl_gguf_writer_free(w);
    return rc == TL_OK ? 0 : -1;
}

static void expect_fail(const char *path, tl_status want, const char *needle) {
    tl_model *m = NULL;
    tl_status rc = tl_model_load(path, NULL, &m);
    CHECKF(rc == want, "%s: status %d (%s), want %d: %s", needle, rc, tl_status_str(rc), want,
           tl_last_error());
    CHECKF(m == NULL, "model handle must stay NULL on failure");
    CHECKF(strstr(tl_last_error(), needle) != NULL, "message '%s' should mention '%s'",
           tl_last_error(), needle);
    tl_model_free(m);
}

int main(void) {
    tl_test_require_shared();
    tl_err err = { 0 };
    tl_gguf *src = NULL;
    if (tl_gguf_open(tl_test_shared("fixtures/models/llama.f32.gguf"), &src, &err) != TL_OK) {
        fprintf(stderr, "cannot open fixture: %s\n", err.msg);
        return 1;
    }
    char dir[] = "/tmp/tl_model_errors_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[512];

    snprintf(path, sizeof path, "%s/ok.gguf", dir);
    CHECK(rewrite(src, path, NULL, NULL, NULL, NULL) == 0);
    tl_model *m = NULL;
    CHECKF(tl_model_load(path, NULL, &m) == TL_OK, "unmodified copy must load: %s", tl_last_error());
    tl_model_free(m);

    snprintf(path, sizeof path, "%s/missing.gguf", dir);
    CHECK(rewrite(src, path, "blk.1.ffn_up.weight", NULL, NULL, NULL) == 0);
    expect_fail(path, TL_ERR_MISSING, "blk.1.ffn_up.weight");

    snprintf(path, sizeof path, "%s/arch.gguf", dir);
    CHECK(rewrite(src, path, NULL, NULL, "mamba9", NULL) == 0);
    expect_fail(path, TL_ERR_UNSUPPORTED, "mamba9");

    snprintf(path, sizeof path, "%s/noarch.gguf", dir);
    CHECK(rewrite(src, path, NULL, "general.architecture", NULL, NULL) == 0);
    expect_fail(path, TL_ERR_MISSING, "general.architecture");

    snprintf(path, sizeof path, "%s/nolayers.gguf", dir);
    CHECK(rewrite(src, path, NULL, "llama.block_count", NULL, NULL) == 0);
    expect_fail(path, TL_ERR_MISSING, "llama.block_count");

    snprintf(path, sizeof path, "%s/shape.gguf", dir);
    CHECK(rewrite(src, path, NULL, NULL, NULL, "blk.0.attn_k.weight") == 0);
    expect_fail(path, TL_ERR_FORMAT, "blk.0.attn_k.weight");

    tl_gguf_free(src);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return tl_test_finish("test_model_errors", 0);
}
