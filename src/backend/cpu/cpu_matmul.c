/* cpu_matmul.c — the CPU matrix product driver.
 *
 *   W (d, k) @ x (n, k)^T -> y (n, d)
 *
 * Activations are first converted to the weight type's vec_dot_type (Q8_0,
 * Q8_K, F16, ...) once, then threads claim blocks of weight rows from an
 * atomic counter and, for each block, sweep every token: a weight block is
 * read from memory once per call and reused across the batch while it sits
 * in cache. A variant's gemm kernel, when present, does the block x tokens
 * tile in registers; otherwise the driver loops vec_dot. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"

enum { ROWS_PER_CHUNK = 16, TOK_PER_TILE = 4 };

typedef struct mm_job {
    const tl_kern *kern;
    tl_vec_dot_fn dot;
    tl_gemm_fn gemm;
    const uint8_t *w;
    size_t w_row;           /* bytes per weight row */
    const uint8_t *x;       /* activations in vec_dot_type */
    size_t x_row;           /* bytes per activation row */
    const float *xf;        /* original F32 activations (for conversion) */
    tl_from_float_fn conv;  /* NULL when x is used as is */
    int64_t k, d;
    int n;
    float *y;
    const float *bias;      /* (d,) F32 or NULL */
    atomic_int next;
    int n_chunks;
} mm_job;

static void mm_convert(void *arg, int ith, int nth) {
    mm_job *j = arg;
    for (int i = ith; i < j->n; i += nth)
        j->conv(j->xf + (size_t)i * j->k, (void *)(j->x + (size_t)i * j->x_row), j->k);
}

static void mm_rows(mm_job *j, int64_t r0, int64_t r1) {
    for (int t0 = 0; t0 < j->n; t0 += TOK_PER_TILE) {
        int t1 = t0 + TOK_PER_TILE < j->n ? t0 + TOK_PER_TILE : j->n;
        if (j->gemm) {
            j->gemm(j->k, r1 - r0, t1 - t0, j->y + (size_t)t0 * j->d + r0, (size_t)j->d,
                    j->w + r0 * j->w_row, j->w_row, j->x + (size_t)t0 * j->x_row, j->x_row);
            continue;
        }
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *wr = j->w + r * j->w_row;
            for (int t = t0; t < t1; t++)
                j->dot(j->k, j->y + (size_t)t * j->d + r, wr, j->x + (size_t)t * j->x_row);
        }
    }
    if (j->bias)
        for (int t = 0; t < j->n; t++)
            for (int64_t r = r0; r < r1; r++) j->y[(size_t)t * j->d + r] += j->bias[r];
}

static void mm_work(void *arg, int ith, int nth) {
    (void)ith; (void)nth;
    mm_job *j = arg;
    for (;;) {
        int c = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (c >= j->n_chunks) break;
        int64_t r0 = (int64_t)c * ROWS_PER_CHUNK;
        int64_t r1 = r0 + ROWS_PER_CHUNK < j->d ? r0 + ROWS_PER_CHUNK : j->d;
        mm_rows(j, r0, r1);
    }
}

void tl_cpu_matmul(tl_backend *b, const tl_tensor *w, const tl_tensor *bias, const float *x,
                   int n, float *y) {
    tl_cpu *c = tl_cpu_of(b);
    const tl_dtype_traits *tr = tl_dtype_traits_of(w->type);
    tl_dtype vt = tr->vec_dot_type;
    mm_job j = {
        .kern = c->kern,
        .dot = c->kern->vec_dot[w->type],
        .gemm = c->kern->gemm[w->type],
        .w = w->data,
        .w_row = tl_tensor_row_bytes(w),
        .k = w->ne[0],
        .d = w->ne[1],
        .n = n,
        .y = y,
        .bias = bias ? bias->data : NULL,
    };
    if (vt == TL_DTYPE_F32) {
        j.x = (const uint8_t *)x;
        j.x_row = (size_t)j.k * sizeof(float);
    } else {
        j.x_row = tl_dtype_row_size(vt, j.k);
        j.x = tl_cpu_scratch(c, j.x_row * (size_t)n);
        j.xf = x;
        j.conv = c->kern->from_float[vt];
        tl_pool_run(c->pool, mm_convert, &j);
    }
    j.n_chunks = (int)((j.d + ROWS_PER_CHUNK - 1) / ROWS_PER_CHUNK);
    atomic_init(&j.next, 0);
    tl_pool_run(c->pool, mm_work, &j);
}
