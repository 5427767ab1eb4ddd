/* test_arch_variants.c — architecture features that no shared fixture has:
 * Qwen 3 QK-norm, Llama 3 rope_freqs, linear and YaRN RoPE scaling, Phi-3
 * LongRoPE (short and long factors, attention factor), sliding windows from
 * metadata on `phi3` and Mistral-style `llama` files.
 *
 * Each variant is built deterministically from an F32 fixture with the GGUF
 * writer (keys added or replaced, tensors dropped or computed from fixed
 * formulas), so no model file lives in the repository.
 *
 *   test_arch_variants            kernel-level checks (per-head RMSNorm, YaRN
 *                                 RoPE) and the load errors of broken variants
 *   test_arch_variants --write D  writes every variant to D/NAME.gguf, for
 *                                 tests/test_arch_logits.sh, which compares
 *                                 `torchless logits` on them with llama.cpp's
 *                                 logits stored in tests/data/NAME.logits */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "harness.h"
#include "io/gguf.h"
#include "torchless.h"

/* ---- building variants ------------------------------------------------ */

typedef struct build {
    const tl_gguf *src;
    tl_gguf_writer *w;
    const char *arch;        /* architecture written (prefix of hparam keys) */
    float *bufs[64];         /* computed tensor data, alive until the write */
    int n_bufs;
} build;

static float *buf_new(build *b, size_t n) {
    if (b->n_bufs == (int)(sizeof b->bufs / sizeof b->bufs[0])) return NULL;
    float *p = calloc(n, sizeof(float));
    if (p) b->bufs[b->n_bufs++] = p;
    return p;
}

/* Writes kv's value under `key`, keeping its GGUF type (llama.cpp checks
 * the types of hyperparameter keys). */
static void set_like(tl_gguf_writer *w, const char *key, const tl_gguf_kv *kv) {
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
            uint64_t u64; int64_t i64; float f32; double f64; bool b; } v;
    switch (kv->type) {
    case TL_GGUF_UINT8: v.u8 = (uint8_t)kv->v.u64; break;
    case TL_GGUF_INT8: v.i8 = (int8_t)kv->v.i64; break;
    case TL_GGUF_UINT16: v.u16 = (uint16_t)kv->v.u64; break;
    case TL_GGUF_INT16: v.i16 = (int16_t)kv->v.i64; break;
    case TL_GGUF_UINT32: v.u32 = (uint32_t)kv->v.u64; break;
    case TL_GGUF_INT32: v.i32 = (int32_t)kv->v.i64; break;
    case TL_GGUF_UINT64: v.u64 = kv->v.u64; break;
    case TL_GGUF_INT64: v.i64 = kv->v.i64; break;
    case TL_GGUF_FLOAT32: v.f32 = (float)kv->v.f64; break;
    case TL_GGUF_FLOAT64: v.f64 = kv->v.f64; break;
    case TL_GGUF_BOOL: v.b = kv->v.b; break;
    case TL_GGUF_STRING: {
        char *s = strndup(kv->str.ptr, kv->str.len);
        tl_gguf_writer_set_str(w, key, s ? s : "");
        free(s);
        return;
    }
    case TL_GGUF_ARRAY:
        if (kv->arr_type != TL_GGUF_STRING)
            tl_gguf_writer_set_arr(w, key, kv->arr_type, kv->arr_data, kv->arr_n);
        return;
    default: return;
    }
    tl_gguf_writer_set_scalar(w, key, kv->type, &v);
}

/* Starts a copy of src as architecture `arch`: every key is copied, and the
 * source architecture's hyperparameter keys are also written under the new
 * prefix. Tensors are added by copy_tensors. */
