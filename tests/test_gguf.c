/* test_gguf.c — GGUF reader/writer: fixtures, hostile inputs, round trips.
 *
 * `test_gguf --dump FILE` prints a canonical listing (used to cross-check
 * the reader against the python `gguf` package while writing this test). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "io/gguf.h"
#include "io/mmap.h"

/* ------------------------------------------------------------- utilities */

static char g_tmpdir[256];

static char *tmp_path(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", g_tmpdir, name);
    return buf;
}

static uint8_t *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(n > 0 ? (size_t)n : 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) { free(p); p = NULL; }
    fclose(f);
    *size = (size_t)n;
    return p;
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    if (n && fwrite(p, 1, n, f) != n) { perror(path); exit(1); }
    fclose(f);
}

static bool has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* Touches everything a handle exposes (ASan catches any stray view). */
static uint64_t walk(const tl_gguf *g) {
    uint64_t h = 0;
    for (int64_t i = 0; i < tl_gguf_n_kv(g); i++) {
        const tl_gguf_kv *kv = tl_gguf_kv_at(g, i);
        for (uint64_t j = 0; j < kv->key.len; j++) h += (uint8_t)kv->key.ptr[j];
        if (kv->type == TL_GGUF_STRING && kv->str.len) h += (uint8_t)kv->str.ptr[kv->str.len - 1];
        if (kv->type != TL_GGUF_ARRAY) continue;
        for (uint64_t j = 0; j < kv->arr_n; j++) {
            tl_gguf_str s;
            if (kv->arr_type == TL_GGUF_STRING) {
                if (tl_gguf_arr_str(g, kv, j, &s) && s.len) h += (uint8_t)s.ptr[s.len - 1];
            } else {
                h += (uint64_t)tl_gguf_arr_i64(kv, j) + (uint64_t)(tl_gguf_arr_f64(kv, j) != 0);
            }
        }
    }
    for (int64_t i = 0; i < tl_gguf_n_tensors(g); i++) {
        const tl_gguf_tensor *t = tl_gguf_tensor_at(g, i);
        const uint8_t *d = t->data;
        h += d[0] + d[t->nbytes - 1];
    }
    return h;
}

static void dump(const char *path) {
    tl_err err = {0};
    tl_gguf *g;
    if (tl_gguf_open(path, &g, &err) != TL_OK) { printf("error %s\n", err.msg); return; }
    printf("version %u kv %lld tensors %lld alignment %llu\n", tl_gguf_version(g),
           (long long)tl_gguf_n_kv(g), (long long)tl_gguf_n_tensors(g),
           (unsigned long long)tl_gguf_alignment(g));
    for (int64_t i = 0; i < tl_gguf_n_kv(g); i++) {
        const tl_gguf_kv *kv = tl_gguf_kv_at(g, i);
        printf("kv %.*s %d", (int)kv->key.len, kv->key.ptr, kv->type);
        if (kv->type == TL_GGUF_ARRAY) printf(" %d %llu", kv->arr_type, (unsigned long long)kv->arr_n);
        printf("\n");
    }
    for (int64_t i = 0; i < tl_gguf_n_tensors(g); i++) {
        const tl_gguf_tensor *t = tl_gguf_tensor_at(g, i);
        printf("tensor %.*s %s", (int)t->name.len, t->name.ptr, tl_dtype_name(t->type));
        for (int d = 0; d < t->n_dims; d++) printf(" %lld", (long long)t->ne[d]);
        printf(" @%llu %llu\n", (unsigned long long)(tl_gguf_data_offset(g) + t->offset),
               (unsigned long long)t->nbytes);
    }
    tl_gguf_free(g);
}

/* ----------------------------------------------------- fixture coverage */

static int open_dir_all(const char *rel) {
    const char *dir = tl_test_shared(rel);
    char dcopy[512];
    snprintf(dcopy, sizeof dcopy, "%s", dir);
    DIR *d = opendir(dcopy);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!has_suffix(e->d_name, ".gguf")) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dcopy, e->d_name);
        tl_err err = {0};
        tl_gguf *g = NULL;
        tl_status st = tl_gguf_open(path, &g, &err);
        CHECKF(st == TL_OK, "%s: %s", path, err.msg);
        if (st != TL_OK) continue;
        CHECK(tl_gguf_version(g) == 3);
        CHECK(tl_gguf_find(g, "general.architecture") != NULL);
        walk(g);
        /* every tensor is reachable by name and lies inside the data section */
        for (int64_t i = 0; i < tl_gguf_n_tensors(g); i++) {
            const tl_gguf_tensor *t = tl_gguf_tensor_at(g, i);
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
            CHECKF(tl_gguf_find_tensor(g, name) == t, "%s: find %s", path, name);
            CHECK(t->offset % tl_gguf_alignment(g) == 0);
        }
        for (int64_t i = 0; i < tl_gguf_n_kv(g); i++) {
            const tl_gguf_kv *kv = tl_gguf_kv_at(g, i);
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.ptr);
            CHECKF(tl_gguf_find(g, key) == kv, "%s: find %s", path, key);
        }
        tl_gguf_free(g);
        n++;
    }
    closedir(d);
    return n;
}

static bool str_is(tl_gguf_str s, const char *c) { return tl_gguf_str_eq(s, c); }

