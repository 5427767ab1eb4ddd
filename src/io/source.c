#include "io/source.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const tl_source *g_sort_src; /* qsort has no context argument in C11 */

static int cmp_idx(const void *a, const void *b) {
    const tl_tensor *t = g_sort_src->tensors;
    return strcmp(t[*(const int64_t *)a].name, t[*(const int64_t *)b].name);
}

tl_status tl_source_index(tl_source *s, tl_err *err) {
    free(s->sorted);
    s->sorted = malloc(sizeof(int64_t) * (size_t)(s->n_tensors ? s->n_tensors : 1));
    if (!s->sorted) return tl_err_set(err, TL_ERR_NOMEM, "out of memory indexing tensors");
    for (int64_t i = 0; i < s->n_tensors; i++) s->sorted[i] = i;
    g_sort_src = s;
    qsort(s->sorted, (size_t)s->n_tensors, sizeof(int64_t), cmp_idx);
    g_sort_src = NULL;
    for (int64_t i = 1; i < s->n_tensors; i++)
        if (strcmp(s->tensors[s->sorted[i]].name, s->tensors[s->sorted[i - 1]].name) == 0)
            return tl_err_set(err, TL_ERR_FORMAT, "duplicate tensor name '%s'",
                              s->tensors[s->sorted[i]].name);
    return TL_OK;
}

const tl_tensor *tl_source_find(const tl_source *s, const char *name) {
    int64_t lo = 0, hi = s->n_tensors - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        const tl_tensor *t = &s->tensors[s->sorted[mid]];
        int c = strcmp(name, t->name);
        if (c == 0) return t;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

void tl_source_free(tl_source *s) {
    if (!s) return;
    if (s->impl_free) s->impl_free(s->impl);
    tl_gguf_free(s->meta);
    free(s->tensors);
    free(s->sorted);
    free(s);
}

tl_status tl_source_open(const char *path, tl_source **out, tl_err *err) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return tl_err_set(err, TL_ERR_IO, "%s: no such file or directory", path);
    tl_source *s = calloc(1, sizeof *s);
    if (!s) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    tl_status rc;
    if (S_ISDIR(st.st_mode)) {
        rc = tl_err_set(err, TL_ERR_UNSUPPORTED,
                        "%s: is a directory, and Hugging Face directories are not supported yet", path);
    } else {
        /* detect by content: GGUF magic first */
        FILE *f = fopen(path, "rb");
        unsigned char magic[4] = { 0 };
        size_t got = f ? fread(magic, 1, 4, f) : 0;
        if (f) fclose(f);
        if (!f) rc = tl_err_set(err, TL_ERR_IO, "cannot read '%s'", path);
        else if (got == 4 && memcmp(magic, "GGUF", 4) == 0) rc = tl_source_open_gguf(path, s, err);
        else if (got < 4) rc = tl_err_set(err, TL_ERR_FORMAT, "%s: file is empty or too small to be a model", path);
        else rc = tl_err_set(err, TL_ERR_FORMAT, "%s: not a model file this build can read (no GGUF magic)", path);
    }
    if (rc == TL_OK) rc = tl_source_index(s, err);
    if (rc != TL_OK) {
        tl_source_free(s);
        return rc;
    }
    *out = s;
    return TL_OK;
}
