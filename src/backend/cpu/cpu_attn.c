/* cpu_attn.c — causal attention over the KV cache, flash style.
 *
 * Work goes in units of R query rows that share one KV head: up to
 * ROWS_MAX of a GQA group's heads, for one or several consecutive tokens
 * (so MHA prefill still gets 16 rows a unit). A unit makes one pass over
 * its keys in tiles of KEY_TILE with an online softmax: the tile's scores
 * for all R rows at once (each K row read and converted once for the R
 * queries), per row the causal / sliding-window mask, softcap, a rescale of
 * the accumulator when the running max grows, and the softmax weights; then
 * the V rows accumulated into all R rows at once. No (n_tok, n_ctx) score
 * matrix is materialised. Units are claimed from an atomic counter, the
 * longest (last tokens) first.
 *
 * Decode has few units (one per KV head and head group), so a long cache
 * is also split along the keys ("flash decoding"): each split keeps its
 * running max, sum and unnormalised output, and after a pool barrier the
 * threads merge the splits of each (token, head).
 *
 * The query is scaled before the scores (q * scale) . k rather than after.
 * The cache's element type only changes how a tile of scores is computed
 * and how a tile of V rows is accumulated (k_fmt below):
 *   F32   q . K[j] by vec_dot F32, V rows added in F32;
 *   F16   the kernel table's attention tiles attn_qk_f16 and attn_pv_f16;
 *         K is kept in blocks of 8 positions with the positions in the
 *         lanes (kern.h), so units and splits start on a block;
 *   Q8_0  rows are blocks of 32 along head_dim (one scale each); q is
 *         quantized to Q8_0 once per row, so scores are integer dot
 *         products (as the reference engine converts q to K's vec_dot
 *         type): attn_qk_q8_0; V rows by attn_pv_q8_0, which dequantizes
 *         on the fly with the block scale folded into the softmax weight. */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu.h"

/* an F16 K block never straddles two heads (backend.h) */
static_assert(TL_KV_CTX_ALIGN % TL_KV_KEYS == 0, "cache rows hold whole K blocks");

enum {
    KEY_TILE = 64,     /* keys per tile: a tile's scores stay in L1 */
    ROWS_MAX = 16,     /* query rows per unit */
    SPLIT_KEYS = 512,  /* fewest keys per split of a decode unit */
    SPLIT_MAX = 16,
};
static_assert(KEY_TILE % TL_KV_KEYS == 0, "tiles start on a K block");

typedef struct attn_job attn_job;

/* One cache element type. qc: R query rows converted to q_type, qc_row
 * bytes apart; k and v point at the tile's first cache row of the KV head,
 * later rows are k_row / v_row bytes apart; s and p are R rows of KEY_TILE
 * floats. */
typedef struct kv_fmt {
    tl_dtype q_type;
    // Q (R, hd) . K[i] (hd,) for i < nt -> s (R, nt), unscaled
    void (*scores)(const attn_job *jb, int R, const uint8_t *qc, const uint8_t *k, int nt, float *s);
    // o (R, hdv) += p (R, nt) @ V (nt, hdv)
    void (*accum)(const attn_job *jb, int R, float *o, const float *p, const uint8_t *v, int nt);
    // x (n,) f32 -> dst (n,) cache row (one KV head at one position)
    void (*store)(const tl_kern *kern, const float *x, void *dst, int64_t n);
    // the same for K, into head's cache at position pos; NULL: store, at row pos
    void (*store_k)(const tl_kern *kern, const float *x, uint8_t *head, int pos, int64_t n);
} kv_fmt;

