/* arena.h — bump allocator for per-context scratch memory.
 *
 * Allocations are 64-byte aligned (cache line, and enough for AVX-512 loads)
 * and carved from chunks that are kept across reset/rewind, so once a token
 * loop has run once, later iterations allocate nothing from the system.
 * Not thread-safe: one arena per owner. */
#ifndef TL_BASE_ARENA_H
#define TL_BASE_ARENA_H

#include <stddef.h>
#include "base/err.h"

#define TL_ARENA_ALIGN 64

typedef struct tl_arena_chunk tl_arena_chunk;

/* Embed by value; zero-initialised or tl_arena_init'ed. */
typedef struct tl_arena {
    tl_arena_chunk *head;     /* first chunk (kept for reset) */
    tl_arena_chunk *cur;      /* chunk being bumped */
    size_t chunk_size;        /* minimum size of a new chunk */
    size_t used_total;        /* bytes handed out since reset (with padding) */
    size_t high_water;        /* max used_total seen */
} tl_arena;

/* A position to rewind to; valid until an earlier position is rewound to or
 * the arena is reset/freed. */
typedef struct tl_arena_mark {
    tl_arena_chunk *chunk;
    size_t off;
    size_t used_total;
} tl_arena_mark;

/* Sets up an empty arena; chunk_size is the granularity of growth (0 picks
 * 1 MiB). Allocates nothing until the first tl_arena_alloc. */
void tl_arena_init(tl_arena *a, size_t chunk_size);

/* Pre-allocates one chunk of at least `bytes` so that the first allocations
 * up to that total need no further system call. */
tl_status tl_arena_reserve(tl_arena *a, size_t bytes, tl_err *err);

/* Returns `size` bytes aligned to TL_ARENA_ALIGN, uninitialised, owned by the
 * arena (valid until reset/rewind past it/free). size 0 yields a valid unique
 * pointer. NULL only when the system is out of memory or size overflows. */
void *tl_arena_alloc(tl_arena *a, size_t size);

/* Same, zero-filled; n*size overflow returns NULL. */
void *tl_arena_calloc(tl_arena *a, size_t n, size_t size);

tl_arena_mark tl_arena_get_mark(const tl_arena *a);
/* Releases everything allocated after the mark (memory stays with the arena). */
void tl_arena_rewind(tl_arena *a, tl_arena_mark m);
/* Releases all allocations; chunks are kept for reuse. */
void tl_arena_reset(tl_arena *a);

/* Bytes handed out since the last reset, and total bytes held in chunks. */
size_t tl_arena_used(const tl_arena *a);
size_t tl_arena_capacity(const tl_arena *a);

/* Returns all chunks to the system; the arena is left empty and reusable.
 * Accepts NULL. */
void tl_arena_free(tl_arena *a);

#endif
