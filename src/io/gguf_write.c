/* gguf_write.c — GGUF v3 writer.
 *
 * Each KV's value is kept already encoded (v3 little-endian wire format), so
 * writing is a straight copy and copying from a v1 file re-encodes lengths
 * once. The file is written to a temp file beside the target and renamed
 * over it only when complete. */
#include "io/gguf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/gguf_impl.h"

typedef struct wkv {
    char *key;
    size_t key_len;
    tl_gguf_type type;
    uint8_t *val;  /* encoded value (after the type field) */
    size_t val_len;
} wkv;

typedef struct wtensor {
    char *name;
    size_t name_len;
    tl_dtype type;
    int n_dims;
    int64_t ne[4];
    const void *data;
    uint64_t nbytes;
    uint64_t offset;  /* assigned at write time */
} wtensor;

struct tl_gguf_writer {
    wkv *kvs;
    size_t n_kv, cap_kv;
    tl_gguf_index kv_index;
    wtensor *tensors;
    size_t n_tensors, cap_tensors;
    tl_gguf_index tensor_index;
    tl_err first_err;  /* first setter failure, reported again by write */
};

/* ------------------------------------------------------------ byte buffer */

typedef struct bbuf { uint8_t *p; size_t n, cap; bool oom; } bbuf;

static void bb_put(bbuf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (n > SIZE_MAX - b->n) { b->oom = true; return; }
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n) cap = cap > SIZE_MAX / 2 ? b->n + n : cap * 2;
        uint8_t *p = (uint8_t *)realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void bb_le(bbuf *b, uint64_t v, size_t n) {
    uint8_t tmp[8];
    for (size_t i = 0; i < n; i++) tmp[i] = (uint8_t)(v >> (8 * i));
    bb_put(b, tmp, n);
}

static void bb_str(bbuf *b, const char *s, uint64_t n) {
    bb_le(b, n, 8);
    bb_put(b, s, (size_t)n);
}

/* ------------------------------------------------------------------ setup */

static tl_gguf_str wkv_name(const void *ctx, uint64_t id) {
    const wkv *k = &((const tl_gguf_writer *)ctx)->kvs[id];
    return (tl_gguf_str){k->key, k->key_len};
}
static tl_gguf_str wtensor_name(const void *ctx, uint64_t id) {
    const wtensor *t = &((const tl_gguf_writer *)ctx)->tensors[id];
    return (tl_gguf_str){t->name, t->name_len};
}

static tl_status fail(tl_gguf_writer *w, tl_status code, const char *fmt, const char *arg) {
    if (w && w->first_err.code == TL_OK) tl_err_set(&w->first_err, code, fmt, arg);
    return code;
}

tl_status tl_gguf_writer_init(tl_gguf_writer **out, tl_err *err) {
    if (!out) return tl_err_set(err, TL_ERR_INVALID_ARG, "tl_gguf_writer_init: out is NULL");
    tl_gguf_writer *w = (tl_gguf_writer *)calloc(1, sizeof *w);
    if (!w || !tl_gguf_index_init(&w->kv_index, 16) || !tl_gguf_index_init(&w->tensor_index, 16)) {
        if (w) tl_gguf_index_free(&w->kv_index);
        free(w);
        *out = NULL;
        return tl_err_set(err, TL_ERR_NOMEM, "out of memory creating GGUF writer");
    }
    *out = w;
    return TL_OK;
}

void tl_gguf_writer_free(tl_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) { free(w->kvs[i].key); free(w->kvs[i].val); }
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->kvs);
    free(w->tensors);
    tl_gguf_index_free(&w->kv_index);
    tl_gguf_index_free(&w->tensor_index);
    free(w);
}

/* Stores key -> (type, encoded value in b). Takes b's buffer in every case.
 * With keep_existing, a key already present is left alone. */