struct attn_job {
    const tl_kern *kern;
    tl_pool *pool;
    const tl_attn_params *p;
    const kv_fmt *fmt;
    const float *q;
    int q_stride;
    const tl_kv_layer *kv;
    size_t k_row, v_row;   /* bytes per cache row of one KV head */
    size_t k_head, v_head; /* bytes per KV head: n_ctx rows */
    size_t qc_row;         /* bytes of a query converted to fmt->q_type */
    int group;             /* query heads per KV head */
    int hg, n_hsub;        /* heads per unit, head subgroups per KV head */
    int tb, n_tb;          /* tokens per unit, token blocks */
    int rows;              /* most rows a unit has: tb * hg */
    int n_split, units;
    float *out;
    float *part;           /* n_split > 1: per unit and row, m, l, o (hdv) */
    uint8_t *scratch;      /* per thread: thread_bytes (see tl_cpu_attention) */
    size_t thread_bytes;
    atomic_int next;
};

static void scores_f32(const attn_job *jb, int R, const uint8_t *qc, const uint8_t *k, int nt,
                       float *s) {
    const int hd = jb->p->head_dim;
    for (int r = 0; r < R; r++)
        for (int i = 0; i < nt; i++)
            jb->kern->vec_dot[TL_DTYPE_F32](hd, &s[r * KEY_TILE + i], k + i * jb->k_row,
                                            qc + r * jb->qc_row);
}

// y (n,) += a * x (n,); restrict lets the compiler vectorise it
static inline void add_scaled(int n, float *restrict y, float a, const float *restrict x) {
    for (int d = 0; d < n; d++) y[d] += a * x[d];
}

static void accum_f32(const attn_job *jb, int R, float *o, const float *p, const uint8_t *v, int nt) {
    const int hdv = jb->p->head_dim_v;
    for (int r = 0; r < R; r++)
        for (int i = 0; i < nt; i++)
            add_scaled(hdv, o + r * hdv, p[r * KEY_TILE + i], (const float *)(v + i * jb->v_row));
}

static void scores_f16(const attn_job *jb, int R, const uint8_t *qc, const uint8_t *k, int nt,
                       float *s) {
    jb->kern->attn_qk_f16(R, nt, jb->p->head_dim, (const float *)qc, (const uint16_t *)k, s, KEY_TILE);
}

static void accum_f16(const attn_job *jb, int R, float *o, const float *p, const uint8_t *v, int nt) {
    jb->kern->attn_pv_f16(R, nt, jb->p->head_dim_v, o, p, KEY_TILE, (const uint16_t *)v,
                          jb->v_row / sizeof(uint16_t));
}

static void scores_q8_0(const attn_job *jb, int R, const uint8_t *qc, const uint8_t *k, int nt,
                        float *s) {
    jb->kern->attn_qk_q8_0(R, nt, jb->p->head_dim, qc, k, jb->k_row, s, KEY_TILE);
}

/* V[i] = d_b * qs per block b: the block scale folds into the softmax
 * weight, so no dequantized copy of a row is made */
static void accum_q8_0(const attn_job *jb, int R, float *o, const float *p, const uint8_t *v, int nt) {
    jb->kern->attn_pv_q8_0(R, nt, jb->p->head_dim_v, o, p, KEY_TILE, v, jb->v_row);
}

static void store_f32(const tl_kern *kern, const float *x, void *dst, int64_t n) {
    (void)kern;
    memcpy(dst, x, sizeof(float) * (size_t)n);
}

/* the kernel table's F16 conversion: round to nearest even in every variant */
static void store_f16(const tl_kern *kern, const float *x, void *dst, int64_t n) {
    kern->from_float[TL_DTYPE_F16](x, dst, n);
}

/* K at position pos into its block of TL_KV_KEYS positions: dim d of the
 * block's position j at element d * TL_KV_KEYS + j (kern.h's attn_qk_f16) */
static void store_k_f16(const tl_kern *kern, const float *x, uint8_t *head, int pos, int64_t n) {
    uint16_t *blk = (uint16_t *)head + (size_t)(pos / TL_KV_KEYS) * TL_KV_KEYS * (size_t)n;
    blk += pos % TL_KV_KEYS;
    uint16_t h[8]; /* 8 dims at a time through the table's F16 conversion */
    for (int64_t d0 = 0; d0 < n; d0 += 8) {
        const int64_t m = n - d0 < 8 ? n - d0 : 8;
        kern->from_float[TL_DTYPE_F16](x + d0, h, m);
        for (int64_t d = 0; d < m; d++) blk[(size_t)(d0 + d) * TL_KV_KEYS] = h[d];
    }
}

