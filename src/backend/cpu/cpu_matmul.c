/* cpu_matmul.c — the CPU matrix product driver.
 *
 *   W (d, k) @ x (n, k)^T -> y (n, d)
 *
 * One pool dispatch per product: threads first convert their share of the
 * activation rows to the weight type's vec_dot_type (Q8_0, Q8_K, F16, ...;
 * with fewer rows than threads, as in decode, their share of each row's
 * blocks, which convert independently), meet at a barrier, then claim
 * chunks of weight rows from an atomic counter. A chunk is handed to the
 * variant's gemm kernel with every token of the batch at once (up to
 * TOK_BLOCK), so a kernel that decodes weight blocks (the K-quants) decodes
 * each once per chunk, and its register tiles reuse each weight block
 * across tokens and each activation block across rows. Without a gemm
 * kernel the driver loops vec_dot.
 *
 * Chunk sizes: decode (n == 1) streams the weights once, so chunks only
 * need to be big enough to amortise the atomic and small enough that both
 * threads finish together; prefill chunks are sized so the chunk's weights
 * stay in L1/L2 while the token block's activations stream through.
 *
 * Repacking: when the variant has a repack slot for the weight type
 * (kern.h tl_repack: rows interleaved so a tile holds one row per lane),
 * the matrix is packed on its first product into a copy the backend owns
 * (the mmap'd original is never written), and every later product runs the
 * packed gemm. Packed copies sit on transparent huge pages where the
 * system allows: under virtualisation, 4 KiB pages cost decode a third of
 * its speed in TLB misses and prefetch stops. The cost is memory: on AVX2,
 * Q4_0, Q8_0, Q6_K, F16 and BF16 (a plain copy, for the huge pages) pack to the
 * same size, Q4_K to 1184/1152 of it (AVX-512: 16-row groups, Q4_K +2.8%,
 * Q5_K +2.3%, the others the same size; NEON: 4-row groups of Q4_0, Q8_0,
 * Q4_K (+2.8%) and Q6_K). The original is never read again: the model
 * releases its mapped pages once a matrix is packed (model.c), so the
 * process holds the weights about once, in anonymous memory instead of the
 * file's pages (Q8_0 TinyLlama: max RSS 2.27 -> 1.20 GB). TL_REPACK=0
 * turns repacking off. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "backend/cpu/cpu.h"

enum {
    ROWS_DECODE = 16,   /* rows per chunk when n == 1 */
    ROWS_PREFILL = 24,  /* rows per chunk when n > 1: a multiple of every tile height */
    TOK_BLOCK = 64,     /* tokens per chunk: activations of a block stay in L2 */
};

typedef struct mm_job {
    tl_pool *pool;
    tl_vec_dot_fn dot;
    tl_gemm_fn gemm;
    const uint8_t *w;
    size_t w_row;           /* bytes per weight row */
    const uint8_t *x;       /* activations in vec_dot_type */
    size_t x_row;           /* bytes per activation row */
    const float *xf;        /* original F32 activations (for conversion) */
    tl_from_float_fn conv;  /* NULL when x is used as is */
    int x_qk;               /* elements per block of the converted type */
    size_t x_blk;           /* bytes per block of the converted type */
    int64_t k, d;
    int n;
    float *y;
    const float *bias;      /* (d,) F32 or NULL */
    int rows_per_chunk;
    int row_chunks, tok_blocks;
    atomic_int next;
} mm_job;

// W rows [r0, r1) @ x tokens [t0, t1) -> y
static void mm_chunk(mm_job *j, int64_t r0, int64_t r1, int t0, int t1) {
    if (j->gemm) {
        j->gemm(j->k, r1 - r0, t1 - t0, j->y + (size_t)t0 * j->d + r0, (size_t)j->d,
                j->w + r0 * j->w_row, j->w_row, j->x + (size_t)t0 * j->x_row, j->x_row);
    } else {
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *wr = j->w + r * j->w_row;
            for (int t = t0; t < t1; t++)
                j->dot(j->k, j->y + (size_t)t * j->d + r, wr, j->x + (size_t)t * j->x_row);
        }
    }
    if (j->bias)
        for (int t = t0; t < t1; t++)
            for (int64_t r = r0; r < r1; r++) j->y[(size_t)t * j->d + r] += j->bias[r];
}

static void mm_work(void *arg, int ith, int nth) {
    mm_job *j = arg;
    if (j->conv) {
        if (j->n >= nth) {
            for (int i = ith; i < j->n; i += nth)
                j->conv(j->xf + (size_t)i * j->k, (void *)(j->x + (size_t)i * j->x_row), j->k);
        } else {
            /* decode: a row alone would keep the other threads waiting */
            const int64_t nb = j->k / j->x_qk, b0 = nb * ith / nth, b1 = nb * (ith + 1) / nth;
            for (int i = 0; i < j->n && b1 > b0; i++)
                j->conv(j->xf + (size_t)i * j->k + (size_t)b0 * j->x_qk,
                        (void *)(j->x + (size_t)i * j->x_row + (size_t)b0 * j->x_blk),
                        (b1 - b0) * j->x_qk);
        }
        tl_pool_barrier(j->pool, ith);
    }
    /* chunk c: token block c / row_chunks, row chunk c % row_chunks, so
     * consecutive claims share the token block's activations in cache */
    const int total = j->row_chunks * j->tok_blocks;
    for (;;) {
        const int c = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (c >= total) break;
        const int tb = c / j->row_chunks, rc = c % j->row_chunks;
        const int64_t r0 = (int64_t)rc * j->rows_per_chunk;
        const int64_t r1 = r0 + j->rows_per_chunk < j->d ? r0 + j->rows_per_chunk : j->d;
        const int t0 = tb * TOK_BLOCK, t1 = t0 + TOK_BLOCK < j->n ? t0 + TOK_BLOCK : j->n;
        mm_chunk(j, r0, r1, t0, t1);
    }
}

