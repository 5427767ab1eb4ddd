/* tensor.h — a typed, shaped view of weight memory.
 *
 * A tl_tensor never owns its data: `data` points into a file mapping (or
 * into a buffer owned by whoever built the tensor, which says so). */
#ifndef TL_CORE_TENSOR_H
#define TL_CORE_TENSOR_H

#include <stdint.h>
#include <stddef.h>
#include "core/dtype.h"

#define TL_MAX_DIMS 4

typedef struct tl_tensor {
    const char *name;        /* borrowed */
    tl_dtype type;
    int n_dims;
    int64_t ne[TL_MAX_DIMS]; /* ne[0] is contiguous; unused dims are 1 */
    const void *data;        /* borrowed */
    size_t nbytes;
} tl_tensor;

/* Bytes between consecutive rows (ne[0] elements). */
static inline size_t tl_tensor_row_bytes(const tl_tensor *t) { return tl_dtype_row_size(t->type, t->ne[0]); }
/* Number of rows: product of ne[1..]. */
static inline int64_t tl_tensor_nrows(const tl_tensor *t) { return t->ne[1] * t->ne[2] * t->ne[3]; }
static inline int64_t tl_tensor_nelem(const tl_tensor *t) { return t->ne[0] * tl_tensor_nrows(t); }

#endif