/* head_dim % 32 == 0 (checked at context creation), so a row's blocks
 * never straddle two heads; the activation quantizer, as the reference
 * engine's cache writes */
static void store_q8_0(const tl_kern *kern, const float *x, void *dst, int64_t n) {
    kern->from_float[TL_DTYPE_Q8_0](x, dst, n);
}

static const kv_fmt k_fmt[TL_DTYPE_COUNT] = {
    [TL_DTYPE_F32] = { TL_DTYPE_F32, scores_f32, accum_f32, store_f32, NULL },
    [TL_DTYPE_F16] = { TL_DTYPE_F32, scores_f16, accum_f16, store_f16, store_k_f16 },
    [TL_DTYPE_Q8_0] = { TL_DTYPE_Q8_0, scores_q8_0, accum_q8_0, store_q8_0, NULL },
};

bool tl_cpu_kv_supports(const tl_kern *kern, tl_dtype type) {
    if ((unsigned)type >= TL_DTYPE_COUNT || !k_fmt[type].scores) return false;
    /* Q8_0 rows are written by from_float and read by the Q8_0 tiles */
    return type != TL_DTYPE_Q8_0 ||
           (kern->from_float[type] && kern->attn_qk_q8_0 && kern->attn_pv_q8_0);
}

/* A unit's rows: tokens t0 .. t0 + nt_tok - 1 (row r: token t0 + r / nh)
 * times query heads h0 .. h0 + nh - 1 (head h0 + r % nh), keys [k0, k1). */
typedef struct unit {
    int t0, nt_tok, h0, nh, k0, k1;
} unit;

// positions a query at position pos sees: [first_key(pos), pos]
static int first_key(const tl_attn_params *p, int pos) {
    return p->window > 0 && pos - p->window + 1 > 0 ? pos - p->window + 1 : 0;
}

/* the start of split sp of n over keys [lo, hi): a block start, hi for sp = n */
static int split_at(int lo, int hi, int sp, int n) {
    if (sp == n) return hi;
    return lo + (int)((int64_t)(hi - lo) * sp / n) / TL_KV_KEYS * TL_KV_KEYS;
}

static unit unit_of(const attn_job *jb, int u) {
    const tl_attn_params *p = jb->p;
    const int sp = u % jb->n_split, hs = u / jb->n_split % jb->n_hsub;
    const int hkv = u / jb->n_split / jb->n_hsub % p->n_head_kv;
    const int tbi = u / jb->n_split / jb->n_hsub / p->n_head_kv;
    unit x;
    x.t0 = tbi * jb->tb;
    x.nt_tok = p->n_tok - x.t0 < jb->tb ? p->n_tok - x.t0 : jb->tb;
    x.h0 = hkv * jb->group + hs * jb->hg;
    x.nh = jb->group - hs * jb->hg < jb->hg ? jb->group - hs * jb->hg : jb->hg;
    /* the union of the tokens' visible keys from a block start (the mask
     * drops the keys before lo), split evenly on block starts */
    const int lo = first_key(p, p->pos0 + x.t0) / TL_KV_KEYS * TL_KV_KEYS;
    const int hi = p->pos0 + x.t0 + x.nt_tok;
    x.k0 = split_at(lo, hi, sp, jb->n_split);
    x.k1 = split_at(lo, hi, sp + 1, jb->n_split);
    return x;
}

/* Per-thread buffers: the converted queries (R rows of qc_row bytes), one
 * f32 query row to convert from, the scores (R x KEY_TILE), the outputs
 * (R x hdv), and the running max and sum per row. */
typedef struct unit_buf {
    uint8_t *qc;
    float *qf, *s, *o, *m, *l;
} unit_buf;

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static size_t unit_buf_bytes(const attn_job *jb) {
    const size_t rows = (size_t)jb->rows;
    return align64(rows * jb->qc_row) + align64(sizeof(float) * (size_t)jb->p->head_dim) +
           align64(sizeof(float) * rows * (KEY_TILE + (size_t)jb->p->head_dim_v + 2));
}