static void test_llama_f32(void) {
    tl_err err = {0};
    tl_gguf *g = NULL;
    const char *path = tl_test_shared("fixtures/models/llama.f32.gguf");
    CHECKF(tl_gguf_open(path, &g, &err) == TL_OK, "%s", err.msg);
    if (!g) return;
    uint32_t u;
    int64_t i64;
    float f;
    bool b;
    tl_gguf_str s;
    CHECK(tl_gguf_n_kv(g) == 22 && tl_gguf_n_tensors(g) == 21);
    CHECK(tl_gguf_alignment(g) == 32);
    CHECK(tl_gguf_get_u32(g, "llama.embedding_length", &u) && u == 256);
    /* The fixture README says 3 layers; the file itself (and python gguf) say 2. */
    CHECK(tl_gguf_get_u32(g, "llama.block_count", &u) && u == 2);
    CHECK(tl_gguf_get_u32(g, "llama.context_length", &u) && u == 2048);
    CHECK(tl_gguf_get_u32(g, "llama.attention.head_count_kv", &u) && u == 2);
    CHECK(tl_gguf_get_i64(g, "llama.attention.head_count", &i64) && i64 == 8);
    CHECK(tl_gguf_get_f32(g, "llama.rope.freq_base", &f) && f == 10000.0f);
    CHECK(tl_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &f) && f == 1e-5f);
    CHECK(tl_gguf_get_f32(g, "llama.embedding_length", &f) && f == 256.0f); /* int -> float */
    CHECK(!tl_gguf_get_u32(g, "llama.rope.freq_base", &u));               /* float -> int: no */
    CHECK(!tl_gguf_get_u32(g, "general.architecture", &u));
    CHECK(!tl_gguf_get_str(g, "llama.block_count", &s));
    CHECK(!tl_gguf_get_u32(g, "no.such.key", &u));
    CHECK(tl_gguf_find(g, "no.such.key") == NULL && tl_gguf_find(g, "") == NULL);
    CHECK(tl_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b) && b);
    CHECK(tl_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b) && !b);
    CHECK(!tl_gguf_get_bool(g, "llama.block_count", &b));
    CHECK(tl_gguf_get_str(g, "general.architecture", &s) && str_is(s, "llama"));
    CHECK(tl_gguf_get_str(g, "tokenizer.ggml.model", &s) && str_is(s, "llama"));

    const tl_gguf_kv *tok = tl_gguf_find(g, "tokenizer.ggml.tokens");
    CHECK(tok && tok->type == TL_GGUF_ARRAY && tok->arr_type == TL_GGUF_STRING && tok->arr_n == 512);
    if (tok) {
        CHECK(tl_gguf_arr_str(g, tok, 0, &s) && str_is(s, "<unk>"));
        CHECK(tl_gguf_arr_str(g, tok, 2, &s) && str_is(s, "</s>"));
        CHECK(tl_gguf_arr_str(g, tok, 3, &s) && str_is(s, "<0x00>"));
        CHECK(tl_gguf_arr_str(g, tok, 258, &s) && str_is(s, "<0xFF>"));
        CHECK(tl_gguf_arr_str(g, tok, 511, &s) && str_is(s, "hd"));
        CHECK(!tl_gguf_arr_str(g, tok, 512, &s));
        CHECK(tl_gguf_arr_f64(tok, 0) == 0 && tl_gguf_arr_i64(tok, 0) == 0); /* not numeric */
    }
    const tl_gguf_kv *sc = tl_gguf_find(g, "tokenizer.ggml.scores");
    CHECK(sc && sc->arr_type == TL_GGUF_FLOAT32 && sc->arr_n == 512);
    if (sc) CHECK(tl_gguf_arr_f64(sc, 511) == -252.0 && tl_gguf_arr_f64(sc, 512) == 0);
    const tl_gguf_kv *tt = tl_gguf_find(g, "tokenizer.ggml.token_type");
    CHECK(tt && tt->arr_type == TL_GGUF_INT32 && tt->arr_n == 512);
    if (tt) CHECK(tl_gguf_arr_i64(tt, 0) == 2 && tl_gguf_arr_i64(tt, 1) == 3 &&
                  tl_gguf_arr_i64(tt, 3) == 6 && tl_gguf_arr_i64(tt, 511) == 1);
    /* a kv of another handle / a scalar kv is refused */
    CHECK(!tl_gguf_arr_str(g, tl_gguf_find(g, "llama.block_count"), 0, &s));
    tl_gguf_kv fake = tok ? *tok : (tl_gguf_kv){0};
    CHECK(!tl_gguf_arr_str(g, &fake, 0, &s));

    const tl_gguf_tensor *t = tl_gguf_find_tensor(g, "token_embd.weight");
    CHECK(t && t->type == TL_DTYPE_F32 && t->n_dims == 2 && t->ne[0] == 256 && t->ne[1] == 512 &&
          t->ne[2] == 1 && t->ne[3] == 1 && t->nbytes == 524288);
    CHECK(t && tl_gguf_data_offset(g) + t->offset == 12896);
    if (t) {
        const float *w = t->data;
        CHECK(w[0] == -0.32133022f && w[1] == -0.48566148f && w[256 * 512 - 1] == 1.0496318f);
    }
    CHECK(tl_gguf_find_tensor(g, "token_embd.weigh") == NULL);
    CHECK(tl_gguf_tensor_at(g, 21) == NULL && tl_gguf_tensor_at(g, -1) == NULL);
    CHECK(tl_gguf_kv_at(g, 22) == NULL && tl_gguf_kv_at(g, -1) == NULL);
    tl_gguf_free(g);

    path = tl_test_shared("fixtures/models/llama.q4_k_m.gguf");
    CHECKF(tl_gguf_open(path, &g, &err) == TL_OK, "%s", err.msg);
    if (!g) return;
    t = tl_gguf_find_tensor(g, "token_embd.weight");
    CHECK(t && t->type == TL_DTYPE_Q4_K && t->nbytes == 73728 && tl_gguf_data_offset(g) + t->offset == 121504);
    t = tl_gguf_find_tensor(g, "output.weight");
    CHECK(t && t->type == TL_DTYPE_Q6_K && t->nbytes == 107520);
    t = tl_gguf_find_tensor(g, "blk.1.attn_v.weight");
    CHECK(t && t->type == TL_DTYPE_Q6_K && t->ne[0] == 256 && t->ne[1] == 64 && t->nbytes == 13440);
    tl_gguf_free(g);

    path = tl_test_shared("fixtures/tokenizer/vocab-llama3.gguf");
    CHECKF(tl_gguf_open(path, &g, &err) == TL_OK, "%s", err.msg);
    if (!g) return;
    CHECK(tl_gguf_n_tensors(g) == 0);
    tok = tl_gguf_find(g, "tokenizer.ggml.tokens");
    CHECK(tok && tok->arr_n == 128256);
    if (tok) {
        CHECK(tl_gguf_arr_str(g, tok, 0, &s) && str_is(s, "!"));
        CHECK(tl_gguf_arr_str(g, tok, 1000, &s) && str_is(s, "indow"));
        CHECK(tl_gguf_arr_str(g, tok, 128255, &s) && str_is(s, "<|reserved_special_token_250|>"));
    }
    const tl_gguf_kv *mg = tl_gguf_find(g, "tokenizer.ggml.merges");
    CHECK(mg && mg->arr_n == 280147);
    if (mg) {
        CHECK(tl_gguf_arr_str(g, mg, 0, &s) && str_is(s, "\xc4\xa0 \xc4\xa0"));
        CHECK(tl_gguf_arr_str(g, mg, 280146, &s) && str_is(s, "\xc3\xa9\xc4\xb6 \xc2\xa6"));
    }
    CHECK(tl_gguf_get_str(g, "tokenizer.ggml.pre", &s) && str_is(s, "llama-bpe"));
    CHECK(tl_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u) && u == 128000);
    tl_gguf_free(g);
}

/* ------------------------------------------------- hand-built GGUF bytes */

typedef struct bld { uint8_t *p; size_t n, cap; int ver; } bld;

