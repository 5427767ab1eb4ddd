/* safetensors.h — reader for Hugging Face .safetensors files.
 *
 * Layout: u64 little-endian header size N, N bytes of JSON
 * {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
 * then the data section. The header is parsed with cJSON and validated
 * before anything is used: N within the file, every dtype known, every
 * shape dimension and offset an exact non-negative integer, end - begin ==
 * dtype size x product(shape) (overflow-checked), offsets inside the data
 * section, no two tensors overlapping. Damaged input yields TL_ERR_FORMAT
 * (dtypes this build cannot compute with: TL_ERR_UNSUPPORTED) with a
 * message naming the tensor, never a crash. */
#ifndef TL_IO_SAFETENSORS_H
#define TL_IO_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "base/err.h"
#include "io/mmap.h"
#include "core/dtype.h"

#define TL_ST_MAX_DIMS 4

typedef struct tl_st_tensor {
    const char *name;       /* NUL-terminated; owned by the handle */
    tl_dtype type;          /* F32, F16 or BF16 */
    int n_dims;             /* 0 (scalar) .. TL_ST_MAX_DIMS */
    int64_t shape[TL_ST_MAX_DIMS]; /* outermost first, as in the file (row-major); unused = 1 */
    uint64_t offset;        /* relative to the data section */
    uint64_t nbytes;
    const void *data;       /* borrowed view into the mapping (or the buffer given to _mem) */
} tl_st_tensor;

typedef struct tl_safetensors tl_safetensors;

/* Maps and validates path. *out caller-frees with tl_safetensors_free;
 * tensor data stays mapped for the handle's lifetime. */
tl_status tl_safetensors_open(const char *path, tl_safetensors **out, tl_err *err);
/* Same over a borrowed buffer that must outlive the handle (tests, fuzzers). */
tl_status tl_safetensors_open_mem(const void *data, size_t size, tl_safetensors **out,
                                  tl_err *err);
void tl_safetensors_free(tl_safetensors *st);
/* The file mapping the tensor data views point into. Borrowed, lives as long
 * as st; data NULL for _mem handles. */
const tl_mmap *tl_safetensors_map(const tl_safetensors *st);

/* Tensors in file-header order. Borrowed. */
int64_t tl_safetensors_n_tensors(const tl_safetensors *st);
const tl_st_tensor *tl_safetensors_tensor_at(const tl_safetensors *st, int64_t i);
/* Tensor by exact name or NULL (linear scan; callers index once). Borrowed. */
const tl_st_tensor *tl_safetensors_find(const tl_safetensors *st, const char *name);

/* ---- small JSON helpers shared by the Hugging Face and Torchless readers */

/* True when item is a JSON number holding an exact integer in [0, max]
 * (max <= 2^53, the range a double represents exactly); *out gets it. */
bool tl_json_uint(const cJSON *item, uint64_t max, uint64_t *out);
/* Parses len bytes of JSON (need not be NUL-terminated; a NUL-terminated
 * copy is parsed so the parser never reads past the buffer). Trailing
 * whitespace and NUL padding are allowed, anything else after the value is
 * an error. Returns the tree (caller frees with cJSON_Delete) or NULL with
 * err filled, what naming the input in the message. */
cJSON *tl_json_parse(const char *buf, size_t len, const char *what, tl_err *err);
/* Reads and parses a whole JSON file. NULL with err filled on failure
 * (TL_ERR_IO when unreadable, TL_ERR_FORMAT when malformed). */
cJSON *tl_json_parse_file(const char *path, tl_err *err);

#endif
