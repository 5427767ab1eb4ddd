/* fuzz_gguf.c — libFuzzer target for the GGUF reader (and the writer's
 * KV re-encoding). Build and run with scripts/fuzz.sh; see README.md. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/gguf.h"

/* NUL-terminated copy of a view (names may contain anything, NULs too). */
static char *cstr(tl_gguf_str s) {
    char *p = malloc(s.len + 1);
    if (!p) abort();
    memcpy(p, s.ptr, s.len);
    p[s.len] = 0;
    return p;
}

static volatile uint64_t g_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tl_err err = {0};
    tl_gguf *g = NULL;
    tl_status st = tl_gguf_open_mem(data, size, &g, &err);
    if (st != TL_OK) {
        if (g != NULL || err.msg[0] == 0) abort();  /* contract: no handle, a message */
        return 0;
    }
    uint64_t h = tl_gguf_version(g) + tl_gguf_alignment(g) + tl_gguf_data_offset(g);
    for (int64_t i = 0; i < tl_gguf_n_kv(g); i++) {
        const tl_gguf_kv *kv = tl_gguf_kv_at(g, i);
        char *key = cstr(kv->key);
        if (strlen(key) == kv->key.len && tl_gguf_find(g, key) != kv) abort();
        uint32_t u; int64_t i64; float f; bool b; tl_gguf_str s;
        h += tl_gguf_get_u32(g, key, &u) + tl_gguf_get_i64(g, key, &i64) +
             tl_gguf_get_f32(g, key, &f) + tl_gguf_get_bool(g, key, &b);
        if (tl_gguf_get_str(g, key, &s) && s.len) h += (uint8_t)s.ptr[s.len - 1];
        free(key);
        if (kv->type != TL_GGUF_ARRAY) continue;
        for (uint64_t j = 0; j <= kv->arr_n && j < 4096; j++) {  /* j == arr_n: out of range */
            if (tl_gguf_arr_str(g, kv, j, &s)) {
                if (s.len) h += (uint8_t)s.ptr[0] + (uint8_t)s.ptr[s.len - 1];
            } else {
                h += (uint64_t)tl_gguf_arr_i64(kv, j) + (tl_gguf_arr_f64(kv, j) > 0);
            }
        }
    }
    for (int64_t i = 0; i < tl_gguf_n_tensors(g); i++) {
        const tl_gguf_tensor *t = tl_gguf_tensor_at(g, i);
        char *name = cstr(t->name);
        if (strlen(name) == t->name.len && tl_gguf_find_tensor(g, name) != t) abort();
        free(name);
        const uint8_t *d = t->data;
        if (t->nbytes == 0 || d < data || d + t->nbytes > data + size) abort();
        h += d[0] + d[t->nbytes - 1];
    }
    /* the writer must accept every kv the reader accepted */
    tl_gguf_writer *w = NULL;
    if (tl_gguf_writer_init(&w, &err) == TL_OK) {
        tl_status cs = tl_gguf_writer_copy_kv(w, g);
        if (cs != TL_OK && cs != TL_ERR_NOMEM) abort();
        tl_gguf_writer_free(w);
    }
    g_sink += h;
    tl_gguf_free(g);
    return 0;
}