static void b_put(bld *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void b_le(bld *b, uint64_t v, int n) {
    uint8_t t[8];
    for (int i = 0; i < n; i++) t[i] = (uint8_t)(v >> (8 * i));
    b_put(b, t, (size_t)n);
}
static void b_u32(bld *b, uint64_t v) { b_le(b, v, 4); }
static void b_u64(bld *b, uint64_t v) { b_le(b, v, 8); }
static void b_len(bld *b, uint64_t v) { b_le(b, v, b->ver == 1 ? 4 : 8); }
static void b_str(bld *b, const char *s) { b_len(b, strlen(s)); b_put(b, s, strlen(s)); }
static void b_hdr(bld *b, int ver, uint64_t n_t, uint64_t n_kv) {
    b->n = 0;
    b->ver = ver;
    b_put(b, "GGUF", 4);
    b_u32(b, (uint64_t)ver);
    b_len(b, n_t);
    b_len(b, n_kv);
}
static void b_kv_u32(bld *b, const char *k, uint32_t v) { b_str(b, k); b_u32(b, TL_GGUF_UINT32); b_u32(b, v); }
static void b_tensor(bld *b, const char *name, int nd, const uint64_t *ne, uint32_t type, uint64_t off) {
    b_str(b, name);
    b_u32(b, (uint64_t)nd);
    for (int i = 0; i < nd; i++) b_len(b, ne[i]);
    b_u32(b, type);
    b_u64(b, off);
}
static void b_pad(bld *b, size_t a) { while (b->n % a) b_put(b, "", 1); }
static void b_zeros(bld *b, size_t n) { for (size_t i = 0; i < n; i++) b_put(b, "", 1); }

static int g_n_hostile;

/* Opens bytes from memory (and, when also_file, from a file) and expects
 * `want` with a message; never crashes (ASan run) is the other half. */
static void expect_mem(const char *what, const void *p, size_t n, tl_status want, bool also_file) {
    tl_err err = {0};
    tl_gguf *g = (tl_gguf *)1;
    /* copy into an exact-size heap block so ASan sees any overread */
    void *copy = malloc(n ? n : 1);
    if (n) memcpy(copy, p, n);
    tl_status st = tl_gguf_open_mem(n ? copy : NULL, n, &g, &err);
    CHECKF(st == want, "%s: got status %d (want %d): %s", what, st, want, err.msg);
    if (want != TL_OK) CHECKF(err.msg[0] != 0 && g == NULL, "%s: empty message or handle left", what);
    if (st == TL_OK) tl_gguf_free(g);
    if (getenv("TL_TEST_VERBOSE")) printf("  %-40s -> %s\n", what, err.msg);
    free(copy);
    g_n_hostile++;
    if (!also_file) return;
    char *path = tmp_path("hostile.gguf");
    write_file(path, p, n);
    memset(&err, 0, sizeof err);
    st = tl_gguf_open(path, &g, &err);
    CHECKF(st == want, "%s (file): got status %d (want %d): %s", what, st, want, err.msg);
    CHECKF(strstr(err.msg, "hostile.gguf") != NULL, "%s (file): message lacks path: %s", what, err.msg);
    if (st == TL_OK) tl_gguf_free(g);
    unlink(path);
}

static void test_hostile_headers(void) {
    bld b = {0};
    expect_mem("empty", "", 0, TL_ERR_FORMAT, true);
    expect_mem("3 bytes", "GGU", 3, TL_ERR_FORMAT, true);
    expect_mem("bad magic", "GGML\3\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 24, TL_ERR_FORMAT, true);
    expect_mem("magic only", "GGUF", 4, TL_ERR_FORMAT, false);
    expect_mem("magic + 2 bytes of version", "GGUF\3\0", 6, TL_ERR_FORMAT, false);
    b_hdr(&b, 0, 0, 0);
    expect_mem("version 0", b.p, b.n, TL_ERR_UNSUPPORTED, true);
    b_hdr(&b, 4, 0, 0);
    expect_mem("version 4", b.p, b.n, TL_ERR_UNSUPPORTED, false);
    b_hdr(&b, 0x03000000, 0, 0);
    expect_mem("big-endian version", b.p, b.n, TL_ERR_UNSUPPORTED, false);
    b_hdr(&b, 3, 0, 0);
    b.n -= 3;
    expect_mem("truncated counts", b.p, b.n, TL_ERR_FORMAT, false);

    /* valid minimal files in every version */
    for (int v = 1; v <= 3; v++) {
        b_hdr(&b, v, 0, 0);
        tl_gguf *g = NULL;
        tl_err err = {0};
        CHECKF(tl_gguf_open_mem(b.p, b.n, &g, &err) == TL_OK, "v%d empty: %s", v, err.msg);
        CHECK(g && tl_gguf_version(g) == (uint32_t)v && tl_gguf_n_kv(g) == 0);
        tl_gguf_free(g);
    }

    b_hdr(&b, 3, 1ull << 62, 0);
    expect_mem("n_tensors = 2^62", b.p, b.n, TL_ERR_FORMAT, true);
    b_hdr(&b, 3, 0, 1ull << 62);
    expect_mem("n_kv = 2^62", b.p, b.n, TL_ERR_FORMAT, false);
    b_hdr(&b, 3, 0, UINT64_MAX);
    expect_mem("n_kv = 2^64-1", b.p, b.n, TL_ERR_FORMAT, false);
    b_hdr(&b, 1, 0xffffffffu, 0);
    expect_mem("v1 n_tensors = 2^32-1", b.p, b.n, TL_ERR_FORMAT, false);
    /* n_tensors that fits the header-time bound but not after the kvs */
    b_hdr(&b, 3, 1, 1);
    b_kv_u32(&b, "k", 1);
    b_zeros(&b, 10);
    expect_mem("n_tensors fits only before kvs", b.p, b.n, TL_ERR_FORMAT, false);

    /* seeded random bytes, with and without a valid prefix */
    uint64_t s = 0x9e3779b97f4a7c15ull;
    uint8_t *rnd = malloc(4096);
    for (int it = 0; it < 300; it++) {
        size_t n = 1 + (size_t)(s % 4096);
        for (size_t i = 0; i < n; i++) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            rnd[i] = (uint8_t)s;
        }
        if (rnd[0] == 'G') rnd[0] = 'g';
        expect_mem("random bytes", rnd, n, TL_ERR_FORMAT, it == 0);
        if (n >= 8) {
            memcpy(rnd, "GGUF", 4);
            rnd[4] = (uint8_t)(1 + it % 3); rnd[5] = rnd[6] = rnd[7] = 0;
            tl_err err = {0};
            tl_gguf *g = NULL;
            if (tl_gguf_open_mem(rnd, n, &g, &err) == TL_OK) { walk(g); tl_gguf_free(g); }
            else CHECK(err.msg[0] != 0);
        }
    }
    free(rnd);
    free(b.p);
}

static void test_hostile_kvs(void) {
    bld b = {0};
    for (int v = 1; v <= 3; v += 2) {
        char what[128];
        b_hdr(&b, v, 0, 1);
        b_len(&b, v == 1 ? 0xffffffffull : 1ull << 60);
        b_zeros(&b, 16);
        snprintf(what, sizeof what, "v%d key length huge", v);
        expect_mem(what, b.p, b.n, TL_ERR_FORMAT, false);

        b_hdr(&b, v, 0, 1);
        b_str(&b, "k");
        b_u32(&b, TL_GGUF_STRING);
        b_len(&b, v == 1 ? 0xffffffffull : UINT64_MAX);
        b_zeros(&b, 16);
        snprintf(what, sizeof what, "v%d string value length huge", v);
        expect_mem(what, b.p, b.n, TL_ERR_FORMAT, v == 3);

        b_hdr(&b, v, 0, 1);
        b_str(&b, "k");
        b_u32(&b, TL_GGUF_ARRAY);
        b_u32(&b, TL_GGUF_UINT32);
        b_len(&b, v == 1 ? 0x40000000ull : 1ull << 60);
        b_zeros(&b, 64);
        snprintf(what, sizeof what, "v%d u32 array of 2^60", v);
        expect_mem(what, b.p, b.n, TL_ERR_FORMAT, false);

        b_hdr(&b, v, 0, 1);
        b_str(&b, "k");
        b_u32(&b, TL_GGUF_ARRAY);
        b_u32(&b, TL_GGUF_STRING);
        b_len(&b, v == 1 ? 0xffffffffull : 1ull << 60);
        b_zeros(&b, 64);
        snprintf(what, sizeof what, "v%d string array of 2^60", v);
        expect_mem(what, b.p, b.n, TL_ERR_FORMAT, false);

        /* plausible count, last string overruns */
        b_hdr(&b, v, 0, 1);
        b_str(&b, "k");
        b_u32(&b, TL_GGUF_ARRAY);
        b_u32(&b, TL_GGUF_STRING);
        b_len(&b, 3);
        b_str(&b, "ab");
        b_str(&b, "cd");
        b_len(&b, 100);
        b_put(&b, "xy", 2);
        snprintf(what, sizeof what, "v%d string array element overruns", v);
        expect_mem(what, b.p, b.n, TL_ERR_FORMAT, false);
    }
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, 13);
    b_u32(&b, 0);
    expect_mem("unknown kv type 13", b.p, b.n, TL_ERR_FORMAT, false);
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, 0xffffffffu);
    b_u32(&b, 0);
    expect_mem("unknown kv type 2^32-1", b.p, b.n, TL_ERR_FORMAT, false);
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, TL_GGUF_ARRAY);
    b_u32(&b, 99);
    b_u64(&b, 0);
    expect_mem("unknown array element type", b.p, b.n, TL_ERR_FORMAT, false);
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, TL_GGUF_ARRAY);
    b_u32(&b, TL_GGUF_ARRAY);
    b_u64(&b, 1);
    b_u32(&b, TL_GGUF_UINT8);
    b_u64(&b, 1);
    b_put(&b, "x", 1);
    expect_mem("array of arrays", b.p, b.n, TL_ERR_UNSUPPORTED, true);
    b_hdr(&b, 3, 0, 2);
    b_kv_u32(&b, "a.b", 1);
    b_kv_u32(&b, "a.b", 2);
    expect_mem("duplicate key", b.p, b.n, TL_ERR_FORMAT, true);
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, TL_GGUF_UINT64);
    b_put(&b, "1234567", 7);
    expect_mem("scalar value truncated", b.p, b.n, TL_ERR_FORMAT, false);

    const uint32_t bad_align[] = {0, 3, 48, 1u << 30};
    for (int i = 0; i < 4; i++) {
        b_hdr(&b, 3, 0, 1);
        b_kv_u32(&b, "general.alignment", bad_align[i]);
        char what[64];
        snprintf(what, sizeof what, "general.alignment = %u", bad_align[i]);
        expect_mem(what, b.p, b.n, TL_ERR_FORMAT, false);
    }
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "general.alignment");
    b_u32(&b, TL_GGUF_FLOAT32);
    b_u32(&b, 0x42000000); /* 32.0f */
    expect_mem("general.alignment as f32", b.p, b.n, TL_ERR_FORMAT, false);
    free(b.p);
}

