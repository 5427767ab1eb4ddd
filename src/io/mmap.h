/* mmap.h — read-only file mappings. Weights are views into these. */
#ifndef TL_IO_MMAP_H
#define TL_IO_MMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/err.h"

typedef struct tl_mmap {
    const uint8_t *data;  /* NULL for an empty file */
    size_t size;
} tl_mmap;

/* Maps path read-only. On success *out owns the mapping (release with
 * tl_mmap_free). An empty file maps to data == NULL, size == 0. */
tl_status tl_mmap_open(const char *path, tl_mmap *out, tl_err *err);
void tl_mmap_free(tl_mmap *m);  /* accepts a zeroed struct */

/* Whether [p, p + n) lies inside m's mapping. */
bool tl_mmap_contains(const tl_mmap *m, const void *p, size_t n);

/* Drops this process's pages of the whole pages inside [p, p + n), which
 * must lie inside m (else nothing happens): the mapping is read-only and
 * never written, so a later read faults them back in from the file (the
 * page cache, usually) with the same bytes. For data the process has
 * copied and will not read again soon: it stops counting twice in RSS. */
void tl_mmap_release(const tl_mmap *m, const void *p, size_t n);

#endif
