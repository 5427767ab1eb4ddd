/* gguf.h — GGUF reader (v1, v2, v3) and writer.
 *
 * The reader maps the file and validates everything before use: every
 * count, string length, array length, tensor dimension and data offset is
 * checked against the file size, so a damaged file yields TL_ERR_FORMAT
 * with a message, never a crash. Tensor data pointers are borrowed views
 * into the mapping and live as long as the tl_gguf handle. */
#ifndef TL_IO_GGUF_H
#define TL_IO_GGUF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "base/err.h"
#include "io/mmap.h"
#include "core/dtype.h"

typedef enum tl_gguf_type {
    TL_GGUF_UINT8 = 0, TL_GGUF_INT8 = 1, TL_GGUF_UINT16 = 2, TL_GGUF_INT16 = 3,
    TL_GGUF_UINT32 = 4, TL_GGUF_INT32 = 5, TL_GGUF_FLOAT32 = 6, TL_GGUF_BOOL = 7,
    TL_GGUF_STRING = 8, TL_GGUF_ARRAY = 9, TL_GGUF_UINT64 = 10, TL_GGUF_INT64 = 11,
    TL_GGUF_FLOAT64 = 12, TL_GGUF_TYPE_COUNT
} tl_gguf_type;

/* A string inside the mapping: NOT NUL-terminated. */
typedef struct tl_gguf_str {
    const char *ptr;
    uint64_t len;
} tl_gguf_str;

typedef struct tl_gguf_kv {
    tl_gguf_str key;
    tl_gguf_type type;
    /* scalar value (for type != ARRAY/STRING), widened */
    union { uint64_t u64; int64_t i64; double f64; bool b; } v;
    tl_gguf_str str;          /* type == STRING */
    tl_gguf_type arr_type;    /* type == ARRAY: element type (never ARRAY) */
    uint64_t arr_n;           /* type == ARRAY: element count */
    const uint8_t *arr_data;  /* ARRAY of scalars: raw little-endian elements;
                                 ARRAY of STRING: start of the first (u64 len, bytes) pair */
} tl_gguf_kv;

typedef struct tl_gguf_tensor {
    tl_gguf_str name;
    tl_dtype type;
    int n_dims;               /* 1..4 */
    int64_t ne[4];            /* innermost first; unused dims = 1 */
    uint64_t offset;          /* relative to the data section */
    uint64_t nbytes;
    const void *data;         /* borrowed view into the mapping */
} tl_gguf_tensor;

typedef struct tl_gguf tl_gguf;

/* Opens and fully validates path. *out caller-frees with tl_gguf_free. */
tl_status tl_gguf_open(const char *path, tl_gguf **out, tl_err *err);
/* Same over a memory buffer (borrowed; must outlive the handle). Used by
 * tests and fuzzers. */
tl_status tl_gguf_open_mem(const void *data, size_t size, tl_gguf **out, tl_err *err);
void tl_gguf_free(tl_gguf *g);

uint32_t tl_gguf_version(const tl_gguf *g);       /* 1, 2 or 3 */
uint64_t tl_gguf_alignment(const tl_gguf *g);     /* general.alignment or 32 */
/* File offset of the data section (tensor offsets are relative to it). */
uint64_t tl_gguf_data_offset(const tl_gguf *g);

int64_t tl_gguf_n_kv(const tl_gguf *g);
const tl_gguf_kv *tl_gguf_kv_at(const tl_gguf *g, int64_t i);   /* borrowed */
const tl_gguf_kv *tl_gguf_find(const tl_gguf *g, const char *key); /* NULL if absent */

/* Typed getters: return false when the key is absent or has a type that
 * cannot be converted (integers convert among themselves when in range;
 * floats from any numeric type). */
bool tl_gguf_get_u32(const tl_gguf *g, const char *key, uint32_t *out);
bool tl_gguf_get_i64(const tl_gguf *g, const char *key, int64_t *out);
bool tl_gguf_get_f32(const tl_gguf *g, const char *key, float *out);
bool tl_gguf_get_bool(const tl_gguf *g, const char *key, bool *out);
/* Borrowed string view; false if absent or not a string. */
bool tl_gguf_get_str(const tl_gguf *g, const char *key, tl_gguf_str *out);

/* Array access. tl_gguf_arr_str fills views for the i-th string of a
 * string array (O(1) after open: offsets are indexed during validation). */