/* One-tensor file: F32 or given type/dims/offset, data section padded. */
static void one_tensor(bld *b, int nd, const uint64_t *ne, uint32_t type, uint64_t off, size_t data) {
    b_hdr(b, 3, 1, 0);
    b_tensor(b, "t", nd, ne, type, off);
    b_pad(b, 32);
    b_zeros(b, data);
}

static void test_hostile_tensors(void) {
    bld b = {0};
    uint64_t ne4[] = {4};
    one_tensor(&b, 1, ne4, TL_DTYPE_F32, 0, 16);
    expect_mem("valid one tensor", b.p, b.n, TL_OK, false);
    one_tensor(&b, 1, ne4, TL_DTYPE_F32, 0, 15);
    expect_mem("one tensor, data 1 byte short", b.p, b.n, TL_ERR_FORMAT, true);
    one_tensor(&b, 1, ne4, TL_DTYPE_F32, 1ull << 63, 16);
    expect_mem("offset 2^63", b.p, b.n, TL_ERR_FORMAT, true);
    one_tensor(&b, 1, ne4, TL_DTYPE_F32, UINT64_MAX - 31, 16);
    expect_mem("offset 2^64-32 (sum overflows)", b.p, b.n, TL_ERR_FORMAT, false);
    one_tensor(&b, 1, ne4, TL_DTYPE_F32, 4, 64);
    expect_mem("misaligned offset", b.p, b.n, TL_ERR_FORMAT, true);
    one_tensor(&b, 1, ne4, 99, 0, 64);
    expect_mem("unknown tensor type 99", b.p, b.n, TL_ERR_UNSUPPORTED, true);
    one_tensor(&b, 1, ne4, 4, 0, 64);
    expect_mem("removed tensor type 4 (Q4_2)", b.p, b.n, TL_ERR_UNSUPPORTED, false);
    one_tensor(&b, 1, ne4, 0x80000000u, 0, 64);
    expect_mem("tensor type 2^31", b.p, b.n, TL_ERR_UNSUPPORTED, false);
    uint64_t ne16[] = {16};
    one_tensor(&b, 1, ne16, TL_DTYPE_Q4_0, 0, 64);
    expect_mem("Q4_0 ne[0]=16 not a block multiple", b.p, b.n, TL_ERR_FORMAT, false);
    one_tensor(&b, 0, ne4, TL_DTYPE_F32, 0, 64);
    expect_mem("n_dims 0", b.p, b.n, TL_ERR_FORMAT, false);
    uint64_t ne5[] = {1, 1, 1, 1, 1};
    one_tensor(&b, 5, ne5, TL_DTYPE_F32, 0, 64);
    expect_mem("n_dims 5", b.p, b.n, TL_ERR_FORMAT, false);
    uint64_t ne0[] = {4, 0};
    one_tensor(&b, 2, ne0, TL_DTYPE_F32, 0, 64);
    expect_mem("dim 0", b.p, b.n, TL_ERR_FORMAT, false);
    uint64_t neneg[] = {4, 1ull << 63};
    one_tensor(&b, 2, neneg, TL_DTYPE_F32, 0, 64);
    expect_mem("dim 2^63 (negative as int64)", b.p, b.n, TL_ERR_FORMAT, true);
    uint64_t neneg1[] = {UINT64_MAX};
    one_tensor(&b, 1, neneg1, TL_DTYPE_F32, 0, 64);
    expect_mem("dim -1", b.p, b.n, TL_ERR_FORMAT, false);
    uint64_t neov[] = {1ull << 32, 1ull << 32};
    one_tensor(&b, 2, neov, TL_DTYPE_F32, 0, 64);
    expect_mem("dims product overflows int64", b.p, b.n, TL_ERR_FORMAT, false);
    uint64_t neov4[] = {65536, 65536, 65536, 65536};
    one_tensor(&b, 4, neov4, TL_DTYPE_F32, 0, 64);
    expect_mem("4 dims product overflows", b.p, b.n, TL_ERR_FORMAT, false);
    uint64_t nebytes[] = {1ull << 62};
    one_tensor(&b, 1, nebytes, TL_DTYPE_F32, 0, 64);
    expect_mem("byte size overflows u64", b.p, b.n, TL_ERR_FORMAT, false);
    uint64_t nebig[] = {1ull << 40};
    one_tensor(&b, 1, nebig, TL_DTYPE_F32, 0, 64);
    expect_mem("4 TiB tensor in a tiny file", b.p, b.n, TL_ERR_FORMAT, false);
    b_hdr(&b, 3, 1, 0);
    b_tensor(&b, "t", 1, ne4, TL_DTYPE_F32, 0);
    expect_mem("tensor info truncated (offset)", b.p, b.n - 3, TL_ERR_FORMAT, false);
    /* v1: dims are u32 */
    b.ver = 1;
    b.n = 0;
    b_hdr(&b, 1, 1, 0);
    b_tensor(&b, "t", 2, (uint64_t[]){0xffffffffu, 0xffffffffu}, TL_DTYPE_F32, 0);
    b_pad(&b, 32);
    expect_mem("v1 dims 2^32-1 squared beyond file", b.p, b.n, TL_ERR_FORMAT, false);

    /* two tensors: duplicates and overlaps */
    uint64_t ne8[] = {8};
    b_hdr(&b, 3, 2, 0);
    b_tensor(&b, "same", 1, ne8, TL_DTYPE_F32, 0);
    b_tensor(&b, "same", 1, ne8, TL_DTYPE_F32, 32);
    b_pad(&b, 32);
    b_zeros(&b, 64);
    expect_mem("duplicate tensor name", b.p, b.n, TL_ERR_FORMAT, true);
    b_hdr(&b, 3, 2, 0);
    b_tensor(&b, "a", 1, ne8, TL_DTYPE_F32, 0);
    b_tensor(&b, "b", 1, ne8, TL_DTYPE_F32, 0);
    b_pad(&b, 32);
    b_zeros(&b, 64);
    expect_mem("two tensors at the same offset", b.p, b.n, TL_ERR_FORMAT, false);
    uint64_t ne16b[] = {16};
    b_hdr(&b, 3, 2, 0);
    b_tensor(&b, "b", 1, ne8, TL_DTYPE_F32, 32);
    b_tensor(&b, "a", 1, ne16b, TL_DTYPE_F32, 0);
    b_pad(&b, 32);
    b_zeros(&b, 96);
    expect_mem("tensors overlapping partially", b.p, b.n, TL_ERR_FORMAT, true);
    b_hdr(&b, 3, 2, 0);
    b_tensor(&b, "b", 1, ne8, TL_DTYPE_F32, 32);
    b_tensor(&b, "a", 1, ne8, TL_DTYPE_F32, 0);
    b_pad(&b, 32);
    b_zeros(&b, 64);
    expect_mem("two adjacent tensors (valid)", b.p, b.n, TL_OK, false);
    free(b.p);
}

