/* cpu_matmul.c — the CPU matrix product driver.
 *
 *   W (d, k) @ x (n, k)^T -> y (n, d)
 *
 * One pool dispatch per call: threads first convert their share of the
 * activation rows to the weight type's vec_dot_type (Q8_0, Q8_K, F16, ...),
 * or to the act form of the packed gemm where it names one (kern.h
 * tl_repack: AVX2 F16 and BF16, F32 rows carrying F16 / BF16 values),
 * followed by the packed gemm's act_prep entries where it reads them
 * (AVX2: float scales and quant sums, which each 64-row chunk used to make
 * again: 3-4% of a prefill), once per product rather than in every chunk
 * (with fewer rows than threads, as in decode, their share of each row's
 * blocks, which convert independently; rows tl_act_stride apart), meet at
 * a barrier, then claim chunks of weight rows from an atomic counter. A
 * chunk is handed to the variant's gemm kernel with every token of the
 * batch at once (up to TOK_BLOCK), so a kernel that decodes weight blocks
 * (the K-quants) decodes each once per chunk, and its register tiles reuse
 * each weight block across tokens and each activation block across rows.
 * Without a gemm kernel the driver loops vec_dot.
 *
 * One call can take several matrices of one input (matmul_multi: q, k and
 * v; gate and up): the input is converted once, and their chunks are
 * claimed from one counter, matrix after matrix, so one dispatch and one
 * pair of barriers serve them all, and the threads only wait for each
 * other once at the end (decode on Zen 3, 2 threads, against one call per
 * matrix, rounds alternated in one process: tg32 +2.5% Q4_0, +4-5% Q8_0
 * and Q4_K_M, +10% F16, with the shrinking claims below).
 *
 * Chunk sizes: prefill chunks are sized so the chunk's weights stay in
 * L1/L2 while the token block's activations stream through. Decode (n ==
 * 1) streams the weights once: its chunks are small, so that both threads
 * finish together, but a claim takes many of them at first and fewer as
 * they run out (mm_work), so a large matrix costs a few claims and kernel
 * calls, not one per chunk.
 *
 * Repacking: when the variant has a repack slot for the weight type
 * (kern.h tl_repack: rows interleaved so a tile holds one row per lane),
 * the matrix is packed on its first product into a copy the backend owns
 * (the mmap'd original is never written), and every later product runs the
 * packed gemm. Packed copies sit on transparent huge pages where the
 * system allows: under virtualisation, 4 KiB pages cost decode a third of
 * its speed in TLB misses and prefetch stops. The cost is memory: on AVX2,
 * Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q6_K, F16 and BF16 pack to the same
 * size (BF16 rows of odd length: one element more), Q4_K to 1184/1152 of
 * it, Q5_K 1440/1408, Q3_K 912/880 (AVX-512: 16-row groups, Q4_K +2.8%,
 * Q5_K +2.3%, the others as AVX2's; NEON: 4-row groups of Q4_0, Q8_0, Q4_K
 * (+2.8%) and Q6_K). The original is never read again: the model
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

/* One matrix of a job: its chunks are [chunk0, chunk0 + row_chunks) of the
 * job's row chunks (matrices in call order). */
typedef struct mm_part {
    tl_vec_dot_fn dot;
    tl_gemm_fn gemm;
    const uint8_t *x;       /* its activation rows (a job's buffer, or the F32 input) */
    size_t x_row;           /* bytes per activation row */
    const uint8_t *w;
    size_t w_row;           /* bytes per weight row */
    int64_t d;
    float *y;
    const float *bias;      /* (d,) F32 or NULL */
    int rows_per_chunk;
    int chunk0, row_chunks;
} mm_part;

/* Converted activations: rows of the job's type, each followed, where the
 * parts' gemm reads them, by its act_prep entries (kern.h tl_repack). The
 * parts of a job whose gemms want different entries (Q4_K_M's q and k in
 * Q4_K, v in Q6_K) get a buffer each, converted side by side: one dispatch
 * still serves them all. */
typedef struct mm_xbuf {
    uint8_t *x;
    size_t row;             /* bytes per row */
    tl_act_prep_fn prep;    /* NULL: plain rows */
    size_t prep_off;        /* where a row's entries start (tl_act_prep_offset) */
    size_t prep_blk;        /* their bytes per block */
} mm_xbuf;

typedef struct mm_job {
    tl_pool *pool;
    const float *xf;        /* original F32 activations (for conversion) */
    tl_from_float_fn conv;  /* NULL when the parts read xf as is */
    int x_qk;               /* elements per block of the converted type */
    size_t x_blk;           /* bytes per block of the converted type */
    mm_xbuf buf[TL_MATMUL_MULTI_MAX];
    int n_bufs;
    int64_t k;
    int n;
    mm_part part[TL_MATMUL_MULTI_MAX];
    int n_parts;
    int row_chunks;         /* of every part */
    int tok_blocks;
    bool guided;            /* claims of several chunks (see mm_work) */
    atomic_int next;
} mm_job;

