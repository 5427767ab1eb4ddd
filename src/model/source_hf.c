/* source_hf.c — a Hugging Face directory as a tl_source.
 *
 * config.json and tokenizer.json are translated into GGUF keys (see
 * arch/hf_names.h) held in an in-memory GGUF; tensors are renamed to GGUF
 * names and stay zero-copy views into the mmap'd safetensors shards. The
 * weights keep HF's conventions, which the source flags: rotate-half RoPE
 * (rope_neox) and Gemma's norms stored as w (norm_plus_one).
 *
 * Layering note: this io file reads the HF -> GGUF tables of arch/hf_names
 * (data only; nothing of arch's model descriptors). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/hf_names.h"
#include "base/strmap.h"
#include "io/safetensors.h"
#include "model/source.h"

typedef struct hf_impl {
    tl_safetensors **shards;
    int n_shards;
    char **names;          /* GGUF names, one per tensor */
    int64_t n_names;
    void *meta_buf;        /* GGUF image behind s->meta */
    float *rope_freqs;
} hf_impl;

static void hf_free(void *p) {
    hf_impl *h = p;
    if (!h) return;
    for (int i = 0; i < h->n_shards; i++) tl_safetensors_free(h->shards[i]);
    free(h->shards);
    for (int64_t i = 0; i < h->n_names; i++) free(h->names[i]);
    free(h->names);
    free(h->meta_buf);
    free(h->rope_freqs);
    free(h);
}

