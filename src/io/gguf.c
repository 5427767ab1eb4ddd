/* gguf.c — GGUF reader (v1, v2, v3).
 *
 * Layout: magic "GGUF", u32 version, n_tensors, n_kv, then n_kv
 * (key string, u32 type, value), then n_tensors (name, u32 n_dims, ne[n_dims],
 * u32 type, u64 offset), then the data section at the next multiple of
 * general.alignment. v1 writes counts, string/array lengths and dims as u32;
 * v2/v3 as u64. All little-endian.
 *
 * Everything read from the file is checked against the bytes that remain
 * before it is used or allocated for, so the worst a hostile file can do is
 * make us allocate in proportion to its own size. */
#include "io/gguf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/gguf_impl.h"
#include "io/mmap.h"

struct tl_gguf {
    tl_mmap map;  /* owned when opened from a path; zeroed for open_mem */
    const uint8_t *data;
    size_t size;
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;

    int64_t n_kv;
    tl_gguf_kv *kvs;
    uint64_t *kv_str_base;  /* per kv: first index into strs (string arrays) */
    tl_gguf_str *strs;      /* every element of every string array */
    uint64_t n_strs, cap_strs;
    tl_gguf_index kv_index;

    int64_t n_tensors;
    tl_gguf_tensor *tensors;
    tl_gguf_index tensor_index;
};

/* ---------------------------------------------------------------- reading */

typedef struct rd {
    const uint8_t *p;
    size_t size;
    size_t pos;
    size_t lenw;  /* width of counts/lengths/dims: 4 in v1, 8 after */
} rd;

static size_t rd_left(const rd *r) { return r->size - r->pos; }

static bool rd_uint(rd *r, size_t n, uint64_t *out) {
    if (rd_left(r) < n) return false;
    *out = tl_gguf_rd_le(r->p + r->pos, n);
    r->pos += n;
    return true;
}

static bool rd_str(rd *r, tl_gguf_str *out) {
    uint64_t len;
    if (!rd_uint(r, r->lenw, &len) || len > rd_left(r)) return false;
    out->ptr = (const char *)(r->p + r->pos);
    out->len = len;
    r->pos += (size_t)len;
    return true;
}

/* Printable, bounded copy of a name for error messages (names come from
 * the file and may hold anything). */
typedef struct { char s[80]; } safe_name;

