/* safetensors.c — validated reader for .safetensors files (see header). */
#include "io/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/mmap.h"

struct tl_safetensors {
    tl_mmap map;           /* empty for _mem handles */
    tl_st_tensor *t;
    int64_t n;
    char *names;           /* NUL-terminated copies of all names */
};

const tl_mmap *tl_safetensors_map(const tl_safetensors *st) { return st ? &st->map : NULL; }

/* ------------------------------------------------------------ JSON helpers */

bool tl_json_uint(const cJSON *item, uint64_t max, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return false;
    double v = item->valuedouble;
    const double lim = 9007199254740992.0; /* 2^53 */
    if (!(v >= 0) || v > lim || v != floor(v) || (uint64_t)v > max) return false;
    *out = (uint64_t)v;
    return true;
}

cJSON *tl_json_parse(const char *buf, size_t len, const char *what, tl_err *err) {
    char *copy = malloc(len + 1);
    if (!copy) {
        tl_err_set(err, TL_ERR_NOMEM, "%s: out of memory reading %zu bytes of JSON", what, len);
        return NULL;
    }
    if (len) memcpy(copy, buf, len);
    copy[len] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(copy, len + 1, &end, false);
    if (!root) {
        size_t at = end && end >= copy && end <= copy + len ? (size_t)(end - copy) : 0;
        tl_err_set(err, TL_ERR_FORMAT, "%s: malformed JSON near byte %zu", what, at);
        free(copy);
        return NULL;
    }
    /* padding only after the value (safetensors pads with spaces, Torchless with NULs) */
    for (const char *p = end; p && p < copy + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != 0) {
            tl_err_set(err, TL_ERR_FORMAT, "%s: unexpected data after the JSON value at byte %zu",
                       what, (size_t)(p - copy));
            cJSON_Delete(root);
            free(copy);
            return NULL;
        }
    }
    free(copy);
    return root;
}

cJSON *tl_json_parse_file(const char *path, tl_err *err) {
    tl_mmap m;
    if (tl_mmap_open(path, &m, err) != TL_OK) return NULL;
    cJSON *root = tl_json_parse((const char *)m.data, m.size, path, err);
    tl_mmap_free(&m);
    return root;
}

/* ------------------------------------------------------------------ dtypes */

typedef struct st_dtype {
    const char *name;
    int type;       /* tl_dtype, or -1: known to safetensors but not computed with */
    size_t size;
} st_dtype;

static const st_dtype k_dtypes[] = {
    { .name = "F32", .type = TL_DTYPE_F32, .size = 4 },
    { .name = "F16", .type = TL_DTYPE_F16, .size = 2 },
    { .name = "BF16", .type = TL_DTYPE_BF16, .size = 2 },
    { .name = "F64", .type = -1 }, { .name = "I64", .type = -1 }, { .name = "I32", .type = -1 },
    { .name = "I16", .type = -1 }, { .name = "I8", .type = -1 },  { .name = "U64", .type = -1 },
    { .name = "U32", .type = -1 }, { .name = "U16", .type = -1 }, { .name = "U8", .type = -1 },
    { .name = "BOOL", .type = -1 }, { .name = "F8_E4M3", .type = -1 },
    { .name = "F8_E5M2", .type = -1 },
};

/* ------------------------------------------------------------------ parse */

void tl_safetensors_free(tl_safetensors *st) {
    if (!st) return;
    tl_mmap_free(&st->map);
    free(st->t);
    free(st->names);
    free(st);
}

static int cmp_offset(const void *a, const void *b) {
    const tl_st_tensor *x = *(const tl_st_tensor *const *)a, *y = *(const tl_st_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset ? 1 : 0;
}

/* One header entry into t (name already set). */
static tl_status parse_entry(const cJSON *e, tl_st_tensor *t, uint64_t data_size, tl_err *err) {
    if (!cJSON_IsObject(e))
        return tl_err_set(err, TL_ERR_FORMAT, "tensor '%s': header entry is not an object", t->name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo))
        return tl_err_set(err, TL_ERR_FORMAT,
                          "tensor '%s': needs string 'dtype', array 'shape' and array 'data_offsets'",
                          t->name);
    const st_dtype *dt = NULL;
    for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++)
        if (strcmp(k_dtypes[i].name, jd->valuestring) == 0) dt = &k_dtypes[i];
    if (!dt)
        return tl_err_set(err, TL_ERR_FORMAT, "tensor '%s': unknown dtype '%.32s'", t->name,
                          jd->valuestring);
    if (dt->type < 0)
        return tl_err_set(err, TL_ERR_UNSUPPORTED,
                          "tensor '%s': dtype %s is not supported (F32, F16 and BF16 are)", t->name,
                          dt->name);
    t->type = (tl_dtype)dt->type;
    int nd = cJSON_GetArraySize(js);
    if (nd > TL_ST_MAX_DIMS)
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "tensor '%s': %d dimensions (at most %d supported)",
                          t->name, nd, TL_ST_MAX_DIMS);
    t->n_dims = nd;
    uint64_t nbytes = dt->size;
    int d = 0;
    for (const cJSON *x = js->child; x; x = x->next, d++) {
        uint64_t v;
        if (!tl_json_uint(x, INT64_MAX, &v))
            return tl_err_set(err, TL_ERR_FORMAT, "tensor '%s': shape[%d] is not a non-negative integer",
                              t->name, d);
        t->shape[d] = (int64_t)v;
        if (v && nbytes > UINT64_MAX / v)
            return tl_err_set(err, TL_ERR_FORMAT, "tensor '%s': shape overflows", t->name);
        nbytes *= v;
    }
    for (; d < TL_ST_MAX_DIMS; d++) t->shape[d] = 1;
    uint64_t b, en;
    if (cJSON_GetArraySize(jo) != 2 || !tl_json_uint(jo->child, UINT64_MAX, &b) ||
        !tl_json_uint(jo->child->next, UINT64_MAX, &en))
        return tl_err_set(err, TL_ERR_FORMAT, "tensor '%s': data_offsets must be two non-negative integers",
                          t->name);
    if (b > en || en > data_size)
        return tl_err_set(err, TL_ERR_FORMAT,
                          "tensor '%s': data_offsets [%llu, %llu] outside the data section (%llu bytes)",
                          t->name, (unsigned long long)b, (unsigned long long)en,
                          (unsigned long long)data_size);
    if (en - b != nbytes)
        return tl_err_set(err, TL_ERR_FORMAT,
                          "tensor '%s': %llu bytes of data, but %s x shape needs %llu", t->name,
                          (unsigned long long)(en - b), dt->name, (unsigned long long)nbytes);
    t->offset = b;
    t->nbytes = nbytes;
    return TL_OK;
}