// W rows [r0, r1) of part p @ x tokens [t0, t1) -> its y
static void mm_chunk(const mm_job *j, const mm_part *p, int64_t r0, int64_t r1, int t0, int t1) {
    if (p->gemm) {
        p->gemm(j->k, r1 - r0, t1 - t0, p->y + (size_t)t0 * p->d + r0, (size_t)p->d,
                p->w + r0 * p->w_row, p->w_row, p->x + (size_t)t0 * p->x_row, p->x_row);
    } else {
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *wr = p->w + r * p->w_row;
            for (int t = t0; t < t1; t++)
                p->dot(j->k, p->y + (size_t)t * p->d + r, wr, p->x + (size_t)t * p->x_row);
        }
    }
    if (p->bias)
        for (int t = t0; t < t1; t++)
            for (int64_t r = r0; r < r1; r++) p->y[(size_t)t * p->d + r] += p->bias[r];
}

// the job's row chunks [c0, c1), in whichever parts they fall, x tokens [t0, t1)
static void mm_chunks(const mm_job *j, int c0, int c1, int t0, int t1) {
    for (int i = 0; i < j->n_parts; i++) {
        const mm_part *p = &j->part[i];
        const int a = c0 > p->chunk0 ? c0 : p->chunk0;
        const int e = c1 < p->chunk0 + p->row_chunks ? c1 : p->chunk0 + p->row_chunks;
        if (a >= e) continue;
        const int64_t r0 = (int64_t)(a - p->chunk0) * p->rows_per_chunk;
        const int64_t r1 = (int64_t)(e - p->chunk0) * p->rows_per_chunk;
        mm_chunk(j, p, r0, r1 < p->d ? r1 : p->d, t0, t1);
    }
}

// blocks [b0, b1) of activation row i into buffer u: converted, then prepared
static void mm_convert(const mm_job *j, const mm_xbuf *u, int i, int64_t b0, int64_t b1) {
    uint8_t *row = u->x + (size_t)i * u->row;
    j->conv(j->xf + (size_t)i * j->k + (size_t)b0 * j->x_qk, row + (size_t)b0 * j->x_blk,
            (b1 - b0) * j->x_qk);
    if (u->prep) u->prep(row + u->prep_off + (size_t)b0 * u->prep_blk, row + (size_t)b0 * j->x_blk, b1 - b0);
}