static tl_status put_kv(tl_gguf_writer *w, const char *key, size_t key_len, tl_gguf_type type,
                        bbuf *b, bool keep_existing) {
    if (b->oom) { free(b->p); return fail(w, TL_ERR_NOMEM, "out of memory setting '%s'", key); }
    int64_t have = tl_gguf_index_find(&w->kv_index, key, key_len, wkv_name, w);
    if (have >= 0) {
        wkv *k = &w->kvs[have];
        if (keep_existing) { free(b->p); return TL_OK; }
        free(k->val);
        k->type = type;
        k->val = b->p;
        k->val_len = b->n;
        return TL_OK;
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
        wkv *p = (wkv *)realloc(w->kvs, cap * sizeof *p);
        if (!p) { free(b->p); return fail(w, TL_ERR_NOMEM, "out of memory setting '%s'", key); }
        w->kvs = p;
        w->cap_kv = cap;
    }
    char *kcopy = (char *)malloc(key_len + 1);
    if (!kcopy) { free(b->p); return fail(w, TL_ERR_NOMEM, "out of memory setting '%s'", key); }
    memcpy(kcopy, key, key_len);
    kcopy[key_len] = 0;
    w->kvs[w->n_kv] = (wkv){kcopy, key_len, type, b->p, b->n};
    if (tl_gguf_index_insert(&w->kv_index, w->n_kv, wkv_name, w) == -2) {
        free(kcopy);
        free(b->p);
        return fail(w, TL_ERR_NOMEM, "out of memory setting '%s'", key);
    }
    w->n_kv++;
    return TL_OK;
}

static tl_status check_key(tl_gguf_writer *w, const char *key) {
    if (!w) return TL_ERR_INVALID_ARG;
    if (!key || !key[0]) return fail(w, TL_ERR_INVALID_ARG, "%s", "GGUF writer: empty or NULL key");
    return TL_OK;
}

/* Encodes one scalar of type t from a C value of the matching type. */
static void enc_scalar(bbuf *b, tl_gguf_type t, const void *v) {
    size_t n = tl_gguf_scalar_size(t);
    uint64_t bits = 0;
    switch (n) {
    case 1: { uint8_t x; memcpy(&x, v, 1); bits = x; break; }
    case 2: { uint16_t x; memcpy(&x, v, 2); bits = x; break; }
    case 4: { uint32_t x; memcpy(&x, v, 4); bits = x; break; }
    case 8: { uint64_t x; memcpy(&x, v, 8); bits = x; break; }
    }
    if (t == TL_GGUF_BOOL) { bool x; memcpy(&x, v, sizeof x); bits = x ? 1 : 0; }
    bb_le(b, bits, n);
}

tl_status tl_gguf_writer_set_scalar(tl_gguf_writer *w, const char *key, tl_gguf_type t,
                                    const void *v) {
    tl_status st = check_key(w, key);
    if (st != TL_OK) return st;
    if (!v || tl_gguf_scalar_size(t) == 0)
        return fail(w, TL_ERR_INVALID_ARG, "GGUF writer: '%s': not a scalar type or NULL value", key);
    bbuf b = {0};
    enc_scalar(&b, t, v);
    return put_kv(w, key, strlen(key), t, &b, false);
}

tl_status tl_gguf_writer_set_u32(tl_gguf_writer *w, const char *key, uint32_t v) {
    return tl_gguf_writer_set_scalar(w, key, TL_GGUF_UINT32, &v);
}
tl_status tl_gguf_writer_set_i32(tl_gguf_writer *w, const char *key, int32_t v) {
    return tl_gguf_writer_set_scalar(w, key, TL_GGUF_INT32, &v);
}
tl_status tl_gguf_writer_set_u64(tl_gguf_writer *w, const char *key, uint64_t v) {
    return tl_gguf_writer_set_scalar(w, key, TL_GGUF_UINT64, &v);
}
tl_status tl_gguf_writer_set_f32(tl_gguf_writer *w, const char *key, float v) {
    return tl_gguf_writer_set_scalar(w, key, TL_GGUF_FLOAT32, &v);
}
tl_status tl_gguf_writer_set_bool(tl_gguf_writer *w, const char *key, bool v) {
    return tl_gguf_writer_set_scalar(w, key, TL_GGUF_BOOL, &v);
}

tl_status tl_gguf_writer_set_str(tl_gguf_writer *w, const char *key, const char *v) {
    tl_status st = check_key(w, key);
    if (st != TL_OK) return st;
    if (!v) return fail(w, TL_ERR_INVALID_ARG, "GGUF writer: '%s': NULL string", key);
    bbuf b = {0};
    bb_str(&b, v, strlen(v));
    return put_kv(w, key, strlen(key), TL_GGUF_STRING, &b, false);
}