bool tl_gguf_arr_str(const tl_gguf *g, const tl_gguf_kv *kv, uint64_t i, tl_gguf_str *out);
/* Element i of a numeric (or bool) array converted to double / int64.
 * Return 0 when kv is not such an array, i >= arr_n, or (i64) the value
 * does not fit an int64 (floats are truncated toward zero). */
double  tl_gguf_arr_f64(const tl_gguf_kv *kv, uint64_t i);
int64_t tl_gguf_arr_i64(const tl_gguf_kv *kv, uint64_t i);

int64_t tl_gguf_n_tensors(const tl_gguf *g);
/* The file mapping the tensor data views point into. Borrowed, lives as long
 * as g; data NULL for _mem handles (their buffer is the caller's). */
const tl_mmap *tl_gguf_map(const tl_gguf *g);
const tl_gguf_tensor *tl_gguf_tensor_at(const tl_gguf *g, int64_t i);     /* borrowed */
const tl_gguf_tensor *tl_gguf_find_tensor(const tl_gguf *g, const char *name); /* NULL if absent */

/* Compares a view with a C string. */
bool tl_gguf_str_eq(tl_gguf_str s, const char *c);

/* ---- writer -------------------------------------------------------------
 * Builds a GGUF v3 file: add metadata and tensor descriptions, then write.
 * Tensor data is given as pointers that must stay valid until
 * tl_gguf_writer_write returns (no copies are made).
 * KVs are written in insertion order; setting an existing key replaces its
 * value in place. Setters return TL_ERR_INVALID_ARG (bad key/type/shape) or
 * TL_ERR_NOMEM; the first such failure is also remembered and makes
 * tl_gguf_writer_write fail with its message, so callers may check only the
 * final write. Data is aligned to general.alignment when set (a power of
 * two up to 2^24), else 32 bytes. */
typedef struct tl_gguf_writer tl_gguf_writer;

tl_status tl_gguf_writer_init(tl_gguf_writer **out, tl_err *err);
void tl_gguf_writer_free(tl_gguf_writer *w);
tl_status tl_gguf_writer_set_u32(tl_gguf_writer *w, const char *key, uint32_t v);
tl_status tl_gguf_writer_set_i32(tl_gguf_writer *w, const char *key, int32_t v);
tl_status tl_gguf_writer_set_u64(tl_gguf_writer *w, const char *key, uint64_t v);
tl_status tl_gguf_writer_set_f32(tl_gguf_writer *w, const char *key, float v);
tl_status tl_gguf_writer_set_bool(tl_gguf_writer *w, const char *key, bool v);
tl_status tl_gguf_writer_set_str(tl_gguf_writer *w, const char *key, const char *v);
/* Any scalar type t (not STRING/ARRAY): v points to a value of the matching
 * C type (uint8_t, int16_t, float, double, bool, ...), copied. */
tl_status tl_gguf_writer_set_scalar(tl_gguf_writer *w, const char *key, tl_gguf_type t,
                                    const void *v);
/* Array of n elements of scalar type t, data copied. */
tl_status tl_gguf_writer_set_arr(tl_gguf_writer *w, const char *key, tl_gguf_type t,
                                 const void *data, uint64_t n);
tl_status tl_gguf_writer_set_arr_str(tl_gguf_writer *w, const char *key,
                                     const char *const *strs, uint64_t n);
/* Copies every KV of g, keeping its types, in g's order. Keys the writer
 * already holds keep their value; keys set later replace the copy. */
tl_status tl_gguf_writer_copy_kv(tl_gguf_writer *w, const tl_gguf *g);
/* Adds a tensor description; name copied, data borrowed. nbytes must equal
 * tl_dtype_row_size(type, ne[0]) * ne[1] * ... ; duplicate names rejected. */
tl_status tl_gguf_writer_add_tensor(tl_gguf_writer *w, const char *name, tl_dtype type,
                                    int n_dims, const int64_t ne[4], const void *data,
                                    uint64_t nbytes);
/* Writes path atomically: a temp file in the same directory, then rename, so
 * a failed write never leaves a partial file at path. */
tl_status tl_gguf_writer_write(tl_gguf_writer *w, const char *path, tl_err *err);
/* Same file image built in memory: on success *data (caller-frees with
 * free()) holds *size bytes, ready for tl_gguf_open_mem. Used by formats
 * whose metadata is translated into GGUF keys (Hugging Face, Torchless). */
tl_status tl_gguf_writer_write_mem(tl_gguf_writer *w, void **data, size_t *size, tl_err *err);

#endif
