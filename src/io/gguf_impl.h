/* gguf_impl.h — private helpers shared by the GGUF reader and writer. */
#ifndef TL_IO_GGUF_IMPL_H
#define TL_IO_GGUF_IMPL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "io/gguf.h"

#define TL_GGUF_MAGIC "GGUF"
#define TL_GGUF_DEFAULT_ALIGNMENT 32u
/* Upper bound for general.alignment: larger values only waste space and
 * would let a hostile file push offsets toward overflow. */
#define TL_GGUF_MAX_ALIGNMENT (1ull << 24)

/* Bytes of one scalar of type t; 0 for STRING, ARRAY and unknown ids. */
static inline size_t tl_gguf_scalar_size(uint32_t t) {
    static const uint8_t sizes[TL_GGUF_TYPE_COUNT] = {
        [TL_GGUF_UINT8] = 1, [TL_GGUF_INT8] = 1, [TL_GGUF_UINT16] = 2, [TL_GGUF_INT16] = 2,
        [TL_GGUF_UINT32] = 4, [TL_GGUF_INT32] = 4, [TL_GGUF_FLOAT32] = 4, [TL_GGUF_BOOL] = 1,
        [TL_GGUF_UINT64] = 8, [TL_GGUF_INT64] = 8, [TL_GGUF_FLOAT64] = 8,
    };
    return t < TL_GGUF_TYPE_COUNT ? sizes[t] : 0;
}

static inline const char *tl_gguf_type_name(uint32_t t) {
    static const char *const names[TL_GGUF_TYPE_COUNT] = {
        [TL_GGUF_UINT8] = "u8", [TL_GGUF_INT8] = "i8", [TL_GGUF_UINT16] = "u16",
        [TL_GGUF_INT16] = "i16", [TL_GGUF_UINT32] = "u32", [TL_GGUF_INT32] = "i32",
        [TL_GGUF_FLOAT32] = "f32", [TL_GGUF_BOOL] = "bool", [TL_GGUF_STRING] = "string",
        [TL_GGUF_ARRAY] = "array", [TL_GGUF_UINT64] = "u64", [TL_GGUF_INT64] = "i64",
        [TL_GGUF_FLOAT64] = "f64",
    };
    return t < TL_GGUF_TYPE_COUNT ? names[t] : "?";
}

static inline bool tl_gguf_is_pow2(uint64_t x) { return x && !(x & (x - 1)); }

static inline uint64_t tl_gguf_rd_le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ---- open-addressing name index: maps a name to an item id -------------
 * Items are named through a callback so one index serves KVs and tensors. */
typedef tl_gguf_str (*tl_gguf_name_fn)(const void *ctx, uint64_t id);

typedef struct tl_gguf_index {
    uint64_t *slots;  /* id + 1; 0 = empty */
    uint64_t mask;
    uint64_t count;
} tl_gguf_index;

static inline uint64_t tl_gguf_hash(const char *s, uint64_t n) {
    uint64_t h = 1469598103934665603ull;  /* FNV-1a */
    for (uint64_t i = 0; i < n; i++) { h ^= (uint8_t)s[i]; h *= 1099511628211ull; }
    return h ^ (h >> 29);
}

/* Sized for `expected` items at load <= 1/2; returns false on OOM. */
static inline bool tl_gguf_index_init(tl_gguf_index *ix, uint64_t expected) {
    if (expected > (1ull << 40)) return false;
    uint64_t cap = 8;
    while (cap < expected * 2) cap *= 2;
    ix->slots = (uint64_t *)calloc(cap, sizeof *ix->slots);
    ix->mask = cap - 1;
    ix->count = 0;
    return ix->slots != NULL;
}

static inline void tl_gguf_index_free(tl_gguf_index *ix) {
    free(ix->slots);
    ix->slots = NULL;
    ix->mask = ix->count = 0;
}

/* Id of the item named (s, n), or -1. */
static inline int64_t tl_gguf_index_find(const tl_gguf_index *ix, const char *s, uint64_t n,
                                         tl_gguf_name_fn name_of, const void *ctx) {
    if (!ix->slots) return -1;
    for (uint64_t h = tl_gguf_hash(s, n) & ix->mask;; h = (h + 1) & ix->mask) {
        uint64_t v = ix->slots[h];
        if (!v) return -1;
        tl_gguf_str k = name_of(ctx, v - 1);
        if (k.len == n && (n == 0 || memcmp(k.ptr, s, n) == 0)) return (int64_t)(v - 1);
    }
}

/* Inserts id under its name; returns -1 when inserted, else the id that
 * already holds the name (nothing inserted). Grows the table as needed;
 * -2 on OOM. */
static inline int64_t tl_gguf_index_insert(tl_gguf_index *ix, uint64_t id,
                                           tl_gguf_name_fn name_of, const void *ctx) {
    if ((ix->count + 1) * 2 > ix->mask + 1) {
        tl_gguf_index bigger;
        if (!tl_gguf_index_init(&bigger, ix->count + 1)) return -2;
        for (uint64_t i = 0; i <= ix->mask; i++) {
            uint64_t v = ix->slots[i];
            if (!v) continue;
            tl_gguf_str k = name_of(ctx, v - 1);
            uint64_t h = tl_gguf_hash(k.ptr, k.len) & bigger.mask;
            while (bigger.slots[h]) h = (h + 1) & bigger.mask;
            bigger.slots[h] = v;
        }
        bigger.count = ix->count;
        free(ix->slots);
        *ix = bigger;
    }
    tl_gguf_str name = name_of(ctx, id);
    uint64_t h = tl_gguf_hash(name.ptr, name.len) & ix->mask;
    for (;; h = (h + 1) & ix->mask) {
        uint64_t v = ix->slots[h];
        if (!v) break;
        tl_gguf_str k = name_of(ctx, v - 1);
        if (k.len == name.len && (name.len == 0 || memcmp(k.ptr, name.ptr, name.len) == 0))
            return (int64_t)(v - 1);
    }
    ix->slots[h] = id + 1;
    ix->count++;
    return -1;
}

#endif
