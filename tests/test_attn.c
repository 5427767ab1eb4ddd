/* test_attn.c — the CPU backend's attention (kv_store, then attention)
 * against a naive softmax attention in double precision.
 *
 * The reference reads the values the cache really holds: K and V rounded to
 * f16 for an F16 cache, to Q8_0 blocks for a Q8_0 one (by the reference
 * kernel table's quantizer, which the SIMD ones match bit for bit). A Q8_0
 * cache also scores with the query quantized to Q8_0 after scaling
 * (cpu_attn.c), and the reference does the same, so for every cache type
 * only the float summation order differs: errors stay under 3e-6 of
 * max|V| (the largest with softcap and large scores). The tolerance, 3e-5
 * for every type, is still well below what a real bug does (measured by
 * mutating cpu_attn.c): one key too many at a window's edge moves some
 * output by 1e-4..1.5 of max|V| in every case where the window cuts, a
 * key lost at each split's edge at depth 3000 by 1.7e-4 or more, a split
 * merged without its max by 5e-3 or more, a query head on the wrong KV
 * head by 3e-2 or more.
 *
 * Covered: F32, F16 and Q8_0 caches; MHA, GQA (8 heads on 1 KV head, 32
 * on 4, 14 on 2), MQA with 40 heads (three units of up to 16 rows per KV
 * head); head sizes 64, 80 (F32/F16) and 128; decode at depths 0..3000 (at
 * 1023 and beyond the keys are split across threads and merged); prefill of
 * 2, 5 and 37 tokens from positions 0, 70, 300 and 1100..1500 (split too);
 * sliding windows of 1, 16, 64, 100 and 1200..2100 keys; softcap; scales
 * other than 1/sqrt(head_dim); 1, 2 and 3 threads. Run with -v for the
 * error of every case.
 * The cache rows past the last query position hold poison (large keys and
 * values) that any read beyond the causal limit would show. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/dtype.h"
#include "core/fp16.h"
#include "harness.h"
#include "kern/kern.h"

enum { N_BE = 3, SLACK = 5 }; /* backends (1, 2, 3 threads); cache rows past the last query */

static const int k_threads[N_BE] = { 1, 2, 3 };

typedef struct acase {
    int n_head, n_head_kv, hd;
    int n_tok, pos0;
    int window;
    float softcap;
    float scale;   /* 0: 1/sqrt(hd) */
    float qamp;    /* query magnitude (scores grow with it) */
} acase;

/* Tolerance, in units of max|V| (what the outputs are averages of); the
 * same for every type, as the reference rounds as the cache does. */
static double tol_of(tl_dtype t) { (void)t; return 3e-5; }

static double worst[TL_DTYPE_COUNT];  /* largest error seen, per type */
static int n_runs;
static bool verbose;

/* x (n,) -> the f32 values a cache row of type t holds for it */
static void round_row(tl_dtype t, const float *x, float *y, int n, void *tmp) {
    const tl_kern *ref = tl_kern_ref();
    switch (t) {
    case TL_DTYPE_F16:
        for (int i = 0; i < n; i++) y[i] = tl_f16_to_f32(tl_f32_to_f16(x[i]));
        break;
    case TL_DTYPE_Q8_0:
        ref->from_float[TL_DTYPE_Q8_0](x, tmp, n);
        ref->to_float[TL_DTYPE_Q8_0](tmp, y, n);
        break;
    default:
        memcpy(y, x, sizeof(float) * (size_t)n);
        break;
    }
}

/* The case's inputs, generated once and shared by the cache types:
 * prefix K/V rows (positions < pos0, strided as a separate projection
 * would be), the query tokens' fused q|k|v rows, and poison rows. */
typedef struct inputs {
    int n_pos, n_ctx, kvw, pre_stride, qkv_stride;
    float *kpre, *vpre; /* (pos0, pre_stride) */
    float *qkv;         /* (n_tok, qkv_stride): q (n_head*hd) | k (kvw) | v (kvw) */
    float *kpoi, *vpoi; /* (SLACK, kvw) */
} inputs;