static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static bool file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* dir/name parsed as JSON; NULL with err set when absent or malformed. */
static cJSON *read_json(const char *dir, const char *name, bool required, tl_err *err) {
    char *p = join(dir, name);
    if (!p) {
        tl_err_set(err, TL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    cJSON *j = NULL;
    if (file_exists(p)) j = tl_json_parse_file(p, err);
    else if (required) tl_err_set(err, TL_ERR_MISSING, "%s is missing", p);
    free(p);
    return j;
}

/* A shard name from the index must be a plain file name inside dir. */
static bool safe_file_name(const char *s) {
    return s[0] && !strchr(s, '/') && !strchr(s, '\\') && strcmp(s, ".") && strcmp(s, "..");
}

static tl_status open_shard(hf_impl *h, const char *dir, const char *name, tl_err *err) {
    char *p = join(dir, name);
    if (!p) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    tl_safetensors *st = NULL;
    tl_status rc = tl_safetensors_open(p, &st, err);
    free(p);
    if (rc != TL_OK) return rc;
    h->shards[h->n_shards++] = st;
    return TL_OK;
}

/* model.safetensors.index.json: every shard its weight_map names, each
 * listed tensor present in its shard. */
static tl_status open_sharded(hf_impl *h, const char *dir, const cJSON *index, tl_err *err) {
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(index, "weight_map");
    if (!cJSON_IsObject(wm))
        return tl_err_set(err, TL_ERR_FORMAT, "model.safetensors.index.json: no 'weight_map' object");
    int n = cJSON_GetArraySize(wm);
    h->shards = calloc((size_t)(n ? n : 1), sizeof *h->shards);
    const char **files = calloc((size_t)(n ? n : 1), sizeof *files);
    tl_strmap seen = { 0 };
    tl_status rc = h->shards && files ? TL_OK : tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    int n_files = 0;
    for (const cJSON *e = wm->child; rc == TL_OK && e; e = e->next) {
        if (!cJSON_IsString(e) || !safe_file_name(e->valuestring)) {
            rc = tl_err_set(err, TL_ERR_FORMAT, "model.safetensors.index.json: bad shard name for '%s'",
                            e->string);
            break;
        }
        int32_t idx;
        if (tl_strmap_get(&seen, e->valuestring, strlen(e->valuestring), &idx)) continue;
        rc = tl_strmap_put(&seen, e->valuestring, strlen(e->valuestring), n_files);
        if (rc != TL_OK) rc = tl_err_set(err, rc, "out of memory");
        else files[n_files++] = e->valuestring;
    }
    for (int i = 0; rc == TL_OK && i < n_files; i++) rc = open_shard(h, dir, files[i], err);
    for (const cJSON *e = wm->child; rc == TL_OK && e; e = e->next) {
        int32_t idx = 0;
        tl_strmap_get(&seen, e->valuestring, strlen(e->valuestring), &idx);
        if (!tl_safetensors_find(h->shards[idx], e->string))
            rc = tl_err_set(err, TL_ERR_FORMAT, "tensor '%s' is listed in the index but missing from %s",
                            e->string, e->valuestring);
    }
    if (rc == TL_OK && n_files == 0)
        rc = tl_err_set(err, TL_ERR_FORMAT, "model.safetensors.index.json lists no shards");
    tl_strmap_free(&seen);
    free(files);
    return rc;
}

/* Renames every shard tensor to its GGUF name; views stay in the mmaps. */
static tl_status bind_tensors(tl_source *s, hf_impl *h, const tl_hf_family *fam, bool tied,
                              tl_err *err) {
    int64_t total = 1; /* + rope_freqs */
    for (int i = 0; i < h->n_shards; i++) total += tl_safetensors_n_tensors(h->shards[i]);
    s->tensors = calloc((size_t)total, sizeof(tl_tensor));
    h->names = calloc((size_t)total, sizeof(char *));
    if (!s->tensors || !h->names) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    char name[256];
    for (int i = 0; i < h->n_shards; i++) {
        for (int64_t j = 0; j < tl_safetensors_n_tensors(h->shards[i]); j++) {
            const tl_st_tensor *st = tl_safetensors_tensor_at(h->shards[i], j);
            tl_hf_map_result r = tl_hf_map_name(fam, st->name, tied, name, sizeof name);
            if (r == TL_HF_DROP) continue;
            if (r == TL_HF_UNKNOWN)
                return tl_err_set(err, TL_ERR_UNSUPPORTED, "tensor '%s' has no GGUF name for %s",
                                  st->name, fam->hf_arch);
            tl_tensor *t = &s->tensors[s->n_tensors];
            if (!(h->names[h->n_names] = strdup(name))) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
            t->name = h->names[h->n_names++];
            t->type = st->type;
            t->n_dims = st->n_dims ? st->n_dims : 1;
            for (int d = 0; d < TL_MAX_DIMS; d++) t->ne[d] = 1;
            for (int d = 0; d < st->n_dims; d++) t->ne[d] = st->shape[st->n_dims - 1 - d];
            t->data = st->data;
            t->nbytes = (size_t)st->nbytes;
            /* headers of odd length leave data unaligned; kernels read whole elements */
            size_t esz = tl_dtype_traits_of(st->type)->type_size;
            if ((uintptr_t)t->data % esz) {
                void *copy = malloc(t->nbytes ? t->nbytes : 1);
                if (!copy) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
                memcpy(copy, st->data, t->nbytes);
                tl_status rc = tl_source_own(s, copy, t->nbytes, err);
                if (rc != TL_OK) return rc;
                t->data = copy;
            }
            s->n_tensors++;
        }
    }
    return TL_OK;
}

static bool basename_of(const char *dir, char *out, size_t cap) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/') b--;
    size_t len = n - b < cap - 1 ? n - b : cap - 1;
    memcpy(out, dir + b, len);
    out[len] = 0;
    return len > 0;
}

tl_status tl_source_open_hf(const char *dir, tl_source *s, tl_err *err) {
    s->format = "hf";
    hf_impl *h = calloc(1, sizeof *h);
    if (!h) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    s->impl = h;
    s->impl_free = hf_free;
    tl_status rc = TL_OK;
    tl_gguf_writer *w = NULL;
    cJSON *cfg = NULL, *tok = NULL, *tok_cfg = NULL, *index = NULL;
    const tl_hf_family *fam = NULL;

    if (!(cfg = read_json(dir, "config.json", true, err))) { rc = err ? err->code : TL_ERR_FORMAT; goto done; }
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(cfg, "architectures");
    const cJSON *a0 = cJSON_IsArray(archs) ? archs->child : NULL;
    if (!cJSON_IsString(a0)) {
        rc = tl_err_set(err, TL_ERR_MISSING, "config.json: no 'architectures' list");
        goto done;
    }
    if (!(fam = tl_hf_family_find(a0->valuestring))) {
        rc = tl_err_set(err, TL_ERR_UNSUPPORTED, "architecture '%.64s' is not supported (known: %s)",
                        a0->valuestring, tl_hf_known());
        goto done;
    }
    if (!(tok = read_json(dir, "tokenizer.json", true, err))) { rc = err ? err->code : TL_ERR_FORMAT; goto done; }
    tl_err_clear(err);
    tok_cfg = read_json(dir, "tokenizer_config.json", false, err);
    if (!tok_cfg && err && err->code != TL_OK) { rc = err->code; goto done; }

    if ((rc = tl_gguf_writer_init(&w, err)) != TL_OK) goto done;
    int n_freqs = 0;
    if ((rc = tl_hf_config_to_gguf(fam, cfg, w, &h->rope_freqs, &n_freqs, err)) != TL_OK) goto done;
    if ((rc = tl_hf_tokenizer_to_gguf(tok, tok_cfg, cfg, w, err)) != TL_OK) goto done;
    char name[128];
    if (basename_of(dir, name, sizeof name)) tl_gguf_writer_set_str(w, "general.name", name);
    size_t meta_size = 0;
    if ((rc = tl_gguf_writer_write_mem(w, &h->meta_buf, &meta_size, err)) != TL_OK) goto done;
    if ((rc = tl_gguf_open_mem(h->meta_buf, meta_size, &s->meta, err)) != TL_OK) goto done;

    /* weights: the index when there is one, else the single file */
    index = read_json(dir, "model.safetensors.index.json", false, err);
    if (!index && err && err->code != TL_OK) { rc = err->code; goto done; }
    if (index) {
        rc = open_sharded(h, dir, index, err);
    } else {
        char *single = join(dir, "model.safetensors");
        if (!single) rc = tl_err_set(err, TL_ERR_NOMEM, "out of memory");
        else if (!file_exists(single))
            rc = tl_err_set(err, TL_ERR_MISSING, "neither model.safetensors nor model.safetensors.index.json found");
        else if (!(h->shards = calloc(1, sizeof *h->shards))) rc = tl_err_set(err, TL_ERR_NOMEM, "out of memory");
        else rc = open_shard(h, dir, "model.safetensors", err);
        free(single);
    }
    for (int i = 0; rc == TL_OK && i < h->n_shards; i++)
        rc = tl_source_add_map(s, tl_safetensors_map(h->shards[i]), err);
    if (rc != TL_OK) goto done;
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(cfg, "tie_word_embeddings");
    if ((rc = bind_tensors(s, h, fam, cJSON_IsTrue(tie), err)) != TL_OK) goto done;
    if (h->rope_freqs) {
        tl_tensor *t = &s->tensors[s->n_tensors++];
        *t = (tl_tensor){ .name = "rope_freqs.weight", .type = TL_DTYPE_F32, .n_dims = 1,
                          .ne = { n_freqs, 1, 1, 1 }, .data = h->rope_freqs,
                          .nbytes = sizeof(float) * (size_t)n_freqs };
    }
    s->rope_neox = true;
    s->norm_plus_one = fam->norm_plus_one;
done:
    tl_gguf_writer_free(w);
    cJSON_Delete(cfg);
    cJSON_Delete(tok);
    cJSON_Delete(tok_cfg);
    cJSON_Delete(index);
    return rc;
}
