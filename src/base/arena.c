/* arena.c — chunked bump allocation.
 *
 * Chunks form a singly linked list in allocation order. Rewinding moves the
 * cursor back without freeing, and bumping past the end of a chunk moves on
 * to the next existing chunk when it is big enough, so the steady state of a
 * loop that resets or rewinds the arena never calls malloc. */
#include "base/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CHUNK ((size_t)1 << 20)

struct tl_arena_chunk {
    tl_arena_chunk *next;
    size_t size;              /* usable bytes in data[] */
    size_t off;               /* bump offset */
    _Alignas(TL_ARENA_ALIGN) unsigned char data[];
};

static size_t round_up(size_t n) {
    return (n + (TL_ARENA_ALIGN - 1)) & ~(size_t)(TL_ARENA_ALIGN - 1);
}

void tl_arena_init(tl_arena *a, size_t chunk_size) {
    memset(a, 0, sizeof *a);
    a->chunk_size = chunk_size ? round_up(chunk_size) : DEFAULT_CHUNK;
}

static tl_arena_chunk *chunk_new(size_t size) {
    if (size > SIZE_MAX - sizeof(tl_arena_chunk) - TL_ARENA_ALIGN) return NULL;
    size_t total = round_up(sizeof(tl_arena_chunk) + size);
    tl_arena_chunk *c = aligned_alloc(TL_ARENA_ALIGN, total);
    if (!c) return NULL;
    c->next = NULL;
    c->size = total - sizeof(tl_arena_chunk);
    c->off = 0;
    return c;
}

/* Makes a chunk with room for `need` bytes current: the next existing chunk
 * when it fits, otherwise a new one inserted after the current chunk (so the
 * chunks after it stay available for later). */
static tl_arena_chunk *advance(tl_arena *a, size_t need) {
    if (a->chunk_size == 0) a->chunk_size = DEFAULT_CHUNK;   /* zero-initialised arena */
    tl_arena_chunk *cur = a->cur;
    tl_arena_chunk *next = cur ? cur->next : a->head;
    if (next && next->size >= need) {
        next->off = 0;
        a->cur = next;
        return next;
    }
    size_t size = need > a->chunk_size ? need : a->chunk_size;
    tl_arena_chunk *c = chunk_new(size);
    if (!c) return NULL;
    c->next = next;
    if (cur) cur->next = c; else a->head = c;
    a->cur = c;
    return c;
}

void *tl_arena_alloc(tl_arena *a, size_t size) {
    if (size > SIZE_MAX - TL_ARENA_ALIGN) return NULL;
    size_t n = round_up(size ? size : 1);
    tl_arena_chunk *c = a->cur;
    if (!c || c->size - c->off < n) {
        c = advance(a, n);
        if (!c) return NULL;
    }
    void *ptr = c->data + c->off;
    c->off += n;
    a->used_total += n;
    if (a->used_total > a->high_water) a->high_water = a->used_total;
    return ptr;
}

void *tl_arena_calloc(tl_arena *a, size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = tl_arena_alloc(a, n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

tl_status tl_arena_reserve(tl_arena *a, size_t bytes, tl_err *err) {
    tl_arena_chunk *c = a->cur ? a->cur : a->head;
    size_t room = c ? c->size - c->off : 0;
    if (room >= bytes) return TL_OK;
    /* advance() makes the chunk current with off = 0; the previous chunk's
     * tail is simply skipped, as it would be by an allocation that failed to
     * fit. */
    if (!advance(a, round_up(bytes)))
        return tl_err_set(err, TL_ERR_NOMEM, "arena: cannot reserve %zu bytes", bytes);
    return TL_OK;
}

tl_arena_mark tl_arena_get_mark(const tl_arena *a) {
    return (tl_arena_mark){
        .chunk = a->cur, .off = a->cur ? a->cur->off : 0, .used_total = a->used_total};
}

void tl_arena_rewind(tl_arena *a, tl_arena_mark m) {
    a->cur = m.chunk;
    if (m.chunk) m.chunk->off = m.off;
    a->used_total = m.used_total;
}

void tl_arena_reset(tl_arena *a) {
    a->cur = NULL;      /* the next allocation restarts at head with off = 0 */
    a->used_total = 0;
}

size_t tl_arena_used(const tl_arena *a) { return a->used_total; }

size_t tl_arena_capacity(const tl_arena *a) {
    size_t total = 0;
    for (const tl_arena_chunk *c = a->head; c; c = c->next) total += c->size;
    return total;
}

void tl_arena_free(tl_arena *a) {
    if (!a) return;
    tl_arena_chunk *c = a->head;
    while (c) {
        tl_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    size_t chunk_size = a->chunk_size;
    memset(a, 0, sizeof *a);
    a->chunk_size = chunk_size;
}