static unit_buf unit_buf_at(const attn_job *jb, uint8_t *base) {
    const size_t rows = (size_t)jb->rows;
    unit_buf b;
    b.qc = base;
    b.qf = (float *)(base + align64(rows * jb->qc_row));
    b.s = (float *)((uint8_t *)b.qf + align64(sizeof(float) * (size_t)jb->p->head_dim));
    b.o = b.s + rows * KEY_TILE;
    b.m = b.o + rows * (size_t)jb->p->head_dim_v;
    b.l = b.m + rows;
    return b;
}

/* Row r's scores s (nt,) over keys k0 + i: masked to the row's visible
 * keys (-inf), softcapped, turned into softmax weights against the running
 * max m (the row's output o rescaled when it grows), their sum added to l. */
static void softmax_row(const attn_job *jb, int pos, int k0, int nt, float *s, float *o,
                        float *m, float *l) {
    const tl_attn_params *p = jb->p;
    const int lo = first_key(p, pos) - k0, hi = pos + 1 - k0;
    const int a = lo > 0 ? lo : 0, b = hi < nt ? hi : nt;
    if (b <= a) { /* nothing visible in this tile */
        memset(s, 0, sizeof(float) * (size_t)nt);
        return;
    }
    if (p->softcap > 0)
        for (int i = a; i < b; i++) s[i] = p->softcap * tanhf(s[i] / p->softcap);
    const float tmax = jb->kern->max_f32(b - a, s + a);
    for (int i = 0; i < a; i++) s[i] = -INFINITY;
    for (int i = b; i < nt; i++) s[i] = -INFINITY;
    if (tmax > *m) {
        /* earlier weights shrink by e^(m - tmax); none yet on the first tile */
        if (*l > 0) {
            const float r = expf(*m - tmax);
            jb->kern->scale(p->head_dim_v, o, r);
            *l *= r;
        }
        *m = tmax;
    }
    *l += jb->kern->exp_sum(nt, s, *m);
}

static void run_unit(const attn_job *jb, int u, const unit_buf *b) {
    const tl_attn_params *p = jb->p;
    const tl_kern *kn = jb->kern;
    const kv_fmt *f = jb->fmt;
    const unit x = unit_of(jb, u);
    const int R = x.nt_tok * x.nh, hd = p->head_dim, hdv = p->head_dim_v;
    const int kvh = x.h0 / jb->group;
    for (int r = 0; r < R; r++) {
        /* q * scale, converted to the scores' type */
        const float *q = jb->q + (size_t)(x.t0 + r / x.nh) * jb->q_stride + (size_t)(x.h0 + r % x.nh) * hd;
        float *qs = f->q_type == TL_DTYPE_F32 ? (float *)(b->qc + r * jb->qc_row) : b->qf;
        memcpy(qs, q, sizeof(float) * (size_t)hd);
        kn->scale(hd, qs, p->scale);
        if (f->q_type != TL_DTYPE_F32) kn->from_float[f->q_type](qs, b->qc + r * jb->qc_row, hd);
        b->m[r] = -INFINITY;
        b->l[r] = 0.0f;
    }
    memset(b->o, 0, sizeof(float) * (size_t)R * hdv);
    const uint8_t *kb = (const uint8_t *)jb->kv->k + kvh * jb->k_head;
    const uint8_t *vb = (const uint8_t *)jb->kv->v + kvh * jb->v_head;
    for (int k0 = x.k0; k0 < x.k1; k0 += KEY_TILE) {
        const int nt = x.k1 - k0 < KEY_TILE ? x.k1 - k0 : KEY_TILE;
        f->scores(jb, R, b->qc, kb + (size_t)k0 * jb->k_row, nt, b->s);
        for (int r = 0; r < R; r++)
            softmax_row(jb, p->pos0 + x.t0 + r / x.nh, k0, nt, b->s + r * KEY_TILE, b->o + r * hdv,
                        &b->m[r], &b->l[r]);
        f->accum(jb, R, b->o, b->s, vb + (size_t)k0 * jb->v_row, nt);
    }
    for (int r = 0; r < R; r++) {
        const int t = x.t0 + r / x.nh, h = x.h0 + r % x.nh;
        if (jb->n_split > 1) {
            float *pr = jb->part + ((size_t)u * jb->rows + r) * (size_t)(hdv + 2);
            pr[0] = b->m[r];
            pr[1] = b->l[r];
            memcpy(pr + 2, b->o + r * hdv, sizeof(float) * (size_t)hdv);
        } else {
            float *o = jb->out + (size_t)t * p->n_head * hdv + (size_t)h * hdv;
            memcpy(o, b->o + r * hdv, sizeof(float) * (size_t)hdv);
            kn->scale(hdv, o, b->l[r] > 0 ? 1.0f / b->l[r] : 0.0f);
        }
    }
}

