/* convert.h — pieces shared by the writers of model/convert.c (GGUF) and
 * model/export.c (Torchless native): RoPE row layouts and a parallel
 * per-row tensor converter.
 *
 * Hugging Face checkpoints rotate the two halves of each head (x_i,
 * x_{i+r/2}); GGUF files of NORM-rope families (llama, mistral) rotate
 * adjacent pairs (x_{2j}, x_{2j+1}), so llama.cpp's converter permutes the
 * rows of Q and K once. These maps say which source row lands at each
 * output row; rows past the rotated dims r of a head stay where they are. */
#ifndef TL_MODEL_CONVERT_H
#define TL_MODEL_CONVERT_H

#include <stdbool.h>
#include <stdint.h>
#include "base/err.h"
#include "base/pool.h"
#include "core/tensor.h"

/* Row layout change applied while converting (per head of hd rows). */
typedef enum tl_rope_perm {
    TL_PERM_NONE = 0,
    TL_PERM_TO_PAIRS,   /* HF halves -> GGUF interleaved pairs (convert)    */
    TL_PERM_TO_HALVES,  /* GGUF interleaved pairs -> HF halves (export)     */
} tl_rope_perm;

/* Source row of output row r for heads of hd rows, r_dims of them rotated
 * (even, <= hd). */
static inline int64_t tl_rope_src_row(tl_rope_perm p, int64_t r, int64_t hd, int64_t r_dims) {
    if (p == TL_PERM_NONE) return r;
    const int64_t h = r / hd, i = r % hd, half = r_dims / 2;
    if (i >= r_dims) return r;
    if (p == TL_PERM_TO_PAIRS) return h * hd + (i % 2) * half + i / 2;
    return h * hd + 2 * (i % half) + i / half;
}

/* One tensor conversion: rows of src (any type with to_float, or the same
 * type as dst) reordered by perm, optionally +1, written as dst_type. */
typedef struct tl_conv_spec {
    const tl_tensor *src;
    tl_dtype dst_type;
    tl_rope_perm perm;
    int64_t head_rows;      /* hd: rows per head (perm != NONE)              */
    int64_t rope_rows;      /* r: rotated rows per head (perm != NONE)       */
    bool plus_one;          /* store 1+w (Gemma norms)                       */
} tl_conv_spec;

/* Checks the spec (convertible types, whole rows/heads, sizes); on success
 * *nbytes is the size of the converted tensor. A 1-D tensor being permuted
 * (a Q/K bias) is handled one element per row. */
tl_status tl_conv_check(const tl_conv_spec *c, uint64_t *nbytes, tl_err *err);

/* Converts into dst (nbytes from tl_conv_check) on the pool's threads.
 * scratch holds tl_pool_n_threads(pool) * src->ne[0] floats. */
void tl_conv_run(const tl_conv_spec *c, void *dst, tl_pool *pool, float *scratch);

/* Thread count for a user's n_threads (0 = online cores), clamped to [1, 4096]. */
int tl_conv_threads(int n_threads);

/* Fails early (before minutes of work) when out's directory cannot take a file. */
tl_status tl_conv_check_out_dir(const char *out, tl_err *err);

/* llama-quantize's name of a general.file_type value (llama_ftype), e.g. 15
 * -> "Q4_K_M"; NULL for a value it does not know. Static storage. */
const char *tl_quantize_ftype_name(uint32_t ftype);

#endif