static int build_begin(build *b, const tl_gguf *src, const char *arch) {
    memset(b, 0, sizeof *b);
    b->src = src;
    b->arch = arch;
    tl_err err = { 0 };
    if (tl_gguf_writer_init(&b->w, &err) != TL_OK) return -1;
    tl_gguf_writer_set_str(b->w, "general.architecture", arch);
    tl_gguf_writer_copy_kv(b->w, src);
    tl_gguf_str old;
    if (!tl_gguf_get_str(src, "general.architecture", &old)) return -1;
    for (int64_t i = 0; i < tl_gguf_n_kv(src); i++) {
        const tl_gguf_kv *kv = tl_gguf_kv_at(src, i);
        if (kv->key.len <= old.len + 1 || memcmp(kv->key.ptr, old.ptr, old.len) != 0 ||
            kv->key.ptr[old.len] != '.')
            continue;
        char key[256];
        snprintf(key, sizeof key, "%s.%.*s", arch, (int)(kv->key.len - old.len - 1),
                 kv->key.ptr + old.len + 1);
        set_like(b->w, key, kv);
    }
    return 0;
}

static bool has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Copies every tensor of the source whose name ends in none of drop[]. */
static void copy_tensors(build *b, const char *const *drop) {
    for (int64_t i = 0; i < tl_gguf_n_tensors(b->src); i++) {
        const tl_gguf_tensor *t = tl_gguf_tensor_at(b->src, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        bool skip = false;
        for (int d = 0; drop && drop[d]; d++) skip |= has_suffix(name, drop[d]);
        if (skip) continue;
        tl_gguf_writer_add_tensor(b->w, name, t->type, t->n_dims, t->ne, t->data, t->nbytes);
    }
}

static void add_vec(build *b, const char *name, const float *data, int64_t n) {
    const int64_t ne[4] = { n, 1, 1, 1 };
    tl_gguf_writer_add_tensor(b->w, name, TL_DTYPE_F32, 1, ne, data, (uint64_t)n * sizeof(float));
}

static int build_end(build *b, const char *path) {
    tl_err err = { 0 };
    tl_status rc = tl_gguf_writer_write(b->w, path, &err);
    if (rc != TL_OK) fprintf(stderr, "%s: %s\n", path, err.msg);
    tl_gguf_writer_free(b->w);
    for (int i = 0; i < b->n_bufs; i++) free(b->bufs[i]);
    return rc == TL_OK ? 0 : -1;
}

static int src_int(const tl_gguf *g, const char *key) {
    int64_t v = 0;
    return tl_gguf_get_i64(g, key, &v) ? (int)v : 0;
}

/* "%s.suffix" with the build's architecture, in a static buffer. */
static const char *akey(const build *b, const char *suffix) {
    static char k[128];
    snprintf(k, sizeof k, "%s.%s", b->arch, suffix);
    return k;
}

/* Qwen 3 from the Qwen 2 fixture: no Q/K/V biases, per-head RMSNorm weights
 * of Q and K from a fixed formula. */
static void edit_qwen3(build *b, int variant) {
    static const char *const drop[] = { "attn_q.bias", "attn_k.bias", "attn_v.bias", NULL };
    copy_tensors(b, drop);
    const int n_layer = src_int(b->src, "qwen2.block_count");
    const int hd = src_int(b->src, "qwen2.embedding_length") / src_int(b->src, "qwen2.attention.head_count");
    for (int il = 0; il < n_layer; il++) {
        float *q = buf_new(b, (size_t)hd), *k = buf_new(b, (size_t)hd);
        if (!q || !k) return;
        for (int i = 0; i < hd; i++) {
            q[i] = 1.0f + 0.5f * sinf(0.37f * (float)i + 1.3f * (float)il);
            k[i] = 0.75f + 0.5f * cosf(0.23f * (float)i + 0.7f * (float)il);
        }
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_q_norm.weight", il);
        add_vec(b, name, q, hd);
        snprintf(name, sizeof name, "blk.%d.attn_k_norm.weight", il);
        if (!(variant == 1 && il == 1)) add_vec(b, name, k, hd); /* 1: a missing K norm */
    }
}

/* Llama 3 rope_freqs as llama.cpp's converter computes them (factor 8, low
 * and high frequency factors 1 and 4), for an original context of 64 so that
 * most of the 16 frequencies of a 32-wide head are scaled. */
static void edit_llama3_freqs(build *b, int variant) {
    copy_tensors(b, NULL);
    const int dim = src_int(b->src, "llama.rope.dimension_count");
    float base = 10000.0f;
    tl_gguf_get_f32(b->src, "llama.rope.freq_base", &base);
    const double factor = 8, lo = 1, hi = 4, orig = 64;
    const int n = variant == 1 ? dim / 2 + 1 : dim / 2; /* 1: wrong length */
    float *f = buf_new(b, (size_t)n);
    if (!f) return;
    for (int i = 0; i < n; i++) {
        double freq = 1.0 / pow(base, (double)(2 * i) / dim);
        double wavelen = 2 * M_PI / freq;
        if (wavelen < orig / hi) f[i] = 1.0f;
        else if (wavelen > orig / lo) f[i] = (float)factor;
        else {
            double smooth = (orig / wavelen - lo) / (hi - lo);
            f[i] = (float)(1.0 / ((1 - smooth) / factor + smooth));
        }
    }
    add_vec(b, "rope_freqs.weight", f, n);
}

static void edit_linear4(build *b, int variant) {
    copy_tensors(b, NULL);
    tl_gguf_writer_set_str(b->w, akey(b, "rope.scaling.type"), variant == 1 ? "dynamic-ntk" : "linear");
    tl_gguf_writer_set_f32(b->w, akey(b, "rope.scaling.factor"), 4.0f);
}

static void edit_yarn(build *b, int variant) {
    (void)variant;
    copy_tensors(b, NULL);
    tl_gguf_writer_set_str(b->w, akey(b, "rope.scaling.type"), "yarn");
    tl_gguf_writer_set_f32(b->w, akey(b, "rope.scaling.factor"), 4.0f);
    tl_gguf_writer_set_u32(b->w, akey(b, "rope.scaling.original_context_length"), 256);
}

/* Phi-3 LongRoPE: short factors near 1, long ones up to 14.5, and the
 * attention factor llama.cpp's converter derives for 128k over 4k. The
 * original context decides which set applies to a 40/64-token context:
 * 4096 -> short (variant 0), 16 -> long (variant 1); variant 2 lacks the
 * short factors. */
static void edit_longrope(build *b, int variant) {
    copy_tensors(b, NULL);
    const int n = src_int(b->src, "phi3.rope.dimension_count") / 2;
    float *lf = buf_new(b, (size_t)n), *sf = buf_new(b, (size_t)n);
    if (!lf || !sf) return;
    for (int i = 0; i < n; i++) {
        sf[i] = 1.0f + 0.05f * (float)i;
        lf[i] = 1.0f + 0.9f * (float)i;
    }
    add_vec(b, "rope_factors_long.weight", lf, n);
    if (variant != 2) add_vec(b, "rope_factors_short.weight", sf, n);
    tl_gguf_writer_set_u32(b->w, akey(b, "context_length"), 131072);
    tl_gguf_writer_set_u32(b->w, akey(b, "rope.scaling.original_context_length"),
                           variant == 1 ? 16 : 4096);
    tl_gguf_writer_set_f32(b->w, akey(b, "rope.scaling.attn_factor"),
                           (float)sqrt(1.0 + log(131072.0 / 4096.0) / log(4096.0)));
}

/* A sliding window from metadata: 16 (< 40 tokens) or 64 (>= 40). */
static void edit_swa16(build *b, int variant) {
    (void)variant;
    copy_tensors(b, NULL);
    tl_gguf_writer_set_u32(b->w, akey(b, "attention.sliding_window"), 16);
}
static void edit_swa64(build *b, int variant) {
    (void)variant;
    copy_tensors(b, NULL);
    tl_gguf_writer_set_u32(b->w, akey(b, "attention.sliding_window"), 64);
}

/* phi3 without its fused QKV (and no separate Q/K/V either) */
static void edit_drop_qkv(build *b, int variant) {
    (void)variant;
    static const char *const drop[] = { "blk.0.attn_qkv.weight", NULL };
    copy_tensors(b, drop);
}

typedef struct variant {
    const char *name;     /* output stem; tests/data/NAME.logits is its reference */
    const char *fixture;  /* F32 fixture it is made from */
    const char *arch;
    void (*edit)(build *b, int variant);
    int variant;
    bool broken;          /* must fail to load: not written by --write */
    tl_status want;       /* broken: expected status ... */
    const char *needle;   /* ... and a word of the message */
} variant;

static const variant k_variants[] = {
    { "qwen3", "qwen2", "qwen3", edit_qwen3, 0, false, TL_OK, NULL },
    { "llama-rope-freqs", "llama", "llama", edit_llama3_freqs, 0, false, TL_OK, NULL },
    { "llama-linear4", "llama", "llama", edit_linear4, 0, false, TL_OK, NULL },
    { "llama-yarn4", "llama", "llama", edit_yarn, 0, false, TL_OK, NULL },
    { "phi3-longrope-short", "phi3", "phi3", edit_longrope, 0, false, TL_OK, NULL },
    { "phi3-longrope-long", "phi3", "phi3", edit_longrope, 1, false, TL_OK, NULL },
    { "phi3-swa16", "phi3", "phi3", edit_swa16, 0, false, TL_OK, NULL },
    { "mistral-swa16", "mistral", "llama", edit_swa16, 0, false, TL_OK, NULL },
    { "mistral-swa64", "mistral", "llama", edit_swa64, 0, false, TL_OK, NULL },
    { "bad-qwen3-knorm", "qwen2", "qwen3", edit_qwen3, 1, true, TL_ERR_MISSING, "blk.1.attn_k_norm.weight" },
    { "bad-phi3-qkv", "phi3", "phi3", edit_drop_qkv, 0, true, TL_ERR_MISSING, "blk.0.attn_qkv.weight" },
    { "bad-longrope", "phi3", "phi3", edit_longrope, 2, true, TL_ERR_MISSING, "rope_factors_short.weight" },
    { "bad-rope-freqs", "llama", "llama", edit_llama3_freqs, 1, true, TL_ERR_FORMAT, "rope_freqs.weight" },
    { "bad-scaling", "llama", "llama", edit_linear4, 1, true, TL_ERR_UNSUPPORTED, "dynamic-ntk" },
};
enum { N_VARIANTS = sizeof k_variants / sizeof k_variants[0] };

static int write_variant(const variant *v, const char *dir, char *path, size_t path_n) {
    char rel[128];
    snprintf(rel, sizeof rel, "fixtures/models/%s.f32.gguf", v->fixture);
    tl_err err = { 0 };
    tl_gguf *src = NULL;
    if (tl_gguf_open(tl_test_shared(rel), &src, &err) != TL_OK) {
        fprintf(stderr, "cannot open %s: %s\n", rel, err.msg);
        return -1;
    }
    snprintf(path, path_n, "%s/%s.gguf", dir, v->name);
    build b;
    int rc = build_begin(&b, src, v->arch);
    if (rc == 0) {
        v->edit(&b, v->variant);
        rc = build_end(&b, path);
    } else {
        tl_gguf_writer_free(b.w);
    }
    tl_gguf_free(src);
    return rc;
}

/* ---- kernel-level checks ---------------------------------------------- */

static double max_rel(const float *got, const double *want, size_t n) {
    double m = 0, scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(got[i] - want[i]) / (scale > 0 ? scale : 1));
    return m;
}