/* out row of (token t, head h) from its n_split partial results */
static void merge_splits(const attn_job *jb, int t, int h) {
    const tl_attn_params *p = jb->p;
    const int hdv = p->head_dim_v;
    const int hs = h % jb->group / jb->hg, hh = h % jb->group % jb->hg;
    const int nh = jb->group - hs * jb->hg < jb->hg ? jb->group - hs * jb->hg : jb->hg;
    const int u0 = (((t / jb->tb) * p->n_head_kv + h / jb->group) * jb->n_hsub + hs) * jb->n_split;
    const int r = t % jb->tb * nh + hh;
    const float *pr[SPLIT_MAX];
    float mx = -INFINITY;
    for (int sp = 0; sp < jb->n_split; sp++) {
        pr[sp] = jb->part + ((size_t)(u0 + sp) * jb->rows + r) * (size_t)(hdv + 2);
        if (pr[sp][1] > 0 && pr[sp][0] > mx) mx = pr[sp][0];
    }
    float *o = jb->out + (size_t)t * p->n_head * hdv + (size_t)h * hdv;
    memset(o, 0, sizeof(float) * (size_t)hdv);
    float l = 0.0f;
    for (int sp = 0; sp < jb->n_split; sp++) {
        if (!(pr[sp][1] > 0)) continue;
        const float w = expf(pr[sp][0] - mx);
        l += w * pr[sp][1];
        for (int d = 0; d < hdv; d++) o[d] += w * pr[sp][2 + d];
    }
    const float inv = l > 0 ? 1.0f / l : 0.0f;
    for (int d = 0; d < hdv; d++) o[d] *= inv;
}

static void attn_work(void *arg, int ith, int nth) {
    attn_job *jb = arg;
    const unit_buf b = unit_buf_at(jb, jb->scratch + (size_t)ith * jb->thread_bytes);
    for (;;) {
        const int i = atomic_fetch_add_explicit(&jb->next, 1, memory_order_relaxed);
        if (i >= jb->units) break;
        run_unit(jb, jb->units - 1 - i, &b); /* the last tokens, with the most keys, first */
    }
    if (jb->n_split == 1) return;
    tl_pool_barrier(jb->pool, ith);
    const int pairs = jb->p->n_tok * jb->p->n_head;
    for (int i = pairs * ith / nth; i < pairs * (ith + 1) / nth; i++)
        merge_splits(jb, i / jb->p->n_head, i % jb->p->n_head);
}