/* ---- repacked weights ------------------------------------------------------ */

typedef struct pack_job {
    const tl_repack *rp;
    void *dst;
    const uint8_t *w;
    size_t w_row, p_row;  /* original and packed bytes per row */
    int64_t k, d;
} pack_job;

static void pack_work(void *arg, int ith, int nth) {
    const pack_job *j = arg;
    const int64_t groups = j->d / j->rp->rows;
    const int64_t g0 = groups * ith / nth, g1 = groups * (ith + 1) / nth;
    const int64_t r0 = g0 * j->rp->rows, nr = (g1 - g0) * j->rp->rows;
    if (nr > 0)
        j->rp->pack((uint8_t *)j->dst + (size_t)r0 * j->p_row, j->w + (size_t)r0 * j->w_row, j->w_row,
                    j->k, nr);
}

/* The packed copy of w for this variant, made on first use; NULL when the
 * type has no repack slot, the shape does not fit it, or memory is short
 * (the product then runs on the original). */
static const void *packed_weights(tl_cpu *c, const tl_tensor *w) {
    const tl_repack *rp = &c->kern->repack[w->type];
    const int64_t k = w->ne[0], d = w->ne[1];
    if (c->no_repack || !rp->rows || d % rp->rows || w->ne[2] * w->ne[3] != 1) return NULL;
    for (int i = 0; i < c->n_packed; i++) {
        const tl_cpu_packed *p = &c->packed[i];
        if (p->src == w->data && p->type == w->type && p->k == k && p->d == d) return p->data;
    }
    if (c->n_packed == c->cap_packed) {
        const int cap = c->cap_packed ? 2 * c->cap_packed : 64;
        tl_cpu_packed *np = realloc(c->packed, sizeof *np * (size_t)cap);
        if (!np) return NULL;
        c->packed = np;
        c->cap_packed = cap;
    }
    const size_t w_row = tl_tensor_row_bytes(w), p_row = rp->row_size(k);
    const size_t bytes = p_row * (size_t)d;
    /* 2 MiB aligned and, where the kernel leaves transparent huge pages to
     * madvise, asked for them: decode streams these at DRAM speed, and 4 KiB
     * pages stop the hardware prefetchers at every page boundary */
    const size_t huge = (size_t)2 << 20;
    const bool big = bytes >= huge;
    void *data = aligned_alloc(big ? huge : 64, (bytes + 63) & ~(size_t)63);
    if (!data) return NULL;
#ifdef MADV_HUGEPAGE
    if (big) (void)madvise(data, bytes & ~(huge - 1), MADV_HUGEPAGE);
#endif
    pack_job j = { rp, data, w->data, w_row, p_row, k, d };
    tl_pool_run(c->pool, pack_work, &j);
    c->packed[c->n_packed++] = (tl_cpu_packed){ w->data, w->type, k, d, data };
    c->packed_bytes += bytes;
    return data;
}

bool tl_cpu_prepare(tl_backend *b, const tl_tensor *w) {
    tl_cpu *c = tl_cpu_of(b);
    return c->kern->vec_dot[w->type] && packed_weights(c, w);
}

void tl_cpu_packed_free(tl_cpu *c) {
    for (int i = 0; i < c->n_packed; i++) free(c->packed[i].data);
    free(c->packed);
    c->packed = NULL;
    c->n_packed = c->cap_packed = 0;
    c->packed_bytes = 0;
}

void tl_cpu_matmul(tl_backend *b, const tl_tensor *w, const tl_tensor *bias, const float *x,
                   int n, float *y) {
    tl_cpu *c = tl_cpu_of(b);
    const tl_dtype_traits *tr = tl_dtype_traits_of(w->type);
    tl_dtype vt = tr->vec_dot_type;
    mm_job j = {
        .pool = c->pool,
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
        j.x_qk = tl_dtype_traits_of(vt)->block_size;
        j.x_blk = tl_dtype_traits_of(vt)->type_size;
    }
    j.rows_per_chunk = n == 1 ? ROWS_DECODE : ROWS_PREFILL;
    const void *wp = j.dot ? packed_weights(c, w) : NULL;
    if (wp) {
        /* packed gemm: chunks of whole row groups; 64 rows amortise the
         * per-token activation sums over 8 groups, fewer when d is small
         * so that both threads still get several chunks */
        const int rows = c->kern->repack[w->type].rows;
        j.w = wp;
        j.w_row = c->kern->repack[w->type].row_size(j.k);
        j.gemm = c->kern->repack[w->type].gemm;
        j.rows_per_chunk = 8 * rows;
        while (j.rows_per_chunk > rows && j.d / j.rows_per_chunk < 4 * c->n_threads) j.rows_per_chunk /= 2;
        j.rows_per_chunk -= j.rows_per_chunk % rows;
    }
    j.row_chunks = (int)((j.d + j.rows_per_chunk - 1) / j.rows_per_chunk);
    j.tok_blocks = (n + TOK_BLOCK - 1) / TOK_BLOCK;
    atomic_init(&j.next, 0);
    tl_pool_run(c->pool, mm_work, &j);
}