/* QK-norm as forward.c runs it: the backend's RMSNorm over (n*n_head,
 * head_dim) rows with one (head_dim,) weight, against a direct computation. */
static void check_qk_norm(tl_backend *be) {
    const int n = 5, n_head = 6, hd = 48;
    const float eps = 1e-6f;
    const size_t N = (size_t)n * n_head * hd;
    float *x = be->ops->alloc(be, N * sizeof(float));
    float w[48];
    double *want = malloc(N * sizeof(double));
    if (!x || !want) { CHECK(0); return; }
    for (size_t i = 0; i < N; i++) x[i] = sinf(0.01f * (float)(i * i % 977)) * (1.0f + (float)(i / hd % 7));
    for (int i = 0; i < hd; i++) w[i] = 0.5f + 0.02f * (float)i;
    for (size_t r = 0; r < N / hd; r++) {
        double ss = 0;
        for (int i = 0; i < hd; i++) ss += (double)x[r * hd + i] * x[r * hd + i];
        double s = 1.0 / sqrt(ss / hd + eps);
        for (int i = 0; i < hd; i++) want[r * hd + i] = x[r * hd + i] * s * w[i];
    }
    tl_tensor wt = { .name = "q_norm", .type = TL_DTYPE_F32, .n_dims = 1, .ne = { hd, 1, 1, 1 },
                     .data = w, .nbytes = sizeof w };
    be->ops->norm(be, TL_NORM_RMS, x, &wt, NULL, eps, n * n_head, hd, x); /* in place, as forward.c */
    double e = max_rel(x, want, N);
    CHECKF(e < 1e-6, "per-head RMSNorm max rel error %.3g", e);
    /* a head's norm must not depend on its neighbours: every row has RMS |w| */
    for (size_t r = 0; r < N / hd; r++) {
        double ss = 0;
        for (int i = 0; i < hd; i++) ss += pow(x[r * hd + i] / w[i], 2);
        CHECKF(fabs(ss / hd - 1) < 1e-4, "row %zu rms^2 %.6f", r, ss / hd);
    }
    be->ops->dealloc(be, x);
    free(want);
}