static void mm_work(void *arg, int ith, int nth) {
    mm_job *j = arg;
    if (j->conv) {
        const int64_t nb = j->k / j->x_qk;
        for (int u = 0; u < j->n_bufs; u++) {
            if (j->n >= nth) {
                for (int i = ith; i < j->n; i += nth) mm_convert(j, &j->buf[u], i, 0, nb);
            } else {
                /* decode: a row alone would keep the other threads waiting */
                const int64_t b0 = nb * ith / nth, b1 = nb * (ith + 1) / nth;
                for (int i = 0; i < j->n && b1 > b0; i++) mm_convert(j, &j->buf[u], i, b0, b1);
            }
        }
        tl_pool_barrier(j->pool, ith);
    }
    /* chunk c: token block c / row_chunks, row chunk c % row_chunks, so
     * consecutive claims share the token block's activations in cache */
    const int total = j->row_chunks * j->tok_blocks;
    if (j->guided) {
        /* one token block (decode): a claim takes 1/(2 nth) of the chunks
         * left, at least one, and runs them as one call per matrix, so that
         * the many chunks of a large matrix cost a few claims and kernel
         * calls (each call's activation preparation included), and the last
         * claims, a chunk each, still even out the threads' ends */
        int c = atomic_load_explicit(&j->next, memory_order_relaxed);
        while (c < total) {
            int take = (total - c) / (2 * nth);
            if (take < 1) take = 1;
            if (!atomic_compare_exchange_weak_explicit(&j->next, &c, c + take, memory_order_relaxed,
                                                       memory_order_relaxed))
                continue; /* c now holds the counter's value */
            mm_chunks(j, c, c + take, 0, j->n);
            c = atomic_load_explicit(&j->next, memory_order_relaxed);
        }
        return;
    }
    for (;;) {
        const int c = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (c >= total) break;
        const int tb = c / j->row_chunks, rc = c % j->row_chunks;
        const int t0 = tb * TOK_BLOCK, t1 = t0 + TOK_BLOCK < j->n ? t0 + TOK_BLOCK : j->n;
        mm_chunks(j, rc, rc + 1, t0, t1);
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
    tl_cpu_matmul_multi(b, 1, &w, &bias, x, n, &y);
}

/* The activation form a product with w takes: its packed gemm's own act
 * form (kern.h tl_repack) or rows of w's vec_dot_type (conv NULL: the F32
 * input as it is), with the packed gemm's act_prep entries where it has
 * them (rp: the slot); *wp: the packed copy, or NULL. */
typedef struct mm_act {
    tl_dtype type;
    tl_from_float_fn conv;
    const tl_repack *rp;    /* NULL: plain rows */
} mm_act;

static mm_act act_of(tl_cpu *c, const tl_tensor *w, const void **wp) {
    const tl_repack *rp = &c->kern->repack[w->type];
    *wp = c->kern->vec_dot[w->type] ? packed_weights(c, w) : NULL;
    const tl_repack *prep = *wp && rp->act_prep ? rp : NULL;
    if (*wp && rp->act_from_float) return (mm_act){ rp->act_type, rp->act_from_float, prep };
    const tl_dtype vt = tl_dtype_traits_of(w->type)->vec_dot_type;
    if (vt == TL_DTYPE_F32) return (mm_act){ vt, NULL, NULL };
    return (mm_act){ vt, c->kern->from_float[vt], prep };
}

void tl_cpu_matmul_multi(tl_backend *b, int count, const tl_tensor *const w[],
                         const tl_tensor *const bias[], const float *x, int n, float *const y[]) {
    tl_cpu *c = tl_cpu_of(b);
    const void *wp[TL_MATMUL_MULTI_MAX];
    mm_act act[TL_MATMUL_MULTI_MAX];
    bool shared = count <= TL_MATMUL_MULTI_MAX;
    for (int i = 0; i < count && shared; i++) {
        act[i] = act_of(c, w[i], &wp[i]);
        shared = act[i].type == act[0].type && act[i].conv == act[0].conv && w[i]->ne[0] == w[0]->ne[0];
    }
    if (!shared) { /* one input conversion cannot serve them all */
        for (int i = 0; i < count; i++) tl_cpu_matmul_multi(b, 1, &w[i], &bias[i], x, n, &y[i]);
        return;
    }
    mm_job j = { .pool = c->pool, .k = w[0]->ne[0], .n = n, .n_parts = count };
    int buf_of[TL_MATMUL_MULTI_MAX] = { 0 };
    if (act[0].conv) {
        /* a buffer per distinct act_prep among the parts (or none), in one
         * piece of scratch (reserve() sized it for the worst mix) */
        const size_t row = tl_dtype_row_size(act[0].type, j.k);
        size_t bytes = 0;
        for (int i = 0; i < count; i++) {
            const tl_act_prep_fn prep = act[i].rp ? act[i].rp->act_prep : NULL;
            int u = 0;
            while (u < j.n_bufs && j.buf[u].prep != prep) u++;
            if (u == j.n_bufs) {
                mm_xbuf *xb = &j.buf[j.n_bufs++];
                xb->prep = prep;
                xb->row = tl_act_stride(prep ? tl_act_row_bytes(act[i].rp, act[0].type, j.k) : row);
                xb->prep_off = tl_act_prep_offset(row);
                xb->prep_blk = prep ? act[i].rp->act_blk : 0;
                bytes += xb->row * (size_t)n;
            }
            buf_of[i] = u;
        }
        uint8_t *s = tl_cpu_scratch(c, bytes);
        if (!s) return; /* reserve() sized the scratch above this: cannot happen */
        for (int u = 0; u < j.n_bufs; u++) {
            j.buf[u].x = s;
            s += j.buf[u].row * (size_t)n;
        }
        j.xf = x;
        j.conv = act[0].conv;
        j.x_qk = tl_dtype_traits_of(act[0].type)->block_size;
        j.x_blk = tl_dtype_traits_of(act[0].type)->type_size;
    }
    for (int i = 0; i < count; i++) {
        mm_part *p = &j.part[i];
        *p = (mm_part){
            .dot = c->kern->vec_dot[w[i]->type],
            .gemm = c->kern->gemm[w[i]->type],
            .x = act[0].conv ? j.buf[buf_of[i]].x : (const uint8_t *)x,
            .x_row = act[0].conv ? j.buf[buf_of[i]].row : (size_t)j.k * sizeof(float),
            .w = w[i]->data,
            .w_row = tl_tensor_row_bytes(w[i]),
            .d = w[i]->ne[1],
            .y = y[i],
            .bias = bias[i] ? bias[i]->data : NULL,
            .rows_per_chunk = n == 1 ? ROWS_DECODE : ROWS_PREFILL,
        };
        if (wp[i]) {
            /* packed gemm: chunks of whole row groups; 64 rows amortise the
             * per-token activation sums over 8 groups, fewer when d is small
             * so that both threads still get several chunks */
            const int rows = c->kern->repack[w[i]->type].rows;
            p->w = wp[i];
            p->w_row = c->kern->repack[w[i]->type].row_size(j.k);
            p->gemm = c->kern->repack[w[i]->type].gemm;
            p->rows_per_chunk = 8 * rows;
            while (p->rows_per_chunk > rows && p->d / p->rows_per_chunk < 4 * c->n_threads)
                p->rows_per_chunk /= 2;
            p->rows_per_chunk -= p->rows_per_chunk % rows;
        }
        p->chunk0 = j.row_chunks;
        p->row_chunks = (int)((p->d + p->rows_per_chunk - 1) / p->rows_per_chunk);
        j.row_chunks += p->row_chunks;
    }
    j.tok_blocks = (n + TOK_BLOCK - 1) / TOK_BLOCK;
    j.guided = n == 1;
    atomic_init(&j.next, 0);
    tl_pool_run(c->pool, mm_work, &j);
}
