/* backend.h — the compute backend interface.
 *
 * A backend is a small table of operations over activation buffers it
 * allocates itself (host memory for the CPU, device memory for GPUs later).
 * Model code calls only these; it never includes a backend's own headers.
 * `supports` lets the model ask before relying on an op/type pair, so a
 * partial GPU backend can leave ops to the CPU.
 *
 * Conventions: activations are row-major F32 matrices, one row per token:
 * x (n_tok, dim). Weights are tl_tensor views, W (d, k) meaning d rows of k
 * elements (GGUF ne = {k, d}). */
#ifndef TL_BACKEND_BACKEND_H
#define TL_BACKEND_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "arch/arch.h"
#include "base/err.h"
#include "core/tensor.h"

typedef enum tl_op {
    TL_OP_GET_ROWS,
    TL_OP_MATMUL,
    TL_OP_NORM,
    TL_OP_ROPE,
    TL_OP_ATTENTION,
    TL_OP_GLU,
    TL_OP_ELEMENTWISE,
    TL_OP_COUNT
} tl_op;

/* One layer's cache: K n_ctx rows of head_dim and V n_ctx rows of head_dim_v
 * per KV head, in kv_type (F16, F32, or Q8_0: blocks of 32 along each head,
 * so head_dim and head_dim_v are multiples of 32); a head's row takes
 * tl_dtype_row_size(kv_type, head_dim) bytes, a whole K or V cache n_ctx *
 * n_head_kv of them. How rows are laid out is the backend's (kv_store and
 * attention are its only readers and writers; the CPU backend keeps each
 * head's rows together, and an F16 K in blocks of 8 positions), within
 * that size; n_ctx is a multiple of TL_KV_CTX_ALIGN so that blocks of
 * positions never straddle two heads. Memory owned by the backend that
 * allocated it. */
enum { TL_KV_CTX_ALIGN = 8 };
typedef struct tl_kv_layer {
    void *k;
    void *v;
} tl_kv_layer;

typedef struct tl_attn_params {
    int n_tok;          /* queries in this batch, at positions pos0 .. pos0+n_tok-1 */
    int pos0;
    int n_ctx;          /* rows the cache holds (per KV head), a multiple of TL_KV_CTX_ALIGN */
    int n_head, n_head_kv, head_dim, head_dim_v;
    float scale;        /* applied to q.k before softcap and softmax */
    float softcap;      /* 0 = none: s = cap * tanh(s / cap) */
    int window;         /* 0 = none: query p sees keys j with p - j < window */
    tl_dtype kv_type;   /* TL_DTYPE_F16, F32 or Q8_0, one `supports(TL_OP_ATTENTION)` accepts */
} tl_attn_params;

typedef struct tl_rope_params {
    tl_rope_kind kind;
    int n_head, head_dim, rope_dims;
    float theta;
    float freq_scale;          /* position multiplier (linear scaling) */
    const float *freq_factors; /* rope_dims/2 divisors of the frequencies, or NULL */
    float attn_factor;         /* cos/sin multiplier (LongRoPE), normally 1 */
    /* YaRN (ext_factor > 0): pair i takes the extrapolated (unscaled) angle
     * below the correction range of n_ctx_orig, beta_fast and beta_slow, the
     * interpolated one above it, a linear ramp between, and cos/sin gain
     * 1 + 0.1 ln(1/freq_scale). 0 = plain (linear) scaling. */
    float ext_factor;
    int n_ctx_orig;
    float beta_fast, beta_slow;
} tl_rope_params;

typedef enum tl_unary { TL_UNARY_SILU, TL_UNARY_GELU_TANH, TL_UNARY_SOFTCAP, TL_UNARY_SCALE } tl_unary;

typedef struct tl_backend tl_backend;

/* Most products one matmul_multi call takes. */
enum { TL_MATMUL_MULTI_MAX = 3 };

