/* source_gguf.c — GGUF files as a tl_source: metadata is the file itself,
 * tensors are views into its mapping. */
#include <stdlib.h>
#include <string.h>

#include "model/source.h"

typedef struct gguf_names {
    char *pool; /* NUL-terminated copies of tensor names */
} gguf_names;

static void names_free(void *p) {
    gguf_names *n = p;
    if (!n) return;
    free(n->pool);
    free(n);
}

tl_status tl_source_open_gguf(const char *path, tl_source *s, tl_err *err) {
    s->format = "gguf";
    tl_status rc = tl_gguf_open(path, &s->meta, err);
    if (rc == TL_OK) rc = tl_source_add_map(s, tl_gguf_map(s->meta), err);
    if (rc != TL_OK) return rc;
    int64_t n = tl_gguf_n_tensors(s->meta);
    size_t pool_bytes = 0;
    for (int64_t i = 0; i < n; i++) pool_bytes += tl_gguf_tensor_at(s->meta, i)->name.len + 1;
    gguf_names *nm = calloc(1, sizeof *nm);
    s->tensors = calloc((size_t)(n ? n : 1), sizeof(tl_tensor));
    if (nm) nm->pool = malloc(pool_bytes ? pool_bytes : 1);
    s->impl = nm;
    s->impl_free = names_free;
    if (!nm || !nm->pool || !s->tensors)
        return tl_err_set(err, TL_ERR_NOMEM, "out of memory reading tensor list");
    char *p = nm->pool;
    for (int64_t i = 0; i < n; i++) {
        const tl_gguf_tensor *gt = tl_gguf_tensor_at(s->meta, i);
        memcpy(p, gt->name.ptr, gt->name.len);
        p[gt->name.len] = 0;
        tl_tensor *t = &s->tensors[i];
        t->name = p;
        p += gt->name.len + 1;
        t->type = gt->type;
        t->n_dims = gt->n_dims;
        for (int d = 0; d < TL_MAX_DIMS; d++) t->ne[d] = gt->ne[d];
        t->data = gt->data;
        t->nbytes = gt->nbytes;
    }
    s->n_tensors = n;
    return TL_OK;
}
