#include "model/source.h"

#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "io/safetensors.h"

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

tl_status tl_source_own(tl_source *s, void *p, size_t bytes, tl_err *err) {
    void **o = realloc(s->owned, sizeof *o * (size_t)(s->n_owned + 1));
    if (!o) {
        free(p);
        return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    }
    s->owned = o;
    s->owned[s->n_owned++] = p;
    s->owned_bytes += bytes;
    return TL_OK;
}

tl_status tl_source_add_map(tl_source *s, const tl_mmap *m, tl_err *err) {
    if (!m || !m->data) return TL_OK;
    const tl_mmap **a = realloc(s->maps, sizeof *a * (size_t)(s->n_maps + 1));
    if (!a) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    s->maps = a;
    s->maps[s->n_maps++] = m;
    return TL_OK;
}

void tl_source_release(const tl_source *s, const tl_tensor *t) {
    for (int i = 0; s && t && i < s->n_maps; i++)
        if (tl_mmap_contains(s->maps[i], t->data, t->nbytes)) {
            tl_mmap_release(s->maps[i], t->data, t->nbytes);
            return;
        }
}

void tl_source_free(tl_source *s) {
    if (!s) return;
    for (int64_t i = 0; i < s->n_owned; i++) free(s->owned[i]);
    free(s->owned);
    free(s->maps);
    if (s->impl_free) s->impl_free(s->impl);
    tl_gguf_free(s->meta);
    free(s->tensors);
    free(s->sorted);
    free(s);
}

/* Whether the JSON header of a file that starts with a u64 length is
 * Torchless's (top-level "metadata" and "tensors" objects) rather than
 * safetensors' (tensor names at top level). Reads only the header. */
static bool is_native_header(FILE *f, uint64_t hsize, uint64_t file_size) {
    if (hsize < 2 || hsize > file_size - 8 || hsize > SIZE_MAX - 1) return false;
    char *buf = malloc((size_t)hsize);
    if (!buf) return false;
    bool native = false;
    if (fseek(f, 8, SEEK_SET) == 0 && fread(buf, 1, (size_t)hsize, f) == hsize) {
        tl_err e = { 0 };
        cJSON *root = tl_json_parse(buf, (size_t)hsize, "header", &e);
        native = cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "metadata")) &&
                 cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "tensors"));
        cJSON_Delete(root);
    }
    free(buf);
    return native;
}

/* A .safetensors file holds weights only: the model is the Hugging Face
 * directory around it (config.json, tokenizer.json). */
static tl_status open_safetensors_file(const char *path, tl_source *s, tl_err *err) {
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    char *dir = malloc(n + 16);
    if (!dir) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    if (slash) memcpy(dir, path, n ? n : 1);
    else dir[0] = '.';
    if (n == 0) n = 1; /* "/model.safetensors" */
    memcpy(dir + n, "/config.json", 13);
    struct stat st;
    bool has_config = stat(dir, &st) == 0;
    dir[n] = 0;
    tl_status rc = has_config ? tl_source_open_hf(dir, s, err)
                              : tl_err_set(err, TL_ERR_MISSING,
                                           "%s: safetensors weights without a config.json beside "
                                           "them; open the Hugging Face directory", path);
    free(dir);
    return rc;
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
        rc = tl_source_open_hf(path, s, err);
    } else {
        /* detect by content: GGUF magic; else a u64 header size followed by
         * JSON, which is Torchless when it has metadata + tensors, else safetensors */
        FILE *f = fopen(path, "rb");
        unsigned char magic[8] = { 0 };
        size_t got = f ? fread(magic, 1, 8, f) : 0;
        uint64_t hsize = 0;
        for (int i = 0; i < 8; i++) hsize |= (uint64_t)magic[i] << (8 * i);
        if (!f) rc = tl_err_set(err, TL_ERR_IO, "cannot read '%s'", path);
        else if (got >= 4 && memcmp(magic, "GGUF", 4) == 0) rc = tl_source_open_gguf(path, s, err);
        else if (got < 8) rc = tl_err_set(err, TL_ERR_FORMAT, "%s: file is empty or too small to be a model", path);
        else if (is_native_header(f, hsize, (uint64_t)st.st_size)) rc = tl_source_open_native(path, s, err);
        else if (hsize >= 2 && hsize <= (uint64_t)st.st_size - 8) rc = open_safetensors_file(path, s, err);
        else if (hsize > (uint64_t)st.st_size - 8 && fgetc(f) == '{')
            rc = tl_err_set(err, TL_ERR_FORMAT, "%s: truncated: its JSON header claims %llu bytes, "
                            "the file has %lld", path, (unsigned long long)hsize, (long long)st.st_size);
        else rc = tl_err_set(err, TL_ERR_FORMAT, "%s: not a model file this build can read "
                             "(no GGUF magic, no safetensors or Torchless header)", path);
        if (f) fclose(f);
    }
    if (rc == TL_OK) rc = tl_source_index(s, err);
    if (rc != TL_OK) {
        if (err && !strstr(err->msg, path)) tl_err_prefix(err, "%s", path);
        tl_source_free(s);
        return rc;
    }
    *out = s;
    return TL_OK;
}
