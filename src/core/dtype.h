/* dtype.h — tensor element types and their traits.
 *
 * Values equal GGML's type ids so GGUF files are read without a mapping
 * table. Per-type behaviour lives in one designated-initializer table
 * (dtype.c); code asks tl_dtype_traits_of() instead of switching on types. */
#ifndef TL_CORE_DTYPE_H
#define TL_CORE_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum tl_dtype {
    TL_DTYPE_F32  = 0,
    TL_DTYPE_F16  = 1,
    TL_DTYPE_Q4_0 = 2,
    TL_DTYPE_Q4_1 = 3,
    TL_DTYPE_Q5_0 = 6,
    TL_DTYPE_Q5_1 = 7,
    TL_DTYPE_Q8_0 = 8,
    TL_DTYPE_Q8_1 = 9,
    TL_DTYPE_Q2_K = 10,
    TL_DTYPE_Q3_K = 11,
    TL_DTYPE_Q4_K = 12,
    TL_DTYPE_Q5_K = 13,
    TL_DTYPE_Q6_K = 14,
    TL_DTYPE_Q8_K = 15,
    TL_DTYPE_I8   = 24,
    TL_DTYPE_I16  = 25,
    TL_DTYPE_I32  = 26,
    TL_DTYPE_I64  = 27,
    TL_DTYPE_F64  = 28,
    TL_DTYPE_BF16 = 30,
    TL_DTYPE_COUNT = 40, /* table size; ids above are valid, others are not */
} tl_dtype;

/* Converts n values (n a multiple of block_size) of a row. */
typedef void (*tl_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*tl_from_float_fn)(const float *src, void *dst, int64_t n);

typedef struct tl_dtype_traits {
    const char *name;           /* "F32", "Q4_K", ... (GGML spelling) */
    int block_size;             /* elements per block (1 for plain types) */
    size_t type_size;           /* bytes per block */
    bool is_quant;
    /* Type the activations are converted to before a dot product with a
     * row of this type (as GGML does: Q4_0 -> Q8_0, Q4_K -> Q8_K, ...). */
    tl_dtype vec_dot_type;
    tl_to_float_fn to_float;     /* scalar reference; NULL if not a weight type */
    tl_from_float_fn from_float; /* scalar reference quantizer; NULL if none */
} tl_dtype_traits;

/* Traits of t, or NULL when t is not a type this build knows (unknown ids
 * read from files must be rejected with this). Borrowed static data. */
const tl_dtype_traits *tl_dtype_traits_of(int t);

/* Name of t or "?" when unknown. Static string. */
const char *tl_dtype_name(int t);

/* Parses a GGML-style name ("q4_0", "Q4_K", "bf16"), case-insensitive.
 * Returns false when unknown. */
bool tl_dtype_from_name(const char *name, tl_dtype *out);

/* Bytes of a row of n elements; 0 if n is not a multiple of the block size
 * or t is unknown. */
size_t tl_dtype_row_size(int t, int64_t n);

#endif