static safe_name san(tl_gguf_str v) {
    safe_name o;
    size_t max = sizeof o.s - 4, n = 0;
    for (uint64_t i = 0; i < v.len && n < max; i++) {
        unsigned char c = (unsigned char)v.ptr[i];
        o.s[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (v.len > max) { memcpy(o.s + n, "...", 3); n += 3; }
    o.s[n] = 0;
    return o;
}

static tl_status trunc_err(tl_err *err, const rd *r, const char *where, const char *what) {
    return tl_err_set(err, TL_ERR_FORMAT, "%s: %s truncated or too long at offset %zu (file size %zu)",
                      where, what, r->pos, r->size);
}

/* Widens the scalar of type t at p into kv->v. */
static void decode_scalar(uint32_t t, const uint8_t *p, tl_gguf_kv *kv) {
    size_t n = tl_gguf_scalar_size(t);
    uint64_t raw = tl_gguf_rd_le(p, n);
    switch (t) {
    case TL_GGUF_INT8: kv->v.i64 = (int8_t)raw; break;
    case TL_GGUF_INT16: kv->v.i64 = (int16_t)raw; break;
    case TL_GGUF_INT32: kv->v.i64 = (int32_t)raw; break;
    case TL_GGUF_INT64: kv->v.i64 = (int64_t)raw; break;
    case TL_GGUF_FLOAT32: { uint32_t b = (uint32_t)raw; float f; memcpy(&f, &b, 4); kv->v.f64 = f; break; }
    case TL_GGUF_FLOAT64: { double d; memcpy(&d, &raw, 8); kv->v.f64 = d; break; }
    case TL_GGUF_BOOL: kv->v.b = raw != 0; break;
    default: kv->v.u64 = raw; break;  /* unsigned */
    }
}

static bool type_is_signed(uint32_t t) {
    return t == TL_GGUF_INT8 || t == TL_GGUF_INT16 || t == TL_GGUF_INT32 || t == TL_GGUF_INT64;
}
static bool type_is_unsigned(uint32_t t) {
    return t == TL_GGUF_UINT8 || t == TL_GGUF_UINT16 || t == TL_GGUF_UINT32 || t == TL_GGUF_UINT64;
}
static bool type_is_float(uint32_t t) { return t == TL_GGUF_FLOAT32 || t == TL_GGUF_FLOAT64; }

static tl_gguf_str kv_name(const void *ctx, uint64_t id) {
    return ((const tl_gguf *)ctx)->kvs[id].key;
}
static tl_gguf_str tensor_name(const void *ctx, uint64_t id) {
    return ((const tl_gguf *)ctx)->tensors[id].name;
}

static tl_status parse_kv(tl_gguf *g, rd *r, int64_t i, tl_err *err) {
    tl_gguf_kv *kv = &g->kvs[i];
    char where[128];
    snprintf(where, sizeof where, "kv %lld", (long long)i);
    if (!rd_str(r, &kv->key)) return trunc_err(err, r, where, "key");
    snprintf(where, sizeof where, "kv %lld '%s'", (long long)i, san(kv->key).s);

    uint64_t t;
    if (!rd_uint(r, 4, &t)) return trunc_err(err, r, where, "type");
    if (t >= TL_GGUF_TYPE_COUNT)
        return tl_err_set(err, TL_ERR_FORMAT, "%s: unknown value type %llu", where,
                          (unsigned long long)t);
    kv->type = (tl_gguf_type)t;

    if (t == TL_GGUF_STRING) {
        if (!rd_str(r, &kv->str)) return trunc_err(err, r, where, "string value");
        return TL_OK;
    }
    if (t != TL_GGUF_ARRAY) {
        size_t sz = tl_gguf_scalar_size((uint32_t)t);
        if (rd_left(r) < sz) return trunc_err(err, r, where, "value");
        decode_scalar((uint32_t)t, r->p + r->pos, kv);
        r->pos += sz;
        return TL_OK;
    }

    uint64_t et, n;
    if (!rd_uint(r, 4, &et)) return trunc_err(err, r, where, "array element type");
    if (et == TL_GGUF_ARRAY)
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "%s: arrays of arrays are not supported", where);
    if (et >= TL_GGUF_TYPE_COUNT)
        return tl_err_set(err, TL_ERR_FORMAT, "%s: unknown array element type %llu", where,
                          (unsigned long long)et);
    if (!rd_uint(r, r->lenw, &n)) return trunc_err(err, r, where, "array length");
    kv->arr_type = (tl_gguf_type)et;
    kv->arr_n = n;
    kv->arr_data = r->p + r->pos;

    if (et != TL_GGUF_STRING) {
        size_t sz = tl_gguf_scalar_size((uint32_t)et);
        if (n > rd_left(r) / sz)
            return tl_err_set(err, TL_ERR_FORMAT,
                              "%s: array of %llu %s (%zu bytes each) exceeds the %zu bytes left at offset %zu",
                              where, (unsigned long long)n, tl_gguf_type_name((uint32_t)et), sz,
                              rd_left(r), r->pos);
        r->pos += (size_t)(n * sz);
        return TL_OK;
    }

    /* String array: each element takes at least its length field, so this
     * bounds n by the file size before we allocate the index. */
    if (n > rd_left(r) / r->lenw)
        return tl_err_set(err, TL_ERR_FORMAT,
                          "%s: array of %llu strings cannot fit in the %zu bytes left at offset %zu",
                          where, (unsigned long long)n, rd_left(r), r->pos);
    if (g->n_strs + n > g->cap_strs) {
        uint64_t cap = g->cap_strs ? g->cap_strs * 2 : 1024;
        if (cap < g->n_strs + n) cap = g->n_strs + n;
        tl_gguf_str *s = (tl_gguf_str *)realloc(g->strs, cap * sizeof *s);
        if (!s) return tl_err_set(err, TL_ERR_NOMEM, "%s: out of memory indexing %llu strings",
                                  where, (unsigned long long)n);
        g->strs = s;
        g->cap_strs = cap;
    }
    g->kv_str_base[i] = g->n_strs;
    for (uint64_t j = 0; j < n; j++) {
        if (!rd_str(r, &g->strs[g->n_strs + j])) {
            char what[64];
            snprintf(what, sizeof what, "string %llu of %llu", (unsigned long long)j,
                     (unsigned long long)n);
            return trunc_err(err, r, where, what);
        }
    }
    g->n_strs += n;
    return TL_OK;
}

/* general.alignment: a sane non-zero power of two of any integer type. */
static tl_status read_alignment(tl_gguf *g, tl_err *err) {
    g->alignment = TL_GGUF_DEFAULT_ALIGNMENT;
    const tl_gguf_kv *kv = tl_gguf_find(g, "general.alignment");
    if (!kv) return TL_OK;
    uint64_t a;
    if (type_is_unsigned(kv->type)) a = kv->v.u64;
    else if (type_is_signed(kv->type) && kv->v.i64 > 0) a = (uint64_t)kv->v.i64;
    else if (type_is_signed(kv->type)) a = 0;
    else
        return tl_err_set(err, TL_ERR_FORMAT, "general.alignment has type %s, expected an integer",
                          tl_gguf_type_name(kv->type));
    if (!tl_gguf_is_pow2(a) || a > TL_GGUF_MAX_ALIGNMENT)
        return tl_err_set(err, TL_ERR_FORMAT,
                          "general.alignment = %llu: must be a power of two in 1..%llu",
                          (unsigned long long)a, (unsigned long long)TL_GGUF_MAX_ALIGNMENT);
    g->alignment = a;
    return TL_OK;
}

static tl_status parse_tensor_info(tl_gguf *g, rd *r, int64_t i, tl_err *err) {
    tl_gguf_tensor *t = &g->tensors[i];
    char where[128];
    snprintf(where, sizeof where, "tensor %lld", (long long)i);
    if (!rd_str(r, &t->name)) return trunc_err(err, r, where, "name");
    snprintf(where, sizeof where, "tensor %lld '%s'", (long long)i, san(t->name).s);

    uint64_t nd;
    if (!rd_uint(r, 4, &nd)) return trunc_err(err, r, where, "n_dims");
    if (nd < 1 || nd > 4)
        return tl_err_set(err, TL_ERR_FORMAT, "%s: n_dims = %llu, expected 1..4", where,
                          (unsigned long long)nd);
    t->n_dims = (int)nd;
    int64_t nel = 1;
    for (int d = 0; d < 4; d++) {
        t->ne[d] = 1;
        if (d >= t->n_dims) continue;
        uint64_t v;
        if (!rd_uint(r, r->lenw, &v)) return trunc_err(err, r, where, "dimensions");
        if (v == 0 || v > (uint64_t)INT64_MAX)
            return tl_err_set(err, TL_ERR_FORMAT, "%s: ne[%d] = %llu, expected 1..2^63-1", where,
                              d, (unsigned long long)v);
        t->ne[d] = (int64_t)v;
        if (nel > INT64_MAX / t->ne[d])
            return tl_err_set(err, TL_ERR_FORMAT, "%s: element count overflows at ne[%d] = %lld",
                              where, d, (long long)t->ne[d]);
        nel *= t->ne[d];
    }

    uint64_t ty;
    if (!rd_uint(r, 4, &ty)) return trunc_err(err, r, where, "type");
    const tl_dtype_traits *tr = ty <= (uint64_t)INT32_MAX ? tl_dtype_traits_of((int)ty) : NULL;
    if (!tr || tr->block_size < 1 || tr->type_size < 1)
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "%s: unknown tensor type id %llu", where,
                          (unsigned long long)ty);
    t->type = (tl_dtype)ty;
    if (t->ne[0] % tr->block_size != 0)
        return tl_err_set(err, TL_ERR_FORMAT, "%s: ne[0] = %lld is not a multiple of %s block size %d",
                          where, (long long)t->ne[0], tr->name, tr->block_size);
    uint64_t blocks = (uint64_t)(nel / tr->block_size);
    if (blocks > UINT64_MAX / tr->type_size)
        return tl_err_set(err, TL_ERR_FORMAT, "%s: byte size overflows (%lld elements of %s)", where,
                          (long long)nel, tr->name);
    t->nbytes = blocks * tr->type_size;

    if (!rd_uint(r, 8, &t->offset)) return trunc_err(err, r, where, "data offset");
    if (t->offset % g->alignment != 0)
        return tl_err_set(err, TL_ERR_FORMAT, "%s: data offset %llu is not a multiple of alignment %llu",
                          where, (unsigned long long)t->offset, (unsigned long long)g->alignment);
    return TL_OK;
}