tl_status tl_gguf_writer_set_arr(tl_gguf_writer *w, const char *key, tl_gguf_type t,
                                 const void *data, uint64_t n) {
    tl_status st = check_key(w, key);
    if (st != TL_OK) return st;
    size_t sz = tl_gguf_scalar_size(t);
    if (sz == 0 || (n && !data) || n > SIZE_MAX / sz)
        return fail(w, TL_ERR_INVALID_ARG, "GGUF writer: '%s': bad array type, data or length", key);
    bbuf b = {0};
    bb_le(&b, t, 4);
    bb_le(&b, n, 8);
    const uint8_t *p = (const uint8_t *)data;
    for (uint64_t i = 0; i < n; i++) enc_scalar(&b, t, p + i * sz);
    return put_kv(w, key, strlen(key), TL_GGUF_ARRAY, &b, false);
}

tl_status tl_gguf_writer_set_arr_str(tl_gguf_writer *w, const char *key,
                                     const char *const *strs, uint64_t n) {
    tl_status st = check_key(w, key);
    if (st != TL_OK) return st;
    if (n && !strs) return fail(w, TL_ERR_INVALID_ARG, "GGUF writer: '%s': NULL string array", key);
    bbuf b = {0};
    bb_le(&b, TL_GGUF_STRING, 4);
    bb_le(&b, n, 8);
    for (uint64_t i = 0; i < n; i++) {
        if (!strs[i]) {
            free(b.p);
            return fail(w, TL_ERR_INVALID_ARG, "GGUF writer: '%s': NULL string in array", key);
        }
        bb_str(&b, strs[i], strlen(strs[i]));
    }
    return put_kv(w, key, strlen(key), TL_GGUF_ARRAY, &b, false);
}

/* Re-encodes a kv read from any GGUF version as v3. */
static void enc_kv(bbuf *b, const tl_gguf *g, const tl_gguf_kv *kv) {
    switch (kv->type) {
    case TL_GGUF_STRING: bb_str(b, kv->str.ptr, kv->str.len); return;
    case TL_GGUF_ARRAY:
        bb_le(b, kv->arr_type, 4);
        bb_le(b, kv->arr_n, 8);
        if (kv->arr_type == TL_GGUF_STRING) {
            for (uint64_t i = 0; i < kv->arr_n; i++) {
                tl_gguf_str s = {0};
                tl_gguf_arr_str(g, kv, i, &s);
                bb_str(b, s.ptr, s.len);
            }
        } else {
            bb_put(b, kv->arr_data, (size_t)(kv->arr_n * tl_gguf_scalar_size(kv->arr_type)));
        }
        return;
    case TL_GGUF_FLOAT32: { float f = (float)kv->v.f64; uint32_t x; memcpy(&x, &f, 4); bb_le(b, x, 4); return; }
    case TL_GGUF_FLOAT64: { uint64_t x; memcpy(&x, &kv->v.f64, 8); bb_le(b, x, 8); return; }
    case TL_GGUF_BOOL: bb_le(b, kv->v.b ? 1 : 0, 1); return;
    default:  /* integers: the low bytes of the widened value are the wire value */
        bb_le(b, kv->v.u64, tl_gguf_scalar_size(kv->type));
        return;
    }
}

tl_status tl_gguf_writer_copy_kv(tl_gguf_writer *w, const tl_gguf *g) {
    if (!w) return TL_ERR_INVALID_ARG;
    if (!g) return fail(w, TL_ERR_INVALID_ARG, "%s", "GGUF writer: copy_kv from NULL");
    for (int64_t i = 0; i < tl_gguf_n_kv(g); i++) {
        const tl_gguf_kv *kv = tl_gguf_kv_at(g, i);
        bbuf b = {0};
        enc_kv(&b, g, kv);
        tl_status st = put_kv(w, kv->key.ptr, (size_t)kv->key.len, kv->type, &b, true);
        if (st != TL_OK) return st;
    }
    return TL_OK;
}