static void inputs_make(const acase *c, inputs *in) {
    in->n_pos = c->pos0 + c->n_tok;
    in->n_ctx = (in->n_pos + SLACK + TL_KV_CTX_ALIGN - 1) / TL_KV_CTX_ALIGN * TL_KV_CTX_ALIGN;
    in->kvw = c->n_head_kv * c->hd;
    in->pre_stride = in->kvw + 7;
    in->qkv_stride = c->n_head * c->hd + 2 * in->kvw;
    in->kpre = malloc(sizeof(float) * ((size_t)c->pos0 * in->pre_stride + 1));
    in->vpre = malloc(sizeof(float) * ((size_t)c->pos0 * in->pre_stride + 1));
    in->qkv = malloc(sizeof(float) * (size_t)c->n_tok * in->qkv_stride);
    in->kpoi = malloc(sizeof(float) * SLACK * in->kvw);
    in->vpoi = malloc(sizeof(float) * SLACK * in->kvw);
    for (size_t i = 0; i < (size_t)c->pos0 * in->pre_stride; i++) {
        in->kpre[i] = tl_test_normal();
        in->vpre[i] = tl_test_normal();
    }
    const int qw = c->n_head * c->hd;
    for (int t = 0; t < c->n_tok; t++)
        for (int i = 0; i < in->qkv_stride; i++)
            in->qkv[(size_t)t * in->qkv_stride + i] = tl_test_normal() * (i < qw ? c->qamp : 1.0f);
    /* keys scoring far above or below any real one, values far off their range */
    for (int i = 0; i < SLACK * in->kvw; i++) {
        in->kpoi[i] = 30.0f * (tl_test_normal() > 0 ? 1.0f : -1.0f);
        in->vpoi[i] = 1000.0f;
    }
}

static void inputs_free(inputs *in) {
    free(in->kpre);
    free(in->vpre);
    free(in->qkv);
    free(in->kpoi);
    free(in->vpoi);
}

static const float *k_row_of(const acase *c, const inputs *in, int pos) {
    return pos < c->pos0 ? in->kpre + (size_t)pos * in->pre_stride
                         : in->qkv + (size_t)(pos - c->pos0) * in->qkv_stride + c->n_head * c->hd;
}

static const float *v_row_of(const acase *c, const inputs *in, int pos) {
    return pos < c->pos0 ? in->vpre + (size_t)pos * in->pre_stride
                         : in->qkv + (size_t)(pos - c->pos0) * in->qkv_stride + c->n_head * c->hd +
                               in->kvw;
}

/* Naive attention in double over the stored (rounded) K/V -> ref
 * (n_tok, n_head*hd); returns max|V| over the stored real rows. */
static double reference(const acase *c, const inputs *in, tl_dtype t, double *ref) {
    const int hd = c->hd, kvw = in->kvw, group = c->n_head / c->n_head_kv;
    const float scale = c->scale > 0 ? c->scale : 1.0f / sqrtf((float)hd);
    float *kr = malloc(sizeof(float) * (size_t)in->n_pos * kvw);
    float *vr = malloc(sizeof(float) * (size_t)in->n_pos * kvw);
    float *qs = malloc(sizeof(float) * (size_t)hd * 2);
    double *s = malloc(sizeof(double) * (size_t)in->n_pos);
    uint8_t *tmp = malloc(tl_dtype_row_size(TL_DTYPE_Q8_0, kvw > hd ? kvw : hd) + 64);
    double vmax = 0;
    for (int j = 0; j < in->n_pos; j++)
        for (int h = 0; h < c->n_head_kv; h++) {
            round_row(t, k_row_of(c, in, j) + h * hd, kr + (size_t)j * kvw + h * hd, hd, tmp);
            round_row(t, v_row_of(c, in, j) + h * hd, vr + (size_t)j * kvw + h * hd, hd, tmp);
        }
    for (size_t i = 0; i < (size_t)in->n_pos * kvw; i++) vmax = fmax(vmax, fabs(vr[i]));
    for (int ti = 0; ti < c->n_tok; ti++) {
        const int pos = c->pos0 + ti;
        const int lo = c->window > 0 && pos - c->window + 1 > 0 ? pos - c->window + 1 : 0;
        for (int h = 0; h < c->n_head; h++) {
            const int kvh = h / group;
            const float *q = in->qkv + (size_t)ti * in->qkv_stride + (size_t)h * hd;
            /* the query as scored: q * scale in f32, for Q8_0 quantized too */
            for (int d = 0; d < hd; d++) qs[hd + d] = q[d] * scale;
            if (t == TL_DTYPE_Q8_0) round_row(t, qs + hd, qs, hd, tmp);
            else memcpy(qs, qs + hd, sizeof(float) * (size_t)hd);
            double m = -INFINITY, l = 0;
            for (int j = lo; j <= pos; j++) {
                const float *k = kr + (size_t)j * kvw + kvh * hd;
                double a[4] = { 0, 0, 0, 0 }; /* hd % 4 == 0; four sums vectorize */
                for (int d = 0; d < hd; d += 4)
                    for (int i = 0; i < 4; i++) a[i] += (double)qs[d + i] * k[d + i];
                double x = (a[0] + a[1]) + (a[2] + a[3]);
                if (c->softcap > 0) x = c->softcap * tanh(x / c->softcap);
                s[j] = x;
                m = x > m ? x : m;
            }
            double *restrict o = ref + (size_t)ti * c->n_head * hd + (size_t)h * hd;
            memset(o, 0, sizeof(double) * (size_t)hd);
            for (int j = lo; j <= pos; j++) {
                const double w = exp(s[j] - m);
                const float *restrict v = vr + (size_t)j * kvw + kvh * hd;
                l += w;
                for (int d = 0; d < hd; d += 4)
                    for (int i = 0; i < 4; i++) o[d + i] += w * v[d + i];
            }
            for (int d = 0; d < hd; d++) o[d] /= l;
        }
    }
    free(kr);
    free(vr);
    free(qs);
    free(s);
    free(tmp);
    return vmax;
}

