/* test_quantize.c — tl_quantize against llama-quantize's own files.
 *
 * For every quantized fixture made by llama.cpp's llama-quantize from
 * NAME.f32.gguf (no importance matrix), quantizing NAME.f32.gguf here must
 * give the same tensors in the same order, each with the same type and the
 * same bytes, and the same general.file_type. A synthetic file exercises
 * the row-length fallbacks and the never-quantized tensors without
 * fixtures; bad inputs must fail cleanly and leave no output behind. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "io/gguf.h"

static char g_tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", g_tmpdir, name);
    return buf;
}

static bool exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

typedef struct prog_count { int n, n_conv, n_requant; } prog_count;

static void count_progress(const tl_quantize_progress *p, void *user) {
    prog_count *c = user;
    c->n++;
    c->n_conv += p->converted;
    c->n_requant += p->requantized;
}

static char *dup_name(tl_gguf_str s) {
    char *p = malloc(s.len + 1);
    memcpy(p, s.ptr, s.len);
    p[s.len] = 0;
    return p;
}

/* Ours vs theirs: same tensor order, types, shapes, bytes; same file type. */
static void compare_files(const char *label, const char *ours, const char *ref) {
    tl_gguf *a = NULL, *b = NULL;
    tl_err err = { 0 };
    CHECKF(tl_gguf_open(ours, &a, &err) == TL_OK, "%s: %s", label, err.msg);
    CHECKF(tl_gguf_open(ref, &b, &err) == TL_OK, "%s: %s", label, err.msg);
    if (!a || !b) goto done;
    CHECKF(tl_gguf_n_tensors(a) == tl_gguf_n_tensors(b), "%s: %lld vs %lld tensors", label,
           (long long)tl_gguf_n_tensors(a), (long long)tl_gguf_n_tensors(b));
    CHECKF(tl_gguf_n_kv(a) == tl_gguf_n_kv(b), "%s: %lld vs %lld keys", label,
           (long long)tl_gguf_n_kv(a), (long long)tl_gguf_n_kv(b));
    uint32_t fa = 0, fb = 1, qa = 0;
    CHECK(tl_gguf_get_u32(a, "general.file_type", &fa));
    CHECK(tl_gguf_get_u32(b, "general.file_type", &fb));
    CHECKF(fa == fb, "%s: file_type %u vs %u", label, fa, fb);
    CHECK(tl_gguf_get_u32(a, "general.quantization_version", &qa) && qa == 2);
    int n_diff = 0;
    for (int64_t i = 0; i < tl_gguf_n_tensors(b) && i < tl_gguf_n_tensors(a); i++) {
        const tl_gguf_tensor *tb = tl_gguf_tensor_at(b, i);
        const tl_gguf_tensor *ta = tl_gguf_tensor_at(a, i);
        char *name = dup_name(tb->name);
        CHECKF(tl_gguf_str_eq(ta->name, name), "%s: tensor %lld is not %s", label, (long long)i,
               name);
        CHECKF(ta->type == tb->type, "%s: %s is %s, llama-quantize made %s", label, name,
               tl_dtype_name(ta->type), tl_dtype_name(tb->type));
        CHECKF(ta->n_dims == tb->n_dims && !memcmp(ta->ne, tb->ne, sizeof ta->ne), "%s: %s shape",
               label, name);
        if (ta->type == tb->type && ta->nbytes == tb->nbytes &&
            memcmp(ta->data, tb->data, (size_t)ta->nbytes) != 0) {
            fprintf(stderr, "%s: %s (%s) bytes differ\n", label, name, tl_dtype_name(ta->type));
            n_diff++;
        }
        free(name);
    }
    CHECKF(n_diff == 0, "%s: %d tensor(s) not byte-identical", label, n_diff);
    if (!n_diff && tl_gguf_n_tensors(a) == tl_gguf_n_tensors(b))
        printf("ok   %-16s %3lld tensors: same order, types and bytes as llama-quantize\n", label,
               (long long)tl_gguf_n_tensors(a));
done:
    tl_gguf_free(a);
    tl_gguf_free(b);
}