typedef struct span { uint64_t off, end; int64_t id; } span;

static int span_cmp(const void *a, const void *b) {
    const span *x = (const span *)a, *y = (const span *)b;
    return x->off < y->off ? -1 : x->off > y->off ? 1 : 0;
}

/* Places every tensor inside the file and rejects overlapping data. */
static tl_status place_tensors(tl_gguf *g, tl_err *err) {
    uint64_t start = g->data_offset;
    uint64_t avail = start <= g->size ? g->size - start : 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        tl_gguf_tensor *t = &g->tensors[i];
        if (t->offset > avail || t->nbytes > avail - t->offset)
            return tl_err_set(err, TL_ERR_FORMAT,
                              "tensor %lld '%s': data [offset %llu, %llu bytes] beyond end of file "
                              "(data section at %llu, file size %zu)",
                              (long long)i, san(t->name).s, (unsigned long long)t->offset,
                              (unsigned long long)t->nbytes, (unsigned long long)start, g->size);
        t->data = g->data + start + t->offset;
    }
    if (g->n_tensors < 2) return TL_OK;
    span *s = (span *)malloc((size_t)g->n_tensors * sizeof *s);
    if (!s) return tl_err_set(err, TL_ERR_NOMEM, "out of memory checking tensor overlap");
    for (int64_t i = 0; i < g->n_tensors; i++)
        s[i] = (span){g->tensors[i].offset, g->tensors[i].offset + g->tensors[i].nbytes, i};
    qsort(s, (size_t)g->n_tensors, sizeof *s, span_cmp);
    tl_status st = TL_OK;
    for (int64_t i = 1; i < g->n_tensors; i++) {
        if (s[i].off < s[i - 1].end) {
            const tl_gguf_tensor *a = &g->tensors[s[i - 1].id], *b = &g->tensors[s[i].id];
            st = tl_err_set(err, TL_ERR_FORMAT,
                            "tensor %lld '%s' [offset %llu, %llu bytes] overlaps tensor %lld '%s' "
                            "[offset %llu, %llu bytes]",
                            (long long)s[i].id, san(b->name).s, (unsigned long long)b->offset,
                            (unsigned long long)b->nbytes, (long long)s[i - 1].id, san(a->name).s,
                            (unsigned long long)a->offset, (unsigned long long)a->nbytes);
            break;
        }
    }
    free(s);
    return st;
}