static tl_attn_params params_of(const acase *c, const inputs *in, tl_dtype t, int pos0, int n_tok) {
    tl_attn_params p = { 0 };
    p.n_tok = n_tok;
    p.pos0 = pos0;
    p.n_ctx = in->n_ctx;
    p.n_head = c->n_head;
    p.n_head_kv = c->n_head_kv;
    p.head_dim = c->hd;
    p.head_dim_v = c->hd;
    p.scale = c->scale > 0 ? c->scale : 1.0f / sqrtf((float)c->hd);
    p.softcap = c->softcap;
    p.window = c->window;
    p.kv_type = t;
    return p;
}

/* Fills a cache of type t on backend be as the model does (the prefix in
 * two calls, the poison rows, then the query tokens' rows from the fused
 * q|k|v rows), runs attention and returns max|out - ref| (NaN if any
 * output is not finite). */
static double run_backend(tl_backend *be, const acase *c, const inputs *in, tl_dtype t,
                          const double *ref) {
    tl_err err = { 0 };
    const size_t row = tl_dtype_row_size(t, c->hd);
    const size_t cache_bytes = (size_t)in->n_ctx * c->n_head_kv * row;
    const int qw = c->n_head * c->hd;
    CHECKF(be->ops->reserve(be, c->n_tok, in->qkv_stride, &err) == TL_OK, "reserve: %s", err.msg);
    tl_kv_layer kv = { be->ops->alloc(be, cache_bytes), be->ops->alloc(be, cache_bytes) };
    float *out = be->ops->alloc(be, sizeof(float) * (size_t)c->n_tok * qw);
    double e = NAN;
    if (!kv.k || !kv.v || !out) {
        CHECKF(false, "alloc of %zu bytes failed", cache_bytes);
        goto done;
    }
    const int split = c->pos0 / 3;
    if (split > 0) {
        tl_attn_params p = params_of(c, in, t, 0, split);
        be->ops->kv_store(be, &p, &kv, in->kpre, in->pre_stride, in->vpre, in->pre_stride);
    }
    if (c->pos0 > split) {
        tl_attn_params p = params_of(c, in, t, split, c->pos0 - split);
        be->ops->kv_store(be, &p, &kv, in->kpre + (size_t)split * in->pre_stride, in->pre_stride,
                          in->vpre + (size_t)split * in->pre_stride, in->pre_stride);
    }
    tl_attn_params pp = params_of(c, in, t, in->n_pos, SLACK);
    be->ops->kv_store(be, &pp, &kv, in->kpoi, in->kvw, in->vpoi, in->kvw);
    const tl_attn_params p = params_of(c, in, t, c->pos0, c->n_tok);
    be->ops->kv_store(be, &p, &kv, in->qkv + qw, in->qkv_stride, in->qkv + qw + in->kvw,
                      in->qkv_stride);
    for (size_t i = 0; i < (size_t)c->n_tok * qw; i++) out[i] = NAN;
    be->ops->attention(be, &p, in->qkv, in->qkv_stride, &kv, out);
    e = 0;
    for (size_t i = 0; i < (size_t)c->n_tok * qw; i++) {
        const double d = fabs((double)out[i] - ref[i]);
        if (!(d <= e)) e = d; /* NaN sticks */
    }
done:
    be->ops->dealloc(be, kv.k);
    be->ops->dealloc(be, kv.v);
    be->ops->dealloc(be, out);
    return e;
}