/* Truncates a real file at points through each region. */
static void test_truncated_real(void) {
    const char *path = tl_test_shared("fixtures/models/llama.q8_0.gguf");
    size_t n;
    uint8_t *p = read_file(path, &n);
    CHECKF(p != NULL, "cannot read %s", path);
    if (!p) return;
    tl_gguf *g = NULL;
    tl_err err = {0};
    CHECKF(tl_gguf_open_mem(p, n, &g, &err) == TL_OK, "%s", err.msg);
    if (!g) { free(p); return; }
    const tl_gguf_kv *tok = tl_gguf_find(g, "tokenizer.ggml.tokens");
    const tl_gguf_tensor *t0 = tl_gguf_tensor_at(g, 0), *t5 = tl_gguf_tensor_at(g, 5);
    size_t kv0 = (size_t)((const uint8_t *)tl_gguf_kv_at(g, 0)->key.ptr - p);
    size_t kv3 = (size_t)((const uint8_t *)tl_gguf_kv_at(g, 3)->key.ptr - p);
    size_t toks = (size_t)(tok->arr_data - p);
    size_t name0 = (size_t)((const uint8_t *)t0->name.ptr - p);
    size_t name5 = (size_t)((const uint8_t *)t5->name.ptr - p);
    size_t data = (size_t)tl_gguf_data_offset(g);
    size_t last_end = 0;
    for (int64_t i = 0; i < tl_gguf_n_tensors(g); i++) {
        const tl_gguf_tensor *t = tl_gguf_tensor_at(g, i);
        size_t e = data + (size_t)(t->offset + t->nbytes);
        if (e > last_end) last_end = e;
    }
    tl_gguf_free(g);
    const size_t cuts[] = {
        6,                     /* inside the version */
        20,                    /* inside n_kv */
        kv0 + 3,               /* inside the first key */
        kv3 - 2,               /* inside kv 2's value */
        toks + 5000,           /* inside the token strings */
        name0 - 3,             /* inside the last kv / first tensor name length */
        name5 + 10,            /* inside tensor info 5 */
        data - 1,              /* in the padding before data */
        data + 1000,           /* inside the first tensors' data */
        last_end - 1,          /* one byte short of the last tensor */
    };
    for (int i = 0; i < 10; i++) {
        char what[64];
        snprintf(what, sizeof what, "real file truncated at %zu", cuts[i]);
        CHECK(cuts[i] < n);
        expect_mem(what, p, cuts[i], TL_ERR_FORMAT, i % 3 == 0);
    }
    /* single-byte corruptions in the header must never crash */
    for (size_t off = 0; off < data; off += 7) {
        uint8_t old = p[off];
        p[off] ^= 0xff;
        if (tl_gguf_open_mem(p, n, &g, &err) == TL_OK) { walk(g); tl_gguf_free(g); }
        else CHECK(err.msg[0] != 0);
        p[off] = old;
    }
    free(p);
}

/* -------------------------------------------------------- v1 / v2 files */

static void test_old_versions(void) {
    for (int v = 1; v <= 2; v++) {
        bld b = {0};
        uint64_t ne[] = {32, 2};
        b_hdr(&b, v, 1, 4);
        b_kv_u32(&b, "general.alignment", 64);
        b_str(&b, "s"); b_u32(&b, TL_GGUF_STRING); b_str(&b, "hello");
        b_str(&b, "arr"); b_u32(&b, TL_GGUF_ARRAY); b_u32(&b, TL_GGUF_STRING); b_len(&b, 3);
        b_str(&b, "x"); b_str(&b, ""); b_str(&b, "zz");
        b_str(&b, "i16"); b_u32(&b, TL_GGUF_ARRAY); b_u32(&b, TL_GGUF_INT16); b_len(&b, 2);
        b_le(&b, (uint16_t)-5, 2); b_le(&b, 7, 2);
        b_tensor(&b, "w", 2, ne, TL_DTYPE_Q8_0, 0);
        b_pad(&b, 64);
        size_t data = b.n;
        for (int i = 0; i < 68; i++) b_put(&b, &(uint8_t){(uint8_t)i}, 1);
        tl_gguf *g = NULL;
        tl_err err = {0};
        CHECKF(tl_gguf_open_mem(b.p, b.n, &g, &err) == TL_OK, "v%d: %s", v, err.msg);
        if (g) {
            tl_gguf_str s;
            CHECK(tl_gguf_version(g) == (uint32_t)v && tl_gguf_alignment(g) == 64);
            CHECK(tl_gguf_data_offset(g) == data);
            CHECK(tl_gguf_get_str(g, "s", &s) && str_is(s, "hello"));
            const tl_gguf_kv *a = tl_gguf_find(g, "arr");
            CHECK(a && a->arr_n == 3 && tl_gguf_arr_str(g, a, 0, &s) && str_is(s, "x"));
            CHECK(a && tl_gguf_arr_str(g, a, 1, &s) && s.len == 0);
            CHECK(a && tl_gguf_arr_str(g, a, 2, &s) && str_is(s, "zz"));
            const tl_gguf_kv *i16 = tl_gguf_find(g, "i16");
            CHECK(i16 && tl_gguf_arr_i64(i16, 0) == -5 && tl_gguf_arr_f64(i16, 1) == 7.0);
            const tl_gguf_tensor *t = tl_gguf_find_tensor(g, "w");
            CHECK(t && t->ne[0] == 32 && t->ne[1] == 2 && t->nbytes == 68 &&
                  ((const uint8_t *)t->data)[67] == 67);
            tl_gguf_free(g);
        }
        free(b.p);
    }
}

/* ---------------------------------------------------------------- writer */

static bool kv_equal(const tl_gguf *ga, const tl_gguf_kv *a, const tl_gguf *gb, const tl_gguf_kv *b) {
    if (a->type != b->type || a->key.len != b->key.len || memcmp(a->key.ptr, b->key.ptr, a->key.len))
        return false;
    switch (a->type) {
    case TL_GGUF_STRING:
        return a->str.len == b->str.len && memcmp(a->str.ptr, b->str.ptr, a->str.len) == 0;
    case TL_GGUF_ARRAY:
        if (a->arr_type != b->arr_type || a->arr_n != b->arr_n) return false;
        for (uint64_t i = 0; i < a->arr_n; i++) {
            if (a->arr_type == TL_GGUF_STRING) {
                tl_gguf_str x, y;
                if (!tl_gguf_arr_str(ga, a, i, &x) || !tl_gguf_arr_str(gb, b, i, &y) ||
                    x.len != y.len || memcmp(x.ptr, y.ptr, x.len))
                    return false;
            } else if (tl_gguf_arr_i64(a, i) != tl_gguf_arr_i64(b, i) ||
                       memcmp(&(double){tl_gguf_arr_f64(a, i)}, &(double){tl_gguf_arr_f64(b, i)}, 8)) {
                return false;
            }
        }
        return true;
    case TL_GGUF_BOOL: return a->v.b == b->v.b;
    default: return memcmp(&a->v, &b->v, sizeof a->v) == 0;
    }
}