static tl_status parse(tl_gguf *g, tl_err *err) {
    rd r = {g->data, g->size, 0, 8};
    if (g->size == 0) return tl_err_set(err, TL_ERR_FORMAT, "file is empty");
    if (g->size < 4 || memcmp(g->data, TL_GGUF_MAGIC, 4) != 0) {
        unsigned char m[4] = {0};
        memcpy(m, g->data, g->size < 4 ? g->size : 4);
        return tl_err_set(err, TL_ERR_FORMAT,
                          "not a GGUF file: magic %02x %02x %02x %02x (expected \"GGUF\"), size %zu",
                          m[0], m[1], m[2], m[3], g->size);
    }
    r.pos = 4;
    uint64_t ver;
    if (!rd_uint(&r, 4, &ver)) return trunc_err(err, &r, "header", "version");
    if (ver < 1 || ver > 3) {
        if ((ver & 0xffff) == 0 && (ver >> 24) >= 1 && (ver >> 24) <= 3)
            return tl_err_set(err, TL_ERR_UNSUPPORTED,
                              "GGUF version 0x%08llx looks big-endian; only little-endian files are supported",
                              (unsigned long long)ver);
        return tl_err_set(err, TL_ERR_UNSUPPORTED, "GGUF version %llu not supported (1..3)",
                          (unsigned long long)ver);
    }
    g->version = (uint32_t)ver;
    r.lenw = ver == 1 ? 4 : 8;

    uint64_t n_tensors, n_kv;
    if (!rd_uint(&r, r.lenw, &n_tensors)) return trunc_err(err, &r, "header", "tensor count");
    if (!rd_uint(&r, r.lenw, &n_kv)) return trunc_err(err, &r, "header", "kv count");
    /* Smallest encodings: kv = key length + type + 1-byte value; tensor =
     * name length + n_dims + one dim + type + offset. */
    const uint64_t min_kv = r.lenw + 4 + 1, min_tensor = r.lenw + 4 + r.lenw + 4 + 8;
    if (n_kv > rd_left(&r) / min_kv)
        return tl_err_set(err, TL_ERR_FORMAT, "header: kv count %llu cannot fit in the %zu bytes left (truncated?)",
                          (unsigned long long)n_kv, rd_left(&r));
    if (n_tensors > rd_left(&r) / min_tensor)
        return tl_err_set(err, TL_ERR_FORMAT, "header: tensor count %llu cannot fit in the %zu bytes left (truncated?)",
                          (unsigned long long)n_tensors, rd_left(&r));

    g->n_kv = (int64_t)n_kv;
    g->kvs = (tl_gguf_kv *)calloc(n_kv ? n_kv : 1, sizeof *g->kvs);
    g->kv_str_base = (uint64_t *)calloc(n_kv ? n_kv : 1, sizeof *g->kv_str_base);
    if (!g->kvs || !g->kv_str_base || !tl_gguf_index_init(&g->kv_index, n_kv))
        return tl_err_set(err, TL_ERR_NOMEM, "out of memory for %llu kvs", (unsigned long long)n_kv);
    for (int64_t i = 0; i < g->n_kv; i++) {
        tl_status st = parse_kv(g, &r, i, err);
        if (st != TL_OK) return st;
        int64_t prev = tl_gguf_index_insert(&g->kv_index, (uint64_t)i, kv_name, g);
        if (prev == -2) return tl_err_set(err, TL_ERR_NOMEM, "out of memory indexing kvs");
        if (prev >= 0)
            return tl_err_set(err, TL_ERR_FORMAT, "kv %lld: duplicate key '%s' (first at kv %lld)",
                              (long long)i, san(g->kvs[i].key).s, (long long)prev);
    }
    tl_status st = read_alignment(g, err);
    if (st != TL_OK) return st;

    /* Re-check against what is left now that the kvs are consumed. */
    if (n_tensors > rd_left(&r) / min_tensor)
        return tl_err_set(err, TL_ERR_FORMAT,
                          "tensor count %llu cannot fit in the %zu bytes left after metadata",
                          (unsigned long long)n_tensors, rd_left(&r));
    g->n_tensors = (int64_t)n_tensors;
    g->tensors = (tl_gguf_tensor *)calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    if (!g->tensors || !tl_gguf_index_init(&g->tensor_index, n_tensors))
        return tl_err_set(err, TL_ERR_NOMEM, "out of memory for %llu tensors",
                          (unsigned long long)n_tensors);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        st = parse_tensor_info(g, &r, i, err);
        if (st != TL_OK) return st;
        int64_t prev = tl_gguf_index_insert(&g->tensor_index, (uint64_t)i, tensor_name, g);
        if (prev == -2) return tl_err_set(err, TL_ERR_NOMEM, "out of memory indexing tensors");
        if (prev >= 0)
            return tl_err_set(err, TL_ERR_FORMAT, "tensor %lld: duplicate name '%s' (first at tensor %lld)",
                              (long long)i, san(g->tensors[i].name).s, (long long)prev);
    }
    /* r.pos <= size and alignment <= 2^24, so this cannot overflow. */
    g->data_offset = ((uint64_t)r.pos + g->alignment - 1) / g->alignment * g->alignment;
    return place_tensors(g, err);
}