void tl_cpu_attention(tl_backend *b, const tl_attn_params *p, const float *q, int q_stride,
                      const tl_kv_layer *kv, float *out) {
    tl_cpu *c = tl_cpu_of(b);
    const tl_dtype kt = p->kv_type;
    attn_job jb = { .kern = c->kern, .pool = c->pool, .p = p, .fmt = &k_fmt[kt], .q = q,
                    .q_stride = q_stride, .kv = kv, .out = out };
    jb.k_row = tl_dtype_row_size(kt, p->head_dim);
    jb.v_row = tl_dtype_row_size(kt, p->head_dim_v);
    jb.k_head = jb.k_row * (size_t)p->n_ctx;
    jb.v_head = jb.v_row * (size_t)p->n_ctx;
    jb.qc_row = tl_dtype_row_size(jb.fmt->q_type, p->head_dim);
    /* units: up to ROWS_MAX heads of a group, times as many tokens as fit */
    jb.group = p->n_head / p->n_head_kv;
    jb.hg = jb.group < ROWS_MAX ? jb.group : ROWS_MAX;
    jb.n_hsub = (jb.group + jb.hg - 1) / jb.hg;
    jb.tb = ROWS_MAX / jb.hg < p->n_tok ? ROWS_MAX / jb.hg : p->n_tok;
    jb.rows = jb.tb * jb.hg;
    jb.n_tb = (p->n_tok + jb.tb - 1) / jb.tb;
    const int units = jb.n_tb * p->n_head_kv * jb.n_hsub;
    /* too few units for the threads: split the keys, SPLIT_KEYS at least each */
    jb.n_split = 1;
    const int span = p->pos0 + p->n_tok - first_key(p, p->pos0);
    if (units < 4 * c->n_threads && span >= 2 * SPLIT_KEYS) {
        const int want = (4 * c->n_threads + units - 1) / units, by_keys = span / SPLIT_KEYS;
        jb.n_split = want < by_keys ? want : by_keys;
        if (jb.n_split > SPLIT_MAX) jb.n_split = SPLIT_MAX;
    }
    jb.units = units * jb.n_split;
    /* per-thread buffers on their own cache lines, then the splits' results */
    jb.thread_bytes = unit_buf_bytes(&jb);
    const size_t threads_bytes = jb.thread_bytes * (size_t)c->n_threads;
    const size_t part_bytes = jb.n_split > 1
        ? sizeof(float) * (size_t)jb.units * jb.rows * (size_t)(p->head_dim_v + 2) : 0;
    jb.scratch = tl_cpu_scratch(c, threads_bytes + part_bytes);
    if (!jb.scratch) return; /* reserve() sized the scratch far above this */
    jb.part = (float *)(jb.scratch + threads_bytes);
    atomic_init(&jb.next, 0);
    tl_pool_run(c->pool, attn_work, &jb);
}

/* The cache keeps each KV head's n_ctx rows together (head-major): a unit
 * of attention streams its head's keys and values from two contiguous runs,
 * which the hardware prefetchers follow, rather than a 128-byte slice of
 * every 512-byte row (Zen 3, bench/attnbench, decode at depth 2048, 4 KV
 * heads of 64, 2 threads: 0.76 -> 0.43 ms a layer). */
void tl_cpu_kv_store(tl_backend *b, const tl_attn_params *p, tl_kv_layer *kv, const float *k,
                     int k_stride, const float *v, int v_stride) {
    const tl_kern *kn = tl_cpu_of(b)->kern;
    const kv_fmt *f = &k_fmt[p->kv_type];
    const size_t k_row = tl_dtype_row_size(p->kv_type, p->head_dim);
    const size_t v_row = tl_dtype_row_size(p->kv_type, p->head_dim_v);
    for (int h = 0; h < p->n_head_kv; h++)
        for (int t = 0; t < p->n_tok; t++) {
            const size_t row = (size_t)h * p->n_ctx + (size_t)(p->pos0 + t);
            const float *kt = k + (size_t)t * k_stride + (size_t)h * p->head_dim;
            if (f->store_k)
                f->store_k(kn, kt, (uint8_t *)kv->k + (size_t)h * p->n_ctx * k_row, p->pos0 + t,
                           p->head_dim);
            else
                f->store(kn, kt, (uint8_t *)kv->k + row * k_row, p->head_dim);
            f->store(kn, v + (size_t)t * v_stride + (size_t)h * p->head_dim_v,
                     (uint8_t *)kv->v + row * v_row, p->head_dim_v);
        }
}