static const char *type_name(tl_dtype t) {
    return t == TL_DTYPE_F32 ? "F32" : t == TL_DTYPE_F16 ? "F16" : "Q8_0";
}

static void run_case(tl_backend **bes, const acase *c) {
    static const tl_dtype types[] = { TL_DTYPE_F32, TL_DTYPE_F16, TL_DTYPE_Q8_0 };
    inputs in;
    inputs_make(c, &in);
    double *ref = malloc(sizeof(double) * (size_t)c->n_tok * c->n_head * c->hd);
    for (int ti = 0; ti < 3; ti++) {
        const tl_dtype t = types[ti];
        if (t == TL_DTYPE_Q8_0 && c->hd % 32) continue;
        const double vmax = reference(c, &in, t, ref);
        for (int b = 0; b < N_BE; b++) {
            CHECK(bes[b]->ops->supports(bes[b], TL_OP_ATTENTION, t));
            const double e = run_backend(bes[b], c, &in, t, ref) / vmax;
            n_runs++;
            if (!(e <= worst[t])) worst[t] = e;
            if (verbose)
                printf("%-4s heads %2d/%d hd %3d tok %2d pos0 %4d win %4d cap %2g scale %g q %g th %d: %.2e\n",
                       type_name(t), c->n_head, c->n_head_kv, c->hd, c->n_tok, c->pos0, c->window,
                       c->softcap, c->scale, c->qamp, k_threads[b], e);
            CHECKF(e <= tol_of(t),
                   "%s n_head %d/%d hd %d n_tok %d pos0 %d window %d softcap %g scale %g qamp %g "
                   "threads %d: max|out - ref| = %.3g max|V| (tolerance %.1g)",
                   type_name(t), c->n_head, c->n_head_kv, c->hd, c->n_tok, c->pos0, c->window,
                   c->softcap, c->scale, c->qamp, k_threads[b], e, tol_of(t));
        }
    }
    free(ref);
    inputs_free(&in);
}

static acase mk(int nh, int nkv, int hd, int n_tok, int pos0) {
    acase c = { nh, nkv, hd, n_tok, pos0, 0, 0.0f, 0.0f, 1.0f };
    return c;
}