static tl_status open_common(tl_gguf *g, tl_gguf **out, tl_err *err) {
    tl_status st = parse(g, err);
    if (st != TL_OK) {
        tl_gguf_free(g);
        return st;
    }
    *out = g;
    return TL_OK;
}

tl_status tl_gguf_open_mem(const void *data, size_t size, tl_gguf **out, tl_err *err) {
    if (!out) return tl_err_set(err, TL_ERR_INVALID_ARG, "tl_gguf_open_mem: out is NULL");
    *out = NULL;
    if (!data && size)
        return tl_err_set(err, TL_ERR_INVALID_ARG, "tl_gguf_open_mem: NULL data with size %zu", size);
    tl_gguf *g = (tl_gguf *)calloc(1, sizeof *g);
    if (!g) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    g->data = (const uint8_t *)data;
    g->size = size;
    return open_common(g, out, err);
}

tl_status tl_gguf_open(const char *path, tl_gguf **out, tl_err *err) {
    if (!out) return tl_err_set(err, TL_ERR_INVALID_ARG, "tl_gguf_open: out is NULL");
    *out = NULL;
    tl_gguf *g = (tl_gguf *)calloc(1, sizeof *g);
    if (!g) return tl_err_set(err, TL_ERR_NOMEM, "out of memory");
    tl_status st = tl_mmap_open(path, &g->map, err);  /* message already names path */
    if (st != TL_OK) {
        free(g);
        return st;
    }
    g->data = g->map.data;
    g->size = g->map.size;
    st = open_common(g, out, err);
    if (st != TL_OK) tl_err_prefix(err, "%s", path);
    return st;
}

