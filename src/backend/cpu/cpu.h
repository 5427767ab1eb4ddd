/* cpu.h — internals shared by the CPU backend's files. */
#ifndef TL_BACKEND_CPU_CPU_H
#define TL_BACKEND_CPU_CPU_H

#include <stdatomic.h>
#include "backend/backend.h"
#include "base/pool.h"
#include "kern/kern.h"

/* A weight matrix repacked for the variant's gemm (kern.h tl_repack). */
typedef struct tl_cpu_packed {
    const void *src;   /* the original (mmap'd) data, the lookup key with type and shape */
    tl_dtype type;
    int64_t k, d;
    void *data;        /* owned: the packed copy, same size as the original */
} tl_cpu_packed;

typedef struct tl_cpu {
    tl_pool *pool;
    const tl_kern *kern;
    int n_threads;
    /* Scratch for converted activations and per-thread buffers; grown on
     * demand, kept between calls so the token loop does not allocate. */
    uint8_t *scratch;
    size_t scratch_cap;
    /* Repacked weights, made on a matrix's first product and kept for the
     * backend's lifetime (cpu_matmul.c). */
    tl_cpu_packed *packed;
    int n_packed, cap_packed;
    bool no_repack;    /* TL_REPACK=0 */
    size_t packed_bytes;
} tl_cpu;

static inline tl_cpu *tl_cpu_of(tl_backend *b) { return (tl_cpu *)b->impl; }

/* Returns scratch of at least n bytes (64-aligned), or NULL when out of memory. */
void *tl_cpu_scratch(tl_cpu *c, size_t n);

/* Makes w's repacked copy now (backend op `prepare`): true when there is
 * one, which every later product of w reads instead of w->data. */
bool tl_cpu_prepare(tl_backend *b, const tl_tensor *w);
/* Frees every repacked weight copy (backend teardown). */
void tl_cpu_packed_free(tl_cpu *c);

void tl_cpu_matmul(tl_backend *b, const tl_tensor *w, const tl_tensor *bias, const float *x,
                   int n, float *y);
void tl_cpu_matmul_multi(tl_backend *b, int count, const tl_tensor *const w[],
                         const tl_tensor *const bias[], const float *x, int n, float *const y[]);
void tl_cpu_attention(tl_backend *b, const tl_attn_params *p, const float *q, int q_stride,
                      const tl_kv_layer *kv, float *out);
void tl_cpu_kv_store(tl_backend *b, const tl_attn_params *p, tl_kv_layer *kv, const float *k,
                     int k_stride, const float *v, int v_stride);
/* Whether attention and kv_store handle a cache of this element type with
 * these kernels (F32, F16, Q8_0). */
bool tl_cpu_kv_supports(const tl_kern *kern, tl_dtype type);

#endif