static void test_writer_roundtrip(void) {
    tl_gguf_writer *w = NULL;
    tl_err err = {0};
    CHECK(tl_gguf_writer_init(&w, &err) == TL_OK);
    uint8_t u8 = 200; int8_t i8 = -100; uint16_t u16 = 60000; int16_t i16 = -30000;
    int64_t i64 = -(1ll << 50); double f64 = 3.141592653589793; uint64_t u64 = 1ull << 63;
    CHECK(tl_gguf_writer_set_scalar(w, "t.u8", TL_GGUF_UINT8, &u8) == TL_OK);
    CHECK(tl_gguf_writer_set_scalar(w, "t.i8", TL_GGUF_INT8, &i8) == TL_OK);
    CHECK(tl_gguf_writer_set_scalar(w, "t.u16", TL_GGUF_UINT16, &u16) == TL_OK);
    CHECK(tl_gguf_writer_set_scalar(w, "t.i16", TL_GGUF_INT16, &i16) == TL_OK);
    CHECK(tl_gguf_writer_set_u32(w, "t.u32", 4000000000u) == TL_OK);
    CHECK(tl_gguf_writer_set_i32(w, "t.i32", -2000000000) == TL_OK);
    CHECK(tl_gguf_writer_set_f32(w, "t.f32", 0.1f) == TL_OK);
    CHECK(tl_gguf_writer_set_bool(w, "t.bool", true) == TL_OK);
    CHECK(tl_gguf_writer_set_str(w, "t.str", "héllo") == TL_OK);
    CHECK(tl_gguf_writer_set_u64(w, "t.u64", u64) == TL_OK);
    CHECK(tl_gguf_writer_set_scalar(w, "t.i64", TL_GGUF_INT64, &i64) == TL_OK);
    CHECK(tl_gguf_writer_set_scalar(w, "t.f64", TL_GGUF_FLOAT64, &f64) == TL_OK);
    const float fa[] = {1.5f, -2.25f, 1e30f};
    const int32_t ia[] = {-1, 0, 1, INT32_MAX};
    const bool ba[] = {true, false, true};
    const uint8_t u8a[] = {0, 255};
    const double da[] = {-0.0, 1e300};
    const int64_t i64a[] = {INT64_MIN, INT64_MAX};
    const char *sa[] = {"a", "", "ccc", "\xe2\x96\x81the"};
    CHECK(tl_gguf_writer_set_arr(w, "a.f32", TL_GGUF_FLOAT32, fa, 3) == TL_OK);
    CHECK(tl_gguf_writer_set_arr(w, "a.i32", TL_GGUF_INT32, ia, 4) == TL_OK);
    CHECK(tl_gguf_writer_set_arr(w, "a.bool", TL_GGUF_BOOL, ba, 3) == TL_OK);
    CHECK(tl_gguf_writer_set_arr(w, "a.u8", TL_GGUF_UINT8, u8a, 2) == TL_OK);
    CHECK(tl_gguf_writer_set_arr(w, "a.f64", TL_GGUF_FLOAT64, da, 2) == TL_OK);
    CHECK(tl_gguf_writer_set_arr(w, "a.i64", TL_GGUF_INT64, i64a, 2) == TL_OK);
    CHECK(tl_gguf_writer_set_arr(w, "a.empty", TL_GGUF_UINT32, NULL, 0) == TL_OK);
    CHECK(tl_gguf_writer_set_arr_str(w, "a.str", sa, 4) == TL_OK);
    CHECK(tl_gguf_writer_set_u32(w, "t.u32", 7) == TL_OK); /* replaces in place */

    float t1[6] = {1, 2, 3, 4, 5, 6};
    uint8_t q8[2 * 34];
    for (int i = 0; i < 68; i++) q8[i] = (uint8_t)(i * 3);
    uint16_t h5[5] = {0x3c00, 0x4000, 0x4200, 0x4400, 0x4500};
    CHECK(tl_gguf_writer_add_tensor(w, "t1", TL_DTYPE_F32, 2, (int64_t[4]){3, 2}, t1, 24) == TL_OK);
    CHECK(tl_gguf_writer_add_tensor(w, "q8", TL_DTYPE_Q8_0, 2, (int64_t[4]){32, 2}, q8, 68) == TL_OK);
    CHECK(tl_gguf_writer_add_tensor(w, "h5", TL_DTYPE_F16, 1, (int64_t[4]){5}, h5, 10) == TL_OK);
    char *path = tmp_path("rt.gguf");
    CHECKF(tl_gguf_writer_write(w, path, &err) == TL_OK, "%s", err.msg);
    /* the in-memory image is the same bytes as the file */
    void *img = NULL;
    size_t img_n = 0, file_n = 0;
    CHECKF(tl_gguf_writer_write_mem(w, &img, &img_n, &err) == TL_OK, "%s", err.msg);
    uint8_t *file = read_file(path, &file_n);
    CHECK(img && file && img_n == file_n && memcmp(img, file, img_n) == 0);
    free(img);
    free(file);

    tl_gguf *g = NULL;
    CHECKF(tl_gguf_open(path, &g, &err) == TL_OK, "%s", err.msg);
    if (g) {
        const char *order[] = {"t.u8", "t.i8", "t.u16", "t.i16", "t.u32", "t.i32", "t.f32", "t.bool",
                               "t.str", "t.u64", "t.i64", "t.f64", "a.f32", "a.i32", "a.bool", "a.u8",
                               "a.f64", "a.i64", "a.empty", "a.str"};
        CHECK(tl_gguf_n_kv(g) == 20);
        for (int i = 0; i < 20 && i < tl_gguf_n_kv(g); i++)
            CHECKF(str_is(tl_gguf_kv_at(g, i)->key, order[i]), "kv %d order", i);
        const tl_gguf_kv *kv;
        kv = tl_gguf_find(g, "t.u8"); CHECK(kv && kv->type == TL_GGUF_UINT8 && kv->v.u64 == 200);
        kv = tl_gguf_find(g, "t.i8"); CHECK(kv && kv->type == TL_GGUF_INT8 && kv->v.i64 == -100);
        kv = tl_gguf_find(g, "t.u16"); CHECK(kv && kv->type == TL_GGUF_UINT16 && kv->v.u64 == 60000);
        kv = tl_gguf_find(g, "t.i16"); CHECK(kv && kv->type == TL_GGUF_INT16 && kv->v.i64 == -30000);
        kv = tl_gguf_find(g, "t.u32"); CHECK(kv && kv->type == TL_GGUF_UINT32 && kv->v.u64 == 7);
        kv = tl_gguf_find(g, "t.i32"); CHECK(kv && kv->type == TL_GGUF_INT32 && kv->v.i64 == -2000000000);
        kv = tl_gguf_find(g, "t.f32"); CHECK(kv && kv->type == TL_GGUF_FLOAT32 && kv->v.f64 == (double)0.1f);
        kv = tl_gguf_find(g, "t.bool"); CHECK(kv && kv->type == TL_GGUF_BOOL && kv->v.b);
        kv = tl_gguf_find(g, "t.u64"); CHECK(kv && kv->type == TL_GGUF_UINT64 && kv->v.u64 == u64);
        kv = tl_gguf_find(g, "t.i64"); CHECK(kv && kv->type == TL_GGUF_INT64 && kv->v.i64 == i64);
        kv = tl_gguf_find(g, "t.f64"); CHECK(kv && kv->type == TL_GGUF_FLOAT64 && kv->v.f64 == f64);
        tl_gguf_str s;
        CHECK(tl_gguf_get_str(g, "t.str", &s) && str_is(s, "héllo"));
        int64_t iv;
        uint32_t uv;
        CHECK(tl_gguf_get_i64(g, "t.i8", &iv) && iv == -100);
        CHECK(!tl_gguf_get_u32(g, "t.i8", &uv));          /* negative */
        CHECK(!tl_gguf_get_i64(g, "t.u64", &iv));         /* > INT64_MAX */
        CHECK(tl_gguf_get_u32(g, "t.u16", &uv) && uv == 60000);
        kv = tl_gguf_find(g, "a.f32");
        CHECK(kv && kv->arr_n == 3 && tl_gguf_arr_f64(kv, 1) == -2.25 && tl_gguf_arr_f64(kv, 2) == (double)1e30f);
        CHECK(kv && tl_gguf_arr_i64(kv, 2) == 0 && tl_gguf_arr_i64(kv, 1) == -2); /* out of range; trunc */
        kv = tl_gguf_find(g, "a.i32");
        CHECK(kv && tl_gguf_arr_i64(kv, 0) == -1 && tl_gguf_arr_i64(kv, 3) == INT32_MAX);
        kv = tl_gguf_find(g, "a.bool");
        CHECK(kv && kv->arr_type == TL_GGUF_BOOL && tl_gguf_arr_i64(kv, 0) == 1 && tl_gguf_arr_i64(kv, 1) == 0);
        kv = tl_gguf_find(g, "a.u8");
        CHECK(kv && tl_gguf_arr_i64(kv, 1) == 255);
        kv = tl_gguf_find(g, "a.f64");
        CHECK(kv && signbit(tl_gguf_arr_f64(kv, 0)) && tl_gguf_arr_f64(kv, 1) == 1e300);
        kv = tl_gguf_find(g, "a.i64");
        CHECK(kv && tl_gguf_arr_i64(kv, 0) == INT64_MIN && tl_gguf_arr_i64(kv, 1) == INT64_MAX);
        kv = tl_gguf_find(g, "a.empty");
        CHECK(kv && kv->arr_type == TL_GGUF_UINT32 && kv->arr_n == 0);
        kv = tl_gguf_find(g, "a.str");
        CHECK(kv && kv->arr_n == 4 && tl_gguf_arr_str(g, kv, 1, &s) && s.len == 0 &&
              tl_gguf_arr_str(g, kv, 3, &s) && str_is(s, "\xe2\x96\x81the"));
        CHECK(tl_gguf_alignment(g) == 32 && tl_gguf_data_offset(g) % 32 == 0);
        const tl_gguf_tensor *t = tl_gguf_find_tensor(g, "t1");
        CHECK(t && t->offset == 0 && t->n_dims == 2 && t->ne[0] == 3 && memcmp(t->data, t1, 24) == 0);
        t = tl_gguf_find_tensor(g, "q8");
        CHECK(t && t->offset == 32 && t->type == TL_DTYPE_Q8_0 && memcmp(t->data, q8, 68) == 0);
        t = tl_gguf_find_tensor(g, "h5");
        CHECK(t && t->offset == 128 && t->type == TL_DTYPE_F16 && memcmp(t->data, h5, 10) == 0);
        struct stat st;
        CHECK(stat(path, &st) == 0 && st.st_size == (off_t)(tl_gguf_data_offset(g) + 160));

        /* copy every kv into a new writer with 64-byte alignment */
        tl_gguf_writer *w2 = NULL;
        CHECK(tl_gguf_writer_init(&w2, &err) == TL_OK);
        CHECK(tl_gguf_writer_set_str(w2, "t.str", "kept") == TL_OK); /* set before copy: kept */
        CHECK(tl_gguf_writer_copy_kv(w2, g) == TL_OK);
        CHECK(tl_gguf_writer_set_u32(w2, "general.alignment", 64) == TL_OK);
        CHECK(tl_gguf_writer_add_tensor(w2, "t1", TL_DTYPE_F32, 2, (int64_t[4]){3, 2}, t1, 24) == TL_OK);
        CHECK(tl_gguf_writer_add_tensor(w2, "h5", TL_DTYPE_F16, 1, (int64_t[4]){5}, h5, 10) == TL_OK);
        char *p2 = tmp_path("rt2.gguf");
        CHECKF(tl_gguf_writer_write(w2, p2, &err) == TL_OK, "%s", err.msg);
        tl_gguf_writer_free(w2);
        tl_gguf *g2 = NULL;
        CHECKF(tl_gguf_open(p2, &g2, &err) == TL_OK, "%s", err.msg);
        if (g2) {
            CHECK(tl_gguf_alignment(g2) == 64 && tl_gguf_data_offset(g2) % 64 == 0);
            CHECK(tl_gguf_n_kv(g2) == 21 && str_is(tl_gguf_kv_at(g2, 0)->key, "t.str"));
            CHECK(tl_gguf_get_str(g2, "t.str", &s) && str_is(s, "kept"));
            for (int64_t i = 0; i < tl_gguf_n_kv(g); i++) {
                const tl_gguf_kv *a = tl_gguf_kv_at(g, i);
                if (str_is(a->key, "t.str")) continue;
                char key[64];
                snprintf(key, sizeof key, "%.*s", (int)a->key.len, a->key.ptr);
                const tl_gguf_kv *b = tl_gguf_find(g2, key);
                CHECKF(b && kv_equal(g, a, g2, b), "copied kv %s differs", key);
            }
            t = tl_gguf_find_tensor(g2, "h5");
            CHECK(t && t->offset == 64 && memcmp(t->data, h5, 10) == 0);
            tl_gguf_free(g2);
        }
        tl_gguf_free(g);
    }
    tl_gguf_writer_free(w);
}