tl_status tl_gguf_writer_add_tensor(tl_gguf_writer *w, const char *name, tl_dtype type,
                                    int n_dims, const int64_t ne[4], const void *data,
                                    uint64_t nbytes) {
    if (!w) return TL_ERR_INVALID_ARG;
    if (!name || !name[0]) return fail(w, TL_ERR_INVALID_ARG, "%s", "GGUF writer: empty tensor name");
    const tl_dtype_traits *tr = tl_dtype_traits_of((int)type);
    if (!tr || tr->block_size < 1 || n_dims < 1 || n_dims > 4 || !ne || !data)
        return fail(w, TL_ERR_INVALID_ARG, "GGUF writer: tensor '%s': bad type, n_dims, ne or data", name);
    /* Same size rule the reader enforces, so whatever we write reads back. */
    int64_t nel = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] < 1 || nel > INT64_MAX / ne[d])
            return fail(w, TL_ERR_INVALID_ARG, "GGUF writer: tensor '%s': bad dimension", name);
        nel *= ne[d];
    }
    if (ne[0] % tr->block_size != 0 ||
        (uint64_t)(nel / tr->block_size) > UINT64_MAX / tr->type_size ||
        (uint64_t)(nel / tr->block_size) * tr->type_size != nbytes)
        return fail(w, TL_ERR_INVALID_ARG,
                    "GGUF writer: tensor '%s': nbytes does not match type and shape", name);
    size_t len = strlen(name);
    if (tl_gguf_index_find(&w->tensor_index, name, len, wtensor_name, w) >= 0)
        return fail(w, TL_ERR_INVALID_ARG, "GGUF writer: duplicate tensor '%s'", name);
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        wtensor *p = (wtensor *)realloc(w->tensors, cap * sizeof *p);
        if (!p) return fail(w, TL_ERR_NOMEM, "out of memory adding tensor '%s'", name);
        w->tensors = p;
        w->cap_tensors = cap;
    }
    char *copy = strdup(name);
    if (!copy) return fail(w, TL_ERR_NOMEM, "out of memory adding tensor '%s'", name);
    wtensor *t = &w->tensors[w->n_tensors];
    *t = (wtensor){.name = copy, .name_len = len, .type = type, .n_dims = n_dims,
                   .ne = {1, 1, 1, 1}, .data = data, .nbytes = nbytes};
    for (int d = 0; d < n_dims; d++) t->ne[d] = ne[d];
    if (tl_gguf_index_insert(&w->tensor_index, w->n_tensors, wtensor_name, w) == -2) {
        free(copy);
        return fail(w, TL_ERR_NOMEM, "out of memory adding tensor '%s'", name);
    }
    w->n_tensors++;
    return TL_OK;
}

/* ------------------------------------------------------------------ write */

static tl_status writer_alignment(const tl_gguf_writer *w, uint64_t *out, tl_err *err) {
    *out = TL_GGUF_DEFAULT_ALIGNMENT;
    int64_t i = tl_gguf_index_find(&w->kv_index, "general.alignment", 17, wkv_name, w);
    if (i < 0) return TL_OK;
    const wkv *k = &w->kvs[i];
    size_t sz = tl_gguf_scalar_size(k->type);
    bool is_int = sz && k->type != TL_GGUF_BOOL && k->type != TL_GGUF_FLOAT32 &&
                  k->type != TL_GGUF_FLOAT64;
    uint64_t a = is_int ? tl_gguf_rd_le(k->val, sz) : 0;
    bool neg = is_int && (k->type == TL_GGUF_INT8 || k->type == TL_GGUF_INT16 ||
                          k->type == TL_GGUF_INT32 || k->type == TL_GGUF_INT64) &&
               (a >> (8 * sz - 1)) & 1;
    if (!is_int || neg || !tl_gguf_is_pow2(a) || a > TL_GGUF_MAX_ALIGNMENT)
        return tl_err_set(err, TL_ERR_INVALID_ARG,
                          "general.alignment must be an integer power of two up to %llu",
                          (unsigned long long)TL_GGUF_MAX_ALIGNMENT);
    *out = a;
    return TL_OK;
}

static bool write_zeros(FILE *f, uint64_t n) {
    static const uint8_t zeros[256];
    while (n) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (fwrite(zeros, 1, k, f) != k) return false;
        n -= k;
    }
    return true;
}

static uint64_t pad_to(uint64_t x, uint64_t a) { return (a - x % a) % a; }

static void bb_zeros(bbuf *b, uint64_t n) {
    static const uint8_t zeros[256];
    for (; n && !b->oom; n -= n < sizeof zeros ? n : sizeof zeros)
        bb_put(b, zeros, n < sizeof zeros ? (size_t)n : sizeof zeros);
}

/* Encodes everything before the data section into h (it is small next to
 * the tensors and needs the final offsets anyway); what names the output in
 * messages. */
