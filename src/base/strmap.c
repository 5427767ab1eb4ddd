#include "base/strmap.h"

#include <stdlib.h>
#include <string.h>

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    return x;
}

uint64_t tl_hash_bytes(const void *p, size_t len) {
    const unsigned char *s = p;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (len * 0xff51afd7ed558ccdULL);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ mix64(w)) * 0x9fb21c651e98df25ULL;
        s += 8;
        len -= 8;
    }
    if (len) {
        uint64_t w = 0;
        memcpy(&w, s, len);
        h = (h ^ mix64(w ^ ((uint64_t)len << 56))) * 0x9fb21c651e98df25ULL;
    }
    return mix64(h);
}

/* ------------------------------------------------------------- strmap */

static tl_status strmap_grow(tl_strmap *m, size_t want_cap) {
    tl_strmap_slot *ns = calloc(want_cap, sizeof *ns);
    if (!ns) return TL_ERR_NOMEM;
    size_t mask = want_cap - 1;
    for (size_t i = 0; i < m->cap; i++) {
        const tl_strmap_slot *s = &m->slots[i];
        if (!s->key) continue;
        size_t j = (size_t)s->hash & mask;
        while (ns[j].key) j = (j + 1) & mask;
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = want_cap;
    return TL_OK;
}

/* Smallest power of two keeping the load at or below 60%: linear probing
 * stays short, and big vocabularies (10^5..10^6 keys) stay half the size
 * they would be at 50%. */
static size_t cap_for(size_t n) {
    size_t cap = 16;
    if (n > SIZE_MAX / 8) return 0;
    while (cap * 3 < n * 5 + 3) {
        if (cap > SIZE_MAX / 4) return 0;
        cap *= 2;
    }
    return cap;
}

tl_status tl_strmap_reserve(tl_strmap *m, size_t n_hint) {
    size_t cap = cap_for(n_hint);
    if (!cap) return TL_ERR_NOMEM;
    if (cap <= m->cap) return TL_OK;
    return strmap_grow(m, cap);
}

/* The stored hash is the low 32 bits; probing starts from it too, so a map
 * with > 2^32 slots would cluster, which a vocabulary never approaches. */
tl_status tl_strmap_put(tl_strmap *m, const char *key, size_t len, int32_t val) {
    if (len > UINT32_MAX || !key) return TL_ERR_INVALID_ARG;
    if ((m->n + 1) * 5 > m->cap * 3) {
        size_t cap = cap_for(m->n + 1);
        if (!cap) return TL_ERR_NOMEM;
        tl_status st = strmap_grow(m, cap);
        if (st) return st;
    }
    uint32_t h = (uint32_t)tl_hash_bytes(key, len);
    size_t mask = m->cap - 1;
    size_t j = (size_t)h & mask;
    for (;;) {
        tl_strmap_slot *s = &m->slots[j];
        if (!s->key) {
            s->key = key;
            s->len = (uint32_t)len;
            s->hash = h;
            s->val = val;
            m->n++;
            return TL_OK;
        }
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) {
            s->val = val;
            return TL_OK;
        }
        j = (j + 1) & mask;
    }
}

bool tl_strmap_get(const tl_strmap *m, const char *key, size_t len, int32_t *val) {
    if (!m->cap || len > UINT32_MAX) return false;
    uint32_t h = (uint32_t)tl_hash_bytes(key, len);
    size_t mask = m->cap - 1;
    size_t j = (size_t)h & mask;
    for (;;) {
        const tl_strmap_slot *s = &m->slots[j];
        if (!s->key) return false;
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0) {
            *val = s->val;
            return true;
        }
        j = (j + 1) & mask;
    }
}

void tl_strmap_free(tl_strmap *m) {
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

/* ------------------------------------------------------------- u64map */

static tl_status u64map_grow(tl_u64map *m, size_t want_cap) {
    tl_u64map_slot *ns = calloc(want_cap, sizeof *ns);
    if (!ns) return TL_ERR_NOMEM;
    size_t mask = want_cap - 1;
    for (size_t i = 0; i < m->cap; i++) {
        const tl_u64map_slot *s = &m->slots[i];
        if (!s->key) continue;
        size_t j = (size_t)mix64(s->key) & mask;
        while (ns[j].key) j = (j + 1) & mask;
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = want_cap;
    return TL_OK;
}

tl_status tl_u64map_reserve(tl_u64map *m, size_t n_hint) {
    size_t cap = cap_for(n_hint);
    if (!cap) return TL_ERR_NOMEM;
    if (cap <= m->cap) return TL_OK;
    return u64map_grow(m, cap);
}

tl_status tl_u64map_put_new(tl_u64map *m, uint64_t key, int32_t a, int32_t b, bool *inserted) {
    if (key == UINT64_MAX) return TL_ERR_INVALID_ARG;
    if ((m->n + 1) * 5 > m->cap * 3) {
        size_t cap = cap_for(m->n + 1);
        if (!cap) return TL_ERR_NOMEM;
        tl_status st = u64map_grow(m, cap);
        if (st) return st;
    }
    uint64_t k = key + 1;
    size_t mask = m->cap - 1;
    size_t j = (size_t)mix64(k) & mask;
    for (;;) {
        tl_u64map_slot *s = &m->slots[j];
        if (!s->key) {
            s->key = k;
            s->a = a;
            s->b = b;
            m->n++;
            if (inserted) *inserted = true;
            return TL_OK;
        }
        if (s->key == k) {
            if (inserted) *inserted = false;
            return TL_OK;
        }
        j = (j + 1) & mask;
    }
}

bool tl_u64map_get(const tl_u64map *m, uint64_t key, int32_t *a, int32_t *b) {
    if (!m->cap || key == UINT64_MAX) return false;
    uint64_t k = key + 1;
    size_t mask = m->cap - 1;
    size_t j = (size_t)mix64(k) & mask;
    for (;;) {
        const tl_u64map_slot *s = &m->slots[j];
        if (!s->key) return false;
        if (s->key == k) {
            *a = s->a;
            *b = s->b;
            return true;
        }
        j = (j + 1) & mask;
    }
}

void tl_u64map_free(tl_u64map *m) {
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}