int main(int argc, char **argv) {
    verbose = argc > 1 && !strcmp(argv[1], "-v");
    tl_test_seed(0xA77E17);
    tl_err err = { 0 };
    tl_backend *bes[N_BE] = { 0 };
    for (int b = 0; b < N_BE; b++)
        if (tl_backend_cpu_init(k_threads[b], &bes[b], &err) != TL_OK) {
            CHECKF(false, "tl_backend_cpu_init(%d): %s", k_threads[b], err.msg);
            for (int i = 0; i < b; i++) tl_backend_free(bes[i]);
            return tl_test_finish("test_attn", 0);
        }

    /* shapes: MHA, GQA 8 heads / 1, 32 / 4, 14 / 2 (groups of 7), MQA 40 / 1
     * (three units per KV head), head size 80 (no Q8_0) */
    static const int shapes[][3] = {
        { 4, 4, 64 }, { 8, 1, 128 }, { 32, 4, 64 }, { 14, 2, 64 }, { 40, 1, 64 }, { 4, 2, 80 },
    };
    const int n_shapes = (int)(sizeof shapes / sizeof shapes[0]);
    static const int prefill_tok[] = { 2, 5, 37 }, prefill_pos[] = { 0, 70, 300 };

    /* prefill across tiles and token blocks, plain attention */
    for (int s = 0; s < n_shapes; s++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) {
                acase c = mk(shapes[s][0], shapes[s][1], shapes[s][2], prefill_tok[i], prefill_pos[j]);
                run_case(bes, &c);
            }
    /* decode at short depths (no key split) */
    static const int dec_pos[] = { 0, 1, 63, 64, 130 };
    for (int s = 0; s < n_shapes; s++)
        for (int j = 0; j < 5; j++) {
            acase c = mk(shapes[s][0], shapes[s][1], shapes[s][2], 1, dec_pos[j]);
            run_case(bes, &c);
        }
    /* MQA and MHA at head size 128 */
    {
        acase cs[] = { mk(40, 1, 128, 5, 70), mk(40, 1, 128, 1, 300), mk(2, 2, 128, 37, 70),
                       mk(2, 2, 128, 1, 200) };
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) run_case(bes, &cs[i]);
    }
    /* deep decode: the keys split across threads (depth >= 1023), windows
     * that keep or stop the split, and its prefill analogue (few units);
     * then windows of 1 and 64 keys */
    {
        acase cs[] = {
            mk(8, 1, 128, 1, 1023), mk(8, 1, 128, 1, 3000), mk(32, 4, 64, 1, 1100),
            mk(32, 4, 64, 1, 3000), mk(40, 1, 64, 1, 2500), mk(14, 2, 64, 1, 1500),
            mk(4, 2, 80, 1, 2047), mk(8, 1, 128, 1, 3000), mk(8, 1, 128, 1, 3000),
            mk(32, 4, 64, 1, 3000), mk(8, 1, 128, 2, 1500), mk(8, 1, 128, 5, 1500),
            mk(40, 1, 64, 2, 1100), mk(14, 2, 64, 3, 1200), mk(4, 4, 64, 5, 70),
            mk(8, 1, 128, 37, 100),
        };
        cs[7].window = 1500;  /* span 1500: two splits past the window's start */
        cs[8].window = 100;   /* span 100: no split */
        cs[9].window = 2100;
        cs[11].window = 1200;
        cs[13].softcap = 30.0f;
        cs[13].qamp = 12.0f;
        cs[14].window = 1;    /* each query sees itself only */
        cs[15].window = 64;   /* exactly one tile */
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) run_case(bes, &cs[i]);
    }
    /* sliding windows, softcap (queries large enough for it to bite), other
     * scales, on MHA, a group of 7, MQA and a group of 8 at head size 128 */
    static const struct {
        int window;
        float softcap, scale, qamp;
    } vars[] = {
        { 16, 0, 0, 1 }, { 100, 0, 0, 1 }, { 0, 30, 0, 12 }, { 16, 30, 0, 12 },
        { 0, 0, 0.0625f, 1 }, { 100, 0, 0.3f, 1 },
    };
    static const int var_shapes[] = { 0, 3, 4, 1 };
    static const int var_tp[][2] = { { 1, 70 }, { 1, 300 }, { 5, 70 }, { 5, 300 }, { 37, 70 } };
    for (int si = 0; si < 4; si++)
        for (int i = 0; i < 5; i++)
            for (size_t v = 0; v < sizeof vars / sizeof vars[0]; v++) {
                const int *sh = shapes[var_shapes[si]];
                acase c = mk(sh[0], sh[1], sh[2], var_tp[i][0], var_tp[i][1]);
                c.window = vars[v].window;
                c.softcap = vars[v].softcap;
                c.scale = vars[v].scale;
                c.qamp = vars[v].qamp;
                run_case(bes, &c);
            }

    printf("%d runs; worst max|out - ref| / max|V|: F32 %.2e, F16 %.2e, Q8_0 %.2e (tolerance %.0e)\n",
           n_runs, worst[TL_DTYPE_F32], worst[TL_DTYPE_F16], worst[TL_DTYPE_Q8_0],
           tol_of(TL_DTYPE_F32));
    for (int b = 0; b < N_BE; b++) tl_backend_free(bes[b]);
    return tl_test_finish("test_attn", 0);
}