void tl_gguf_free(tl_gguf *g) {
    if (!g) return;
    tl_gguf_index_free(&g->kv_index);
    tl_gguf_index_free(&g->tensor_index);
    free(g->kvs);
    free(g->kv_str_base);
    free(g->strs);
    free(g->tensors);
    tl_mmap_free(&g->map);
    free(g);
}

/* ---------------------------------------------------------------- queries */

uint32_t tl_gguf_version(const tl_gguf *g) { return g ? g->version : 0; }
uint64_t tl_gguf_alignment(const tl_gguf *g) { return g ? g->alignment : 0; }
uint64_t tl_gguf_data_offset(const tl_gguf *g) { return g ? g->data_offset : 0; }
int64_t tl_gguf_n_kv(const tl_gguf *g) { return g ? g->n_kv : 0; }
int64_t tl_gguf_n_tensors(const tl_gguf *g) { return g ? g->n_tensors : 0; }
const tl_mmap *tl_gguf_map(const tl_gguf *g) { return g ? &g->map : NULL; }

const tl_gguf_kv *tl_gguf_kv_at(const tl_gguf *g, int64_t i) {
    return g && i >= 0 && i < g->n_kv ? &g->kvs[i] : NULL;
}

const tl_gguf_tensor *tl_gguf_tensor_at(const tl_gguf *g, int64_t i) {
    return g && i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const tl_gguf_kv *tl_gguf_find(const tl_gguf *g, const char *key) {
    if (!g || !key) return NULL;
    int64_t i = tl_gguf_index_find(&g->kv_index, key, strlen(key), kv_name, g);
    return i >= 0 ? &g->kvs[i] : NULL;
}

const tl_gguf_tensor *tl_gguf_find_tensor(const tl_gguf *g, const char *name) {
    if (!g || !name) return NULL;
    int64_t i = tl_gguf_index_find(&g->tensor_index, name, strlen(name), tensor_name, g);
    return i >= 0 ? &g->tensors[i] : NULL;
}

bool tl_gguf_str_eq(tl_gguf_str s, const char *c) {
    if (!c) return false;
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

bool tl_gguf_get_u32(const tl_gguf *g, const char *key, uint32_t *out) {
    const tl_gguf_kv *kv = tl_gguf_find(g, key);
    if (!kv) return false;
    if (type_is_unsigned(kv->type) && kv->v.u64 <= UINT32_MAX) { *out = (uint32_t)kv->v.u64; return true; }
    if (type_is_signed(kv->type) && kv->v.i64 >= 0 && kv->v.i64 <= (int64_t)UINT32_MAX) {
        *out = (uint32_t)kv->v.i64;
        return true;
    }
    return false;
}

bool tl_gguf_get_i64(const tl_gguf *g, const char *key, int64_t *out) {
    const tl_gguf_kv *kv = tl_gguf_find(g, key);
    if (!kv) return false;
    if (type_is_signed(kv->type)) { *out = kv->v.i64; return true; }
    if (type_is_unsigned(kv->type) && kv->v.u64 <= (uint64_t)INT64_MAX) {
        *out = (int64_t)kv->v.u64;
        return true;
    }
    return false;
}

bool tl_gguf_get_f32(const tl_gguf *g, const char *key, float *out) {
    const tl_gguf_kv *kv = tl_gguf_find(g, key);
    if (!kv) return false;
    if (type_is_float(kv->type)) *out = (float)kv->v.f64;
    else if (type_is_signed(kv->type)) *out = (float)kv->v.i64;
    else if (type_is_unsigned(kv->type)) *out = (float)kv->v.u64;
    else return false;
    return true;
}

bool tl_gguf_get_bool(const tl_gguf *g, const char *key, bool *out) {
    const tl_gguf_kv *kv = tl_gguf_find(g, key);
    if (!kv || kv->type != TL_GGUF_BOOL) return false;
    *out = kv->v.b;
    return true;
}

bool tl_gguf_get_str(const tl_gguf *g, const char *key, tl_gguf_str *out) {
    const tl_gguf_kv *kv = tl_gguf_find(g, key);
    if (!kv || kv->type != TL_GGUF_STRING) return false;
    *out = kv->str;
    return true;
}

bool tl_gguf_arr_str(const tl_gguf *g, const tl_gguf_kv *kv, uint64_t i, tl_gguf_str *out) {
    if (!g || !kv || !out || g->n_kv == 0) return false;
    /* kv must be one of ours: compare addresses as integers (no UB). */
    uintptr_t a = (uintptr_t)kv, lo = (uintptr_t)g->kvs, hi = (uintptr_t)(g->kvs + g->n_kv);
    if (a < lo || a >= hi || (a - lo) % sizeof *kv) return false;
    int64_t k = (int64_t)((a - lo) / sizeof *kv);
    if (kv->type != TL_GGUF_ARRAY || kv->arr_type != TL_GGUF_STRING || i >= kv->arr_n) return false;
    *out = g->strs[g->kv_str_base[k] + i];
    return true;
}

/* Element i of a numeric array widened into a kv-shaped scratch value. */
static bool arr_elem(const tl_gguf_kv *kv, uint64_t i, tl_gguf_kv *tmp) {
    if (!kv || kv->type != TL_GGUF_ARRAY || i >= kv->arr_n) return false;
    size_t sz = tl_gguf_scalar_size(kv->arr_type);
    if (sz == 0) return false;
    decode_scalar(kv->arr_type, kv->arr_data + i * sz, tmp);
    return true;
}

double tl_gguf_arr_f64(const tl_gguf_kv *kv, uint64_t i) {
    tl_gguf_kv e;
    if (!arr_elem(kv, i, &e)) return 0;
    uint32_t t = kv->arr_type;
    if (type_is_float(t)) return e.v.f64;
    if (type_is_signed(t)) return (double)e.v.i64;
    if (t == TL_GGUF_BOOL) return e.v.b;
    return (double)e.v.u64;
}

int64_t tl_gguf_arr_i64(const tl_gguf_kv *kv, uint64_t i) {
    tl_gguf_kv e;
    if (!arr_elem(kv, i, &e)) return 0;
    uint32_t t = kv->arr_type;
    if (type_is_signed(t)) return e.v.i64;
    if (t == TL_GGUF_BOOL) return e.v.b;
    if (type_is_unsigned(t)) return e.v.u64 <= (uint64_t)INT64_MAX ? (int64_t)e.v.u64 : 0;
    /* float: out-of-range and NaN casts are UB, so range-check first */
    double d = e.v.f64;
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return 0;
    return (int64_t)d;
}
