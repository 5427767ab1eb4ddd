/* mmap.h — read-only file mappings. Weights are views into these. */
#ifndef TL_IO_MMAP_H
#define TL_IO_MMAP_H

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

#endif