/* RoPE with YaRN, linear scaling, frequency factors and attention factor
 * against the formulas written out in double. */
static void check_rope(tl_backend *be, tl_rope_kind kind, float freq_scale, float ext_factor,
                       bool factors, float attn_factor) {
    const int n = 7, n_head = 3, hd = 32, rot = 24, n_ctx_orig = 128;
    const float theta = 10000.0f, beta_fast = 32.0f, beta_slow = 1.0f;
    const size_t N = (size_t)n * n_head * hd;
    float *x = be->ops->alloc(be, N * sizeof(float));
    double *want = malloc(N * sizeof(double));
    float ff[12];
    int32_t pos[7];
    if (!x || !want) { CHECK(0); return; }
    for (int i = 0; i < rot / 2; i++) ff[i] = 1.0f + 0.7f * (float)i;
    for (int t = 0; t < n; t++) pos[t] = 3 + 11 * t;
    for (size_t i = 0; i < N; i++) x[i] = cosf(0.37f * (float)i) + 0.1f * (float)(i % 5);
    for (size_t i = 0; i < N; i++) want[i] = x[i];
    double lo = 0, hi = 0, mscale = attn_factor;
    if (ext_factor != 0) {
        double d_fast = rot * log(n_ctx_orig / (beta_fast * 2 * M_PI)) / (2 * log(theta));
        double d_slow = rot * log(n_ctx_orig / (beta_slow * 2 * M_PI)) / (2 * log(theta));
        lo = fmax(0, floor(d_fast));
        hi = fmin(rot - 1, ceil(d_slow));
        mscale *= 1 + 0.1 * log(1.0 / freq_scale);
    }
    for (int t = 0; t < n; t++)
        for (int h = 0; h < n_head; h++)
            for (int i = 0; i < rot / 2; i++) {
                double extrap = pos[t] * pow(theta, -2.0 * i / rot) / (factors ? ff[i] : 1.0);
                double a = freq_scale * extrap;
                if (ext_factor != 0) {
                    double mix = (1 - fmin(1, fmax(0, (i - lo) / fmax(0.001, hi - lo)))) * ext_factor;
                    a = a * (1 - mix) + extrap * mix;
                }
                size_t base = ((size_t)t * n_head + h) * hd;
                size_t i0 = base + (kind == TL_ROPE_NEOX ? (size_t)i : 2 * (size_t)i);
                size_t i1 = base + (kind == TL_ROPE_NEOX ? (size_t)(i + rot / 2) : 2 * (size_t)i + 1);
                double x0 = x[i0], x1 = x[i1];
                want[i0] = (x0 * cos(a) - x1 * sin(a)) * mscale;
                want[i1] = (x0 * sin(a) + x1 * cos(a)) * mscale;
            }
    tl_rope_params p = { .kind = kind, .n_head = n_head, .head_dim = hd, .rope_dims = rot,
                         .theta = theta, .freq_scale = freq_scale, .freq_factors = factors ? ff : NULL,
                         .attn_factor = attn_factor, .ext_factor = ext_factor,
                         .n_ctx_orig = n_ctx_orig, .beta_fast = beta_fast, .beta_slow = beta_slow };
    be->ops->rope(be, &p, x, n, n_head * hd, pos);
    double e = max_rel(x, want, N);
    CHECKF(e < 2e-5, "rope kind %d scale %g ext %g factors %d attn %g: max rel error %.3g", kind,
           freq_scale, ext_factor, factors, attn_factor, e);
    be->ops->dealloc(be, x);
    free(want);
}