static tl_status parse(tl_safetensors *st, const uint8_t *data, size_t size, tl_err *err) {
    if (size < 8) return tl_err_set(err, TL_ERR_FORMAT, "file too small for a safetensors header");
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)data[i] << (8 * i);
    if (n < 2 || n > size - 8)
        return tl_err_set(err, TL_ERR_FORMAT,
                          "header size %llu does not fit in the file (%zu bytes): truncated or not safetensors",
                          (unsigned long long)n, size);
    const uint64_t data_size = size - 8 - n;
    const uint8_t *base = data + 8 + n;
    cJSON *root = tl_json_parse((const char *)data + 8, (size_t)n, "safetensors header", err);
    if (!root) return err ? err->code : TL_ERR_FORMAT;
    tl_status rc = TL_OK;
    if (!cJSON_IsObject(root)) {
        rc = tl_err_set(err, TL_ERR_FORMAT, "safetensors header is not a JSON object");
        goto done;
    }
    int64_t count = 0;
    size_t pool = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        count++;
        pool += strlen(e->string) + 1;
    }
    st->t = calloc((size_t)(count ? count : 1), sizeof *st->t);
    st->names = malloc(pool ? pool : 1);
    if (!st->t || !st->names) {
        rc = tl_err_set(err, TL_ERR_NOMEM, "out of memory reading %lld tensor entries", (long long)count);
        goto done;
    }
    char *p = st->names;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        tl_st_tensor *t = &st->t[st->n];
        size_t len = strlen(e->string);
        memcpy(p, e->string, len + 1);
        t->name = p;
        p += len + 1;
        if (len == 0) {
            rc = tl_err_set(err, TL_ERR_FORMAT, "tensor with an empty name");
            goto done;
        }
        rc = parse_entry(e, t, data_size, err);
        if (rc != TL_OK) goto done;
        t->data = base + t->offset;
        st->n++;
    }
    /* no overlaps: sorted by offset, each starts at or after the previous end */
    tl_st_tensor **order = malloc(sizeof *order * (size_t)(count ? count : 1));
    if (!order) {
        rc = tl_err_set(err, TL_ERR_NOMEM, "out of memory");
        goto done;
    }
    int64_t m = 0;
    for (int64_t i = 0; i < st->n; i++)
        if (st->t[i].nbytes) order[m++] = &st->t[i];
    qsort(order, (size_t)m, sizeof *order, cmp_offset);
    for (int64_t i = 1; i < m && rc == TL_OK; i++)
        if (order[i]->offset < order[i - 1]->offset + order[i - 1]->nbytes)
            rc = tl_err_set(err, TL_ERR_FORMAT, "tensors '%s' and '%s' overlap in the data section",
                            order[i - 1]->name, order[i]->name);
    free(order);
done:
    cJSON_Delete(root);
    return rc;
}

tl_status tl_safetensors_open_mem(const void *data, size_t size, tl_safetensors **out,
                                  tl_err *err) {
    *out = NULL;
    tl_safetensors *st = calloc(1, sizeof *st);
    if (!st) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    tl_status rc = parse(st, data, size, err);
    if (rc != TL_OK) {
        tl_safetensors_free(st);
        return rc;
    }
    *out = st;
    return TL_OK;
}

tl_status tl_safetensors_open(const char *path, tl_safetensors **out, tl_err *err) {
    *out = NULL;
    tl_safetensors *st = calloc(1, sizeof *st);
    if (!st) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    tl_status rc = tl_mmap_open(path, &st->map, err);
    if (rc == TL_OK) {
        rc = parse(st, st->map.data, st->map.size, err);
        if (rc != TL_OK) tl_err_prefix(err, "%s", path);
    }
    if (rc != TL_OK) {
        tl_safetensors_free(st);
        return rc;
    }
    *out = st;
    return TL_OK;
}

int64_t tl_safetensors_n_tensors(const tl_safetensors *st) { return st->n; }

const tl_st_tensor *tl_safetensors_tensor_at(const tl_safetensors *st, int64_t i) {
    return i >= 0 && i < st->n ? &st->t[i] : NULL;
}

const tl_st_tensor *tl_safetensors_find(const tl_safetensors *st, const char *name) {
    for (int64_t i = 0; i < st->n; i++)
        if (strcmp(st->t[i].name, name) == 0) return &st->t[i];
    return NULL;
}