typedef struct tl_backend_ops {
    const char *name;
    void (*free)(tl_backend *b);
    /* Whether op runs on type: the weight type for MATMUL/GET_ROWS, the
     * KV cache type for ATTENTION (and kv_store). */
    bool (*supports)(const tl_backend *b, tl_op op, tl_dtype type);

    /* Activation buffers: zero-initialised, 64-byte aligned. NULL on failure. */
    void *(*alloc)(tl_backend *b, size_t bytes);
    void (*dealloc)(tl_backend *b, void *p);
    /* Reserves the backend's internal scratch for batches of up to n_batch
     * rows of up to max_dim elements, so later ops never allocate. */
    tl_status (*reserve)(tl_backend *b, int n_batch, int max_dim, tl_err *err);
    /* Called once per weight matrix after loading, so one-time work on it
     * (the CPU repacks rows for its GEMM) happens at load rather than inside
     * the first product. Returns true when the backend now has its own copy
     * of w's data and its products never read w->data again (the model may
     * then release the file pages behind it). May be NULL. */
    bool (*prepare)(tl_backend *b, const tl_tensor *w);
    /* Bytes the backend holds on behalf of the weights (repacked copies). */
    size_t (*weight_memory)(const tl_backend *b);
    /* Host <-> backend copies (plain memcpy on the CPU). */
    void (*upload)(tl_backend *b, void *dst, const void *src, size_t bytes);
    void (*download)(tl_backend *b, void *dst, const void *src, size_t bytes);

    /* table (n_rows, dim) rows ids[0..n) -> out (n, dim), dequantized. ids
     * must be in range (the caller checks). */
    void (*get_rows)(tl_backend *b, const tl_tensor *table, const int32_t *ids, int n, float *out);
    /* W (d, k) @ x (n, k)^T [+ bias (d,)] -> y (n, d). y may not alias x. */
    void (*matmul)(tl_backend *b, const tl_tensor *w, const tl_tensor *bias, const float *x,
                   int n, float *y);
    /* The products of one input with count <= TL_MATMUL_MULTI_MAX
     * matrices of k columns (q, k and v; gate and up), each as matmul:
     *   W_i (d_i, k) @ x (n, k)^T [+ bias_i (d_i,)] -> y_i (n, d_i)
     * bias[i] may be NULL; no y_i may alias x or another y_j. Same results
     * as count matmul calls; a backend may convert x once and run them as
     * one job. May be NULL (the model then calls matmul for each). */
    void (*matmul_multi)(tl_backend *b, int count, const tl_tensor *const w[],
                         const tl_tensor *const bias[], const float *x, int n, float *const y[]);
    /* y (n, dim) = norm(x (n, dim)) * w [+ bias]; w/bias may be NULL (plain
     * normalisation). x and y may alias. */
    void (*norm)(tl_backend *b, tl_norm_kind kind, const float *x, const tl_tensor *w,
                 const tl_tensor *bias, float eps, int n, int dim, float *y);
    /* The residual add and the norm after it, in one pass over the rows:
     *   x (n, dim) += d (n, dim); y (n, dim) = norm(x) * w [+ bias]
     * the same results as add then norm. y may not alias x or d. */
    void (*add_norm)(tl_backend *b, tl_norm_kind kind, float *x, const float *d, const tl_tensor *w,
                     const tl_tensor *bias, float eps, int n, int dim, float *y);
    /* In place on x (n, row_stride) whose first n_head*head_dim columns are
     * heads; token i sits at position pos[i]. */
    void (*rope)(tl_backend *b, const tl_rope_params *p, float *x, int n, int row_stride,
                 const int32_t *pos);
    /* Writes k (n, n_head_kv*head_dim) and v (n, n_head_kv*head_dim_v), rows
     * with the given strides, into the cache at rows pos0.. */
    void (*kv_store)(tl_backend *b, const tl_attn_params *p, tl_kv_layer *kv, const float *k,
                     int k_stride, const float *v, int v_stride);
    /* Causal attention of q (n, row stride q_stride; n_head*head_dim used)
     * over cache rows [0, pos0+n) -> out (n, n_head*head_dim_v). */
    void (*attention)(tl_backend *b, const tl_attn_params *p, const float *q, int q_stride,
                      const tl_kv_layer *kv, float *out);
    /* out (n, d) = act(gate) * up, where gate/up rows are strided. */
    void (*glu)(tl_backend *b, tl_act_kind act, const float *gate, const float *up, int stride,
                int n, int d, float *out);
    /* x[i] = f(x[i]) for i < count (SCALE/SOFTCAP use arg). */
    void (*unary)(tl_backend *b, tl_unary op, float arg, float *x, size_t count);
    /* y[i] += x[i] */
    void (*add)(tl_backend *b, float *y, const float *x, size_t count);
} tl_backend_ops;

struct tl_backend {
    const tl_backend_ops *ops;
    void *impl;
};

/* The CPU backend over n_threads threads (0 = all online cores). *out
 * caller-frees with tl_backend_free. */
tl_status tl_backend_cpu_init(int n_threads, tl_backend **out, tl_err *err);
void tl_backend_free(tl_backend *b);

#endif
