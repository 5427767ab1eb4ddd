/* cpu.h — internals shared by the CPU backend's files. */
#ifndef TL_BACKEND_CPU_CPU_H
#define TL_BACKEND_CPU_CPU_H

#include <stdatomic.h>
#include "backend/backend.h"
#include "base/pool.h"
#include "kern/kern.h"

typedef struct tl_cpu {
    tl_pool *pool;
    const tl_kern *kern;
    int n_threads;
    /* Scratch for converted activations and per-thread buffers; grown on
     * demand, kept between calls so the token loop does not allocate. */
    uint8_t *scratch;
    size_t scratch_cap;
} tl_cpu;

static inline tl_cpu *tl_cpu_of(tl_backend *b) { return (tl_cpu *)b->impl; }

/* Returns scratch of at least n bytes (64-aligned), or NULL when out of memory. */
void *tl_cpu_scratch(tl_cpu *c, size_t n);

void tl_cpu_matmul(tl_backend *b, const tl_tensor *w, const tl_tensor *bias, const float *x,
                   int n, float *y);
void tl_cpu_attention(tl_backend *b, const tl_attn_params *p, const float *q, int q_stride,
                      const tl_kv_layer *kv, float *out);
void tl_cpu_kv_store(tl_backend *b, const tl_attn_params *p, tl_kv_layer *kv, const float *k,
                     int k_stride, const float *v, int v_stride);

#endif