static void check_broken(const variant *v, const char *path) {
    tl_model *m = NULL;
    tl_status rc = tl_model_load(path, NULL, &m);
    CHECKF(rc == v->want, "%s: status %d (%s), want %d: %s", v->name, rc, tl_status_str(rc), v->want,
           tl_last_error());
    CHECKF(strstr(tl_last_error(), v->needle) != NULL, "%s: message '%s' should mention '%s'",
           v->name, tl_last_error(), v->needle);
    tl_model_free(m);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--write")) {
        tl_test_require_shared();
        char path[1024];
        for (int i = 0; i < N_VARIANTS; i++) {
            if (k_variants[i].broken) continue;
            if (write_variant(&k_variants[i], argv[2], path, sizeof path) != 0) return 1;
            printf("%s\n", path);
        }
        return 0;
    }

    tl_err err = { 0 };
    tl_backend *be = NULL;
    CHECKF(tl_backend_cpu_init(2, &be, &err) == TL_OK, "%s", err.msg);
    if (be) {
        check_qk_norm(be);
        for (int k = 0; k < 2; k++) {
            tl_rope_kind kind = k ? TL_ROPE_NEOX : TL_ROPE_NORM;
            check_rope(be, kind, 1.0f, 0.0f, false, 1.0f);  /* plain */
            check_rope(be, kind, 0.25f, 0.0f, false, 1.0f); /* linear */
            check_rope(be, kind, 1.0f, 0.0f, true, 1.19f);  /* factors + attention factor */
            check_rope(be, kind, 0.25f, 1.0f, false, 1.0f); /* YaRN */
            check_rope(be, kind, 0.125f, 1.0f, true, 1.0f); /* YaRN over factors */
        }
        tl_backend_free(be);
    }

    tl_test_require_shared();
    char dir[] = "/tmp/tl_arch_variants_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[1024];
    for (int i = 0; i < N_VARIANTS; i++) {
        const variant *v = &k_variants[i];
        CHECKF(write_variant(v, dir, path, sizeof path) == 0, "building %s", v->name);
        if (v->broken) {
            check_broken(v, path);
        } else { /* the good ones load; their logits are checked by test_arch_logits.sh */
            tl_model *m = NULL;
            CHECKF(tl_model_load(path, NULL, &m) == TL_OK, "%s: %s", v->name, tl_last_error());
            tl_model_free(m);
        }
        unlink(path);
    }
    rmdir(dir);
    return tl_test_finish("test_arch_variants", 0);
}
