/* strmap.h — open-addressing hash maps for the tokenizer's lookups.
 *
 * tl_strmap: byte string -> int32. Keys are BORROWED (pointer + length): the
 * caller keeps the key bytes alive and unchanged for the life of the map
 * (the tokenizer points them into its own text blob). Keys may contain any
 * byte, including NUL.
 *
 * tl_u64map: uint64 -> two int32 values (the tokenizer stores merge rank and
 * merged token id under a packed (left id, right id) key).
 *
 * Both use linear probing at <= 60% load and never shrink; lookups touch one
 * cache line in the common case. Not thread-safe for writers; concurrent
 * readers are fine once building is done. */
#ifndef TL_BASE_STRMAP_H
#define TL_BASE_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/err.h"

typedef struct tl_strmap_slot {
    const char *key;   /* NULL = empty slot */
    uint32_t len;
    uint32_t hash;     /* low 32 bits of the key hash, compared before memcmp */
    int32_t val;
} tl_strmap_slot;

/* Embed by value; zero-initialised is a valid empty map. */
typedef struct tl_strmap {
    tl_strmap_slot *slots;
    size_t cap;        /* power of two, or 0 */
    size_t n;
} tl_strmap;

/* 64-bit hash of len bytes (not cryptographic; stable within a process). */
uint64_t tl_hash_bytes(const void *p, size_t len);

/* Pre-sizes the map for n_hint keys. TL_ERR_NOMEM on failure. */
tl_status tl_strmap_reserve(tl_strmap *m, size_t n_hint);
/* Inserts or overwrites key -> val. Keys longer than UINT32_MAX bytes are
 * rejected with TL_ERR_INVALID_ARG. */
tl_status tl_strmap_put(tl_strmap *m, const char *key, size_t len, int32_t val);
/* True and *val set when present. */
bool tl_strmap_get(const tl_strmap *m, const char *key, size_t len, int32_t *val);
/* Releases the slot array (never the keys); the map is left empty. */
void tl_strmap_free(tl_strmap *m);

typedef struct tl_u64map_slot {
    uint64_t key;      /* stored as key+1 so that 0 marks an empty slot */
    int32_t a, b;
} tl_u64map_slot;

typedef struct tl_u64map {
    tl_u64map_slot *slots;
    size_t cap;
    size_t n;
} tl_u64map;

tl_status tl_u64map_reserve(tl_u64map *m, size_t n_hint);
/* Inserts key -> (a, b) unless key is present; *inserted says which. Key
 * UINT64_MAX is reserved (TL_ERR_INVALID_ARG). */
tl_status tl_u64map_put_new(tl_u64map *m, uint64_t key, int32_t a, int32_t b, bool *inserted);
/* True and *a, *b set when present. */
bool tl_u64map_get(const tl_u64map *m, uint64_t key, int32_t *a, int32_t *b);
void tl_u64map_free(tl_u64map *m);

#endif