static tl_status build_header(tl_gguf_writer *w, const char *what, bbuf *h, uint64_t *align,
                              tl_err *err) {
    if (w->first_err.code != TL_OK)
        return tl_err_set(err, w->first_err.code, "%s: %s", what, w->first_err.msg);
    tl_status st = writer_alignment(w, align, err);
    if (st != TL_OK) return st;
    bb_put(h, TL_GGUF_MAGIC, 4);
    bb_le(h, 3, 4);
    bb_le(h, w->n_tensors, 8);
    bb_le(h, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *k = &w->kvs[i];
        bb_str(h, k->key, k->key_len);
        bb_le(h, k->type, 4);
        bb_put(h, k->val, k->val_len);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        wtensor *t = &w->tensors[i];
        t->offset = off;
        if (t->nbytes > UINT64_MAX - off - *align)
            return tl_err_set(err, TL_ERR_INVALID_ARG, "%s: tensor data too large", what);
        off += t->nbytes + pad_to(t->nbytes, *align);
        bb_str(h, t->name, t->name_len);
        bb_le(h, (uint64_t)t->n_dims, 4);
        for (int d = 0; d < t->n_dims; d++) bb_le(h, (uint64_t)t->ne[d], 8);
        bb_le(h, (uint64_t)t->type, 4);
        bb_le(h, t->offset, 8);
    }
    if (h->oom) return tl_err_set(err, TL_ERR_NOMEM, "%s: out of memory building header", what);
    return TL_OK;
}

tl_status tl_gguf_writer_write_mem(tl_gguf_writer *w, void **data, size_t *size, tl_err *err) {
    if (!w || !data || !size)
        return tl_err_set(err, TL_ERR_INVALID_ARG, "tl_gguf_writer_write_mem: NULL argument");
    *data = NULL;
    *size = 0;
    bbuf h = {0};
    uint64_t align;
    tl_status st = build_header(w, "in-memory GGUF", &h, &align, err);
    if (st == TL_OK) {
        bb_zeros(&h, pad_to(h.n, align));
        for (size_t i = 0; i < w->n_tensors; i++) {
            const wtensor *t = &w->tensors[i];
            if (t->nbytes > SIZE_MAX) h.oom = true;
            else bb_put(&h, t->data, (size_t)t->nbytes);
            bb_zeros(&h, pad_to(t->nbytes, align));
        }
        if (h.oom) st = tl_err_set(err, TL_ERR_NOMEM, "in-memory GGUF: out of memory");
    }
    if (st != TL_OK) {
        free(h.p);
        return st;
    }
    *data = h.p;
    *size = h.n;
    return TL_OK;
}

tl_status tl_gguf_writer_write(tl_gguf_writer *w, const char *path, tl_err *err) {
    if (!w || !path) return tl_err_set(err, TL_ERR_INVALID_ARG, "tl_gguf_writer_write: NULL argument");
    bbuf h = {0};
    uint64_t align;
    tl_status st = build_header(w, path, &h, &align, err);
    if (st != TL_OK) { free(h.p); return st; }

    size_t plen = strlen(path);
    char *tmp = (char *)malloc(plen + 16);
    if (!tmp) { free(h.p); return tl_err_set(err, TL_ERR_NOMEM, "out of memory"); }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        st = tl_err_set(err, TL_ERR_IO, "%s: cannot create temp file: %s", path, strerror(errno));
        free(tmp);
        free(h.p);
        return st;
    }
    (void)fchmod(fd, 0644);  /* mkstemp makes 0600; a model file is not secret */
    FILE *f = fdopen(fd, "wb");
    bool ok = f != NULL;
    if (!f) close(fd);
    ok = ok && fwrite(h.p, 1, h.n, f) == h.n && write_zeros(f, pad_to(h.n, align));
    for (size_t i = 0; ok && i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        ok = fwrite(t->data, 1, (size_t)t->nbytes, f) == t->nbytes &&
             write_zeros(f, pad_to(t->nbytes, align));
    }
    int e = errno;
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (!ok) e = errno;
    if (f && fclose(f) != 0 && ok) { ok = false; e = errno; }
    if (ok && rename(tmp, path) != 0) { ok = false; e = errno; }
    if (!ok) {
        unlink(tmp);
        st = tl_err_set(err, TL_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    free(tmp);
    free(h.p);
    return ok ? TL_OK : st;
}
