/* gguf_copy.h — for tests that write a damaged or modified copy of a fixture
 * GGUF with the GGUF writer: copies one metadata key verbatim. Header-only
 * (static) so that the kernels-only builds, whose tests do not link io/,
 * need not compile it. */
#ifndef TL_TESTS_GGUF_COPY_H
#define TL_TESTS_GGUF_COPY_H

#include <stdlib.h>
#include <string.h>

#include "io/gguf.h"

/* Adds src's key kv to w under the name key (kv's own, NUL-terminated),
 * with the same type and value. Integer scalars are written as u32, as the
 * fixtures store them. */
static inline void tl_test_gguf_copy_kv(tl_gguf_writer *w, const tl_gguf *src,
                                        const tl_gguf_kv *kv, const char *key) {
    if (kv->type == TL_GGUF_STRING) {
        char *s = strndup(kv->str.ptr, kv->str.len);
        tl_gguf_writer_set_str(w, key, s);
        free(s);
    } else if (kv->type == TL_GGUF_ARRAY && kv->arr_type == TL_GGUF_STRING) {
        const char **strs = calloc(kv->arr_n ? kv->arr_n : 1, sizeof(char *));
        for (uint64_t e = 0; e < kv->arr_n; e++) {
            tl_gguf_str s;
            tl_gguf_arr_str(src, kv, e, &s);
            strs[e] = strndup(s.ptr, s.len);
        }
        tl_gguf_writer_set_arr_str(w, key, strs, kv->arr_n);
        for (uint64_t e = 0; e < kv->arr_n; e++) free((void *)strs[e]);
        free(strs);
    } else if (kv->type == TL_GGUF_ARRAY) {
        tl_gguf_writer_set_arr(w, key, kv->arr_type, kv->arr_data, kv->arr_n);
    } else if (kv->type == TL_GGUF_FLOAT32) {
        tl_gguf_writer_set_f32(w, key, (float)kv->v.f64);
    } else if (kv->type == TL_GGUF_BOOL) {
        tl_gguf_writer_set_bool(w, key, kv->v.b);
    } else {
        tl_gguf_writer_set_u32(w, key, (uint32_t)kv->v.u64);
    }
}

#endif