/* Copies a real model (all kvs, all tensors) and compares everything. */
static void test_writer_copy_real(void) {
    const char *src = tl_test_shared("fixtures/models/llama.q4_k_m.gguf");
    tl_err err = {0};
    tl_gguf *g = NULL;
    CHECKF(tl_gguf_open(src, &g, &err) == TL_OK, "%s", err.msg);
    if (!g) return;
    tl_gguf_writer *w = NULL;
    CHECK(tl_gguf_writer_init(&w, &err) == TL_OK);
    CHECK(tl_gguf_writer_copy_kv(w, g) == TL_OK);
    for (int64_t i = 0; i < tl_gguf_n_tensors(g); i++) {
        const tl_gguf_tensor *t = tl_gguf_tensor_at(g, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        CHECK(tl_gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->nbytes) == TL_OK);
    }
    char *path = tmp_path("copy.gguf");
    CHECKF(tl_gguf_writer_write(w, path, &err) == TL_OK, "%s", err.msg);
    tl_gguf_writer_free(w);
    tl_gguf *h = NULL;
    CHECKF(tl_gguf_open(path, &h, &err) == TL_OK, "%s", err.msg);
    if (h) {
        CHECK(tl_gguf_n_kv(h) == tl_gguf_n_kv(g) && tl_gguf_n_tensors(h) == tl_gguf_n_tensors(g));
        for (int64_t i = 0; i < tl_gguf_n_kv(g) && i < tl_gguf_n_kv(h); i++)
            CHECKF(kv_equal(g, tl_gguf_kv_at(g, i), h, tl_gguf_kv_at(h, i)), "kv %lld", (long long)i);
        for (int64_t i = 0; i < tl_gguf_n_tensors(g) && i < tl_gguf_n_tensors(h); i++) {
            const tl_gguf_tensor *a = tl_gguf_tensor_at(g, i), *b = tl_gguf_tensor_at(h, i);
            CHECK(a->type == b->type && a->nbytes == b->nbytes && a->offset == b->offset &&
                  memcmp(a->ne, b->ne, sizeof a->ne) == 0 && memcmp(a->data, b->data, a->nbytes) == 0);
        }
        tl_gguf_free(h);
    }
    /* llama.cpp's writer packs tensors the way ours does: the files match byte for byte */
    size_t na, nb;
    uint8_t *pa = read_file(src, &na), *pb = read_file(path, &nb);
    CHECKF(pa && pb && na == nb && memcmp(pa, pb, na) == 0, "copy of %s is not byte-identical", src);
    free(pa);
    free(pb);
    tl_gguf_free(g);
}