static void test_fixtures(void) {
    static const struct { const char *model, *type, *suffix; } cases[] = {
        { "llama", "Q8_0", "q8_0" },     { "llama", "Q4_0", "q4_0" },
        { "llama", "Q4_1", "q4_1" },     { "llama", "Q5_0", "q5_0" },
        { "llama", "Q5_1", "q5_1" },     { "llama", "Q2_K", "q2_k" },
        { "llama", "Q3_K_M", "q3_k_m" }, { "llama", "Q4_K_M", "q4_k_m" },
        { "llama", "Q5_K_M", "q5_k_m" }, { "llama", "Q6_K", "q6_k" },
        { "mistral", "q8_0", "q8_0" },   { "mistral", "q4_k_m", "q4_k_m" },
        { "qwen2", "q8_0", "q8_0" },     { "qwen2", "q4_k_m", "q4_k_m" },
        { "phi2", "q8_0", "q8_0" },      { "phi2", "q4_k_m", "q4_k_m" },
        { "phi3", "q8_0", "q8_0" },      { "phi3", "q4_k_m", "q4_k_m" },
        { "gemma", "q8_0", "q8_0" },     { "gemma", "q4_k_m", "q4_k_m" },
        { "gemma2", "q8_0", "q8_0" },    { "gemma2", "q4_k", "q4_k_m" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rel[256], label[64];
        snprintf(rel, sizeof rel, "fixtures/models/%s.f32.gguf", cases[i].model);
        char *in = strdup(tl_test_shared(rel));
        snprintf(rel, sizeof rel, "fixtures/models/%s.%s.gguf", cases[i].model, cases[i].suffix);
        char *ref = strdup(tl_test_shared(rel));
        snprintf(label, sizeof label, "%s.%s", cases[i].model, cases[i].suffix);
        const char *out = tmp_path("out.gguf");
        tl_quantize_params p = tl_quantize_default_params();
        p.type = cases[i].type;
        p.n_threads = 1 + (int)(i % 3); /* row split must not change a byte */
        prog_count pc = { 0 };
        p.progress = count_progress;
        p.progress_user = &pc;
        tl_status rc = tl_quantize(in, out, &p);
        CHECKF(rc == TL_OK, "%s: %s", label, tl_last_error());
        if (rc == TL_OK) {
            compare_files(label, out, ref);
            CHECK(pc.n > 0 && pc.n_conv > 0 && pc.n_requant == 0);
        }
        unlink(out);
        free(in);
        free(ref);
    }
}

/* A file llama-quantize was never run on: tied embeddings, odd row lengths,
 * tensors that are never quantized. Checks the types chosen. */
static void test_synthetic(void) {
    typedef struct { const char *name; int64_t ne0, ne1; const char *want_q4km, *want_q2k; } spec;
    static const spec ts[] = {
        { "token_embd.weight", 96, 16, "Q8_0", "Q8_0" },      /* tied output: Q8_0 */
        { "blk.0.attn_norm.weight", 96, 1, "F32", "F32" },    /* 1-D */
        { "blk.0.attn_q.weight", 100, 8, "F16", "F16" },      /* no block fits */
        { "blk.0.attn_k.weight", 96, 8, "Q5_0", "Q4_0" },     /* Q4_K/Q2_K fallbacks */
        { "blk.0.attn_v.weight", 96, 8, "Q8_0", "Q5_0" },     /* Q6_K / Q4_K (gqa 4) */
        { "blk.0.ffn_gate_inp.weight", 96, 4, "F32", "F32" }, /* never quantized */
        { "blk.0.ffn_down.weight", 512, 8, "Q6_K", "Q3_K" },
        { "blk.0.ffn_up.weight", 256, 8, "Q4_K", "Q2_K" },
    };
    const size_t n = sizeof ts / sizeof ts[0];
    tl_gguf_writer *w = NULL;
    tl_err err = { 0 };
    CHECK(tl_gguf_writer_init(&w, &err) == TL_OK);
    tl_gguf_writer_set_str(w, "general.architecture", "llama");
    tl_gguf_writer_set_u32(w, "llama.block_count", 1);
    tl_gguf_writer_set_u32(w, "llama.attention.head_count", 8);
    tl_gguf_writer_set_u32(w, "llama.attention.head_count_kv", 2);
    float *bufs[sizeof ts / sizeof ts[0]];
    for (size_t i = 0; i < n; i++) {
        const size_t cnt = (size_t)(ts[i].ne0 * ts[i].ne1);
        bufs[i] = malloc(cnt * sizeof(float));
        for (size_t k = 0; k < cnt; k++) bufs[i][k] = sinf((float)(k * 7 + i)) * 0.1f;
        const int64_t ne[4] = { ts[i].ne0, ts[i].ne1, 1, 1 };
        CHECK(tl_gguf_writer_add_tensor(w, ts[i].name, TL_DTYPE_F32, ts[i].ne1 > 1 ? 2 : 1, ne,
                                        bufs[i], cnt * sizeof(float)) == TL_OK);
    }
    const char *in = strdup(tmp_path("synth.gguf"));
    CHECKF(tl_gguf_writer_write(w, in, &err) == TL_OK, "%s", err.msg);
    tl_gguf_writer_free(w);
    for (size_t i = 0; i < n; i++) free(bufs[i]);

    for (int pass = 0; pass < 2; pass++) {
        tl_quantize_params p = tl_quantize_default_params();
        p.type = pass == 0 ? "Q4_K_M" : "q2_k";
        const char *out = tmp_path("synth.q.gguf");
        CHECKF(tl_quantize(in, out, &p) == TL_OK, "%s: %s", p.type, tl_last_error());
        tl_gguf *g = NULL;
        CHECK(tl_gguf_open(out, &g, &err) == TL_OK);
        for (size_t i = 0; g && i < n; i++) {
            const tl_gguf_tensor *t = tl_gguf_find_tensor(g, ts[i].name);
            const char *want = pass == 0 ? ts[i].want_q4km : ts[i].want_q2k;
            CHECKF(t && !strcmp(tl_dtype_name(t->type), want), "%s: %s is %s, want %s", p.type,
                   ts[i].name, t ? tl_dtype_name(t->type) : "absent", want);
        }
        uint32_t ft = 0;
        CHECK(g && tl_gguf_get_u32(g, "general.file_type", &ft) && ft == (pass == 0 ? 15u : 10u));
        tl_gguf_free(g);
        unlink(out);
    }
    unlink(in);
    free((void *)in);
}

/* Requantizing: a Q8_0 source quantized to Q4_0 goes through F32 (flagged),
 * and stays close to quantizing the F32 weights directly. */
static void test_requantize(void) {
    char *in = strdup(tl_test_shared("fixtures/models/llama.q8_0.gguf"));
    char *f32 = strdup(tl_test_shared("fixtures/models/llama.f32.gguf"));
    tl_quantize_params p = tl_quantize_default_params();
    p.type = "Q4_0";
    prog_count pc = { 0 };
    p.progress = count_progress;
    p.progress_user = &pc;
    const char *out = tmp_path("requant.gguf");
    CHECKF(tl_quantize(in, out, &p) == TL_OK, "%s", tl_last_error());
    CHECK(pc.n_requant > 0);
    tl_gguf *a = NULL, *b = NULL;
    tl_err err = { 0 };
    CHECK(tl_gguf_open(out, &a, &err) == TL_OK);
    CHECK(tl_gguf_open(f32, &b, &err) == TL_OK);
    const tl_gguf_tensor *ta = a ? tl_gguf_find_tensor(a, "blk.0.ffn_up.weight") : NULL;
    const tl_gguf_tensor *tb = b ? tl_gguf_find_tensor(b, "blk.0.ffn_up.weight") : NULL;
    CHECK(ta && tb && ta->type == TL_DTYPE_Q4_0 && tb->type == TL_DTYPE_F32);
    if (ta && tb) {
        const int64_t k = ta->ne[0] * ta->ne[1];
        float *x = malloc((size_t)k * sizeof *x);
        tl_dtype_traits_of(TL_DTYPE_Q4_0)->to_float(ta->data, x, k);
        double se = 0, ss = 0;
        for (int64_t i = 0; i < k; i++) {
            const double d = x[i] - ((const float *)tb->data)[i];
            se += d * d;
            ss += ((const float *)tb->data)[i] * ((const float *)tb->data)[i];
        }
        CHECKF(sqrt(se / ss) < 0.15, "relative RMSE %.4f", sqrt(se / ss));
        free(x);
    }
    tl_gguf_free(a);
    tl_gguf_free(b);
    unlink(out);
    free(in);
    free(f32);
}

static void test_bad_input(void) {
    char *in = strdup(tl_test_shared("fixtures/models/llama.f32.gguf"));
    tl_quantize_params p = tl_quantize_default_params();
    const char *out = strdup(tmp_path("bad.gguf"));

    p.type = "Q4_X";
    CHECK(tl_quantize(in, out, &p) == TL_ERR_INVALID_ARG);
    CHECKF(strstr(tl_last_error(), "Q4_X") != NULL, "%s", tl_last_error());
    p.type = NULL;
    CHECK(tl_quantize(in, out, &p) == TL_ERR_INVALID_ARG);
    p.type = "q8_0";
    CHECK(tl_quantize(tmp_path("missing.gguf"), out, &p) == TL_ERR_IO);
    CHECKF(strstr(tl_last_error(), "missing.gguf") != NULL, "%s", tl_last_error());
    CHECK(tl_quantize(in, tmp_path("no/such/dir/x.gguf"), &p) == TL_ERR_IO);
    CHECKF(strstr(tl_last_error(), "no/such/dir") != NULL, "%s", tl_last_error());
    CHECK(tl_quantize(NULL, out, &p) == TL_ERR_INVALID_ARG);

    /* a truncated GGUF: format error, nothing written */
    FILE *f = fopen(in, "rb"), *g = fopen(tmp_path("trunc.gguf"), "wb");
    char buf[4096];
    size_t got = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (g) fwrite(buf, 1, got, g);
    if (f) fclose(f);
    if (g) fclose(g);
    CHECK(tl_quantize(tmp_path("trunc.gguf"), out, &p) == TL_ERR_FORMAT);
    CHECK(!exists(out));
    unlink(tmp_path("trunc.gguf"));
    free(in);
    free((void *)out);
}

int main(void) {
    snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/tl_test_quantize_XXXXXX");
    if (!mkdtemp(g_tmpdir)) { perror("mkdtemp"); return 1; }
    test_synthetic();
    struct stat st;
    if (stat(tl_test_shared("fixtures"), &st) == 0) {
        test_fixtures();
        test_requantize();
        test_bad_input();
    } else {
        printf("note: ../shared/fixtures not found: fixture comparisons skipped\n");
    }
    rmdir(g_tmpdir);
    return tl_test_finish("test_quantize", 0);
}