static int count_tmp_leftovers(void) {
    DIR *d = opendir(g_tmpdir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    if (d) closedir(d);
    return n;
}

static void test_writer_errors(void) {
    tl_err err = {0};
    tl_gguf_writer *w = NULL;
    float x[4] = {0};
    CHECK(tl_gguf_writer_init(&w, &err) == TL_OK);
    CHECK(tl_gguf_writer_add_tensor(w, "a", TL_DTYPE_F32, 1, (int64_t[4]){4}, x, 16) == TL_OK);
    CHECK(tl_gguf_writer_add_tensor(w, "a", TL_DTYPE_F32, 1, (int64_t[4]){4}, x, 16) == TL_ERR_INVALID_ARG);
    char *path = tmp_path("never.gguf");
    CHECK(tl_gguf_writer_write(w, path, &err) == TL_ERR_INVALID_ARG && strstr(err.msg, "duplicate"));
    CHECK(access(path, F_OK) != 0);
    tl_gguf_writer_free(w);

    CHECK(tl_gguf_writer_init(&w, &err) == TL_OK);
    CHECK(tl_gguf_writer_add_tensor(w, "a", TL_DTYPE_F32, 1, (int64_t[4]){4}, x, 15) == TL_ERR_INVALID_ARG);
    CHECK(tl_gguf_writer_add_tensor(w, "q", TL_DTYPE_Q4_0, 1, (int64_t[4]){16}, x, 9) == TL_ERR_INVALID_ARG);
    CHECK(tl_gguf_writer_add_tensor(w, "b", (tl_dtype)99, 1, (int64_t[4]){4}, x, 16) == TL_ERR_INVALID_ARG);
    CHECK(tl_gguf_writer_add_tensor(w, "c", TL_DTYPE_F32, 5, (int64_t[4]){4}, x, 16) == TL_ERR_INVALID_ARG);
    CHECK(tl_gguf_writer_set_u32(w, "", 1) == TL_ERR_INVALID_ARG);
    CHECK(tl_gguf_writer_set_arr(w, "a.bad", TL_GGUF_STRING, x, 1) == TL_ERR_INVALID_ARG);
    CHECK(tl_gguf_writer_set_scalar(w, "a.bad", TL_GGUF_ARRAY, x) == TL_ERR_INVALID_ARG);
    tl_gguf_writer_free(w);

    CHECK(tl_gguf_writer_init(&w, &err) == TL_OK);
    CHECK(tl_gguf_writer_set_u32(w, "general.alignment", 48) == TL_OK);
    CHECK(tl_gguf_writer_write(w, path, &err) == TL_ERR_INVALID_ARG && err.msg[0]);
    CHECK(access(path, F_OK) != 0);
    tl_gguf_writer_free(w);

    /* directory missing: IO error; destination is a directory: rename fails,
     * the temp file is removed */
    CHECK(tl_gguf_writer_init(&w, &err) == TL_OK);
    CHECK(tl_gguf_writer_set_str(w, "k", "v") == TL_OK);
    CHECK(tl_gguf_writer_write(w, tmp_path("nodir/x.gguf"), &err) == TL_ERR_IO && err.msg[0]);
    char *dirpath = tmp_path("adir");
    mkdir(dirpath, 0755);
    CHECK(tl_gguf_writer_write(w, dirpath, &err) == TL_ERR_IO && err.msg[0]);
    CHECK(count_tmp_leftovers() == 0);
    rmdir(tmp_path("adir"));
    /* an existing file is replaced whole */
    path = tmp_path("replace.gguf");
    static const char old[] = "old contents, to be replaced whole ................................";
    write_file(path, old, sizeof old);
    CHECK(tl_gguf_writer_write(w, path, &err) == TL_OK);
    tl_gguf *g = NULL;
    CHECKF(tl_gguf_open(path, &g, &err) == TL_OK, "%s", err.msg);
    tl_gguf_str s;
    CHECK(g && tl_gguf_get_str(g, "k", &s) && str_is(s, "v"));
    tl_gguf_free(g);
    tl_gguf_writer_free(w);
    tl_gguf_writer_free(NULL);
    tl_gguf_free(NULL);
}

static void test_mmap(void) {
    tl_err err = {0};
    tl_mmap m;
    CHECK(tl_mmap_open(tmp_path("missing"), &m, &err) == TL_ERR_IO && strstr(err.msg, "missing"));
    CHECK(tl_mmap_open(g_tmpdir, &m, &err) == TL_ERR_IO);
    write_file(tmp_path("empty"), "", 0);
    CHECK(tl_mmap_open(tmp_path("empty"), &m, &err) == TL_OK && m.data == NULL && m.size == 0);
    tl_mmap_free(&m);
    CHECK(tl_mmap_open(tmp_path("empty"), &m, &err) == TL_OK);
    tl_gguf *g = NULL;
    CHECK(tl_gguf_open(tmp_path("empty"), &g, &err) == TL_ERR_FORMAT && strstr(err.msg, "empty"));
    write_file(tmp_path("abc"), "abc", 3);
    CHECK(tl_mmap_open(tmp_path("abc"), &m, &err) == TL_OK && m.size == 3 && memcmp(m.data, "abc", 3) == 0);
    tl_mmap_free(&m);
    tl_mmap_free(&m); /* zeroed after free: harmless */
    unlink(tmp_path("empty"));
    unlink(tmp_path("abc"));
}

static void rm_tmpdir(void) {
    DIR *d = opendir(g_tmpdir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        unlink(tmp_path(e->d_name));
    }
    if (d) closedir(d);
    rmdir(g_tmpdir);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--dump") == 0) { dump(argv[2]); return 0; }
    snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/test_gguf.XXXXXX");
    if (!mkdtemp(g_tmpdir)) { perror("mkdtemp"); return 1; }
    atexit(rm_tmpdir);

    test_mmap();
    test_hostile_headers();
    test_hostile_kvs();
    test_hostile_tensors();
    test_old_versions();
    test_writer_roundtrip();
    test_writer_errors();
    printf("hostile cases: %d\n", g_n_hostile);

    tl_test_require_shared();  /* everything below reads fixtures */
    int n = open_dir_all("fixtures/models") + open_dir_all("fixtures/tokenizer");
    CHECKF(n >= 38, "opened %d fixture GGUFs", n);
    printf("fixture GGUFs opened: %d\n", n);
    test_llama_f32();
    test_truncated_real();
    test_writer_copy_real();
    return tl_test_finish("test_gguf", 0);
}
